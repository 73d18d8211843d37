"""The two reads of every cycle that used to grow with the account's whole history stay the size of what the
cycle touches: the fees paid (running totals the fills' own transactions keep, ``fee_totals``) and the exit
pairs' numbers (asked of the store once per order manager, then counted in memory). Both must survive a
crash: fees equal the sum over the fills table after replays and restarts, and a restarted manager goes on
numbering pairs without handing a new pair the ids of an order the store (and maybe the venue) already has.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from workbench.store.engine import alembic_config, engine_for, head_revision, upgrade
from workbench.store.schema import fills, paper_orders
from workbench.trading.order_state import OrderIntent, client_order_id
from workbench.trading.orders import OrderManager
from workbench.trading.store import Store
from workbench.venues.base import Fill, Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
MARKETS = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in ("AAA", "BBB")}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wb.db'}"
    pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")
    return str(request.getfixturevalue("pg_server").create_database(f"hist_{uuid.uuid4().hex[:12]}"))


class _Killed(BaseException):
    """The process dies here (a BaseException: nothing on the way may catch it as an error)."""


class KillSwitch:
    """``on_point`` hook: raises ``_Killed`` at the armed point's ``nth`` passage."""

    def __init__(self) -> None:
        self.point: str | None = None
        self.nth = 0
        self.seen: Counter[str] = Counter()

    def arm(self, point: str, nth: int = 1) -> None:
        self.point, self.nth, self.seen = point, nth, Counter()

    def __call__(self, name: str) -> None:
        self.seen[name] += 1
        if name == self.point and self.seen[name] == self.nth:
            self.point = None
            raise _Killed(name)


def _summed(store: Store, account: str) -> dict[str, float]:
    """What the old read computed: every fill of the account, summed per fee currency."""
    ccy = func.coalesce(fills.c.fee_currency, "")
    stmt = select(ccy, func.sum(fills.c.fee)).where(fills.c.account == account).group_by(ccy)
    with store.engine.connect() as c:
        return {str(k): float(v) for k, v in c.execute(stmt).all()}


def _buy(run: int, cycle: int, sym: str, qty: float, tag: str = "", stops: bool = True) -> OrderIntent:
    cid = client_order_id(run, cycle, sym, "buy", tag)
    sl, tp = (90.0, 130.0) if stops else (None, None)
    return OrderIntent(OrderRequest(cid, sym, "buy", qty), run, cycle, "test", stop_loss=sl, take_profit=tp)


def _sell(run: int, cycle: int, sym: str, qty: float) -> OrderIntent:
    return OrderIntent(OrderRequest(client_order_id(run, cycle, sym, "sell"), sym, "sell", qty), run, cycle, "test")


def _bar(paper: PaperBroker, cycle: int) -> None:
    ts = T0 + pd.Timedelta(minutes=cycle)
    paper.on_bar({s: Quote(s, 100.0 + cycle % 10, ts, volume=1e6) for s in MARKETS})


# ---- fees ---------------------------------------------------------------------------------------------
def test_fees_after_cycles_with_replays_and_restarts_equal_the_sum_over_the_fills(url: str) -> None:
    store = Store(url)
    paper = PaperBroker(store, starting_cash=1e6, fee_rate=0.001, slippage_bps=0.0, markets=MARKETS)
    run = store.start_run("paper", "paper", "paper")
    kill = KillSwitch()
    om = OrderManager(store, paper, "paper", run_id=run, on_point=kill)
    for cycle in range(1, 7):
        _bar(paper, cycle)
        om.refresh_open()
        intents = [_buy(run, cycle, "AAA", 5), _buy(run, cycle, "BBB", 3, stops=False)]
        if cycle % 3 == 0:
            intents.append(_sell(run, cycle, "BBB", 3))
        if cycle % 2 == 0:  # killed after the venue filled the batch, before the store heard of it
            kill.arm("after_place")
            with pytest.raises(_Killed):
                om.submit_many(intents)
            om = OrderManager(store, paper, "paper", run_id=run, on_point=kill)  # the restart
            om.reconcile()  # books the fills the venue made
        om.submit_many(intents)  # the cycle (re-)run under the same ids: the venue's fills replayed
        om.sync_exits(cycle)
        om.submit_many(intents)  # and once more: nothing new
    assert len(store.fills("paper")) == 6 * 2 + 2  # every venue fill booked once
    want = _summed(store, "paper")
    assert set(want) == {"USD"} and want["USD"] > 0
    assert store.fees_by_currency("paper") == pytest.approx(want, rel=1e-12)
    venue = sum(f.fee for f in paper.fills())
    assert store.fees_by_currency("paper")["USD"] == pytest.approx(venue, rel=1e-12)

    # Fills booked one at a time (``add_fill``, ``book_fill``), in other currencies or none, each replayed.
    ts = T0 + pd.Timedelta(hours=1)
    extra = [
        Fill("x1", None, "AAA", "buy", 1.0, 100.0, 0.25, "BNB", ts),
        Fill("x2", None, "AAA", "buy", 1.0, 100.0, 0.5, None, ts),
        Fill("x3", None, "AAA", "buy", 1.0, 100.0, 0.125, "USD", ts),
    ]
    for f in extra:
        assert store.add_fill(f, "paper") is True and store.add_fill(f, "paper") is False
    f4 = Fill("x4", None, "BBB", "buy", 1.0, 100.0, 0.0625, "BNB", ts)
    assert store.book_fill(f4, "paper", {"quantity": 1.0}, "booked") is True
    assert store.book_fill(f4, "paper", {"quantity": 1.0}, "booked") is False
    assert store.add_fill(Fill("y1", None, "AAA", "buy", 1.0, 100.0, 9.0, "USD", ts), "other") is True
    want = _summed(store, "paper")
    assert set(want) == {"USD", "BNB", ""} and want["BNB"] == pytest.approx(0.3125)
    assert store.fees_by_currency("paper") == pytest.approx(want, rel=1e-12)
    assert store.fees_by_currency("other") == {"USD": 9.0}  # accounts apart
    store.dispose()


def test_upgrading_a_store_mid_history_keeps_the_fees_it_reported(url: str) -> None:
    """Revision 0009 fills the running totals from the fills already recorded (the store is made at 0008,
    the revision before it, and its fills written as that code wrote them)."""
    from alembic import command

    engine = engine_for(url, migrate=False)
    with engine.connect() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        conn.commit()
    rows = [
        {"fill_id": f"f{i}", "account": acct, "symbol": "AAA", "side": "buy", "quantity": 1.0, "price": 10.0,
         "fee": 0.01 * (i + 1), "fee_currency": ccy, "ts": "2024-01-01T00:00:00.000000+00:00"}
        for i, (acct, ccy) in enumerate([("a", "USD"), ("a", "USD"), ("a", None), ("a", "BNB"), ("b", "USD")])
    ]  # fmt: skip
    with engine.begin() as c:
        c.execute(fills.insert(), rows)
    assert upgrade(engine) == head_revision()  # 0009 and whatever comes after it
    engine.dispose()
    store = Store(url)
    assert store.fees_by_currency("a") == pytest.approx({"USD": 0.03, "": 0.03, "BNB": 0.04})
    assert store.fees_by_currency("b") == pytest.approx({"USD": 0.05})
    store.add_fill(Fill("f9", None, "AAA", "buy", 1.0, 10.0, 1.0, "USD", T0), "a")  # and they go on from there
    assert store.fees_by_currency("a")["USD"] == pytest.approx(1.03) == _summed(store, "a")["USD"]
    store.dispose()


# ---- exit-pair numbers --------------------------------------------------------------------------------
def _open_exits(paper: PaperBroker) -> dict[str, float]:
    return {o.client_order_id: o.quantity for o in paper.open_orders() if o.type in ("stop_loss", "take_profit")}


def _pair(run: int, cycle: int, k: int) -> set[str]:
    return {client_order_id(run, cycle, "AAA", "sell", f"s{k}"), client_order_id(run, cycle, "AAA", "sell", f"t{k}")}


def _counting(store: Store) -> list[int]:
    """Calls of ``store.oco_group_counts`` (the read of every exit order of the run), by wrapping it."""
    calls: list[int] = []
    inner: Callable[..., dict[str, int]] = store.oco_group_counts

    def counted(*a: Any, **kw: Any) -> dict[str, int]:
        calls.append(1)
        return inner(*a, **kw)

    store.oco_group_counts = counted  # type: ignore[method-assign]
    return calls


def test_a_restart_mid_cycle_goes_on_numbering_pairs_and_never_reuses_an_id(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    calls = _counting(store)
    paper = PaperBroker(store, starting_cash=1e6, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    run = store.start_run("paper", "paper", "paper")
    kill = KillSwitch()
    a = OrderManager(store, paper, "paper", run_id=run, on_point=kill)
    _bar(paper, 1)
    a.submit(_buy(run, 1, "AAA", 10))
    assert a.sync_exits(1) == 2 and set(_open_exits(paper)) == _pair(run, 1, 0)
    # Cycle 2: the position grows; the pair is replaced, and the process dies with the new pair recorded NEW.
    _bar(paper, 2)
    a.submit(_buy(run, 2, "AAA", 5))
    kill.arm("after_new")
    with pytest.raises(_Killed):
        a.sync_exits(2)
    assert _open_exits(paper) == {} and all(store.get_order(c)["status"] == "NEW" for c in _pair(run, 2, 1))
    assert len(calls) == 1  # one read of the run's pairs for the manager's whole life

    b = OrderManager(store, paper, "paper", run_id=run)  # the restart, re-running cycle 2
    b.reconcile()
    b.refresh_open()  # the NEW legs were never sent: sent now under their own ids
    assert _open_exits(paper) == dict.fromkeys(_pair(run, 2, 1), 15.0)
    assert b.sync_exits(2) == 0  # in step
    # Someone cancels the pair on the venue's own site: the re-run must place a new one, under new ids.
    for cid in _pair(run, 2, 1):
        paper.cancel(cid)
    b.refresh_open()
    assert b.sync_exits(2) == 2
    assert _open_exits(paper) == dict.fromkeys(_pair(run, 2, 2), 15.0)  # number 2 of the run, not 0 again
    # Still in cycle 2 the position grows again: the next number, not the one just used.
    b.submit(_buy(run, 2, "AAA", 5, tag="x"))
    assert b.sync_exits(2) == 2
    assert _open_exits(paper) == dict.fromkeys(_pair(run, 2, 3), 20.0)
    _bar(paper, 3)
    b.submit(_buy(run, 3, "AAA", 1))
    assert b.sync_exits(3) == 2 and _open_exits(paper) == dict.fromkeys(_pair(run, 3, 4), 21.0)
    assert len(calls) == 2  # one more for the restarted manager, none per cycle
    with store.engine.connect() as c:
        at_venue = list(c.execute(select(paper_orders.c.client_order_id)).scalars())
    assert set(at_venue) <= set(store.orders(run_id=run, limit=1000)["client_order_id"])  # all ours, each once


def test_pair_numbers_past_one_hundred_in_one_cycle_get_ids_of_their_own(tmp_path: Any) -> None:
    """``client_order_id`` keeps three characters of the purpose: pairs 100 and 101 of a symbol, made in
    one cycle, must not share the ids "…-ss10" (the second pair would be taken for the first, never sent)."""
    store = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    paper = PaperBroker(store, starting_cash=1e6, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    run = store.start_run("paper", "paper", "paper")
    store.insert_orders([
        {"client_order_id": f"old-{i}", "run_id": run, "cycle": i, "account": "paper", "symbol": "AAA",
         "side": "sell", "type": "stop_loss", "quantity": 1.0, "oco_group": f"gold-{i}", "status": "CANCELLED",
         "reason": "an earlier pair"}
        for i in range(100)
    ])  # fmt: skip
    om = OrderManager(store, paper, "paper", run_id=run)
    _bar(paper, 100)
    om.submit(_buy(run, 100, "AAA", 10))
    assert om.sync_exits(100) == 2
    first = set(_open_exits(paper))
    om.submit(_buy(run, 100, "AAA", 5, tag="x"))
    assert om.sync_exits(100) == 2
    second = _open_exits(paper)
    assert len(second) == 2 and set(second.values()) == {15.0} and not first & set(second)


def test_a_symbol_whose_pair_ids_are_all_taken_is_logged_and_the_others_get_their_pairs(tmp_path: Any) -> None:
    """Every id a (run, cycle, symbol) can give a pair already recorded (``PAIR_NUMBERS`` of them): that
    symbol's exits are logged as failed for the cycle, nothing is resumed or sent under a used id, and
    the other symbols' pairs go out."""
    from workbench.trading.exits import PAIR_NUMBERS

    store = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    paper = PaperBroker(store, starting_cash=1e6, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    run = store.start_run("paper", "paper", "paper")
    store.insert_orders([
        {"client_order_id": client_order_id(run, 1, "AAA", "sell", f"s{k}"), "run_id": run, "cycle": 1,
         "account": "paper", "symbol": "AAA", "side": "sell", "type": "stop_loss", "quantity": 1.0,
         "status": "CANCELLED", "reason": "recorded by someone else"}
        for k in range(PAIR_NUMBERS)
    ])  # fmt: skip
    om = OrderManager(store, paper, "paper", run_id=run)
    _bar(paper, 1)
    om.submit_many([_buy(run, 1, "AAA", 10), _buy(run, 1, "BBB", 4)])
    assert om.sync_exits(1) == 2
    assert {o.symbol for o in paper.open_orders()} == {"BBB"}
    errors = store.events(run, kind="exit_error")["message"].tolist()
    assert len(errors) == 1 and "AAA" in errors[0] and "no unused exit-pair id" in errors[0]
