"""The batched paths of a cycle against the real paper venue and a real SQLite store: the open orders
read once per cycle and kept in step with the order manager's own writes, and the status of orders
that left the venue's book asked in one call (or one per order on a venue without the batch call)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event

from workbench.trading import phase2
from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.store import Store
from workbench.trading.sync import sync_portfolio
from workbench.venues.base import (
    BrokerOrder,
    ExchangeUnavailable,
    Market,
    OrderRejected,
    OrderRequest,
    Quote,
    TemporaryBrokerError,
    order_statuses,
)
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
SYMS = ("AAA", "BBB", "CCC")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


class Counting(PaperBroker):
    """The paper venue, counting how it is asked about orders."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.one = 0
        self.many: list[int] = []

    def order_status(self, client_order_id: str) -> BrokerOrder:
        self.one += 1
        return super().order_status(client_order_id)

    def order_status_many(self, client_order_ids):  # type: ignore[no-untyped-def]
        self.many.append(len(client_order_ids))
        return super().order_status_many(client_order_ids)


def venue(store: Store, cls: type[PaperBroker] = PaperBroker) -> PaperBroker:
    b = cls(store, starting_cash=100_000.0, fee_rate=0.001, slippage_bps=0.0,
            markets={s: Market(s, s, "USD", lot_size=1.0) for s in SYMS})  # fmt: skip
    b.on_bar({s: Quote(s, 100.0, T0) for s in SYMS})
    return b


def entry(sym: str, qty: float, cycle: int = 1, stop: float = 95.0) -> OrderIntent:
    return OrderIntent(OrderRequest(f"e-{sym}-{cycle}", sym, "buy", qty), None, cycle, "test", stop, 110.0)


def _open(rows: list[dict]) -> dict[str, tuple]:
    return {r["client_order_id"]: (r["status"], float(r["filled_quantity"]), float(r["quantity"])) for r in rows}


def test_the_cycle_cache_reads_once_and_follows_every_write_of_the_manager(store):
    b = venue(store)
    om = OrderManager(store, b, "paper")
    reads = []
    real = store.open_orders
    store.open_orders = lambda account=None: reads.append(account) or real(account)  # type: ignore[method-assign]

    def same() -> None:  # what the cycle sees is what the store holds
        assert _open(om.open_rows()) == _open(real("paper"))

    with om.cycle_cache():
        om.submit_many([entry(s, 10) for s in SYMS])
        same()
        assert om.sync_exits(cycle=1) == 6  # three OCO pairs rest at the venue
        same()
        b.on_bar({"AAA": Quote("AAA", 94.0, T0, open=96.0, low=93.0, high=96.5)})  # AAA's stop fires
        om.refresh_open()
        same()
        assert not any(r["symbol"] == "AAA" for r in om.open_rows())  # the filled stop and its cancelled twin left
        om.submit(OrderIntent(OrderRequest("x-BBB", "BBB", "sell", 10), None, 2, "close"))  # withdraws BBB's pair
        same()
        om.submit_many([entry("AAA", 5, cycle=2, stop=90.0)])
        assert om.sync_exits(cycle=2) == 2
        same()
    assert len(reads) == 1  # one read for the whole cycle
    om.open_rows()
    assert len(reads) == 2  # outside a cycle every read is the store's
    assert sorted(r["symbol"] for r in real("paper")) == ["AAA", "AAA", "CCC", "CCC"]


def test_a_write_the_cache_does_not_follow_makes_the_next_read_the_stores(store):
    b = venue(store)
    om = OrderManager(store, b, "paper", unknown_grace_s=0.0)
    with om.cycle_cache():
        om.submit_many([entry("AAA", 10)])
        om.sync_exits(cycle=1)
        assert len(om.open_rows()) == 2
        # A NEW row the venue never heard of, past its grace period: refresh marks it REJECTED by hand.
        store.insert_orders([{**om._new_row(entry("BBB", 1, cycle=9)), "status": "NEW"}])
        om._open = None  # (written outside the manager: the test reads it in, as a new cycle would)
        assert "e-BBB-9" in {r["client_order_id"] for r in om.open_rows()}
        om.refresh_open()
        assert _open(om.open_rows()) == _open(store.open_orders("paper"))
        assert "e-BBB-9" not in _open(om.open_rows())


def test_orders_that_left_the_book_are_asked_about_in_one_call(store):
    b = venue(store, Counting)
    om = OrderManager(store, b, "paper")
    om.submit_many([entry(s, 10) for s in SYMS])
    om.sync_exits(cycle=1)
    # Every stop fires on one bar: six orders leave the venue's book (three fills, three OCO cancels).
    b.on_bar({s: Quote(s, 94.0, T0, open=96.0, low=93.0, high=96.5) for s in SYMS})
    b.one, b.many = 0, []
    om.refresh_open()
    assert (b.one, b.many) == (0, [6])
    assert store.open_orders("paper") == [] and all(store.get_position("paper", s)["quantity"] == 0 for s in SYMS)
    assert sorted(store.fills("paper")["fill_id"]) == sorted(f.fill_id for f in b.fills())


def test_the_paper_venue_answers_a_batch_in_one_query_unknown_ids_in_place(store):
    b = venue(store)
    om = OrderManager(store, b, "paper")
    om.submit_many([entry(s, 10) for s in SYMS])
    ids = ["e-AAA-1", "nope", "e-CCC-1"]
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    answers = b.order_status_many(ids)
    assert len([s for s in statements if "paper_orders" in s]) == 1
    assert [a.client_order_id for a in answers if isinstance(a, BrokerOrder)] == ["e-AAA-1", "e-CCC-1"]
    assert isinstance(answers[1], OrderRejected) and answers[1].reason == "unknown_order"
    assert answers[0] == b.order_status("e-AAA-1") and answers[2] == b.order_status("e-CCC-1")


class OneByOne:
    """A venue without the batch call (as every real adapter today): asked one order at a time."""

    def __init__(self, inner: PaperBroker, fail: dict[str, Exception] | None = None) -> None:
        self.inner, self.fail, self.asked = inner, fail or {}, []  # type: ignore[var-annotated]

    def order_status(self, cid: str) -> BrokerOrder:
        self.asked.append(cid)
        if cid in self.fail:
            raise self.fail[cid]
        return self.inner.order_status(cid)


def test_order_statuses_one_by_one_keeps_each_orders_trouble_and_raises_an_outage(store):
    b = venue(store)
    OrderManager(store, b, "paper").submit_many([entry(s, 10) for s in SYMS])
    ids = ["e-AAA-1", "e-BBB-1", "nope", "e-CCC-1"]
    one = OneByOne(b, {"e-BBB-1": TemporaryBrokerError("timeout")})
    got = order_statuses(one, [*ids, "e-AAA-1"])  # a repeated id is asked once
    assert one.asked == ids
    assert isinstance(got["e-BBB-1"], TemporaryBrokerError) and isinstance(got["nope"], OrderRejected)
    assert got["e-AAA-1"] == b.order_status("e-AAA-1") and got["e-CCC-1"].status == "FILLED"
    assert order_statuses(b, ids).keys() == got.keys()  # the batch call answers for the same ids
    down = OneByOne(b, {"e-BBB-1": ExchangeUnavailable("maintenance")})
    with pytest.raises(ExchangeUnavailable):
        order_statuses(down, ids)
    assert down.asked == ["e-AAA-1", "e-BBB-1"]  # nothing asked after the venue went down


class OneAtATime(PaperBroker):
    """The paper venue without its batch status call: asked one order at a time, as every real
    adapter is (``order_statuses`` falls back to ``order_status``)."""

    order_status_many = None  # type: ignore[assignment]

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.cancels: list[str] = []

    def cancel_many(self, client_order_ids):  # type: ignore[no-untyped-def]
        self.cancels += list(client_order_ids)
        return super().cancel_many(client_order_ids)


class Batched(OneAtATime):
    order_status_many = PaperBroker.order_status_many  # type: ignore[assignment]


@pytest.mark.parametrize("cls", [Batched, OneAtATime])
def test_the_refresh_itself_books_a_fired_stop_and_its_cancelled_twin(store, cls):
    """An OCO pair whose stop fired has left the venue's book: the stop FILLED, its take-profit twin
    CANCELLED. The refresh must book both — the fill, the position it closes, each status step —
    not leave them to the exit sync, which would cancel the twin again, nor to the portfolio sync,
    which would overwrite the position as an unexplained difference: the same end, the wrong record."""
    b = venue(store, cls)
    om = OrderManager(store, b, "paper")
    with om.cycle_cache():
        om.submit_many([entry("AAA", 10), entry("BBB", 10)])
        assert om.sync_exits(cycle=1) == 4
    legs = {r["type"]: r["client_order_id"] for r in store.open_orders("paper") if r["symbol"] == "AAA"}
    b.on_bar({"AAA": Quote("AAA", 94.0, T0, open=96.0, low=93.0, high=96.5)})  # AAA's stop (95) fires
    with om.cycle_cache():
        om.refresh_open()
        stop, twin = store.get_order(legs["stop_loss"]), store.get_order(legs["take_profit"])
        assert (stop["status"], stop["filled_quantity"]) == ("FILLED", 10.0)
        assert twin["status"] == "CANCELLED"
        assert list(store.order_events(legs["stop_loss"])["status"]) == ["NEW", "SUBMITTED", "FILLED"]
        assert list(store.order_events(legs["take_profit"])["status"]) == ["NEW", "SUBMITTED", "CANCELLED"]
        assert set(store.fills("paper")["client_order_id"]) == {"e-AAA-1", "e-BBB-1", legs["stop_loss"]}
        assert store.get_position("paper", "AAA")["quantity"] == 0.0
        assert om.position_book()["AAA"]["quantity"] == 0.0  # the cycle's copy of the book follows
        b.cancels.clear()
        assert sync_portfolio(store, b, "paper", book=om.position_book()).differences == ()
        assert om.sync_exits(cycle=2) == 0 and b.cancels == []  # nothing left for the exit sync to mend
    assert om.position_book() == store.position_book("paper")


def test_a_position_the_portfolio_sync_adjusts_drops_the_cycles_copy_of_the_book(store):
    b = venue(store)
    om = OrderManager(store, b, "paper")
    om.submit_many([entry("AAA", 10)])
    store.upsert_position("paper", "AAA", quantity=7.0)  # the local book drifted from the venue's 10
    ctx = SimpleNamespace(store=store, broker=b, account="paper", run_id=None, cycle=1, markets={}, orders=om)
    with om.cycle_cache():
        assert om.position_book()["AAA"]["quantity"] == 7.0
        report = phase2._sync(ctx)  # type: ignore[arg-type]
        assert [(d.kind, d.key) for d in report.differences] == [("position", "AAA")]
        assert om.position_book()["AAA"]["quantity"] == 10.0 == store.get_position("paper", "AAA")["quantity"]
        assert om.position_book() == store.position_book("paper")
