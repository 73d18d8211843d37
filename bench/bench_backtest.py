"""The backtest at scale: 500 instruments × 5 years of daily bars, signal frames to a summarized
report with the vectorbt engine, beside the same strategy (the live rules) as a plain Python event
loop — the figure is the ratio, from one run each. Numba's first call (compile or cache load) is
timed apart from a warm call."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.unit.backtest holds the plain loop

from workbench.backtest import run_backtest
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.market import Market

N_SYM, N_BARS = 500, 5 * 252


def synthetic(seed: int = 5):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2019-01-01", periods=N_BARS, tz="UTC", name="ts")
    cols = pd.Index([f"S{i:03d}" for i in range(N_SYM)], name="symbol")
    c = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, (N_BARS, N_SYM)), axis=0))
    o = c * np.exp(rng.normal(0, 0.005, c.shape))
    h = np.maximum(c, o) * (1 + rng.uniform(0, 0.02, c.shape))
    lo = np.minimum(c, o) * (1 - rng.uniform(0, 0.02, c.shape))
    mk = lambda a: pd.DataFrame(a, index=idx, columns=cols)
    panel = Panel(open=mk(o), high=mk(h), low=mk(lo), close=mk(c), volume=mk(np.full(c.shape, 1e6)), exchange="B", timeframe="1d")
    side = rng.choice([-1.0, 0.0, 1.0], size=c.shape, p=[0.1, 0.8, 0.1])
    atr = c * 0.02
    frames = {
        "side": mk(side), "strength": mk(rng.uniform(0.5, 1.0, c.shape)), "confidence": mk(np.full(c.shape, 0.6)),
        "stop": mk(np.where(side != 0, c - side * 2 * atr, np.nan)), "take_profit": mk(np.where(side != 0, c + side * 3 * atr, np.nan)),
    }  # fmt: skip
    markets = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in cols}
    return panel, frames, markets


def main() -> None:
    from tests.unit.backtest.test_engine_random import plain_loop

    panel, frames, markets = synthetic()
    risk, costs = RiskLimits(max_position_pct=0.01, risk_per_trade_pct=0.002), CostModel()
    try:
        from workbench.backtest.report import summarize
    except ImportError:  # the report module may not exist yet
        summarize = None

    def engine():
        r = run_backtest(frames, panel, risk, costs, 1_000_000.0, markets=markets)
        return r, (summarize(r, panel) if summarize is not None else None)

    t0 = time.perf_counter()
    engine()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    (r, _rep) = engine()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    eq, orders = plain_loop(panel, frames, markets, risk, costs, 1_000_000.0, {})
    plain = time.perf_counter() - t0
    agree = float(np.max(np.abs(r.equity.to_numpy() / eq - 1)))
    print(f"   {N_SYM} instruments × {N_BARS} daily bars, {len(r.orders):,} fills ({len(orders):,} in the plain loop), "
          f"equity agrees to {agree:.1e} relative{'; report summarized' if summarize else ''}")
    print(f"   vectorbt engine: first call {first:.2f} s (numba compile or cache load), warm {warm:.2f} s; "
          f"plain Python event loop {plain:.2f} s → {plain / warm:.0f}× faster warm")


if __name__ == "__main__":
    main()
