"""Backtests: a hand-checkable one-instrument trade, stops, the report, and a registered model end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.backtest import REPORT_KEYS, backtest_model, run_backtest, simulate, vbt_freq
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.models.registry import Registry
from workbench.models.training import train

IDX = pd.date_range("2024-01-01", periods=10, freq="1D", tz="UTC", name="ts")
CLOSE = np.array([98, 99, 100, 102, 104, 107, 110, 108, 109, 111.0])


def _frame(a) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(a, float).reshape(-1, 1), index=IDX, columns=pd.Index(["X"], name="symbol"))


def _panel(low=None) -> Panel:
    lo = CLOSE - 1 if low is None else low
    return Panel(open=_frame(CLOSE), high=_frame(CLOSE + 1), low=_frame(lo), close=_frame(CLOSE),
                 volume=_frame(np.full(10, 1e6)), exchange="T", timeframe="1d")


def _frames(stop_dist=50.0, entry=2, exit_=6, strength=0.9):
    side = np.zeros(10)
    side[entry] = 1
    side[exit_] = -1
    return {"side": _frame(side), "strength": _frame(np.full(10, strength)),
            "stop": _frame(CLOSE - stop_dist), "take_profit": _frame(CLOSE * 1.5)}


def test_one_round_trip_matches_hand_computation():
    rep = run_backtest(_frames(), _panel(), RiskLimits(), CostModel(fee_rate=0.001, slippage_bps=5.0))
    # 10% of 100,000 at the signal close 100 → 100 shares, bought at 100 × (1 + 5bp), 0.1% fee;
    # sold on the SELL bar at 110 × (1 − 5bp), 0.1% fee.
    buy = 100 * 100.05 * 1.001
    sell = 100 * 109.945 * 0.999
    final = 100_000 - buy + sell
    assert rep["final_value"] == pytest.approx(final, rel=1e-12)
    assert rep["total_return"] == pytest.approx(final / 100_000 - 1, rel=1e-9)
    assert rep["fees"] == pytest.approx(100 * 100.05 * 0.001 + 100 * 109.945 * 0.001, rel=1e-12)
    assert rep["trades"] == 1 and rep["win_rate"] == 1.0
    assert rep["benchmark_return"] == pytest.approx(111 / 98 - 1)
    assert rep["start"] == "2024-01-01T00:00:00+00:00" and rep["end"] == "2024-01-10T00:00:00+00:00"
    # Held from bar 2 to bar 5 inclusive (sold at bar 6's close): 4 of 10 bars at about 10% of equity.
    assert rep["exposure"] == pytest.approx(0.4 * 0.1, rel=0.05)
    assert rep["max_drawdown"] <= 0 and set(REPORT_KEYS) <= set(rep)


def test_stop_loss_exits_at_the_stop_price():
    low = CLOSE - 1
    low[4] = 94.0  # bar 4 trades through the stop at 95
    pf = simulate(_frames(stop_dist=5.0), _panel(low), RiskLimits(), CostModel(fee_rate=0.001, slippage_bps=0.0))
    orders = pf.orders.values
    assert orders["price"].tolist() == [100.0, 95.0]
    assert orders["idx"].tolist() == [2, 4]
    assert float(pf.value().iloc[-1]) == pytest.approx(100_000 - 100 * 100 * 1.001 + 100 * 95 * 0.999)


def test_weak_signals_do_not_trade():
    rep = run_backtest(_frames(strength=0.6), _panel(), RiskLimits(min_strength=0.7), CostModel())
    assert rep["trades"] == 0 and rep["total_return"] == 0.0 and rep["fees"] == 0.0
    assert np.isnan(rep["win_rate"])


def test_vbt_freq():
    assert [vbt_freq(t) for t in ("1d", "1h", "4h", "15m", "1w", "30s")] == ["1D", "1h", "4h", "15min", "1W", "30s"]
    with pytest.raises(ValueError, match="timeframe"):
        vbt_freq("1M")


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    from workbench.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp("bt-home"))
    settings.ensure_dirs()
    panel = random_walk_panel(n_bars=500, symbols=("SYN-A", "SYN-B", "SYN-C", "SYN-D"), late_start={"SYN-D": 80})
    result = train(panel, params={"n_estimators": 40})
    ref = Registry(settings).register(result)
    return settings, panel, result, ref


def test_backtest_model_trades_oos_and_logs_report(trained_home):
    settings, panel, result, ref = trained_home
    rep = backtest_model(settings, "champion", panel=panel)
    assert set(REPORT_KEYS) <= set(rep) and rep["model"] == f"{ref.name}/{ref.version}"
    assert rep["start"] == result.split["test_start"] and rep["end"] == panel.index[-1].isoformat()
    assert rep["trades"] > 0 and rep["fees"] > 0
    assert -0.5 < rep["total_return"] < 0.5 and -1 <= rep["max_drawdown"] <= 0
    assert 0 < rep["exposure"] <= 1.0
    run = Registry(settings).client.get_run(ref.run_id)
    assert run.data.metrics["backtest_total_return"] == pytest.approx(rep["total_return"])
    assert run.data.tags["backtest_start"] == rep["start"]
    # A custom window.
    rep2 = backtest_model(settings, "champion", panel=panel, start="2022-01-01", end="2022-03-31")
    assert rep2["start"] == "2022-01-01T00:00:00+00:00" and rep2["end"] == "2022-03-31T00:00:00+00:00"
    with pytest.raises(ValueError, match="no bars on or after"):
        backtest_model(settings, "champion", panel=panel, start="2030-01-01")
