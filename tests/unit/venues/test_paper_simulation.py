"""The paper venue's market simulation: fills capped by bar volume, resting stops that fill at the gap,
OCO pairs, per-exchange fees and slippage, cash per currency, and books that survive a restart."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.trading.store import Store
from workbench.venues.base import Market, OrderRejected, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
MARKETS = {
    "AAA": Market("AAA", "AAA", "USD", lot_size=1.0, tick_size=0.01),
    "NSE:INFY": Market("NSE:INFY", "INFY", "INR", lot_size=1.0, tick_size=0.05, exchange="NSE"),
    "BTC/USDT": Market("BTC/USDT", "BTC", "USDT", lot_size=0.001, tick_size=0.01, exchange="binance"),
}


def bar(sym, last, **kw) -> dict[str, Quote]:
    return {sym: Quote(sym, last, T0, **kw)}


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


def test_fills_are_capped_by_the_bars_volume_and_continue_on_later_bars(store):
    b = PaperBroker(
        store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS, max_volume_share=0.1
    )
    b.on_bar(bar("AAA", 100.0, volume=50.0))  # 10% of 50 = 5 shares this bar
    o = b.place(OrderRequest("big", "AAA", "buy", 12))
    assert o.status == "PARTIALLY_FILLED" and o.filled_quantity == 5
    assert b.balances()["USD"].free == pytest.approx(10_000 - 500 - 7 * 100)  # the rest is reserved
    b.on_bar(bar("AAA", 102.0, open=101.0, volume=50.0))
    o = b.order_status("big")
    assert o.status == "PARTIALLY_FILLED" and o.filled_quantity == 10
    b.on_bar(bar("AAA", 103.0, open=104.0, volume=1_000.0))
    o = b.order_status("big")
    assert o.status == "FILLED" and o.filled_quantity == 12
    assert [(f.quantity, f.price) for f in b.fills()] == [(5.0, 100.0), (5.0, 101.0), (2.0, 104.0)]
    assert o.average_price == pytest.approx((500 + 505 + 208) / 12)
    assert b.balances()["USD"].total == pytest.approx(10_000 - 1213.0)


def test_one_bars_volume_is_shared_by_every_order_on_the_symbol(store):
    b = PaperBroker(
        store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS, max_volume_share=0.1
    )
    b.on_bar(bar("AAA", 100.0, volume=50.0))
    assert b.place(OrderRequest("one", "AAA", "buy", 5)).status == "FILLED"
    two = b.place(OrderRequest("two", "AAA", "buy", 3))
    assert two.status == "SUBMITTED" and two.filled_quantity == 0  # the bar is used up: it waits for the next
    b.on_bar(bar("AAA", 100.0, open=100.0, volume=50.0))
    assert b.order_status("two").status == "FILLED"


def test_partial_volume_share_is_rounded_to_the_lot(store):
    b = PaperBroker(store, starting_cash=1e6, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS, max_volume_share=0.1)
    b.on_bar(bar("BTC/USDT", 20_000.0, volume=0.0123))
    o = b.place(OrderRequest("b", "BTC/USDT", "buy", 0.01))
    assert o.filled_quantity == pytest.approx(0.001)  # 0.00123 floored to the lot 0.001


def test_stop_fills_at_the_gap_and_a_wide_bar_exits_at_the_stop(store):
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=10.0, markets=MARKETS)
    b.on_bar(bar("AAA", 100.0))
    b.place(OrderRequest("e", "AAA", "buy", 10))
    b.place(OrderRequest("sl", "AAA", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "AAA", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    b.on_bar(bar("AAA", 99.0, low=96.0, high=101.0, open=100.0))  # neither touched
    assert {o.client_order_id for o in b.open_orders()} == {"sl", "tp"}
    b.on_bar(bar("AAA", 91.0, low=88.0, high=92.0, open=90.0))  # gapped below the stop
    assert b.order_status("sl").average_price == pytest.approx(90.0 * 0.999)
    assert b.order_status("tp").status == "CANCELLED" and "oco" in b.order_status("tp").reason
    # A bar that touches both: the stop wins (the pessimistic reading of an unknown path).
    b.place(OrderRequest("e2", "AAA", "buy", 10))
    b.place(OrderRequest("sl2", "AAA", "sell", 10, "stop_loss", stop_price=85.0, oco_group="g2"))
    b.place(OrderRequest("tp2", "AAA", "sell", 10, "take_profit", limit_price=95.0, oco_group="g2"))
    b.on_bar(bar("AAA", 90.0, low=80.0, high=99.0, open=90.0))
    assert b.order_status("sl2").status == "FILLED" and b.order_status("tp2").status == "CANCELLED"
    assert b.positions() == {}


def test_take_profit_fills_at_its_limit_or_the_better_open(store):
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    b.on_bar(bar("AAA", 100.0))
    b.place(OrderRequest("e", "AAA", "buy", 4))
    b.place(OrderRequest("tp", "AAA", "sell", 4, "take_profit", limit_price=105.0))
    b.on_bar(bar("AAA", 108.0, low=107.0, high=109.0, open=107.5))  # gapped above the limit
    assert b.order_status("tp").average_price == pytest.approx(107.5)


def test_a_triggered_stop_keeps_filling_as_a_market_order_when_volume_is_thin(store):
    b = PaperBroker(
        store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS, max_volume_share=0.5
    )
    b.on_bar(bar("AAA", 100.0, volume=100.0))
    b.place(OrderRequest("e", "AAA", "buy", 30))
    b.place(OrderRequest("sl", "AAA", "sell", 30, "stop_loss", stop_price=95.0))
    b.on_bar(bar("AAA", 94.0, low=93.0, high=96.0, open=96.0, volume=40.0))  # 20 of 30 at the stop
    assert b.order_status("sl").filled_quantity == 20
    b.on_bar(bar("AAA", 99.0, low=97.0, high=99.5, open=98.0, volume=40.0))  # above the stop again: still sells
    o = b.order_status("sl")
    assert o.status == "FILLED" and o.average_price == pytest.approx((20 * 95 + 10 * 98) / 30)


def test_fees_and_slippage_per_exchange(store):
    b = PaperBroker(
        store,
        starting_cash={"USD": 10_000.0, "INR": 1_000_000.0, "USDT": 50_000.0},
        fee_rate=0.001,
        slippage_bps=10.0,
        markets=MARKETS,
        exchange_costs={"NSE": (0.0003, 2.0), "binance": (0.00075, 1.0)},
    )
    b.on_bar({**bar("AAA", 100.0), **bar("NSE:INFY", 1500.0), **bar("BTC/USDT", 20_000.0)})
    a = b.place(OrderRequest("a", "AAA", "buy", 10))
    n = b.place(OrderRequest("n", "NSE:INFY", "buy", 10))
    c = b.place(OrderRequest("c", "BTC/USDT", "buy", 0.5))
    assert a.average_price == pytest.approx(100.1) and a.fee == pytest.approx(1001.0 * 0.001)
    assert n.average_price == pytest.approx(1500.0 * 1.0002) and n.fee == pytest.approx(10 * 1500.3 * 0.0003)
    assert c.average_price == pytest.approx(20_002.0) and c.fee == pytest.approx(0.5 * 20_002.0 * 0.00075)
    bal = b.balances()  # each instrument settled in its own currency
    assert bal["USD"].total == pytest.approx(10_000.0 - 1001.0 - 1.001)
    assert bal["INR"].total == pytest.approx(1_000_000.0 - 15_003.0 - 4.5009)
    assert bal["USDT"].total == pytest.approx(50_000.0 - 10_001.0 - 7.50075)
    assert {f.fee_currency for f in b.fills()} == {"USD", "INR", "USDT"}
    with pytest.raises(OrderRejected) as e:  # INR cash cannot be spent on a USD stock
        b.place(OrderRequest("x", "AAA", "buy", 95))
    assert e.value.reason == "insufficient_funds" and "USD" in str(e.value)


def test_a_quote_currency_the_account_does_not_hold_settles_in_the_account_currency(store):
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0)  # derived markets, USD only
    b.on_bar(bar("ETH/USDT", 2_000.0))
    b.place(OrderRequest("e", "ETH/USDT", "buy", 1.0))
    assert b.balances()["USD"].total == pytest.approx(8_000.0) and "USDT" not in b.balances()


def test_resting_exits_survive_a_new_broker_object(store):
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    b.on_bar(bar("AAA", 100.0))
    b.place(OrderRequest("e", "AAA", "buy", 5))
    b.place(OrderRequest("sl", "AAA", "sell", 5, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "AAA", "sell", 5, "take_profit", limit_price=110.0, oco_group="g"))
    again = PaperBroker(store, starting_cash=999.0, markets=MARKETS)  # starting cash is not applied twice
    assert again.balances()["USD"].total == pytest.approx(9_500.0)
    again.on_bar(bar("AAA", 111.0, low=104.0, high=112.0, open=105.0))
    assert again.order_status("tp").status == "FILLED" and again.order_status("sl").status == "CANCELLED"
    assert [f.client_order_id for f in again.fills()] == ["e", "tp"]


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -3.0, float("inf")])
def test_a_bad_print_is_no_price_and_triggers_nothing(store, bad):
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.0, slippage_bps=0.0, markets=MARKETS)
    b.on_bar(bar("AAA", 100.0))
    b.place(OrderRequest("e", "AAA", "buy", 5))
    b.place(OrderRequest("sl", "AAA", "sell", 5, "stop_loss", stop_price=95.0))
    assert b.on_bar(bar("AAA", bad, low=bad, open=bad)) == []
    assert b.quotes(["AAA"])["AAA"].last == 100.0 and b.order_status("sl").status == "SUBMITTED"
    b.on_bar(bar("AAA", 99.0, low=bad, high=bad, open=99.5))  # unusable low/high fall back to last
    assert b.order_status("sl").status == "SUBMITTED"
