"""The paper venue's batched paths at the sizes a cycle brings (more ids than one query takes): a crash
bar that triggers every resting stop, re-sends mixed into a large batch, fills of many orders, and the
``BrokerOrder``s the venue builds without the dataclass constructor."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pandas as pd
import pytest
from sqlalchemy import event, func, select

from workbench.store.schema import paper_fills, paper_orders
from workbench.trading.store import Store
from workbench.venues import paper
from workbench.venues.base import BrokerOrder, Market, OrderRejected, OrderRequest, Quote
from workbench.venues.paper import broker as paper_broker
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
N = 600  # more than the 500 ids one query takes
SYMS = [f"S{i:04d}" for i in range(N)]
MARKETS = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in SYMS}

assert paper.VENUE.name == "paper"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


def bars(last: float, syms=SYMS, **kw) -> dict[str, Quote]:
    return {s: Quote(s, last, T0, **kw) for s in syms}


def statements(store: Store) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def held(b: PaperBroker) -> PaperBroker:
    """Every symbol bought (10 each) with a resting OCO exit pair: stop 90, take-profit 120."""
    b.on_bar(bars(100.0, volume=1e6))
    assert all(a.status == "FILLED" for a in b.place_many([OrderRequest(f"b-{s}", s, "buy", 10) for s in SYMS]))
    legs = []
    for s in SYMS:
        legs.append(OrderRequest(f"sl-{s}", s, "sell", 10, type="stop_loss", stop_price=90.0, oco_group=f"g-{s}"))
        legs.append(OrderRequest(f"tp-{s}", s, "sell", 10, type="take_profit", limit_price=120.0, oco_group=f"g-{s}"))
    assert all(a.status == "SUBMITTED" for a in b.place_many(legs))
    return b


def test_a_crash_bar_fills_every_stop_with_its_own_fill_ids_in_a_few_statements(store):
    """Half the stops fill partly on a thin bar, then a crash bar triggers all of them: each stop's fills
    are numbered on from what it had (``-1`` then ``-2``), every take-profit is cancelled, every position
    is closed, and the bar costs a fixed handful of statements, not a count per order."""
    b = held(
        PaperBroker(store, starting_cash=1e6, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS, max_volume_share=0.5)
    )
    half = SYMS[: N // 2]
    thin = b.on_bar(bars(89.0, half, low=88.0, high=91.0, open=90.0, volume=10.0))  # 5 of 10 fill
    assert {o.status for o in thin} == {"PARTIALLY_FILLED"} and len(thin) == len(half)
    seen = statements(store)
    crash = b.on_bar(bars(70.0, low=69.0, high=72.0, open=71.0, volume=1e6))
    assert len(crash) == N and {o.status for o in crash} == {"FILLED"}
    assert len(seen) <= 12, seen  # the open book, holdings, fill counts, writes: not ~N statements
    assert len([s for s in seen if "paper_fills" in s and s.lstrip().upper().startswith("SELECT")]) == 2  # 600 ids
    fills = {f.fill_id: f for f in b.fills()}
    for s in SYMS:
        prefix = b._broker_id(f"sl-{s}")
        mine = sorted(f.fill_id for f in fills.values() if f.client_order_id == f"sl-{s}")
        assert mine == ([f"{prefix}-1", f"{prefix}-2"] if s in half else [f"{prefix}-1"])
        assert sum(f.quantity for f in fills.values() if f.client_order_id == f"sl-{s}") == 10.0
    assert all(b.order_status(f"tp-{s}").status == "CANCELLED" for s in SYMS)
    assert b.positions() == {}


def test_resent_orders_inside_a_large_batch_get_their_first_answers(store):
    """A batch of new orders mixed with re-sends of earlier ones, more than one query's worth: the re-sent
    are answered as they were (a fill is not repeated, a rejection stays one), the new are booked once."""
    b = PaperBroker(store, starting_cash=1e6, fee_rate=0.001, slippage_bps=5.0, markets=MARKETS)
    b.on_bar(bars(100.0, volume=1e6))
    first = [OrderRequest(f"o-{s}", s, "buy", 5 if i % 7 else 1e6) for i, s in enumerate(SYMS)]  # every 7th: no cash
    before = b.place_many(first)
    assert sum(isinstance(a, OrderRejected) for a in before) == len(range(0, N, 7))
    again = [x for pair in zip(first, [OrderRequest(f"n-{s}", s, "buy", 1) for s in SYMS], strict=True) for x in pair]
    after = b.place_many(again)
    for old, new in zip(before, after[0::2], strict=True):
        if isinstance(old, OrderRejected):
            assert isinstance(new, OrderRejected) and new.reason == old.reason
        else:
            assert new == old
    assert all(isinstance(a, BrokerOrder) and a.status == "FILLED" for a in after[1::2])
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(paper_orders)).scalar() == 2 * N
        assert c.execute(select(func.count()).select_from(paper_fills)).scalar() == N + N - len(range(0, N, 7))
    assert b.positions() == {s: (5.0 if i % 7 else 0.0) + 1.0 for i, s in enumerate(SYMS)}


def test_fills_of_many_orders_come_back_in_time_order_across_queries(store):
    b = PaperBroker(store, starting_cash=1e6, fee_rate=0.001, slippage_bps=5.0, markets=MARKETS)
    b.on_bar(bars(100.0, volume=1e6))
    b.place_many([OrderRequest(f"a-{s}", s, "buy", 2) for s in SYMS])
    b.on_bar(bars(101.0, volume=1e6))
    b.place_many([OrderRequest(f"z-{s}", s, "sell", 1) for s in SYMS])
    wanted = [f"z-{s}" for s in SYMS] + [f"a-{s}" for s in SYMS]  # 1,200 ids, newest first
    got = b.fills_for_many(wanted)
    assert got == b.fills()  # every fill, oldest first, ties by fill id
    assert {f.client_order_id for f in got[:N]} == {f"a-{s}" for s in SYMS}  # the older batch first
    assert [f.fill_id for f in got[:N]] == sorted(f.fill_id for f in got[:N])  # one time: by fill id
    assert len({f.ts for f in got[:N]}) == 1 and got[0].ts < got[-1].ts
    assert all(isinstance(f.ts, pd.Timestamp) and f.ts.tz is not None for f in got)


@pytest.mark.parametrize("direct", [True, False])
def test_the_orders_the_venue_builds_are_the_dataclass_it_declares(store, monkeypatch, direct):
    """``BrokerOrder``s made by filling ``__dict__`` (and by the constructor, when that shortcut is off)
    equal, hash, print and copy like constructed ones, with float quantities, from every path."""
    monkeypatch.setattr(paper_broker, "_ORDER_DIRECT", direct)
    b = PaperBroker(store, starting_cash=1e6, fee_rate=0.001, slippage_bps=5.0, markets=MARKETS, max_volume_share=0.1)
    b.on_bar(bars(100.0, SYMS[:3], volume=50.0))
    placed = b.place_many(
        [OrderRequest("m", "S0000", "buy", 8), OrderRequest("l", "S0001", "buy", 3, type="limit", limit_price=95.0)]
    )
    seen = [*placed, *b.open_orders(), *b.order_status_many(["m", "l"]), *b.on_bar(bars(94.0, SYMS[:3], volume=50.0))]
    seen += b.cancel_many(["m", "l"])
    assert len(seen) == 10  # 2 placed, 2 open, 2 asked about, 2 filled by the bar, 2 final when cancelled
    names = [f.name for f in dataclasses.fields(BrokerOrder)]
    for o in seen:
        assert isinstance(o, BrokerOrder)
        made = BrokerOrder(**{k: getattr(o, k) for k in names})
        assert o == made and hash(o) == hash(made) and repr(o) == repr(made)
        assert dataclasses.asdict(o) == dataclasses.asdict(made) and dataclasses.replace(o, fee=1.0).fee == 1.0
        assert all(type(getattr(o, k)) is float for k in ("quantity", "filled_quantity", "fee"))
        with pytest.raises(dataclasses.FrozenInstanceError):
            o.status = "FILLED"  # type: ignore[misc]
    assert placed[0].status == "PARTIALLY_FILLED" and placed[0].filled_quantity == 5.0  # 10% of 50
    assert b.open_orders() == [] and [o.status for o in seen[-2:]] == ["FILLED", "FILLED"]


def crash_day(store: Store, account: str) -> list:
    """Buys with exit pairs, a thin bar, a crash bar, a re-sent batch, cancels and reads: every answer, the
    fill times left out (the clock differs between runs)."""

    def by_id(orders: list[BrokerOrder]) -> list[BrokerOrder]:  # one batch's orders are tied in time
        return sorted(orders, key=lambda o: o.client_order_id)

    def plain(answers: list) -> list:  # an exception equals only itself: compare what it says
        return [(a.reason, str(a)) if isinstance(a, OrderRejected) else a for a in answers]

    b = held(PaperBroker(store, account=account, starting_cash=1e6, markets=MARKETS, max_volume_share=0.5))
    out: list = [by_id(b.on_bar(bars(89.0, SYMS[:300], low=88.0, high=91.0, open=90.0, volume=10.0)))]
    out.append(by_id(b.open_orders()))
    out.append(by_id(b.on_bar(bars(70.0, SYMS[:450], low=69.0, high=72.0, open=71.0, volume=1e6))))
    resent = [
        OrderRequest(f"sl-{s}", s, "sell", 10, type="stop_loss", stop_price=90.0, oco_group=f"g-{s}") for s in SYMS
    ]
    out.append(plain(b.place_many(resent)))
    out.append(plain(b.cancel_many([f"tp-{s}" for s in SYMS[400:]] + ["nope"])))
    out.append(plain(b.order_status_many([f"sl-{s}" for s in SYMS] + ["nope"])))
    out.append([dataclasses.replace(f, ts=None) for f in b.fills_for_many([f"sl-{s}" for s in SYMS])])
    out.append(sorted(b.positions().items()))
    out.append({k: (round(v.free, 6), round(v.total, 6)) for k, v in b.balances().items()})
    return out


def test_the_batched_paths_answer_the_same_on_postgresql(tmp_path, request):
    """The statements built once (expanding id lists, grouped fill counts, the zero-holdings filter) run
    on PostgreSQL and answer exactly as on SQLite, past one query's 500 ids."""
    url = os.environ.get("WORKBENCH_TEST_POSTGRES_URL") or request.getfixturevalue("pg_server").create_database(
        "paper_batches"
    )
    account = f"batches-{uuid.uuid4().hex[:8]}"
    pg = Store(url)
    try:
        on_pg = crash_day(pg, account)
    finally:
        pg.dispose()
    on_sqlite = crash_day(Store(f"sqlite:///{tmp_path / 'wb.db'}").create(), account)
    assert [len(x) for x in on_pg] == [len(x) for x in on_sqlite]
    assert on_pg == on_sqlite
