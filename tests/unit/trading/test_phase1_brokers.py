"""Phase 1 for real brokers: session → user → permission (testnet needs trade_paper, live needs
trade_live; nothing talks to the venue before that), keys must be in the user's vault (or found by the
adapter) and accepted by the venue, and the messages say which command fixes it. The venue is the
kit's keyed in-memory venue; the users, the vault and the store are real files."""

from __future__ import annotations

import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from tests.kit.venue import KeyedVenue
from workbench.config import BrokerSettings, load_settings
from workbench.errors import ConfigError
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import CHECKS, PendingBroker, phase1
from workbench.trading.runner import (
    broker_name,
    key_fields,
    make_broker,
    plan_broker,
    required_keys,
    run_live,
)
from workbench.trading.store import Store
from workbench.venues.paper.broker import PaperBroker

NAME = "ccxt:kitx"
KEYS = ("key-1", "secret-1")


def settings_for(tmp_path, **broker):
    s = load_settings(tmp_path / "home", broker=BrokerSettings(**broker))
    s.ensure_dirs()
    return s


def pending(settings, environment="testnet", keys=KEYS, venue_env=None, vault=None):
    """A PendingBroker over the kit venue; counts connections so tests see whether the venue was reached."""
    vault = vault if vault is not None else trader(settings, "keyholder").vault
    if keys is not None:
        vault.put(f"{NAME}/api_key", keys[0])
        vault.put(f"{NAME}/secret", keys[1])
    made = []

    def connect():
        v = KeyedVenue.from_vault(vault, NAME, environment=venue_env or environment)
        made.append(v)
        return v

    return PendingBroker(NAME, environment, connect, (f"{NAME}/api_key", f"{NAME}/secret"), vault), made


def test_testnet_with_keys_in_the_vault_passes_every_check(tmp_path):
    s = settings_for(tmp_path)
    t = trader(s)
    pb, made = pending(s, vault=t.vault)
    results = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert [r.name for r in results] == list(CHECKS) and all(r.ok for r in results), results
    msg = {r.name: r.message for r in results}
    assert "testnet" in msg["authentication"] and "test money" in msg["authentication"]
    assert f"user trader (id {t.user.id})" in msg["authentication"] and "'trade_paper'" in msg["authentication"]
    assert "from your vault" in msg["api_keys"] and "accepted by the testnet venue" in msg["api_keys"]
    assert msg["exchange"].startswith("testnet:") and len(made) == 1 and pb.get() is made[0]


def test_live_is_refused_without_trade_live_and_the_venue_is_never_contacted(tmp_path):
    s = settings_for(tmp_path, testnet=False)
    t = trader(s)  # trade_paper (and admin: the first account), but not trade_live
    pb, made = pending(s, environment="live", vault=t.vault)
    (auth,) = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert auth.name == "authentication" and not auth.ok and made == []
    assert (
        "REAL MONEY" in auth.message
        and "'trade_live'" in auth.message
        and "workbench users grant trader trade_live" in auth.message
    )
    assert "--broker paper" in auth.message


def test_live_with_trade_live_passes_and_names_the_user_and_permission(tmp_path):
    s = settings_for(tmp_path, testnet=False)
    t = trader(s, permissions=("trade_paper", "trade_live"))
    pb, made = pending(s, environment="live", vault=t.vault)
    results = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert all(r.ok for r in results) and len(made) == 1
    assert (
        "REAL MONEY" in results[0].message
        and "'trade_live'" in results[0].message
        and "user trader" in results[0].message
    )


def test_no_session_fails_at_authentication_with_the_reason(tmp_path):
    s = settings_for(tmp_path)
    pb, made = pending(s)
    (auth,) = phase1(s, pb, lambda: MomentumEngine(), user=None, refusal="the session expired: run `workbench login`")
    assert not auth.ok and "session expired" in auth.message and made == []


def test_a_venue_without_a_testnet_is_treated_as_live(tmp_path):
    s = settings_for(tmp_path)
    t = trader(s)
    pb, _ = pending(s, environment="testnet", venue_env="live", vault=t.vault)
    results = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert [(r.name, r.ok) for r in results] == [("authentication", True), ("api_keys", False)]
    assert "has no testnet" in results[-1].message and "'trade_live' permission" in results[-1].message


def test_missing_keys_fail_with_the_command_that_stores_them(tmp_path):
    s = settings_for(tmp_path)
    t = trader(s)
    pb, _ = pending(s, keys=None, vault=t.vault)
    results = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert [(r.name, r.ok) for r in results] == [("authentication", True), ("api_keys", False)]
    m = results[-1].message
    assert f"no API keys for {NAME}" in m and f"{NAME}/api_key" in m and f"`workbench keys set {NAME}`" in m
    assert "requires an API key" in m  # the venue's own words


def test_wrong_keys_fail_with_the_venue_message(tmp_path):
    s = settings_for(tmp_path)
    t = trader(s)
    pb, _ = pending(s, keys=("key-1", "wrong"), vault=t.vault)
    results = phase1(s, pb, lambda: MomentumEngine(), user=t.user)
    assert not results[-1].ok and results[-1].name == "api_keys"
    assert "Invalid API-key" in results[-1].message and f"workbench keys set {NAME}" in results[-1].message
    assert "wrong" not in results[-1].message  # no secret in a message


def feed():
    return ReplayFeed.from_panel(synthetic_panel(3, 80, seed=5), warmup_bars=40, replay_bars=10)


def test_run_live_on_a_testnet_venue_trades_and_keeps_the_book_in_sync(tmp_path, monkeypatch):
    s = settings_for(tmp_path)
    t = trader(s, monkeypatch=monkeypatch)
    pb, made = pending(s, vault=t.vault)
    rid = run_live(
        s,
        broker=pb,
        engine=MomentumEngine(lookback=10, gain=3.0),
        feed=feed(),
        interval_s=0.0,
        min_interval_s=0,
        cycles=2,
    )
    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED" and run["environment"] == "testnet" and run["account"] == f"{NAME}@testnet:trader"
    assert run["user_id"] == t.user.id  # the run's owner
    checks = store.checks(rid)
    assert checks["duration_s"].notna().all() and (checks["duration_s"] >= 0).all()
    (venue,) = made
    orders = store.orders(rid)
    assert (orders["status"] == "FILLED").sum() > 0 and set(venue.positions()) == set(
        store.positions(run["account"])["symbol"]
    )
    book = store.positions(run["account"]).set_index("symbol")["quantity"]
    for sym, q in venue.positions().items():
        assert book[sym] == pytest.approx(q, abs=1e-9)
    assert store.events(rid, kind="sync")["message"].str.contains("portfolio synced with ccxt:kitx").any()
    assert store.events(rid, kind="reconcile").empty


def test_run_live_on_live_fails_at_authentication_without_trade_live_and_passes_with_it(tmp_path, monkeypatch):
    s = settings_for(tmp_path, testnet=False)
    t = trader(s, monkeypatch=monkeypatch)
    pb, made = pending(s, environment="live", vault=t.vault)
    rid = run_live(s, broker=pb, engine=MomentumEngine(), feed=feed(), interval_s=0.0, min_interval_s=0, cycles=1)
    run = Store(s.store_url).run(rid)
    assert run["status"] == "FAILED" and "Phase 1 failed at 'authentication'" in run["message"] and made == []
    assert "'trade_live'" in run["message"]
    t.accounts.grant("trader", "trade_live", t.user)  # an admin grants it (the first account is the admin)
    pb, made = pending(s, environment="live", vault=t.vault)
    rid = run_live(
        s,
        broker=pb,
        engine=MomentumEngine(lookback=10, gain=3.0),
        feed=feed(),
        interval_s=0.0,
        min_interval_s=0,
        cycles=1,
    )
    run = Store(s.store_url).run(rid)
    assert run["status"] == "STOPPED" and run["environment"] == "live" and len(made) == 1, run["message"]
    assert Store(s.store_url).checks(rid)["ok"].all()


def test_broker_names_keys_and_plans(tmp_path):
    s = settings_for(tmp_path)
    assert broker_name(s) == "paper" and broker_name(s, "CCXT:Binance") == "ccxt:binance"
    assert isinstance(make_broker(s, Store(s.store_url).create()), PaperBroker)  # the default
    with pytest.raises(ConfigError, match="ccxt has no exchange 'nope'"):
        broker_name(s, "ccxt:nope")
    with pytest.raises(ConfigError, match="unknown broker 'ibkr'"):
        broker_name(s, "ibkr")
    assert required_keys("ccxt:binance") == ("ccxt:binance/api_key", "ccxt:binance/secret")
    assert required_keys("kite") == ("kite/api_key", "kite/access_token") and key_fields("kite") == (
        "api_key",
        "api_secret",
    )
    assert key_fields("ccxt:okx") == ("api_key", "secret", "password")  # okx needs a passphrase too
    assert settings_for(tmp_path, default="ccxt:binance").broker.default == "ccxt:binance"
    plan = plan_broker(s, "ccxt:binance")
    assert (plan.name, plan.environment) == ("ccxt:binance", "testnet") and plan.missing_keys() == list(
        required_keys("ccxt:binance")
    )
    assert plan_broker(settings_for(tmp_path, testnet=False), "alpaca").environment == "live"
    assert plan_broker(s, "kite").environment == "live"  # no sandbox at Zerodha: gated as real money


def test_kite_without_trade_live_is_refused_before_any_login(tmp_path, monkeypatch):
    s = settings_for(tmp_path)
    trader(s, monkeypatch=monkeypatch)
    rid = run_live(s, broker="kite", engine=MomentumEngine(), feed=feed(), interval_s=0.0, min_interval_s=0, cycles=1)
    run = Store(s.store_url).run(rid)
    assert run["status"] == "FAILED" and run["environment"] == "live" and run["account"] == "kite@live:trader"
    assert "Phase 1 failed at 'authentication'" in run["message"] and "'trade_live'" in run["message"]
