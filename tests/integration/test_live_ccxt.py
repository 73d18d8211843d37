"""`workbench live run --broker ccxt:binance` end to end against the local FakeBinance: keys from the
vault, a real ccxt client signing every request, orders placed at the fake, partial fills booked,
and the local book in sync with the venue's balances after every cycle; and a run through Binance's
"execution status unknown" answers (-1000, -1001, -1006) and a lost order answer, which before the
one retry layer ended the run at the first -1001."""

from __future__ import annotations

import pytest

from tests.kit.ccxt_rig import (
    SYMBOLS,
    FaultsAtCycle,
    assert_each_entry_once_and_book_equals_venue,
    binance_with_pairs,
    usdt_panel,
)
from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from tests.kit.venue import VenueFollowsTheFeed
from workbench.config import load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store


@pytest.fixture
def venue():
    panel = usdt_panel(90)
    # BNB: an asset the workbench never trades: not cash, not a position
    with binance_with_pairs(panel, -6, {"USDT": 50_000.0, "BNB": 3.0}) as fake:
        yield fake, panel


def test_live_run_on_ccxt_testnet_trades_at_the_venue_and_stays_in_sync(tmp_path, venue, monkeypatch):
    fake, panel = venue
    monkeypatch.delenv("WORKBENCH_KEY_CCXT_BINANCE_API_KEY", raising=False)
    s = load_settings(
        tmp_path / "home",
        broker={"default": "ccxt:binance", "timeout_s": 5.0},
        venues={"ccxt": {"urls": {"binance": fake.ccxt_config()["urls"]}}},
    )
    s.ensure_dirs()
    vault = trader(s, monkeypatch=monkeypatch).vault  # the run's owner; keys in their vault
    vault.put("ccxt:binance/api_key", fake.api_key)
    vault.put("ccxt:binance/secret", fake.secret)
    fake.partial_fill(0.5)  # market orders fill half: the rest expires, as on Binance
    feed = VenueFollowsTheFeed(ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=5), fake)
    rid = run_live(
        s, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.0, min_interval_s=0, cycles=3
    )

    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED", run["message"]
    assert run["broker"] == "ccxt:binance" and run["environment"] == "testnet"
    checks = store.checks(rid)
    assert checks["ok"].all() and len(checks) == 5, checks
    orders = store.orders(rid)
    buys = orders[orders["side"] == "buy"]
    assert len(buys) > 0, "the momentum engine should have bought something"
    at_venue = {o["clientOrderId"] for sym in SYMBOLS for o in fake.orders(sym)}
    assert set(buys["client_order_id"]) <= at_venue  # every order the loop sent reached the venue
    venue_orders = [o for sym in SYMBOLS for o in fake.orders(sym)]
    entries = [o["clientOrderId"] for o in venue_orders if o["side"] == "BUY"]
    assert len(entries) == len(set(entries)) == len(buys)  # no entry was sent twice
    live_ids = [o["clientOrderId"] for o in venue_orders if o["status"] not in ("CANCELED", "EXPIRED")]
    assert len(live_ids) == len(set(live_ids))  # a stop leg re-sent into an OCO replaced its cancelled self
    assert {o["type"] for o in venue_orders if o["status"] == "NEW"} == {
        "STOP_LOSS_LIMIT",
        "LIMIT_MAKER",
    }  # exits rest at the venue
    # the book equals the venue: quantities per symbol and no reconcile adjustments needed
    book = store.positions(run["account"]).set_index("symbol")["quantity"]
    for sym in SYMBOLS:
        held = sum(fake.balance(sym.split("/")[0]))
        assert float(book.get(sym, 0.0)) == pytest.approx(held, abs=1e-9), sym
    assert store.events(rid, kind="reconcile").empty, store.events(rid, kind="reconcile")["message"].tolist()
    # equity counts USDT cash once and each coin once (not again as "cash"), ignoring untraded BNB
    eq = store.equity_curve(rid).iloc[-1]
    last = {sym: float(panel.close[sym].iloc[-3]) for sym in SYMBOLS}
    expected = sum(fake.balance("USDT")) + sum(sum(fake.balance(s.split("/")[0])) * last[s] for s in SYMBOLS)
    assert float(eq["equity"]) == pytest.approx(expected, rel=1e-6)


def test_unknown_execution_status_answers_neither_end_the_run_nor_duplicate_an_order(tmp_path, venue, monkeypatch):
    fake, panel = venue
    monkeypatch.delenv("WORKBENCH_KEY_CCXT_BINANCE_API_KEY", raising=False)
    urls = fake.ccxt_config()["urls"]
    s = load_settings(
        tmp_path / "home",
        broker={"default": "ccxt:binance", "timeout_s": 5.0},
        venues={"ccxt": {"urls": {"binance": urls}}},
    )
    s.ensure_dirs()
    vault = trader(s, monkeypatch=monkeypatch).vault  # the run's owner; keys in their vault
    vault.put("ccxt:binance/api_key", fake.api_key)
    vault.put("ccxt:binance/secret", fake.secret)
    post = {"method": "POST", "path": "/api/v3/order"}
    at = {
        1: [
            lambda: fake.unknown_next(-1001, accepted=True, **post),  # the first entry is taken, the answer is -1001
            lambda: fake.unknown_next(-1001, accepted=False, **post),  # the next one is not taken
            lambda: fake.lose_next(503, **post),  # and one more is taken with its answer lost
        ],
        2: [
            lambda: fake.unknown_next(-1000, accepted=False, method="GET", path="/api/v3/account"),  # the venue check
            lambda: fake.unknown_next(-1006, accepted=False, method="GET", path="/api/v3/openOrders"),  # open orders
        ],
    }
    feed = FaultsAtCycle(ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=5), fake, at)
    rid = run_live(
        s, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.0, min_interval_s=0, cycles=3
    )

    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED" and run["cycle"] == 3, run["message"]
    assert fake.faults_left() == 0  # every fault was met
    orders = store.orders(rid)
    buys = orders[orders["side"] == "buy"]
    assert len(buys) >= 3 and (buys["status"] == "FILLED").all(), buys[["client_order_id", "status", "reason"]]
    assert_each_entry_once_and_book_equals_venue(store, rid, fake, buys["client_order_id"].tolist())
