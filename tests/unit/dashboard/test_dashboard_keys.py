"""The keys page against a real ccxt client talking to the local FakeBinance: keys are stored
encrypted in the user's vault, shown masked, tested against the venue (testnet vs live, and when it
last accepted them), removed only after a confirmation; every change lands in the audit."""

from __future__ import annotations

import pytest

from tests.kit.fake_binance import FakeBinance
from tests.kit.users import trader
from tests.unit.dashboard.pages import logged_in, open_tab
from workbench.config import load_settings
from workbench.security.vault import Vault


@pytest.fixture
def fake():
    with FakeBinance(symbols=("BTC/USDT",)) as f:
        f.set_balance("USDT", 10_000.0)
        yield f


def test_add_test_and_remove_keys_masked_with_the_environment_and_last_verified(tmp_path, fake, monkeypatch):
    for v in ("API_KEY", "SECRET"):
        monkeypatch.delenv(f"WORKBENCH_KEY_CCXT_BINANCE_{v}", raising=False)
    urls = fake.ccxt_config()["urls"]
    s = load_settings(tmp_path / "home", broker={"timeout_s": 3.0}, venues={"ccxt": {"urls": {"binance": urls}}})
    t = trader(s, monkeypatch=monkeypatch)
    app = logged_in(s)
    keys = open_tab(app, "Keys")
    offered = [v for _, v in keys.broker.options]
    assert "paper" not in offered and {"ccxt:binance", "kite", "alpaca"} <= set(offered)
    keys.broker.value = "ccxt:binance"
    assert set(keys.inputs) == {"api_key", "secret"} and "TESTNET" in keys.environment.value
    assert "no keys stored yet" in keys.table.value

    keys.inputs["api_key"].value = fake.api_key
    keys.save_button.click()
    assert "secret is empty" in keys.notice.text and Vault.for_user(s, t.user.id).names() == []

    keys.inputs["api_key"].value, keys.inputs["secret"].value = fake.api_key, "not-the-secret-at-all"
    keys.save_button.click()
    assert "stored 2 key(s)" in keys.notice.text and keys.inputs["secret"].value == ""  # nothing typed stays
    assert fake.api_key not in keys.table.value and "not-the-secret" not in keys.table.value
    assert keys.table.value.count("never") == 2 and "testnet" in keys.table.value
    keys.test_button.click()
    assert keys.notice.kind == "error" and "did not work" in keys.notice.text
    assert keys.table.value.count("never") == 2  # a refused key is not verified

    keys.inputs["api_key"].value, keys.inputs["secret"].value = fake.api_key, fake.secret
    keys.save_button.click()
    keys.test_button.click()
    assert keys.notice.kind == "ok" and "accepted" in keys.notice.text and "10,000.00 USDT" in keys.notice.text
    assert "never" not in keys.table.value and ">testnet<" in keys.table.value
    entries = {e["name"]: e for e in Vault.for_user(s, t.user.id).entries()}
    assert entries["ccxt:binance/secret"]["environment"] == "testnet" and entries["ccxt:binance/secret"]["verified_at"]
    assert fake.secret not in keys.table.value and fake.secret not in keys.notice.widget.value

    keys.remove_button.click()
    assert "tick 'yes, delete'" in keys.notice.text and len(Vault.for_user(s, t.user.id).names()) == 2
    keys.confirm_remove.value = True
    keys.remove_button.click()
    assert "removed" in keys.notice.text and Vault.for_user(s, t.user.id).names() == []
    assert "no keys stored yet" in keys.table.value and keys.confirm_remove.value is False
    actions = [(r["action"], bool(r["ok"])) for r in reversed(t.accounts.audit_log(50, user=t.user))]
    assert ("key_set", True) in actions and ("key_test", False) in actions and ("key_test", True) in actions
    assert actions[-1] == ("key_delete", True)


def test_keys_are_each_users_own(tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    a = trader(s, "alice", monkeypatch=monkeypatch)
    b = trader(s, "bobby")
    a.vault.put("kite/api_key", "alice-kite-api-key-123")
    page = open_tab(logged_in(s, "bobby"), "Keys")
    assert "no keys stored yet" in page.table.value
    page.broker.value = "kite"
    page.test_button.click()
    assert "no keys stored for kite" in page.notice.text
    assert Vault.for_user(s, b.user.id).names() == [] and a.vault.names() == ["kite/api_key"]
    mine = open_tab(logged_in(s, "alice"), "Keys")
    assert "kite/api_key" in mine.table.value and "alice-kite-api-key" not in mine.table.value
    assert "LIVE (real money)" in mine.table.value  # Kite has no testnet
