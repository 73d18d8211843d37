"""Portfolio sync: the broker's balances and positions against the store's book, on a real SQLite
store, with the kit's keyed venue and the paper broker. A difference is logged with both numbers and
adjusted by an explicit record; equal books log nothing; a paper run with partial fills across
cycles keeps book = fills = venue without a single adjustment."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.venue import KeyedVenue
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import LiveContext, run_cycle
from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.store import Store
from workbench.trading.sync import Difference, differences, sync_portfolio
from workbench.venues.base import Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-01-02", tz="UTC")
KEYS = ("key-1", "secret-1")


@pytest.fixture
def store(settings) -> Store:
    return Store(settings.store_url).create()


def venue(**kw) -> KeyedVenue:
    v = KeyedVenue(presented=KEYS, **kw)
    v.on_bar({s: Quote(s, 100.0, T0, volume=1e6) for s in ("S000", "S001", "S002")})
    return v


def test_differences_respect_lot_precision_and_cash_tolerance():
    lots = {"A": Market("A", "A", "USD", lot_size=0.01)}
    assert differences({"A": 1.0}, {"A": 1.004}, {}, {}, lots) == []  # under half a lot: rounding
    assert differences({"A": 1.0}, {"A": 1.01}, {}, {}, lots) == [Difference("position", "A", 1.0, 1.01)]
    assert differences({}, {"B": 2.0}, {"USD": 5.0}, {"USD": 5.0000001}, {}) == [Difference("position", "B", 0.0, 2.0)]
    (d,) = differences({"B": 2.0}, {}, {"USD": 5.0, "EUR": 1.0}, {"USD": 5.0}, {})[1:]
    assert d == Difference("cash", "EUR", 1.0, 0.0) and d.delta == -1.0  # a currency gone at the broker


def test_first_sync_opens_the_cash_book_then_equal_books_log_nothing(store):
    v = venue(cash={"USD": 1000.0, "EUR": 50.0})
    rep = sync_portfolio(store, v, "acct", run_id=None, when="phase1")
    assert rep.in_sync and rep.opened == ("EUR", "USD")
    assert store.cash_book("acct") == {"EUR": 50.0, "USD": 1000.0}
    assert list(store.events(kind="sync")["message"].str.contains("opening cash book")) == [True, True]
    assert store.events(kind="reconcile").empty
    again = sync_portfolio(store, v, "acct", when="cycle 1")
    assert again.in_sync and again.opened == () and "matches the broker" in again.summary()
    assert store.events(kind="reconcile").empty and len(store.adjustments("acct")) == 2  # the two openings only


def test_differences_are_logged_with_both_numbers_and_adjusted_explicitly(store):
    v = venue(cash={"USD": 1000.0})
    om = OrderManager(store, v, "acct")
    sync_portfolio(store, v, "acct", when="phase1")
    om.submit(OrderIntent(OrderRequest("c1", "S000", "buy", 2.0), None, None, "test", stop_loss=90.0))
    assert store.get_position("acct", "S000")["quantity"] == 2.0
    assert store.cash_book("acct")["USD"] == pytest.approx(1000.0 - 200.0 - 0.2)  # the fill moved the local cash book
    assert sync_portfolio(store, v, "acct", when="cycle 1").in_sync  # our own trade is no difference

    v.deposit("USD", 500.0)  # things done on the venue's website
    v.credit("S000", 0.5)
    v.credit("S001", 3.0)
    rep = sync_portfolio(store, v, "acct", run_id=None, when="cycle 2")
    got = sorted((d.kind, d.key, round(d.local, 6), round(d.broker, 6)) for d in rep.differences)
    assert got == [("cash", "USD", 799.8, 1299.8), ("position", "S000", 2.0, 2.5), ("position", "S001", 0.0, 3.0)]
    ev = store.events(kind="reconcile")
    assert len(ev) == 3 and (ev["level"] == "WARNING").all()
    s000 = ev[ev["message"].str.contains("S000")]["message"].iloc[0]
    assert "cycle 2" in s000 and "local book 2," in s000 and "broker 2.5" in s000 and "+0.5" in s000
    # The book now holds the broker's numbers, through explicit records; cost basis and stops are kept.
    pos = store.get_position("acct", "S000")
    assert pos["quantity"] == 2.5 and pos["stop_loss"] == 90.0 and pos["average_price"] == pytest.approx(100.1)
    assert store.get_position("acct", "S001")["quantity"] == 3.0
    assert store.cash_book("acct")["USD"] == pytest.approx(1299.8)
    adj = store.adjustments("acct")
    adj = adj[adj["reason"] == "sync at cycle 2"].set_index("key")
    assert adj.loc["S000", "delta"] == pytest.approx(0.5) and adj.loc["USD", "local"] == pytest.approx(799.8)
    assert sync_portfolio(store, v, "acct", when="cycle 3").in_sync and len(store.events(kind="reconcile")) == 3


def test_a_position_gone_at_the_broker_is_closed_in_the_book(store):
    v = venue()
    om = OrderManager(store, v, "acct")
    om.submit(
        OrderIntent(OrderRequest("c1", "S002", "buy", 1.0), None, None, "test", stop_loss=80.0, take_profit=130.0)
    )
    v.credit("S002", -1.0)  # sold by hand on the venue
    (d,) = sync_portfolio(store, v, "acct", when="cycle 4").differences
    assert d == Difference("position", "S002", 1.0, 0.0)
    pos = store.get_position("acct", "S002")
    assert pos["quantity"] == 0.0 and pos["stop_loss"] is None and pos["average_price"] is None
    assert store.positions("acct").empty


def _paper_ctx(settings, store, broker, feed):
    run_id = store.start_run("paper", "paper", "paper", "kit", 0.0, 1)
    return LiveContext(
        store=store,
        broker=broker,
        feed=feed,
        engine=MomentumEngine(lookback=10, gain=3.0),
        orders=OrderManager(store, broker, "paper", run_id=run_id),
        run_id=run_id,
        account="paper",
        limits=settings.risk,
        costs=settings.costs,
    )


def test_partial_fills_across_cycles_update_positions_and_stay_in_sync(settings, store):
    """Bars with thin volume: market orders fill a little each bar; every cycle polls them, books
    the new fills, and the book, the fills and the venue agree after every cycle."""
    panel = synthetic_panel(4, 80, seed=3)
    thin = type(panel)(
        panel.open, panel.high, panel.low, panel.close, panel.volume * 0 + 40.0, panel.exchange, panel.timeframe
    )
    broker = PaperBroker(
        store, starting_cash=100_000.0, max_volume_share=0.5
    )  # 20 units per bar per symbol; entries are ~48
    ctx = _paper_ctx(settings, store, broker, ReplayFeed.from_panel(thin, warmup_bars=40, replay_bars=8))
    filled_by_cycle = []
    for _ in range(6):
        run_cycle(ctx)
        f = store.fills("paper")
        signed = f["quantity"].where(f["side"] == "buy", -f["quantity"]).groupby(f["symbol"]).sum()
        book = store.positions("paper").set_index("symbol")["quantity"]
        held = broker.positions()
        for sym in set(signed.index) | set(held):
            assert (
                signed.get(sym, 0.0)
                == pytest.approx(held.get(sym, 0.0), abs=1e-9)
                == pytest.approx(book.get(sym, 0.0), abs=1e-9)
            )
        filled_by_cycle.append(
            dict(
                zip(
                    store.orders(ctx.run_id, 1000)["client_order_id"], store.orders(ctx.run_id, 1000)["filled_quantity"]
                )
            )
        )
        assert ctx.last_sync is not None and ctx.last_sync.in_sync, ctx.last_sync.summary()
    # Some order filled in pieces across cycles: its filled quantity grew after the cycle it was sent in.
    grew = [cid for cid, q in filled_by_cycle[0].items() if filled_by_cycle[-1].get(cid, 0.0) > q + 1e-9]
    assert grew, "no order filled partially across cycles"
    events = store.order_events(grew[0])
    assert "PARTIALLY_FILLED" in set(events["status"]) and len(store.fills("paper", grew[0])) >= 2
    assert store.events(kind="reconcile").empty  # the cash book followed every fill exactly
    cash = broker.balances()["USD"].total
    assert store.cash_book("paper")["USD"] == pytest.approx(cash, abs=1e-6)


def test_a_restart_books_partial_fills_made_while_down_by_client_order_id(settings, store):
    """An order left PARTIALLY_FILLED by one process keeps filling at the venue while nothing runs;
    the next process reconciles it by its client order id: fills booked once, position right."""
    v = venue(fill_per_bar=1.0)
    OrderManager(store, v, "acct").submit(
        OrderIntent(OrderRequest("wb-1-1-S000-b", "S000", "buy", 3.0), None, 1, "entry")
    )
    assert store.get_order("wb-1-1-S000-b")["status"] == "PARTIALLY_FILLED"
    v.on_bar({"S000": Quote("S000", 101.0, T0, volume=1e6)})  # fills while we are down
    v.on_bar({"S000": Quote("S000", 102.0, T0, volume=1e6)})
    (o,) = OrderManager(store, v, "acct").reconcile()  # the restarted process
    assert o.status == "FILLED" and store.get_order("wb-1-1-S000-b")["status"] == "FILLED"
    assert list(store.fills("acct")["price"]) == [100.0, 101.0, 102.0]
    pos = store.get_position("acct", "S000")
    assert pos["quantity"] == 3.0 and pos["average_price"] == pytest.approx((303.0 + 0.303) / 3)
    OrderManager(store, v, "acct").reconcile()
    assert len(store.fills("acct")) == 3  # nothing booked twice
