"""The start page: choose account/broker, model, universe, interval; Start; watch Phase 1's steps arrive.

The universe is a real choice (``workbench.trading.universes``): the demo universe, an exchange's
instruments from the instrument master, the model's own, or symbols typed or named by a file. Its size
is shown, and a typo is refused on the page, naming the unknown symbols, before any process starts.

It never trades itself. Start launches the live process (``runner.start_background``) apart from this
kernel, so closing the browser neither stops nor orphans trading; the page polls the store's
``checks`` table, so Phase 1's steps appear one by one with their durations, and writes commands
(stop, emergency stop) that the loop obeys within one cycle. Real money needs the ``trade_live``
permission AND the broker's name typed as a confirmation; a second Start while one is starting or
running on the account is refused on the page (the account lock refuses it in the runner too).
"""

from __future__ import annotations

import html
import subprocess
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.dashboard.common import Notice, badge, broker_options, frame_to_html
from workbench.dashboard.models import BACKUP, ModelCatalog
from workbench.dashboard.session import PageSession
from workbench.errors import ConfigError, PermissionDenied, WorkbenchError
from workbench.trading.runner import MIN_INTERVAL_S, broker_environment
from workbench.trading.store import Store
from workbench.trading.universes import (
    DEMO,
    Universe,
    UniverseSources,
    named_universes,
    resolve_universe,
    universe_for,
    universe_sources,
)

__all__ = ["StartPage", "phase1_table"]

MODEL_UNIVERSE = ""  # the universe choice "what the model was trained on"
CUSTOM = "custom"  # the universe choice "typed symbols or file:PATH"

STATUS_COLOURS = {"RUNNING": "#1565c0", "STOPPED": "#555", "FAILED": "#c62828", "EMERGENCY_STOPPED": "#c62828"}


def phase1_table(checks: pd.DataFrame) -> pd.DataFrame:
    """Phase 1 as the page shows it: step, check, PASS/WARN/FAIL, how long it took, what it found (a
    passing check whose message starts ``WARNING:`` is a WARN: the run goes on)."""
    if checks.empty:
        return checks
    dur = checks["duration_s"] if "duration_s" in checks else pd.Series(float("nan"), index=checks.index)
    return pd.DataFrame(
        {
            "step": checks["seq"].astype(int) if "seq" in checks else range(1, len(checks) + 1),
            "check": checks["name"],
            "result": [
                "FAIL" if not ok else "WARN" if str(m).startswith("WARNING:") else "PASS"
                for ok, m in zip(checks["ok"], checks["message"], strict=True)
            ],
            "took": [("" if pd.isna(d) else f"{d:.2f} s") for d in dur],
            "message": checks["message"],
        }
    )


class StartPage:
    def __init__(self, settings: Settings, session: PageSession, catalog: ModelCatalog | None = None):
        self.settings = settings
        self.session = session
        self.catalog = catalog or ModelCatalog(settings)
        self.store = Store(settings.store_url).create()
        self.notice = Notice("wb-start-message")
        self._process: subprocess.Popen[bytes] | None = None

        opts = broker_options(settings)
        default = settings.broker.default if settings.broker.default in {v for _, v in opts} else "paper"
        self.broker = w.Dropdown(options=opts, value=default, description="Broker")
        self.broker.add_class("wb-broker")
        self.broker.layout.width = "min(460px, 95%)"
        self.model = w.Dropdown(options=[], description="Model")
        self.model.add_class("wb-start-model")
        self.model.layout.width = "min(560px, 95%)"
        self.universe = w.HTML()  # the model's own universe
        self.universe.add_class("wb-universe")
        self._sources = UniverseSources()
        self.universe_choice = w.Dropdown(options=[("the model's universe", MODEL_UNIVERSE)], description="Universe")
        self.universe_choice.add_class("wb-universe-choice")
        self.universe_choice.layout.width = "min(560px, 95%)"
        self.universe_text = w.Text(
            description="Symbols", placeholder="BTC/USDT,ETH/USDT  or  file:/path/to/symbols.txt (one per line)"
        )
        self.universe_text.add_class("wb-universe-text")
        self.universe_text.layout.width = "min(560px, 95%)"
        self.universe_size = w.HTML()
        self.universe_size.add_class("wb-universe-size")
        self.interval = w.BoundedFloatText(
            value=max(settings.live.interval_s, MIN_INTERVAL_S), min=MIN_INTERVAL_S, max=3600, description="Every (s)"
        )
        self.interval.add_class("wb-interval")
        self.live_confirm = w.Text(description="Confirm", placeholder="type the broker name")
        self.live_confirm.add_class("wb-live-confirm")
        self.live_warning = w.HTML()
        self.live_box = w.VBox([self.live_warning, self.live_confirm])
        self.start_button = w.Button(description="Start AI Trading", button_style="success", icon="play")
        self.start_button.add_class("wb-start")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop")
        self.stop_button.add_class("wb-stop")
        self.emergency_button = w.Button(
            description="Emergency stop", button_style="danger", icon="exclamation-triangle"
        )
        self.emergency_button.add_class("wb-emergency")
        self.status = w.HTML()
        self.status.add_class("wb-run-status")
        self.checks = w.HTML()
        self.checks.add_class("wb-phase1")
        self.start_button.on_click(self.start)
        self.stop_button.on_click(self.stop)
        self.emergency_button.on_click(self.emergency_stop)
        self.broker.observe(lambda _: self._show_live(), names="value")
        self.model.observe(lambda _: self._show_universe(), names="value")
        self.universe_choice.observe(lambda _: self._show_choice(), names="value")
        self.universe_text.observe(lambda _: self._show_choice(), names="value")
        self.widget = w.VBox(
            [
                w.HTML("<h3>Start AI trading</h3>"),
                self.broker,
                self.model,
                self.universe,
                self.universe_choice,
                self.universe_text,
                self.universe_size,
                self.interval,
                self.live_box,
                w.HBox([self.start_button, self.stop_button, self.emergency_button]),
                self.notice.widget,
                self.status,
                w.HTML("<h4 style='margin:8px 0 2px'>Phase 1 — validation</h4>"),
                self.checks,
            ]
        )
        self.widget.add_class("wb-start-page")
        self._show_live()

    # ---- choices ------------------------------------------------------------------------------
    def refresh_choices(self) -> None:
        """Brokers labelled for the logged-in user; models from the registry (never typed)."""
        user = self.session.user
        value = self.broker.value
        opts = broker_options(self.settings, user)
        self.broker.options = opts
        self.broker.value = value if value in {v for _, v in opts} else "paper"
        if user is not None:
            try:
                self.catalog.refresh()
            except WorkbenchError as e:
                self.notice.say(str(e), "error")
        keep = self.model.value
        choices = self.catalog.run_choices()
        self.model.options = choices
        values = [v for _, v in choices]
        self.model.value = keep if keep in values else values[0]
        self._show_universe()
        self._refresh_universes()
        self._show_live()

    # ---- the universe -------------------------------------------------------------------------
    def _refresh_universes(self) -> None:
        """The named universes of this home (lake, instrument master), the demo's first and the default."""
        try:
            self._sources = universe_sources(self.settings)
        except WorkbenchError as e:
            self.notice.say(f"universes could not be listed: {e}", "error")
            self._sources = UniverseSources()
        keep = self.universe_choice.value
        opts = [(label, spec) for label, spec, _n in named_universes(self._sources)]
        opts += [("the model's universe (what it was trained on)", MODEL_UNIVERSE)]
        opts += [("symbols typed below, or file:PATH", CUSTOM)]
        self.universe_choice.options = opts
        values = [v for _, v in opts]
        default = DEMO if DEMO in values else MODEL_UNIVERSE
        self.universe_choice.value = keep if keep in values and keep != MODEL_UNIVERSE else default
        self._show_choice()

    def chosen_universe(self) -> tuple[str | None, Universe | None]:
        """(the spec to start with, its resolution): (None, None) for the model's own universe;
        ``ConfigError`` naming what is wrong."""
        choice = self.universe_choice.value
        if choice == MODEL_UNIVERSE or choice is None:
            return None, None
        spec = self.universe_text.value.strip() if choice == CUSTOM else str(choice)
        if not spec:
            raise ConfigError("type the symbols (comma-separated) or file:PATH, or pick a named universe")
        if spec.lower().startswith("file:"):
            return spec, universe_for(self.settings, spec, self._sources)
        return spec, resolve_universe(spec, self._sources)

    def _show_choice(self) -> None:
        """The chosen universe's size and first symbols, or why it cannot be traded."""
        self.universe_text.layout.display = None if self.universe_choice.value == CUSTOM else "none"
        try:
            _spec, uni = self.chosen_universe()
        except WorkbenchError as e:
            self.universe_size.value = f"<span style='color:#c62828'>{html.escape(str(e))}</span>"
            return
        if uni is None:
            self.universe_size.value = "<span class='wb-hint'>the run trades the model's universe (above)</span>"
            return
        head = ", ".join(uni.symbols[:8]) + (f", … (+{uni.size - 8})" if uni.size > 8 else "")
        where = f" on {html.escape(uni.exchange)}" if uni.exchange else ""
        self.universe_size.value = (
            f"<div>Trades <b>{uni.size} instrument{'s' if uni.size != 1 else ''}</b>{where}: {html.escape(head)}</div>"
        )

    def _show_universe(self) -> None:
        ref = self.model.value
        if ref is None:
            self.universe.value = ""
            return
        try:
            if ref == BACKUP:
                from workbench.data.demo import demo_universe_in_lake

                demo = demo_universe_in_lake(self.settings)
                symbols = list(demo.symbols) if demo is not None else []
                where = demo.label if demo is not None else "no data in the lake yet"
            else:
                version = self._version_of(ref)
                uni = self.catalog.load(version).universe or {}
                symbols = [str(s) for s in uni.get("symbols", [])]
                where = f"{uni.get('exchange', '?')} {uni.get('timeframe', '')}"
        except WorkbenchError as e:
            self.universe.value = f"<span style='color:red'>{html.escape(str(e))}</span>"
            return
        head = ", ".join(symbols[:8]) + (f", … (+{len(symbols) - 8})" if len(symbols) > 8 else "")
        self.universe.value = (
            f"<div>Universe: <b>{len(symbols)} symbols</b> ({html.escape(where)}): {html.escape(head)}"
            "<br><span class='wb-hint'>what the model was trained on; a run trades the universe chosen below</span></div>"
        )

    def _version_of(self, ref: str) -> int:
        if "/" in ref:
            return int(ref.rpartition("/")[2])
        held = next((v for v in self.catalog.versions if ref in v.aliases), None)
        if held is None:
            raise ConfigError(f"no model holds the alias {ref!r} now: pick another")
        return held.version

    def _show_live(self) -> None:
        name = self.broker.value
        live = broker_environment(self.settings, name) == "live"
        self.live_box.layout.display = None if live else "none"
        if live:
            self.live_warning.value = (
                f"<b style='color:#c62828'>{html.escape(name)} trades REAL MONEY.</b> Type <code>"
                f"{html.escape(name)}</code> below to confirm (needs the trade_live permission)."
            )

    # ---- actions ------------------------------------------------------------------------------
    def _starting(self) -> bool:
        """A process this page launched is alive and has not yet written its run row (or is running it)."""
        return self._process is not None and self._process.poll() is None

    def start(self, _: object = None) -> None:
        """Launch the live process; Phase 1 runs there and its steps appear below as they finish."""
        from workbench.trading.runner import start_background

        name = self.broker.value
        typed, self.live_confirm.value = self.live_confirm.value.strip(), ""
        try:  # refused when not logged in, already starting/running, live without permission or confirmation
            user = self.session.current()
            if self._starting():
                assert self._process is not None
                raise ConfigError(
                    f"a run started from this page is still going (pid {self._process.pid}): stop it before "
                    "starting another"
                )
            if broker_environment(self.settings, name) == "live":
                if not user.can("trade_live"):
                    raise PermissionDenied(
                        f"{name} trades real money and {user.username} lacks the trade_live permission: "
                        "ask an admin (`workbench users grant`)"
                    )
                if typed != name:
                    raise ConfigError(f"{name} trades REAL MONEY: type {name!r} in the Confirm box, then Start")
            if self.model.value is None:
                raise ConfigError("pick a model first")
            spec, _uni = self.chosen_universe()  # a typo is refused here, naming the unknown symbols
            self._process = start_background(
                self.settings,
                broker=name,
                model=str(self.model.value),
                interval_s=float(self.interval.value),
                session=self.session.token,
                universe=spec,
            )
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.notice.say(f"live process started (pid {self._process.pid}); Phase 1's steps follow below", "ok")
        self.refresh()

    def stop(self, _: object = None) -> None:
        self._stop(emergency=False)

    def emergency_stop(self, _: object = None) -> None:
        self._stop(emergency=True)

    def _stop(self, emergency: bool) -> None:
        """Send the command to the user's running run; a dead run is reported dead (nothing would obey)."""
        from workbench.trading.runner import stop_run

        try:
            out = stop_run(self.settings, emergency=emergency, user=self.session.current())
        except WorkbenchError as e:  # not logged in, or several runs are RUNNING: the message says which
            self.notice.say(str(e), "error")
            return
        if out.sent and emergency:
            self.notice.say(f"EMERGENCY STOP sent to run {out.run_id}: open orders are cancelled now", "error")
        elif out.sent:
            self.notice.say(f"stop requested: run {out.run_id} ends after its current cycle", "warn")
        else:
            self.notice.say(out.message, "error" if out.dead else "warn")
        self.refresh()

    # ---- polling ------------------------------------------------------------------------------
    def current_run(self, user: Any) -> dict | None:
        """The run this page started (matched by pid), else the user's latest run."""
        from workbench.trading.runner import status

        if self._process is not None:
            latest = self.store.latest_run(user_id=None if user.can("admin") else user.id)
            if latest is not None and latest.get("pid") == self._process.pid:
                return status(self.settings, run_id=int(latest["id"]), user=user)
        st = status(self.settings, user=user)
        return st if st.get("run_id") is not None else None

    def refresh(self) -> None:
        """Re-read the run and its Phase 1 checks: a few small queries, cheap every couple of seconds."""
        user = self.session.user
        for b in (self.start_button, self.stop_button, self.emergency_button):
            b.disabled = user is None
        if user is None:
            self.status.value = "<i>Log in to start and see your runs.</i>"
            self.checks.value = ""
            return
        try:
            checked = self.session.check()  # polling: not counted as use
            if checked is None:
                return
            st = self.current_run(checked)
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.start_button.disabled = self._starting()
        if st is None:
            starting = " Starting…" if self._starting() else ""
            self.status.value = f"<i>No live run yet. Press <b>Start AI Trading</b>.{starting}</i>"
            self.checks.value = frame_to_html(None, "Phase 1 has not run yet")
            return
        run_id = st["run_id"]
        colour = STATUS_COLOURS.get(str(st.get("status")), "#555")
        equity = st.get("equity")
        eq = f" · equity {equity:,.2f}" if isinstance(equity, (int, float)) else ""
        dead = " (process gone)" if st.get("stale") else ""
        feed = {"LIVE": badge("LIVE DATA", "#2e7d32"), "REPLAY": badge("REPLAY · old bars", "#ef6c00")}.get(
            str(st.get("feed")), ""
        )
        self.status.value = (
            f"{badge(str(st.get('status')) + dead, colour)} {feed} run {run_id} · {html.escape(str(st.get('broker')))} "
            f"({html.escape(str(st.get('environment')))}) · cycle {st.get('cycle')} · "
            f"model {html.escape(str(st.get('model_ref') or ''))}{eq} · {html.escape(str(st.get('message') or ''))}"
        )
        steps = phase1_table(self.store.checks(int(run_id)))
        pending = (
            st.get("status") == "RUNNING" and not st.get("cycle") and (steps.empty or steps["result"].eq("PASS").all())
        )
        note = "<div class='wb-hint'>Phase 1 running: the next step appears when it finishes…</div>" if pending else ""
        self.checks.value = frame_to_html(steps, "Phase 1 has not run yet") + note
