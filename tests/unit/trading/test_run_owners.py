"""Runs and keys belong to users: A never sees or stops B's keys or runs (Python API and CLI); a live run
needs trade_live (revoked mid-run: the run goes on until stopped, the next Start is refused); an
expired or revoked session starts nothing; each user's risk limits reach their run."""

from __future__ import annotations

import time
from datetime import timedelta

from typer.testing import CliRunner

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from tests.kit.venue import KeyedVenue
from tests.unit.trading.test_trading_runner import INTERVAL, long_feed, start_thread, wait_for_cycle
from workbench.cli import app
from workbench.config import load_settings
from workbench.security.access import TOKEN_ENV, accounts_for, set_user_risk
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import PendingBroker
from workbench.trading.runner import request_stop, status
from workbench.trading.store import Store

NAME = "ccxt:kitx"


def _home(tmp_path, monkeypatch, **kw):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    s = load_settings(tmp_path / "home", **kw)
    s.ensure_dirs()
    return s


def _cli(settings, token, *args, input=None):
    return CliRunner().invoke(app, [*args, "--home", str(settings.home)], input=input, env={TOKEN_ENV: token})


def test_a_user_never_sees_or_stops_another_users_keys_or_runs(tmp_path, monkeypatch):
    s = _home(tmp_path, monkeypatch)
    boss = trader(s, "boss")  # the first account: admin
    alice, bob = trader(s, "alice"), trader(s, "bob")
    assert not alice.user.can("admin") and not bob.user.can("admin")
    # keys: CLI and Python API
    assert (
        _cli(s, alice.token, "keys", "set", "ccxt:binance", input="ALICE-KEY-0123456\nalice-secret-0123456\n").exit_code
        == 0
    )
    listed = _cli(s, bob.token, "keys", "list")
    assert listed.exit_code == 0 and "ccxt:binance/" not in listed.output and "no keys stored" in listed.output
    gone = _cli(s, bob.token, "keys", "delete", "ccxt:binance")
    assert gone.exit_code == 3 and "no stored key matches" in gone.output
    assert bob.vault.get("ccxt:binance/secret") is None and bob.vault.names() == []
    assert alice.vault.get("ccxt:binance/secret").value == "alice-secret-0123456"
    # runs: Alice's run, seen and stopped by her (and an admin), never by Bob
    monkeypatch.setenv(TOKEN_ENV, alice.token)
    store = Store(s.store_url).create()
    t, out = start_thread(s, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=INTERVAL)
    run = wait_for_cycle(store, 1)
    assert run["user_id"] == alice.user.id
    assert status(s, bob.user)["status"] == "NO_RUN" and request_stop(s, user=bob.user) is None
    assert request_stop(s, emergency=True, user=bob.user) is None
    bob_cli = _cli(s, bob.token, "live", "stop")
    assert bob_cli.exit_code == 0 and "no live run is active" in bob_cli.output
    assert '"run_id": null' in _cli(s, bob.token, "live", "status").output
    assert status(s, alice.user)["run_id"] == run["id"] and status(s, boss.user)["run_id"] == run["id"]
    assert store.pending_command(run["id"], consume=False) is None  # nothing reached her run from Bob
    stopped = _cli(s, alice.token, "live", "stop")
    assert stopped.exit_code == 0 and f"stop requested for run {run['id']}" in stopped.output
    t.join(timeout=5 * INTERVAL + 5)
    assert not t.is_alive() and "error" not in out and store.run(run["id"])["status"] == "STOPPED"
    audit = [(r["username"], r["action"]) for r in boss.accounts.audit_log()]
    assert ("alice", "key_set") in audit and ("alice", "live_start") in audit and ("alice", "live_stop") in audit
    assert ("bob", "live_stop") not in audit


def _live_venue(vault, made):
    def connect():
        v = KeyedVenue.from_vault(vault, NAME, environment="live")
        made.append(v)
        return v

    return PendingBroker(NAME, "live", connect, (f"{NAME}/api_key", f"{NAME}/secret"), vault)


def test_revoking_trade_live_mid_run_lets_the_run_finish_and_refuses_the_next_start(tmp_path, monkeypatch):
    s = _home(tmp_path, monkeypatch, broker={"testnet": False})
    admin = trader(s, "boss")
    t_user = trader(s, "alice", permissions=("trade_paper", "trade_live"), monkeypatch=monkeypatch)
    t_user.vault.put(f"{NAME}/api_key", "key-1")
    t_user.vault.put(f"{NAME}/secret", "secret-1")
    store = Store(s.store_url).create()
    made: list = []
    feed = ReplayFeed.from_panel(synthetic_panel(3, 400, seed=5), warmup_bars=40, replay_bars=300)
    t, _out = start_thread(
        s,
        broker=_live_venue(t_user.vault, made),
        engine=MomentumEngine(lookback=10, gain=3.0),
        feed=feed,
        interval_s=INTERVAL,
    )
    run = wait_for_cycle(store, 1)
    admin.accounts.revoke("alice", "trade_live", admin.user)
    cycle_at_revoke = store.run(run["id"])["cycle"]
    wait_for_cycle(store, cycle_at_revoke + 2)  # the running run goes on: a revoke is not a stop
    assert store.run(run["id"])["status"] == "RUNNING"
    assert request_stop(s, user=t_user.accounts.user("alice")) == run["id"]  # stopping stays her right
    t.join(timeout=5 * INTERVAL + 5)
    assert not t.is_alive() and store.run(run["id"])["status"] == "STOPPED"
    # The next Start is refused at authentication, before the venue is contacted.
    made.clear()
    t, _out = start_thread(
        s, broker=_live_venue(t_user.vault, made), engine=MomentumEngine(), feed=feed, interval_s=0.0, cycles=1
    )
    t.join(timeout=20)
    nxt = store.latest_run()
    assert nxt["id"] != run["id"] and nxt["status"] == "FAILED" and made == []
    assert "Phase 1 failed at 'authentication'" in nxt["message"] and "'trade_live'" in nxt["message"]


def test_expired_and_revoked_sessions_start_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SECURITY__SESSION_IDLE_MINUTES", "0.02")  # idle expiry after 1.2 s, CLI included
    s = _home(tmp_path, monkeypatch)
    alice = trader(s, "alice")
    time.sleep(1.5)
    r = _cli(s, alice.token, "live", "run", "--cycles", "1", "--interval", "0")
    assert r.exit_code == 11 and "authentication" in r.output and "expired" in r.output, r.output
    run = Store(s.store_url).latest_run()
    assert run["status"] == "FAILED" and run["user_id"] is None
    checks = Store(s.store_url).checks(run["id"])
    assert list(checks["name"]) == ["authentication"] and not checks["ok"].iloc[0]

    monkeypatch.delenv("WORKBENCH_SECURITY__SESSION_IDLE_MINUTES")
    s2 = _home(tmp_path / "b", monkeypatch)
    bob = trader(s2, "bob")
    bob.accounts.revoke_sessions("bob", bob.user)
    r = _cli(s2, bob.token, "live", "run", "--cycles", "1", "--interval", "0")
    assert r.exit_code == 11 and "revoked" in r.output, r.output
    r = CliRunner().invoke(app, ["live", "run", "--cycles", "1", "--home", str(s2.home)], env={TOKEN_ENV: ""})
    assert r.exit_code == 11 and "not logged in" in r.output, r.output


def test_each_users_risk_limits_reach_their_run(tmp_path, monkeypatch):
    s = _home(tmp_path, monkeypatch)
    alice = trader(s, "alice", monkeypatch=monkeypatch)
    set_user_risk(alice.accounts.engine, alice.user, s.risk, {"max_position_pct": 0.03})
    feed = ReplayFeed.from_panel(synthetic_panel(3, 80, seed=5), warmup_bars=40, replay_bars=2)
    from workbench.trading.runner import run_live

    rid = run_live(s, engine=MomentumEngine(), feed=feed, interval_s=0.0, cycles=1)
    risk = Store(s.store_url).checks(rid).set_index("name").loc["risk", "message"]
    assert "max 3% of equity per position" in risk
    assert accounts_for(s).policy.idle_timeout == timedelta(minutes=s.security.session_idle_minutes)
