"""The broker contract in executable form: every adapter must pass these tests.

A ``Harness`` wraps one venue: the broker under test, one tradable symbol with real trading rules
(by default lot 0.001, tick 0.01, min notional 10 in the account currency), a symbol the venue does
not list, and ``move(symbol, **bar)`` that makes the venue's price move (the paper broker takes a
bar; an adapter against a local fake server moves the fake's book). A venue with other rules says
so: an equity venue trades whole shares (``lot=1``, ``unit=10`` scales every test quantity to whole
lots) and may have no minimum notional (``min_notional=0`` skips that rejection). ``test_broker_conformance.py``
parametrises the ``venue`` fixture over every harness; a new adapter adds its factory to
``HARNESSES`` there and must pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from workbench.venues.base import (
    FINAL_STATUSES,
    REJECT_REASONS,
    Balance,
    Broker,
    BrokerError,
    BrokerOrder,
    BrokerStatus,
    Market,
    OrderRejected,
    OrderRequest,
)


@dataclass
class Harness:
    broker: Broker
    symbol: str  # lot 0.001, tick 0.01, min notional 10; priced at 100 when the harness starts
    unknown: str
    currency: str
    move: Callable[..., None]  # move(symbol, last=..., low=..., high=..., open=..., volume=...)
    lot: float = 0.001
    tick: float = 0.01
    min_notional: float = 10.0
    unit: float = 1.0  # test quantities are multiples of this (whole shares on an equity venue)


def _status_of(venue: Harness, cid: str) -> BrokerOrder:
    return venue.broker.order_status(cid)


def test_conformance_protocol_and_check(venue: Harness):
    b = venue.broker
    assert isinstance(b, Broker)
    st = b.check()
    assert isinstance(st, BrokerStatus) and st.ok and st.environment in ("paper", "testnet", "live") and st.message


def test_conformance_markets_carry_trading_rules_and_skip_unknown(venue: Harness):
    ms = venue.broker.markets([venue.symbol, venue.unknown])
    assert list(ms) == [venue.symbol]
    m = ms[venue.symbol]
    assert isinstance(m, Market) and m.lot_size == pytest.approx(venue.lot) and m.tick_size == pytest.approx(venue.tick)
    assert m.min_notional == pytest.approx(venue.min_notional)


def test_conformance_balances_positions_quotes(venue: Harness):
    bal = venue.broker.balances()
    assert venue.currency in bal and all(isinstance(v, Balance) and v.free <= v.total + 1e-9 for v in bal.values())
    assert venue.broker.positions() == {}
    q = venue.broker.quotes([venue.symbol])[venue.symbol]
    assert q.last == pytest.approx(100.0)


def test_conformance_market_buy_then_sell_round_trip(venue: Harness):
    b = venue.broker
    cash0 = b.balances()[venue.currency].total
    q = 1.5 * venue.unit
    o = b.place(OrderRequest("conf-buy", venue.symbol, "buy", q))
    assert o.client_order_id == "conf-buy" and o.status == "FILLED" and o.filled_quantity == pytest.approx(q)
    assert o.average_price > 0 and o.fee >= 0
    assert b.positions()[venue.symbol] == pytest.approx(q)
    assert b.balances()[venue.currency].total == pytest.approx(cash0 - q * o.average_price - o.fee)
    s = b.place(OrderRequest("conf-sell", venue.symbol, "sell", q))
    assert s.status == "FILLED" and venue.symbol not in b.positions()
    fills = [f for f in b.fills() if f.client_order_id in ("conf-buy", "conf-sell")]
    assert sorted(f.side for f in fills) == ["buy", "sell"] and len({f.fill_id for f in fills}) == len(fills)


def test_conformance_place_is_idempotent_on_client_order_id(venue: Harness):
    b = venue.broker
    first = b.place(OrderRequest("conf-idem", venue.symbol, "buy", venue.unit))
    again = b.place(OrderRequest("conf-idem", venue.symbol, "buy", venue.unit))
    assert again.client_order_id == first.client_order_id and again.broker_order_id == first.broker_order_id
    assert [f.client_order_id for f in b.fills()].count("conf-idem") == 1
    assert b.positions()[venue.symbol] == pytest.approx(venue.unit)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda v: OrderRequest("r-sym", v.unknown, "buy", v.unit), "unknown_symbol"),
        (lambda v: OrderRequest("r-lot", v.symbol, "buy", 1.0005 * v.unit), "lot_size"),
        (lambda v: OrderRequest("r-tick", v.symbol, "buy", v.unit, "limit", limit_price=99.995), "tick_size"),
        (lambda v: OrderRequest("r-notional", v.symbol, "buy", 0.05 * v.unit), "min_notional"),
        (lambda v: OrderRequest("r-funds", v.symbol, "buy", 1e9 * v.unit), "insufficient_funds"),
        (lambda v: OrderRequest("r-short", v.symbol, "sell", v.unit), "insufficient_position"),
    ],
)
def test_conformance_rejects_with_a_stable_reason(venue: Harness, make, reason):
    if reason == "min_notional" and not venue.min_notional:
        pytest.skip("this venue has no minimum notional")
    with pytest.raises(OrderRejected) as e:
        venue.broker.place(make(venue))
    assert e.value.reason == reason and reason in REJECT_REASONS and str(e.value)
    assert isinstance(e.value, BrokerError)
    assert venue.broker.positions() == {}


def test_conformance_unknown_order_is_named(venue: Harness):
    for call in (venue.broker.order_status, venue.broker.cancel):
        with pytest.raises(OrderRejected) as e:
            call("never-sent")
        assert e.value.reason == "unknown_order"


def test_conformance_limit_rests_then_cancels_and_cancel_is_final(venue: Harness):
    b = venue.broker
    o = b.place(OrderRequest("conf-lim", venue.symbol, "buy", venue.unit, "limit", limit_price=90.0))
    assert o.status == "SUBMITTED" and [x.client_order_id for x in b.open_orders()] == ["conf-lim"]
    free = b.balances()[venue.currency]
    assert free.free < free.total  # the resting buy reserves cash
    c = b.cancel("conf-lim")
    assert c.status == "CANCELLED" and c.is_final and b.open_orders() == []
    assert b.cancel("conf-lim").status == "CANCELLED"  # cancelling a final order changes nothing
    assert _status_of(venue, "conf-lim").status in FINAL_STATUSES


def test_conformance_limit_fills_when_the_price_crosses(venue: Harness):
    b = venue.broker
    b.place(OrderRequest("conf-lim2", venue.symbol, "buy", venue.unit, "limit", limit_price=95.0))
    venue.move(venue.symbol, last=94.0, low=93.5, high=99.0, open=99.0)
    o = _status_of(venue, "conf-lim2")
    assert o.status == "FILLED" and o.average_price == pytest.approx(95.0)


def test_conformance_oco_exit_pair_one_fill_cancels_the_other(venue: Harness):
    b = venue.broker
    q = 2.0 * venue.unit
    b.place(OrderRequest("conf-entry", venue.symbol, "buy", q))
    sl = b.place(OrderRequest("conf-sl", venue.symbol, "sell", q, "stop_loss", stop_price=95.0, oco_group="conf-g"))
    tp = b.place(OrderRequest("conf-tp", venue.symbol, "sell", q, "take_profit", limit_price=110.0, oco_group="conf-g"))
    assert sl.status == tp.status == "SUBMITTED"  # both rest; the pair reserves the position once
    venue.move(venue.symbol, last=96.0, low=94.0, high=101.0, open=100.0)
    assert _status_of(venue, "conf-sl").status == "FILLED" and _status_of(venue, "conf-tp").status == "CANCELLED"
    assert venue.symbol not in b.positions()


def test_conformance_exit_that_would_trigger_at_once_is_rejected(venue: Harness):
    b = venue.broker
    b.place(OrderRequest("conf-e2", venue.symbol, "buy", venue.unit))
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("conf-badsl", venue.symbol, "sell", venue.unit, "stop_loss", stop_price=101.0))
    assert e.value.reason == "bad_price"


__all__ = ["Harness", *sorted(n for n in dict(globals()) if n.startswith("test_conformance_"))]
