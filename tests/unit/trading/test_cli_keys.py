"""`workbench keys ...` and `live run --broker`: keys typed hidden go encrypted into the vault, are
listed redacted, deleted by broker; a real broker without keys fails Phase 1 naming the command."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from tests.kit.users import trader
from workbench.cli import app
from workbench.config import load_settings
from workbench.trading.store import Store

SECRET = "s3cr3t-value-0123456789"


def run(home, *args, input=None):
    return CliRunner().invoke(app, [*args, "--home", str(home)], input=input)


def test_keys_set_list_delete(tmp_path, monkeypatch):
    home = tmp_path / "home"
    r = run(home, "keys", "list")
    assert r.exit_code == 11 and "not logged in" in r.output  # keys are some user's: a session is needed
    t = trader(load_settings(home), monkeypatch=monkeypatch)
    r = run(home, "keys", "set", "ccxt:Binance", input=f"AKEY-0123456789\n{SECRET}\n")
    assert r.exit_code == 0, r.output
    assert "stored ccxt:binance/api_key, ccxt:binance/secret" in r.output and SECRET not in r.output
    vault = t.vault
    assert vault.get("ccxt:binance/secret").value == SECRET
    raw = sqlite3.connect(home / "data" / "workbench.db").execute("SELECT ciphertext FROM user_secrets").fetchall()
    assert raw and all(SECRET not in c for (c,) in raw)  # encrypted at rest

    listed = run(home, "keys", "list")
    assert listed.exit_code == 0 and "ccxt:binance/api_key" in listed.output and "…89>" in listed.output
    assert SECRET not in listed.output and "AKEY-0123456789" not in listed.output

    gone = run(home, "keys", "delete", "ccxt:binance")
    assert gone.exit_code == 0 and "ccxt:binance/api_key" in gone.output and vault.names() == []
    again = run(home, "keys", "delete", "ccxt:binance")
    assert again.exit_code == 3 and "no stored key matches" in again.output
    actions = [(r["action"], r["detail"]) for r in t.accounts.audit_log(user=t.user)]
    assert ("key_set", "ccxt:binance/api_key, ccxt:binance/secret") in actions
    assert ("key_delete", "ccxt:binance/api_key, ccxt:binance/secret") in actions


def test_keys_set_refuses_paper_and_unknown_brokers(tmp_path):
    r = run(tmp_path / "home", "keys", "set", "paper")
    assert r.exit_code == 3 and "takes no keys" in r.output
    r = run(tmp_path / "home", "keys", "set", "ccxt:nope")
    assert r.exit_code == 3 and "ccxt has no exchange 'nope'" in r.output


def test_live_run_on_a_real_broker_without_keys_fails_phase1_naming_the_command(tmp_path, monkeypatch):
    """No network is touched: the binance adapter (when installed) finds no keys, or is absent."""
    home = tmp_path / "home"
    trader(load_settings(home), monkeypatch=monkeypatch)
    r = run(home, "live", "run", "--broker", "ccxt:binance", "--cycles", "1", "--interval", "0")
    assert r.exit_code == 9, r.output  # the run ran and ended FAILED
    run_row = Store(load_settings(home).store_url).latest_run()
    assert run_row["status"] == "FAILED" and run_row["environment"] == "testnet" and run_row["broker"] == "ccxt:binance"
    assert "api_keys" in run_row["message"] and "workbench keys set ccxt:binance" in run_row["message"]


def test_kite_login_from_the_command_line_stores_todays_token(tmp_path, monkeypatch):
    from tests.kit.fake_kite import TRADING_INSTRUMENTS, FakeKite

    home = tmp_path / "home"
    t = trader(load_settings(home), monkeypatch=monkeypatch)
    with FakeKite(TRADING_INSTRUMENTS, api_key="kite-key", api_secret="kite-secret-0123456789", cash=1e5) as fake:
        monkeypatch.setenv("WORKBENCH_VENUES__KITE__ROOT", fake.url)
        r = run(home, "keys", "set", "kite", input="kite-key\nkite-secret-0123456789\n")
        assert r.exit_code == 0 and "keys kite-login" in r.output, r.output
        bad = run(home, "keys", "kite-login", "--request-token", "not-issued")
        assert (
            bad.exit_code == 6
            and "Kite refused the request token" in bad.output
            and "Open the login URL again" in bad.output
        )
        ok = run(home, "keys", "kite-login", "--request-token", fake.issue_request_token())
        assert ok.exit_code == 0, ok.output
        assert (
            "https://kite.zerodha.com/connect/login?api_key=kite-key" in ok.output and "stored (encrypted)" in ok.output
        )
        token = t.vault.get("kite/access_token")
        assert token is not None and token.value and token.expires_at is not None and token.value not in ok.output
        assert token.expires_at.tz_convert("Asia/Kolkata").hour == 6  # Kite logs everyone out at 06:00 IST
