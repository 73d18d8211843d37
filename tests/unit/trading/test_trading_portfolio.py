"""Portfolio arithmetic by hand, and the snapshot built from the real paper broker and store,
including the day's starting equity surviving a restart."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.portfolio import compute_snapshot, day_key, snapshot
from workbench.trading.store import Store
from workbench.venues.base import Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

D1 = pd.Timestamp("2024-03-04", tz="UTC")


def test_pnl_arithmetic_by_hand():
    book = {
        "AAA": {"average_price": 50.0, "realized_pnl": 12.5, "stop_loss": 45.0, "take_profit": 60.0},
        "BBB": {"average_price": 200.0},
    }
    snap = compute_snapshot(
        D1,
        cash=1_000.0,
        quantities={"AAA": 10, "BBB": 2, "CCC": 0.0},
        prices={"AAA": 55.0, "BBB": 190.0},
        book=book,
        day_start_equity=2_000.0,
    )
    # positions: 10 × 55 = 550, 2 × 190 = 380 → equity 1000 + 930 = 1930
    assert snap.positions_value == pytest.approx(930.0)
    assert snap.equity == pytest.approx(1_930.0)
    a, b = snap.positions["AAA"], snap.positions["BBB"]
    assert (
        a.unrealized_pnl == pytest.approx(50.0)
        and a.realized_pnl == 12.5
        and (a.stop_loss, a.take_profit) == (45.0, 60.0)
    )
    assert b.unrealized_pnl == pytest.approx(-20.0)
    assert "CCC" not in snap.positions
    assert snap.daily_pnl == pytest.approx(-70.0) and snap.daily_pnl_pct == pytest.approx(-0.035)
    # No price: marked at the average price (no invented P&L).
    snap = compute_snapshot(D1, 0.0, {"AAA": 4}, {}, book)
    assert snap.positions["AAA"].market_price == 50.0 and snap.equity == 200.0 and snap.daily_pnl == 0.0


def test_day_key_is_the_utc_date():
    assert day_key(pd.Timestamp("2024-03-04 23:30", tz="UTC")) == "2024-03-04"
    assert day_key(pd.Timestamp("2024-03-05 04:00", tz="Asia/Kolkata")) == "2024-03-04"


def test_snapshot_from_broker_and_store_and_day_start_persists(tmp_path):
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    store = Store(url).create()
    broker = PaperBroker(
        store,
        starting_cash=10_000.0,
        fee_rate=0.0,
        slippage_bps=0.0,
        markets={"AAA": Market("AAA", "AAA", "USD", lot_size=1.0)},
    )
    broker.on_bar({"AAA": Quote("AAA", 100.0, D1)})
    OrderManager(store, broker, "paper").submit(
        OrderIntent(OrderRequest("c1", "AAA", "buy", 20), None, 1, "t", stop_loss=90.0)
    )
    s1 = snapshot(broker, store, "paper", D1, {"AAA": Quote("AAA", 100.0, D1)})
    assert (s1.cash, s1.equity, s1.day_start_equity) == (8_000.0, 10_000.0, 10_000.0)
    assert s1.positions["AAA"].stop_loss == 90.0
    store.add_equity(None, "paper", D1, s1.cash, s1.positions_value, s1.equity, s1.day_start_equity)
    # Later the same day, the price falls: the day start stays, P&L shows the loss.
    later = D1 + pd.Timedelta(hours=6)
    s2 = snapshot(broker, store, "paper", later, {"AAA": Quote("AAA", 80.0, later)})
    assert s2.equity == 9_600.0 and s2.day_start_equity == 10_000.0 and s2.daily_pnl_pct == pytest.approx(-0.04)
    store.add_equity(None, "paper", later, s2.cash, s2.positions_value, s2.equity, s2.day_start_equity)
    # A restart (new objects on the same database) keeps today's start.
    store2 = Store(url)
    broker2 = PaperBroker(store2)
    s3 = snapshot(broker2, store2, "paper", later, {"AAA": Quote("AAA", 75.0, later)})
    assert s3.day_start_equity == 10_000.0 and s3.equity == 9_500.0
    # The next day starts from the last equity recorded before midnight.
    d2 = D1 + pd.Timedelta(days=1)
    s4 = snapshot(broker2, store2, "paper", d2, {"AAA": Quote("AAA", 81.0, d2)})
    assert s4.day_start_equity == 9_600.0 and s4.daily_pnl == pytest.approx(20.0)


def test_several_currencies_convert_to_the_base_currency():
    from workbench.errors import ConfigError

    snap = compute_snapshot(
        D1,
        cash={"INR": 830_000.0, "USD": 5_000.0, "USDT": 1_000.0},
        quantities={"NSE:INFY": 10, "AAPL": 2},
        prices={"NSE:INFY": 1_500.0, "AAPL": 190.0},
        book={"NSE:INFY": {"average_price": 1_400.0}},
        fx={"INR": 1 / 83.0, "USDT": 1.0},
        currencies={"NSE:INFY": "INR", "AAPL": "USD"},
        base_currency="USD",
    )
    assert snap.cash == pytest.approx(10_000.0 + 5_000.0 + 1_000.0)
    infy = snap.positions["NSE:INFY"]
    assert infy.market_value == pytest.approx(15_000.0 / 83.0) and infy.unrealized_pnl == pytest.approx(1_000.0 / 83.0)
    assert snap.equity == pytest.approx(16_000.0 + 15_000.0 / 83.0 + 380.0)
    assert snap.cash_for("INR") == pytest.approx(10_000.0) and snap.cash_for("EUR") == pytest.approx(5_000.0)
    with pytest.raises(ConfigError, match="INR"):
        compute_snapshot(D1, cash={"INR": 1.0, "USD": 1.0}, quantities={}, prices={}, base_currency="USD")


def test_snapshot_reads_rates_from_quotes_and_reports_fees(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'wb.db'}").create()
    markets = {"NSE:INFY": Market("NSE:INFY", "INFY", "INR", lot_size=1.0), "USD/INR": Market("USD/INR", "USD", "INR")}
    b = PaperBroker(
        store, starting_cash={"USD": 1_000.0, "INR": 83_000.0}, fee_rate=0.001, slippage_bps=0.0, markets=markets
    )
    quotes = {"NSE:INFY": Quote("NSE:INFY", 1_000.0, D1), "USD/INR": Quote("USD/INR", 83.0, D1)}
    b.on_bar(quotes)
    OrderManager(store, b, "paper").submit(OrderIntent(OrderRequest("i1", "NSE:INFY", "buy", 10), None, 1, "t"))
    snap = snapshot(b, store, "paper", D1, quotes)
    assert snap.base_currency == "USD" and snap.fx["INR"] == pytest.approx(1 / 83.0)
    assert snap.cash_by_currency["INR"] == pytest.approx(83_000.0 - 10_000.0 - 10.0)
    assert snap.equity == pytest.approx(1_000.0 + (83_000.0 - 10.0) / 83.0)  # only the fee is lost
    assert snap.fees == pytest.approx(10.0 / 83.0) and snap.positions["NSE:INFY"].currency == "INR"


def test_after_fill_matches_a_fresh_snapshot_from_the_broker(tmp_path):
    from workbench.trading.portfolio import after_fill

    store = Store(f"sqlite:///{tmp_path / 'wb.db'}").create()
    b = PaperBroker(
        store,
        starting_cash=50_000.0,
        fee_rate=0.001,
        slippage_bps=7.0,
        markets={"AAA": Market("AAA", "AAA", "USD", lot_size=1.0)},
    )
    quotes = {"AAA": Quote("AAA", 80.0, D1)}
    b.on_bar(quotes)
    om = OrderManager(store, b, "paper")
    om.submit(OrderIntent(OrderRequest("a1", "AAA", "buy", 20), None, 1, "t"))
    before = snapshot(b, store, "paper", D1, quotes)
    for cid, side, qty in (("a2", "buy", 30), ("a3", "sell", 45)):
        ans = om.submit(OrderIntent(OrderRequest(cid, "AAA", side, qty), None, 1, "t"))
        before = after_fill(before, "AAA", side, ans.filled_quantity, ans.average_price, ans.fee, 80.0, "USD")
        fresh = snapshot(b, store, "paper", D1, quotes)
        assert before.cash == pytest.approx(fresh.cash) and before.equity == pytest.approx(fresh.equity)
        assert before.quantity("AAA") == pytest.approx(fresh.quantity("AAA")) and before.fees == pytest.approx(
            fresh.fees
        )
        assert before.daily_pnl == pytest.approx(fresh.daily_pnl)


def test_after_fill_in_place_on_an_owned_copy_equals_the_pure_one_and_leaves_the_original_alone():
    """The cycle books thousands of orders into one owned snapshot (no copy of every position per
    order); the result must be the pure function's, and the snapshot it was copied from untouched."""
    from workbench.trading.portfolio import after_fill, owned_copy

    base = compute_snapshot(
        pd.Timestamp("2024-01-02", tz="UTC"), {"USD": 10_000.0, "EUR": 500.0}, {"AAA": 5.0}, {"AAA": 100.0},
        fx={"EUR": 1.1}, currencies={"AAA": "USD"},
    )  # fmt: skip
    fills = [("AAA", "buy", 2.0, 101.0, 0.2, 102.0, "USD"), ("BBB", "buy", 3.0, 50.0, 0.1, 51.0, "EUR"),
             ("AAA", "sell", 7.0, 99.0, 0.3, 99.0, "USD"), ("BBB", "sell", 1.0, 52.0, 0.1, 52.0, "EUR")]  # fmt: skip
    pure, owned = base, owned_copy(base)
    for f in fills:
        pure = after_fill(pure, *f)
        owned = after_fill(owned, *f, owned=True)
    assert owned == pure and "AAA" not in owned.positions and owned.positions["BBB"].quantity == 2.0
    assert base.positions == {"AAA": base.positions["AAA"]} and base.positions["AAA"].quantity == 5.0
    assert base.cash_by_currency == {"USD": 10_000.0, "EUR": 500.0}
