"""The report's numbers on a hand-made result (literal expected values), buy & hold by hand, the
comparison table and verdict, and the self-contained HTML file."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from workbench.backtest.report import (
    METRICS,
    buy_and_hold,
    comparison_table,
    drawdown_figure,
    equity_figure,
    format_table,
    format_windows,
    periods_per_year,
    summarize,
    trade_pnl_figure,
    trades_on_price_figure,
    verdict,
    volume_breaches,
    window_table,
    write_report,
)  # fmt: skip
from workbench.backtest.result import ORDER_COLUMNS, TRADE_COLUMNS, BacktestResult
from workbench.data.panel import Panel

IDX = pd.date_range("2024-01-01", periods=6, freq="1D", tz="UTC", name="ts")
EQUITY = [1000.0, 1010.0, 990.0, 1030.0, 1020.0, 1050.0]
SYMS = pd.Index(["A", "B", "C"], name="symbol")


def _ts(day: int) -> pd.Timestamp:
    return pd.Timestamp(f"2024-01-{day:02d}", tz="UTC")


def hand_result() -> BacktestResult:
    """Six daily bars from 1,000 of cash; three closed trades (+30, -10, +20; held 2, 1, 3 days) and one open."""
    orders = pd.DataFrame([
        (_ts(2), "A", "buy", 2, 100.0, 0.20, "entry", "fold 0"),
        (_ts(3), "B", "buy", 1, 50.0, 0.05, "entry", "fold 0"),
        (_ts(3), "A", "buy", 1, 100.0, 0.10, "entry", "fold 0"),
        (_ts(4), "A", "sell", 2, 115.0, 0.23, "take_profit", "fold 0"),
        (_ts(4), "B", "sell", 1, 40.0, 0.04, "stop_loss", "fold 0"),
        (_ts(6), "A", "sell", 1, 120.0, 0.12, "sell_signal", "fold 1"),
        (_ts(6), "C", "buy", 1, 10.0, 0.01, "entry", "fold 1"),
    ], columns=list(ORDER_COLUMNS))  # fmt: skip
    trades = pd.DataFrame([
        ("A", _ts(2), _ts(4), 2, 100.0, 115.0, 30.0, 0.15, 0.43, "take_profit", "fold 0", 2),
        ("B", _ts(3), _ts(4), 1, 50.0, 40.0, -10.0, -0.2, 0.09, "stop_loss", "fold 0", 1),
        ("A", _ts(3), _ts(6), 1, 100.0, 120.0, 20.0, 0.2, 0.22, "sell_signal", "fold 1", 3),
        ("C", _ts(6), pd.NaT, 1, 10.0, np.nan, 0.0, 0.0, 0.01, "", "fold 1", 0),
    ], columns=list(TRADE_COLUMNS))  # fmt: skip
    positions = pd.DataFrame(
        {"A": [0, 200, 200, 100, 100, 0], "B": [0, 0, 50, 0, 0, 0], "C": [0, 0, 0, 0, 0, 10]}, index=IDX, dtype=float
    ).rename_axis(columns="symbol")
    equity = pd.Series(EQUITY, index=IDX, name="equity")
    return BacktestResult(
        equity=equity,
        cash=equity - positions.sum(axis=1),
        positions_value=positions,
        orders=orders,
        trades=trades,
        halted=pd.Series(False, index=IDX),
        init_cash=1000.0,
        freq="1D",
    )


def test_metrics_of_a_hand_made_curve():
    m = summarize(hand_result(), periods_per_year=252)
    # returns 0, +1%, -1.98%, +4.04%, -0.97%, +2.94% (the first against the starting cash)
    assert m["total_return"] == pytest.approx(0.05, rel=1e-12)
    assert m["cagr"] == pytest.approx(1.05**42 - 1, rel=1e-12)  # six bars = 6/252 years
    assert m["cagr"] == pytest.approx(6.761587555117436, rel=1e-12)
    assert m["volatility"] == pytest.approx(0.36629541536813925, rel=1e-12)
    assert m["sharpe"] == pytest.approx(5.768059242251804, rel=1e-12)
    assert m["sortino"] == pytest.approx(14.782557739291192, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(990 / 1010 - 1, rel=1e-12)  # 1010 → 990
    assert m["calmar"] == pytest.approx(341.46017153343024, rel=1e-12)
    assert m["win_rate"] == pytest.approx(2 / 3)  # closed trades only; the open C trade is not judged
    assert m["profit_factor"] == pytest.approx(50 / 10)
    assert m["trades"] == 4 and m["closed_trades"] == 3
    assert m["avg_holding_days"] == pytest.approx(2.0) and m["avg_holding_bars"] == pytest.approx(2.0)
    assert m["exposure"] == pytest.approx((200 / 1010 + 250 / 990 + 100 / 1030 + 100 / 1020 + 10 / 1050) / 6, rel=1e-12)
    assert m["time_in_market"] == pytest.approx(5 / 6)
    # traded notional 750 over average equity 6100/6, per year (× 252/6)
    assert m["turnover"] == pytest.approx(750 / (6100 / 6) * 42, rel=1e-12)
    assert m["fees"] == pytest.approx(0.75, rel=1e-12)
    assert m["final_value"] == 1050.0 and m["bars"] == 6
    assert m["start"] == "2024-01-01T00:00:00+00:00" and m["end"] == "2024-01-06T00:00:00+00:00"


def test_metrics_agree_with_vectorbt_returns_accessor():
    import vectorbt as vbt  # noqa: F401  (registers the .vbt accessor)

    m = summarize(hand_result(), periods_per_year=252)
    eq = pd.Series(EQUITY, index=IDX)
    acc = pd.Series(np.r_[0.0, eq.pct_change().to_numpy()[1:]], index=IDX).vbt.returns(freq="1D", year_freq="252D")
    assert m["sharpe"] == pytest.approx(acc.sharpe_ratio(), rel=1e-9)
    assert m["sortino"] == pytest.approx(acc.sortino_ratio(), rel=1e-9)
    assert m["volatility"] == pytest.approx(acc.annualized_volatility(), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(acc.max_drawdown(), rel=1e-9)
    assert m["calmar"] == pytest.approx(acc.calmar_ratio(), rel=1e-9)


def test_periods_per_year_from_the_bars_spacing():
    crypto = pd.date_range("2023-01-01", "2024-01-01", freq="1D", tz="UTC")
    weekdays = pd.bdate_range("2023-01-02", "2024-01-02", tz="UTC")
    assert periods_per_year(crypto) == pytest.approx(365.25, rel=1e-9)  # 365 steps in 365 days
    assert periods_per_year(weekdays) == pytest.approx(261, abs=1)
    m = summarize(hand_result())  # inferred: daily bars → 365.25 per year
    assert m["periods_per_year"] == pytest.approx(365.25)


def test_no_trades_and_no_losses_edge_cases():
    flat = hand_result()
    empty = BacktestResult(
        equity=pd.Series(1000.0, index=IDX),
        cash=pd.Series(1000.0, index=IDX),
        positions_value=flat.positions_value * 0,
        orders=flat.orders.iloc[:0],
        trades=flat.trades.iloc[:0],
        halted=flat.halted,
        init_cash=1000.0,
        freq="1D",
    )
    m = summarize(empty, periods_per_year=252)
    assert m["total_return"] == 0.0 and m["trades"] == 0 and m["fees"] == 0.0 and m["max_drawdown"] == 0.0
    assert np.isnan(m["win_rate"]) and np.isnan(m["profit_factor"]) and np.isnan(m["sharpe"]) and np.isnan(m["calmar"])
    winners = BacktestResult(**{**flat.__dict__, "trades": flat.trades.iloc[[0, 2]]})
    assert summarize(winners, periods_per_year=252)["profit_factor"] == float("inf")


def _bh_panel() -> Panel:
    idx = IDX[:4]
    close = pd.DataFrame({"X": [100, 110, 120, 130], "Y": [np.nan, 50, 40, 60]}, index=idx, dtype=float)
    close.columns.name = "symbol"
    return Panel(
        open=close, high=close, low=close, close=close, volume=close.fillna(0) + 1, exchange="T", timeframe="1d"
    )


def test_buy_and_hold_equal_weight_by_hand():
    held = buy_and_hold(_bh_panel(), 1000.0, fee_rate=0.001)  # valued at the last close, as the engine does
    bh = buy_and_hold(_bh_panel(), 1000.0, fee_rate=0.001, close_at_end=True)
    q_x, q_y = 500 / (100 * 1.001), 500 / (50 * 1.001)  # half the cash each, fee included; Y lists a bar later
    assert bh.orders["quantity"].tolist() == pytest.approx([q_x, q_y, q_x, q_y])
    assert bh.orders["ts"].tolist() == [IDX[0], IDX[1], IDX[3], IDX[3]]
    assert bh.equity.tolist() == pytest.approx(
        [500 + q_x * 100, q_x * 110 + q_y * 50, q_x * 120 + q_y * 40, (q_x * 130 + q_y * 60) * 0.999], rel=1e-12
    )
    assert bh.equity.iloc[-1] == pytest.approx(1247.5024975024978, rel=1e-12)
    assert bh.orders["fee"].sum() == pytest.approx(2.2477522477522482, rel=1e-12)
    assert bh.trades["pnl"].sum() == pytest.approx(bh.equity.iloc[-1] - 1000, rel=1e-12)
    assert bh.trades["bars_held"].tolist() == [3, 2]
    assert held.equity.iloc[-1] == pytest.approx(q_x * 130 + q_y * 60, rel=1e-12) and len(held.orders) == 2
    assert held.trades["exit_ts"].isna().all() and held.orders["fee"].sum() == pytest.approx(
        1000 * 0.001 / 1.001, rel=1e-12
    )
    assert held.equity.iloc[:-1].tolist() == pytest.approx(bh.equity.iloc[:-1].tolist(), rel=1e-12)
    m = summarize(bh, periods_per_year=252)
    assert m["trades"] == 2 and m["win_rate"] == 1.0 and m["total_return"] == pytest.approx(0.2475024975024978)


def _table() -> pd.DataFrame:
    bh = buy_and_hold(_bh_panel(), 1000.0)
    return comparison_table(
        {"strategy": hand_result(), "buy & hold": bh, "baseline model": {"total_return": 0.01}}, periods_per_year=252
    )


def test_comparison_table_and_verdict():
    table = _table()
    assert list(table.index) == list(METRICS) and list(table.columns) == ["strategy", "buy & hold", "baseline model"]
    assert table.at["total_return", "strategy"] == pytest.approx(0.05)
    assert table.at["total_return", "buy & hold"] == pytest.approx(0.25)  # no costs: (130/100 + 60/50) / 2 - 1
    assert np.isnan(table.at["sharpe", "baseline model"])
    sentence, beats = verdict(table)
    assert beats == {"buy & hold": False, "baseline model": True}
    assert "did NOT beat buy & hold (25.00%)" in sentence and "beat baseline model (1.00%)" in sentence
    text = format_table(table)
    assert text.at["total return", "strategy"] == "5.00%" and text.at["trades", "strategy"] == "4"
    assert text.at["profit factor", "strategy"] == "5.00" and text.at["Sharpe", "baseline model"] == "–"


def test_write_report_embeds_table_and_images(tmp_path):
    r, panel = hand_result(), _bh_panel()
    prices = Panel(
        **{f: pd.DataFrame(100.0, index=IDX, columns=SYMS) for f in ("open", "high", "low", "close", "volume")},
        exchange="T",
        timeframe="1d",
    )
    results = {"strategy": r, "buy & hold": buy_and_hold(panel, 1000.0)}
    windows = pd.DataFrame({"fold": [0, 1], "start": [IDX[0], IDX[3]], "end": [IDX[2], IDX[5]], "bars": [3, 3]})
    figures = {
        "equity": equity_figure(results, windows),
        "drawdown": drawdown_figure(results),
        "trade_pnl": trade_pnl_figure(r),
        "fills": trades_on_price_figure(r, prices),
    }
    paths = write_report(
        tmp_path / "rep", _table(), figures, title="T report", notes=["a note"], trades=r.trades, windows=windows
    )
    assert set(paths) == {"html", "table", "trades", "equity", "drawdown", "trade_pnl", "fills"}
    page = paths["html"].read_text()
    assert "<h1>T report</h1>" in page and "a note" in page
    assert "total return" in page and "5.00%" in page and "Sharpe" in page and "profit factor" in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 4
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["equity"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(paths["table"], index_col=0).at["trades", "strategy"] == 4
    assert len(pd.read_csv(paths["trades"])) == 4


def test_window_table_by_hand():
    """fold 0 = days 1–4, fold 1 = days 5–6 of the hand curve 1000 → 1010, 990, 1030, 1020, 1050."""
    r = hand_result()
    flat = BacktestResult(
        equity=pd.Series([1000.0, 1000, 1000, 1100, 1100, 990], index=IDX),
        cash=r.cash,
        positions_value=r.positions_value * 0,
        orders=r.orders.iloc[:0],
        trades=r.trades.iloc[:0],
        halted=r.halted,
        init_cash=1000.0,
        freq="1D",
    )
    windows = pd.DataFrame({"fold": [0, 1, 2], "start": [IDX[0], IDX[4], _ts(20)], "end": [IDX[3], IDX[5], _ts(21)]})
    t = window_table({"strategy": r, "buy & hold": flat}, windows)
    assert t["strategy return"].iloc[0] == pytest.approx(1030 / 1000 - 1, rel=1e-12)  # from the starting cash
    assert t["strategy return"].iloc[1] == pytest.approx(1050 / 1030 - 1, rel=1e-12)  # from the bar before
    assert t["buy & hold return"].iloc[:2].tolist() == pytest.approx([0.10, 990 / 1100 - 1], rel=1e-12)
    assert np.isnan(t["strategy return"].iloc[2])  # a window with no bars traded
    assert t["trades"].tolist() == [2, 2, 0]  # the open C trade counts in fold 1
    assert t["win rate"].iloc[:2].tolist() == [0.5, 1.0] and np.isnan(t["win rate"].iloc[2])
    assert t["P&L"].tolist() == [20.0, 20.0, 0.0]  # +30 −10; +20 (the open trade is not judged)
    shown = format_windows(t)
    assert shown["strategy return"].tolist() == ["3.00%", "1.94%", "–"]
    assert shown["start"].tolist() == ["2024-01-01", "2024-01-05", "2024-01-20"]


def test_volume_breaches_sum_a_bars_fills_per_symbol():
    """Bar volumes: X 101, 111, 121, 131; Y 1, 51, 41, 61 (the hand panel's close + 1, Y's missing bar 0 + 1)."""
    panel = _bh_panel()
    orders = pd.DataFrame([
        (IDX[0], "X", "buy", 10.0, 100.0, 0.0, "entry", ""),  # 10 / 101 = 9.9%: within 10%
        (IDX[1], "X", "buy", 8.0, 110.0, 0.0, "entry", ""),  # 8 + 4 = 12 of 111 = 10.8% (two fills, one bar)
        (IDX[1], "X", "sell", 4.0, 110.0, 0.0, "stop_loss", ""),
        (IDX[2], "Y", "buy", 5.0, 40.0, 0.0, "entry", ""),  # 5 / 41 = 12.2%
        (IDX[3], "Y", "sell", 6.0, 60.0, 0.0, "sell_signal", ""),  # 6 / 61 = 9.8%
    ], columns=list(ORDER_COLUMNS))  # fmt: skip
    b = volume_breaches(orders, panel, 0.10)
    assert list(zip(b["ts"], b["symbol"], b["quantity"])) == [(IDX[1], "X", 12.0), (IDX[2], "Y", 5.0)]
    assert b["share"].tolist() == pytest.approx([12 / 111, 5 / 41])
    assert volume_breaches(orders, panel, 0.5).empty and volume_breaches(orders, panel, None).empty
    assert volume_breaches(orders.iloc[:0], panel, 0.1).empty
