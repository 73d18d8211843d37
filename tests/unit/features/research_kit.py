"""Panels for research-side tests: real S&P 500 daily bars (a tiny local reader, independent of the
data layer) and a seeded synthetic random walk for tests that must run without shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.panel import Panel

SP500_DIR = Path("us_equities") / "sp500_5yr_kaggle_cnuge"
TEN = ("AAPL", "MSFT", "XOM", "JPM", "JNJ", "PG", "KO", "GE", "INTC", "WMT")


def read_sp500(shared_data: Path, symbols=TEN) -> Panel:
    """Daily bars from the Kaggle per-ticker CSVs; ts = the date at 00:00 UTC."""
    frames = []
    for sym in symbols:
        df = pd.read_csv(shared_data / SP500_DIR / f"{sym}_data.csv")
        df = df.rename(columns={"date": "ts"}).drop(columns=["Name"])
        df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
        df["symbol"] = sym
        frames.append(df)
    return Panel.from_long(pd.concat(frames, ignore_index=True), exchange="NYSE", timeframe="1d")


def random_walk_panel(
    n_bars: int = 400,
    symbols=("SYN-A", "SYN-B", "SYN-C"),
    seed: int = 7,
    late_start: dict[str, int] | None = None,
    freq: str = "1D",
    early_end: dict[str, int] | None = None,
) -> Panel:
    """Geometric random walk OHLCV; ``late_start`` blanks the first k bars of some symbols, ``early_end``
    every bar from bar k on (a delisting, a vendor file that stops)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2021-01-01", periods=n_bars, freq=freq, tz="UTC", name="ts")
    cols = pd.Index(list(symbols), name="symbol")
    rets = rng.normal(0.0003, 0.02, size=(n_bars, len(symbols)))
    close = 100 * np.exp(np.cumsum(rets, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, close.shape)))
    vol = rng.integers(1_000, 10_000, close.shape).astype(float)
    fields = {}
    for name, arr in dict(open=open_, high=high, low=low, close=close, volume=vol).items():
        arr = arr.copy()
        for sym, k in (late_start or {}).items():
            arr[:k, list(symbols).index(sym)] = np.nan
        for sym, k in (early_end or {}).items():
            arr[k:, list(symbols).index(sym)] = np.nan
        fields[name] = pd.DataFrame(arr, index=idx, columns=cols)
    return Panel(**fields, exchange="SYNTH", timeframe="1d")


def signal_panel(n_bars: int = 500, n_symbols: int = 100, strength: float = 0.0, seed: int = 11) -> Panel:
    """Daily panel whose next return reverses a share ``strength`` of today's cross-sectionally
    demeaned return (0: a pure random walk); big enough for tight bounds on daily ICs and AUCs."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2019-01-01", periods=n_bars, freq="1D", tz="UTC", name="ts")
    cols = pd.Index([f"S{i:03d}" for i in range(n_symbols)], name="symbol")
    noise = rng.normal(0.0002, 0.02, size=(n_bars, n_symbols))
    rets = noise.copy()
    for t in range(1, n_bars):
        prev = rets[t - 1] - rets[t - 1].mean()
        rets[t] = noise[t] - strength * prev
    close = 50 * np.exp(np.cumsum(rets, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, close.shape)))
    vol = rng.integers(1_000, 10_000, close.shape).astype(float)
    fields = {
        n: pd.DataFrame(a, index=idx, columns=cols)
        for n, a in dict(open=open_, high=high, low=low, close=close, volume=vol).items()
    }
    return Panel(**fields, exchange="SYNTH", timeframe="1d")
