"""The keys page: a user's broker API keys — add, test against the venue, remove — never shown in clear.

Why test here: a key typed wrong, without trade permission, or for the testnet when live was meant is
found before a run's Phase 1 stops on it. A passing test records when and against which environment
(testnet or live) the venue accepted the keys (``user_secrets.verified_at`` / ``environment``); storing
a key again clears that, since the new value was never verified. Every change lands in the audit.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.dashboard.common import Notice, broker_options, frame_to_html
from workbench.dashboard.session import PageSession
from workbench.errors import BrokerError, ConfigError, WorkbenchError
from workbench.security.vault import Vault, redact
from workbench.trading.runner import broker_environment, key_fields, make_broker

__all__ = ["KeysPage", "keyed_brokers"]


def keyed_brokers(settings: Settings) -> list[tuple[str, str]]:
    """(label, broker name) of every offered broker that takes keys (paper takes none)."""
    out = []
    for label, name in broker_options(settings, None):
        try:
            key_fields(name)
        except (ConfigError, ImportError):
            continue
        out.append((label.replace(" (needs the trade_live permission)", ""), name))
    return out


class KeysPage:
    def __init__(self, settings: Settings, session: PageSession):
        self.settings = settings
        self.session = session
        self.notice = Notice("wb-keys-message")
        opts = keyed_brokers(settings)
        self.broker = w.Dropdown(options=opts, value=opts[0][1] if opts else None, description="Broker")
        self.broker.add_class("wb-keys-broker")
        self.broker.layout.width = "min(460px, 95%)"
        self.fields_box = w.VBox()
        self.inputs: dict[str, w.Password] = {}
        self.save_button = w.Button(description="Save keys", button_style="primary", icon="lock")
        self.save_button.add_class("wb-keys-save")
        self.test_button = w.Button(description="Test keys", icon="plug")
        self.test_button.add_class("wb-keys-test")
        self.remove_button = w.Button(description="Remove keys", button_style="danger", icon="trash")
        self.remove_button.add_class("wb-keys-remove")
        self.confirm_remove = w.Checkbox(description="yes, delete this broker's keys", indent=False)
        self.confirm_remove.add_class("wb-keys-confirm")
        self.table = w.HTML()
        self.table.add_class("wb-keys-table")
        self.environment = w.HTML()
        self.save_button.on_click(self.save)
        self.test_button.on_click(self.test)
        self.remove_button.on_click(self.remove)
        self.broker.observe(lambda _: self._fields(), names="value")
        self.widget = w.VBox(
            [
                w.HTML(
                    "<h3>Broker API keys</h3><div class='wb-hint'>Encrypted in your own vault; only you and "
                    "your runs can read them. Values are never shown again after saving.</div>"
                ),
                self.broker,
                self.environment,
                self.fields_box,
                w.HBox([self.save_button, self.test_button, self.remove_button, self.confirm_remove]),
                self.notice.widget,
                self.table,
            ]
        )
        self.widget.add_class("wb-keys-page")
        self._fields()

    def _fields(self) -> None:
        name = self.broker.value
        self.inputs = {f: w.Password(description=f) for f in (key_fields(name) if name else ())}
        for f, box in self.inputs.items():
            box.add_class(f"wb-key-{f.replace('_', '-')}")
        self.fields_box.children = tuple(self.inputs.values())
        if name:
            env = broker_environment(self.settings, name)
            words = {"testnet": "its TESTNET (test money)", "live": "LIVE — REAL MONEY"}[env]
            self.environment.value = f"<div>{html.escape(name)} trades {words} with these settings.</div>"

    def _vault(self) -> tuple[Any, Vault]:
        user = self.session.current()
        return user, Vault.open(self.session.accounts.engine, self.settings.home, user.id)

    def save(self, _: object = None) -> None:
        values = {f: box.value.strip() for f, box in self.inputs.items()}
        for box in self.inputs.values():
            box.value = ""
        name = self.broker.value
        try:
            user, vault = self._vault()
            empty = [f for f, v in values.items() if not v]
            if empty:
                raise ConfigError(f"{name} {', '.join(empty)} is empty: fill in every field (nothing stored)")
            for f, v in values.items():
                vault.put(f"{name}/{f}", v)
            self.session.accounts.record(user, "key_set", True, ", ".join(f"{name}/{f}" for f in values))
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.notice.say(f"stored {len(values)} key(s) for {name}, encrypted; press Test keys to check them", "ok")
        self.refresh()

    def test(self, _: object = None) -> None:
        """Connect with the stored keys and ask the venue (balances, trade permission)."""
        from workbench.trading.store import Store

        name = self.broker.value
        try:
            user, vault = self._vault()
            if not vault.names(f"{name}/"):
                raise ConfigError(f"no keys stored for {name}: enter them and press Save keys first")
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        try:
            brk = make_broker(self.settings, Store(self.settings.store_url).create(), name, vault)
            status = brk.check()
        except (BrokerError, ConfigError) as e:
            self.session.accounts.record(user, "key_test", False, f"{name}: {e}")
            self.notice.say(f"{name}: the keys did not work: {e}", "error")
            self.refresh()
            return
        if status.ok:
            vault.mark_verified(f"{name}/", status.environment)
        self.session.accounts.record(user, "key_test", status.ok, f"{name} ({status.environment}): {status.message}")
        self.notice.say(status.message, "ok" if status.ok else "error")
        self.refresh()

    def remove(self, _: object = None) -> None:
        name = self.broker.value
        if not self.confirm_remove.value:
            self.notice.say(f"tick 'yes, delete' to remove the keys of {name}", "warn")
            return
        self.confirm_remove.value = False
        try:
            user, vault = self._vault()
            gone = [n for n in vault.names(f"{name}/") if vault.delete(n)]
            if not gone:
                raise ConfigError(f"no keys stored for {name}: nothing removed")
            self.session.accounts.record(user, "key_delete", True, ", ".join(gone))
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.notice.say(f"removed {', '.join(gone)}", "ok")
        self.refresh()

    def refresh(self) -> None:
        """The stored keys, masked, with what each broker trades now and when the venue last accepted them."""
        if self.session.user is None:
            self.table.value = ""
            return
        try:
            _user, vault = self._vault()
        except WorkbenchError as e:
            self.table.value = ""
            self.notice.say(str(e), "error")
            return
        rows = []
        for row in vault.entries():
            broker = str(row["name"]).partition("/")[0]
            secret = vault.get(row["name"])
            try:
                trades = broker_environment(self.settings, broker)
            except ConfigError:
                trades = "unknown venue"
            rows.append(
                {
                    "key": row["name"],
                    "value": redact(secret.value if secret is not None else None),
                    "trades": "LIVE (real money)" if trades == "live" else trades,
                    "stored": str(row["updated_at"])[:19].replace("T", " "),
                    "last verified": str(row["verified_at"])[:19].replace("T", " ") if row["verified_at"] else "never",
                    "verified on": row["environment"] or "",
                }
            )
        self.table.value = frame_to_html(pd.DataFrame(rows), "no keys stored yet")
