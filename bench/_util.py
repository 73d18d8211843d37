"""Shared helpers: where the real lists are, and timing with peak memory."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

SHARED = Path(os.environ.get("WORKBENCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def measure(fn, *args, **kw):
    """(result, seconds, peak traced MiB): timed on a plain run, memory on a second, traced run (tracing slows Python)."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    try:
        fn(*args, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, elapsed, peak / 2**20


def synthetic_panel(
    n: int, bars: int, seed: int = 0, symbol: str = "S{i:05d}", exchange: str = "BENCH", volume: float | None = 1e7
):
    """Random-walk OHLCV for ``n`` instruments × ``bars`` hourly bars (no network, no files): the one
    panel the benches share. ``volume=None`` draws lognormal volumes instead of a constant."""
    import numpy as np
    import pandas as pd

    from workbench.data.panel import Panel

    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC", name="ts")
    cols = pd.Index([symbol.format(i=i) for i in range(n)], name="symbol")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (bars, n)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, close.shape)))
    vol = rng.lognormal(10, 1, close.shape) if volume is None else np.full(close.shape, volume)
    f = {
        k: pd.DataFrame(v, index=idx, columns=cols)
        for k, v in dict(open=open_, high=high, low=low, close=close, volume=vol).items()
    }
    return Panel(**f, exchange=exchange, timeframe="1h")
