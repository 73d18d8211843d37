"""The backtest at scale: 500 instruments × 5 years of daily bars, signal frames to a summarized
report with the vectorbt engine, beside the same strategy (the live rules) as a plain Python event
loop, and beside vectorbt's own ``from_signals`` replaying the very orders our engine placed (the
floor: no rules, just booking) — ratios from one run each.

The cold start is timed in fresh processes: the numba kernels compiled into an empty cache, then
loaded from it (what a user sees on their first ``workbench backtest`` after ``workbench init``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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
    panel = Panel(
        open=mk(o), high=mk(h), low=mk(lo), close=mk(c), volume=mk(np.full(c.shape, 1e6)), exchange="B", timeframe="1d"
    )
    side = rng.choice([-1.0, 0.0, 1.0], size=c.shape, p=[0.1, 0.8, 0.1])
    atr = c * 0.02
    frames = {
        "side": mk(side), "strength": mk(rng.uniform(0.5, 1.0, c.shape)), "confidence": mk(np.full(c.shape, 0.6)),
        "stop": mk(np.where(side != 0, c - side * 2 * atr, np.nan)), "take_profit": mk(np.where(side != 0, c + side * 3 * atr, np.nan)),
    }  # fmt: skip
    markets = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in cols}
    return panel, frames, markets


def _from_signals_floor(r, panel: Panel, costs: CostModel, cash: float, repeat: int = 3) -> tuple[float, int]:
    """vectorbt ``from_signals`` on our engine's orders (entry/exit cells, sizes, prices) and its
    ``value()``, warm, best of ``repeat``; (seconds, orders). It books given orders: no rules decide them."""
    import vectorbt as vbt

    idx, cols = panel.index, panel.close.columns
    o = r.orders
    ii, jj = idx.get_indexer(o["ts"]), cols.get_indexer(o["symbol"])
    buy = (o["side"] == "buy").to_numpy()
    shape = (len(idx), len(cols))
    entries, exits = np.zeros(shape, bool), np.zeros(shape, bool)
    entries[ii[buy], jj[buy]] = True
    exits[ii[~buy], jj[~buy]] = True
    size, price = np.full(shape, np.inf), panel.close.to_numpy(dtype=float).copy()
    size[ii[buy], jj[buy]] = o["quantity"].to_numpy()[buy]
    price[ii, jj] = o["price"].to_numpy()
    kw = dict(size=size, size_type="amount", price=price, fees=costs.fee_rate, init_cash=cash, cash_sharing=True,
              group_by=True, accumulate=True, call_seq="auto", freq="1D")  # fmt: skip
    close = panel.close
    vbt.Portfolio.from_signals(close, entries, exits, **kw).value()  # compile / load

    def once():
        pf = vbt.Portfolio.from_signals(close, entries, exits, **kw)
        pf.value()
        return pf

    return _best(once, repeat), len(once().orders.values)


def _best(fn, repeat: int) -> float:
    """The fastest of ``repeat`` warm calls (the least disturbed by other processes on a shared machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


_FRESH = """
import time
t0 = time.perf_counter()
from workbench.warmup import compile_kernels, warm_backtest
import workbench.backtest.kernel, workbench.features.kernels, workbench.backtest.report  # noqa: E401
t1 = time.perf_counter()
backtest = warm_backtest()
secs = compile_kernels()
stats = workbench.backtest.kernel._simulate_nb.stats
print(f"{t1 - t0:.3f} {backtest:.3f} {secs:.3f} {sum(stats.cache_hits.values())}")
"""


def _fresh(cache: str) -> tuple[float, float, float, int]:
    """In a fresh process: seconds of the imports, of the first backtest + summary (tiny panel), of
    every other kernel's first use, and the backtest kernel's cache hits."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", _FRESH], env=env, capture_output=True, text=True, check=True).stdout
    imports, backtest, rest, hits = out.split()[-4:]
    return float(imports), float(backtest), float(rest), int(hits)


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
    print(
        f"   {N_SYM} instruments × {N_BARS} daily bars, {len(r.orders):,} fills ({len(orders):,} in the plain loop), "
        f"equity agrees to {agree:.1e} relative{'; report summarized' if summarize else ''}"
    )
    print(
        f"   engine: first call {first:.2f} s (numba compile or cache load), warm {warm:.2f} s; "
        f"plain Python event loop {plain:.2f} s → {plain / warm:.0f}× faster warm"
    )
    bare = _best(lambda: run_backtest(frames, panel, risk, costs, 1_000_000.0, markets=markets), 3)
    with_summary = _best(engine, 3)
    floor, n = _from_signals_floor(r, panel, costs, 1_000_000.0)
    print(
        f"   anchor: vectorbt from_signals + value() on the same {n:,} orders (booking given orders, no rules; "
        f"best of 3, warm): {floor:.3f} s"
    )
    print(
        f"   run_backtest (live rules, orders, trades, equity, cash, values; best of 3): {bare:.3f} s → "
        f"{bare / floor:.2f}× the floor (goal ≤ 1.2×); with the summary {with_summary:.3f} s → {with_summary / floor:.2f}×"
    )
    with tempfile.TemporaryDirectory() as cache:
        cold_imp, cold_bt, cold_rest, _ = _fresh(cache)
        warm_imp, warm_bt, warm_rest, hits = _fresh(cache)
    print(
        f"   fresh process, first backtest + summary on a tiny panel (goal < 3 s): empty numba cache {cold_bt:.1f} s; "
        f"cache filled (after `workbench init`) {warm_bt:.2f} s (backtest kernel cache hits {hits}); "
        f"then features v1+v2 + incremental: {cold_rest:.1f} s against {warm_rest:.2f} s; imports {cold_imp:.1f} s / {warm_imp:.1f} s"
    )


if __name__ == "__main__":
    main()
