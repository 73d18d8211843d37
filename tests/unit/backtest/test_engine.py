"""The backtest engine against hand arithmetic: entries sized by the live risk rules, fees, slippage,
a take-profit, a stop, a gapped stop, a SELL exit, the position cap on current equity, the daily-loss
halt on intraday bars, and fold labels on orders and trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.backtest import run_backtest, vbt_freq
from workbench.backtest.result import ORDER_COLUMNS, TRADE_COLUMNS
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.market import Market

N = 8
IDX = pd.date_range("2024-01-01", periods=N, freq="1D", tz="UTC", name="ts")
SYMS = ["A", "B", "C"]
CLOSE = {
    "A": [100, 100, 102, 104, 108, 109, 110, 111.0],
    "B": [50, 50, 49, 48, 51, 52, 47.5, 50.0],
    "C": [20, 20, 21, 22, 23, 24, 25, 26.0],
}
MARKETS = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in SYMS}
COSTS = CostModel(fee_rate=0.001, slippage_bps=10.0)


def wide(d: dict) -> pd.DataFrame:
    return pd.DataFrame({s: np.asarray(d[s], float) for s in SYMS}, index=IDX).rename_axis(columns="symbol")


def hand_panel() -> Panel:
    close = wide(CLOSE)
    op, hi, lo = close.copy(), close * 1.005, close * 0.995
    op.loc[IDX[2], "B"], lo.loc[IDX[2], "B"] = 49.5, 47.5  # B trades through its stop 48
    op.loc[IDX[4], "A"], hi.loc[IDX[4], "A"] = 104.5, 111.0  # A reaches its take-profit 110
    op.loc[IDX[6], "B"], lo.loc[IDX[6], "B"] = 47.0, 46.0  # B gaps below its stop 49
    return Panel(open=op, high=hi, low=lo, close=close, volume=close * 0 + 1e6, exchange="T", timeframe="1d")


def hand_frames() -> dict[str, pd.DataFrame]:
    nan = np.nan
    z = {s: [0.0] * N for s in SYMS}
    side, strength = {k: list(v) for k, v in z.items()}, {k: [0.5] * N for k in SYMS}
    stop, take = {k: [nan] * N for k in SYMS}, {k: [nan] * N for k in SYMS}

    def put(sym, bar, sd, st, sl=nan, tp=nan):
        side[sym][bar], strength[sym][bar], stop[sym][bar], take[sym][bar] = sd, st, sl, tp

    put("A", 0, 1, 0.9, 95, 110)
    put("B", 0, 1, 0.6, 45, 60)  # too weak: strength 0.6 ≤ 0.7
    put("C", 0, 1, 0.75, 18, 30)
    put("B", 1, 1, 0.8, 48, 56)
    put("A", 3, 1, 0.95, 100, 112)  # an add, refused: 100 × 104 is above 10% of equity
    put("C", 3, -1, 0.8, 24, 18)
    put("B", 5, 1, 0.9, 49, 60)
    put("A", 7, -1, 0.9, 120, 100)  # nothing held: no order
    out = {"side": wide(side), "strength": wide(strength), "stop": wide(stop), "take_profit": wide(take)}
    out["confidence"] = out["strength"] * 0 + 0.6
    return out


def test_hand_worked_fixture_matches_to_the_cent():
    r = run_backtest(hand_frames(), hand_panel(), RiskLimits(), COSTS, 100_000.0, markets=MARKETS)
    # Bar 0, A: cap 10% × 100,000 / 100 = 100; risk 1% × 100,000 / (100 − 95) = 200 → 100 at 100 × 1.001.
    cash = 100_000 - 100 * 100.1 - 100 * 100.1 * 0.001  # 89,979.99
    # C in the same cycle, on equity after A's fill (100,000 − 10,020.01 + 100 × 100 = 99,979.99):
    # cap 9,997.999 / 20 = 499.9 → 499; risk 999.7999 / 2 = 499.9 → 499, at 20 × 1.001 = 20.02.
    cash -= 499 * 20.02 * 1.001
    # Bar 1, B: equity = cash + 100 × 100 + 499 × 20 = 99,960.02002 → cap 199.92 → 199 at 50.05.
    cash -= 199 * 50.05 * 1.001
    # Bar 2: B's stop 48 fills at min(48, open 49.5) × (1 − 0.001) = 47.952.
    cash += 199 * 47.952 * 0.999
    # Bar 3: A's add is refused (held 10,400 ≥ 10% of 100,921.02); C's SELL fills at 22 × 0.999.
    cash += 499 * 21.978 * 0.999
    # Bar 4: A's take-profit 110 fills at max(110, open 104.5) = 110, no slippage.
    cash += 100 * 110 * 0.999
    # Bar 5, B: equity = cash = 101,488.0706 → cap 195.17 → 195; risk 1,014.88 / 3 = 338 → 195 at 52.052.
    cash -= 195 * 52.052 * 1.001
    # Bar 6: B gaps to open 47 below its stop 49: fills at 47 × 0.999 = 46.953.
    cash += 195 * 46.953 * 0.999
    assert cash == pytest.approx(100_474.459625, abs=1e-6)

    o = r.orders
    assert list(o.columns) == list(ORDER_COLUMNS)
    got = list(zip(o["ts"].dt.day - 1, o["symbol"], o["side"], o["quantity"], o["reason"]))
    assert got == [
        (0, "A", "buy", 100, "entry"), (0, "C", "buy", 499, "entry"), (1, "B", "buy", 199, "entry"),
        (2, "B", "sell", 199, "stop_loss"), (3, "C", "sell", 499, "sell_signal"), (4, "A", "sell", 100, "take_profit"),
        (5, "B", "buy", 195, "entry"), (6, "B", "sell", 195, "stop_loss"),
    ]  # fmt: skip
    np.testing.assert_allclose(o["price"], [100.1, 20.02, 50.05, 47.952, 21.978, 110.0, 52.052, 46.953], rtol=1e-12)
    np.testing.assert_allclose(o["fee"], o["quantity"] * o["price"] * 0.001, rtol=1e-12)
    assert r.orders["fee"].sum() == pytest.approx(
        0.001 * (10010 + 499 * 20.02 + 199 * 50.05 + 199 * 47.952 + 499 * 21.978 + 11000 + 195 * 52.052 + 195 * 46.953),
        rel=1e-12,
    )
    assert r.equity.iloc[-1] == pytest.approx(cash, rel=1e-12) and r.cash.iloc[-1] == pytest.approx(cash, rel=1e-12)
    # Bar 0's closing equity: cash + A and C at their closes.
    eq0 = 100_000 - 100 * 100.1 * 1.001 - 499 * 20.02 * 1.001 + 100 * 100 + 499 * 20
    assert r.equity.iloc[0] == pytest.approx(eq0, rel=1e-12)
    assert r.positions_value.loc[IDX[0], "C"] == pytest.approx(499 * 20.0)

    t = r.trades
    assert list(t.columns) == list(TRADE_COLUMNS) and len(t) == 4
    a = t[t["symbol"] == "A"].iloc[0]
    assert a["exit_reason"] == "take_profit" and a["bars_held"] == 4
    assert a["pnl"] == pytest.approx(100 * 110 * 0.999 - 100 * 100.1 * 1.001, rel=1e-12)
    assert sorted(t["exit_reason"]) == ["sell_signal", "stop_loss", "stop_loss", "take_profit"]
    assert not r.halted.any() and r.freq == "1D"


def test_fees_and_slippage_per_exchange_and_min_notional():
    markets = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01, exchange="NSE" if s == "C" else "NYSE",
                         min_notional=12_000.0 if s == "A" else 0.0) for s in SYMS}  # fmt: skip
    r = run_backtest(
        hand_frames(), hand_panel(), RiskLimits(), COSTS, markets=markets, exchange_costs={"NSE": (0.002, 20.0)}
    )
    o = r.orders
    assert "A" not in set(o["symbol"])  # 100 × 100 is below A's 12,000 minimum
    c = o[o["symbol"] == "C"]
    np.testing.assert_allclose(c["price"], [20 * 1.002, 22 * 0.998], rtol=1e-12)
    np.testing.assert_allclose(c["fee"], c["quantity"] * c["price"] * 0.002, rtol=1e-12)
    # With A refused, C is sized on 100,000: cap 10,000 / 20 = 500 = risk 1,000 / 2.
    assert c["quantity"].tolist() == [500, 500]


def test_weak_signals_do_not_trade():
    r = run_backtest(hand_frames(), hand_panel(), RiskLimits(min_strength=0.96), COSTS, markets=MARKETS)
    assert r.orders.empty and r.trades.empty and r.equity.eq(100_000.0).all()


def _intraday(n_days=2, per_day=4):
    idx = pd.date_range("2024-03-04", periods=n_days * 24, freq="1h", tz="UTC", name="ts")
    idx = idx[(idx.hour >= 10) & (idx.hour < 10 + per_day)]
    return idx


def test_daily_loss_halts_new_entries_for_the_rest_of_the_day():
    idx = _intraday()  # 4 hourly bars on each of 2 days
    cols = pd.Index(["X", "Y"], name="symbol")
    x = np.array([100, 80, 80, 80, 80, 80, 80, 80.0])  # X falls 20% in the second hour
    y = np.full(8, 10.0)
    close = pd.DataFrame({"X": x, "Y": y}, index=idx, columns=cols)
    panel = Panel(open=close, high=close, low=close, close=close, volume=close * 0 + 1e6, exchange="T", timeframe="1h")
    side = pd.DataFrame(0.0, index=idx, columns=cols)
    side.iloc[0, 0] = 1  # X at bar 0
    side.iloc[[2, 3, 4, 5], 1] = 1  # Y: bars 2, 3 (day 1, halted), 4, 5 (day 2)
    strength = side.abs() * 0.9
    stop = pd.DataFrame(np.where(side > 0, close * 0.5, np.nan), index=idx, columns=cols)
    frames = {"side": side, "strength": strength, "confidence": strength, "stop": stop, "take_profit": close * 2}
    risk = RiskLimits(max_position_pct=0.5, risk_per_trade_pct=0.5)
    markets = {s: Market(s, s, "USD", lot_size=1.0) for s in cols}
    r = run_backtest(frames, panel, risk, CostModel(fee_rate=0.0, slippage_bps=0.0), markets=markets)
    # X: 50% of 100,000 → 500 at 100; at 80 equity is 90,000: −10% today → no entries until tomorrow.
    assert r.halted.tolist() == [False, False, True, True, False, False, False, False]
    buys = r.orders[r.orders["side"] == "buy"]
    # Day 2 starts from yesterday's closing equity 90,000 (P&L 0): Y gets 50% × 90,000 / 10 = 4,500;
    # on bar 5 the position already fills its cap, so that BUY adds nothing.
    assert [idx.get_loc(t) for t in buys["ts"]] == [0, 4] and buys["quantity"].tolist() == [500, 4500]
    assert r.equity.iloc[3] == pytest.approx(90_000.0)


def test_window_labels_reach_orders_and_trades():
    windows = pd.Series(["fold-0"] * 4 + ["fold-1"] * 4, index=IDX)
    r = run_backtest(hand_frames(), hand_panel(), RiskLimits(), COSTS, markets=MARKETS, windows=windows)
    o = r.orders
    got = dict(zip(zip(o["ts"].dt.day - 1, o["symbol"]), o["window"]))
    # An exit belongs to the fold whose signal set its stops: A's take-profit on bar 4 came from bar 0.
    assert (
        got[(4, "A")] == "fold-0"
        and got[(3, "C")] == "fold-0"
        and got[(5, "B")] == "fold-1"
        and got[(6, "B")] == "fold-1"
    )
    assert got[(2, "B")] == "fold-0"
    assert dict(zip(r.trades["symbol"] + r.trades["entry_ts"].dt.day.astype(str), r.trades["window"])) == {
        "A1": "fold-0",
        "C1": "fold-0",
        "B2": "fold-0",
        "B6": "fold-1",
    }
    assert r.meta["windows"] == ["fold-0", "fold-1"]


def test_open_positions_are_open_trades_and_bad_inputs_are_refused():
    f = hand_frames()
    f = {k: v.iloc[:3] for k, v in f.items()}
    r = run_backtest(f, hand_panel(), RiskLimits(), COSTS, markets=MARKETS)
    open_ = r.trades[r.trades["exit_reason"] == "open"]
    assert sorted(open_["symbol"]) == ["A", "C"] and open_["exit_ts"].isna().all()
    with pytest.raises(ValueError, match="empty"):
        run_backtest({k: v.iloc[:0] for k, v in f.items()}, hand_panel(), RiskLimits(), COSTS)
    with pytest.raises(ValueError, match="no trading rules"):
        run_backtest(f, hand_panel(), RiskLimits(), COSTS, markets={"A": MARKETS["A"]})


def test_vbt_freq():
    assert [vbt_freq(t) for t in ("1d", "1h", "4h", "15m", "1w", "30s")] == ["1D", "1h", "4h", "15min", "1W", "30s"]
    with pytest.raises(ValueError, match="timeframe"):
        vbt_freq("1M")
