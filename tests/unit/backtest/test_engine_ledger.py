"""The kernel writes its own ledger (cash, equity, each symbol's value, the valuation price) and the
trades come from vectorbt's position records without a Portfolio. Both must equal what vectorbt's
``Portfolio`` derives from the same fills, so the figures a user reads and vectorbt's own plots and
stats (``BacktestResult.portfolio``, built on first use) never disagree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.backtest.test_engine_random import random_case
from workbench.backtest import run_backtest
from workbench.config import CostModel, RiskLimits


def test_the_kernels_ledger_and_trades_equal_vectorbts_portfolio_over_the_same_fills():
    panel, frames, markets = random_case(seed=13)
    risk, costs = RiskLimits(max_position_pct=0.045), CostModel(fee_rate=0.001, slippage_bps=5.0)
    r = run_backtest(frames, panel, risk, costs, 100_000.0, markets=markets)
    assert "portfolio" not in r.__dict__  # not built by the backtest itself
    pf = r.portfolio
    assert r.portfolio is pf  # built once
    assert len(pf.orders.values) == len(r.orders) > 200
    np.testing.assert_allclose(r.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(r.cash.to_numpy(), pf.cash().to_numpy(), rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(
        r.positions_value.to_numpy(), pf.asset_value(group_by=False).to_numpy(), rtol=1e-12, atol=1e-9
    )
    assert (r.positions_value.columns == panel.close.columns).all() and r.equity.index.equals(panel.index)
    # The trades: vectorbt's positions, one row each, open ones valued at the last known close.
    p = pf.positions.records_readable
    t = r.trades
    assert len(t) == len(p) and (t["exit_ts"].isna() == (p["Status"] == "Open").to_numpy()).all()
    assert t["exit_ts"].isna().any() and t["exit_ts"].notna().any()
    np.testing.assert_allclose(t["pnl"].to_numpy(), p["PnL"].to_numpy(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(t["exit_price"].to_numpy(), p["Avg Exit Price"].to_numpy(), rtol=1e-12)
    assert list(t["symbol"]) == list(p["Column"])
    assert (t.loc[t["exit_ts"].isna(), "exit_reason"] == "open").all()
    last_mark = panel.close.ffill().iloc[-1]
    still = t[t["exit_ts"].isna()]
    np.testing.assert_allclose(still["exit_price"].to_numpy(), last_mark[still["symbol"]].to_numpy(), rtol=1e-12)
    assert isinstance(t["exit_ts"].dtype, pd.DatetimeTZDtype)
