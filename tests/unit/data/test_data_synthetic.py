"""The synthetic market: deterministic, valid bars, independent per symbol, honest about itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.data.sources.synthetic import SyntheticSource, last_complete_day
from workbench.errors import UnknownSymbolError

END = pd.Timestamp("2025-06-01", tz="UTC")


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = SyntheticSource(["SYN-A", "SYN-B"], seed=7, bars=300, end=END).candles()
    b = SyntheticSource(["SYN-A", "SYN-B"], seed=7, bars=300, end=END).candles()
    c = SyntheticSource(["SYN-A", "SYN-B"], seed=8, bars=300, end=END).candles()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"], c["close"])
    # symbols get their own paths
    closes = a.pivot(index="ts", columns="symbol", values="close")
    assert abs(np.corrcoef(np.diff(np.log(closes["SYN-A"])), np.diff(np.log(closes["SYN-B"])))[0, 1]) < 0.3


def test_bars_are_valid_and_on_the_grid():
    src = SyntheticSource(["X", "Y", "Z"], seed=42, bars=400, end=END)
    df = src.candles()
    assert (src.name, src.exchange) == ("synthetic", "synthetic")
    assert df.groupby("symbol").size().tolist() == [400, 400, 400]
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["low"] > 0).all() and (df["volume"] > 0).all()
    x = df[df["symbol"] == "X"]
    assert x["ts"].iloc[-1] == END - pd.Timedelta(days=1) and x["ts"].diff().dropna().eq(pd.Timedelta(days=1)).all()
    r = np.diff(np.log(x["close"].to_numpy()))
    assert 0.005 < r.std() < 0.05  # a daily-vol-like market, not flat, not wild


def test_fetch_is_independent_of_the_other_symbols_and_filters():
    wide = SyntheticSource(["A", "B", "C"], seed=3, bars=200, end=END)
    narrow = SyntheticSource(["B"], seed=3, bars=200, end=END)
    pd.testing.assert_frame_equal(wide.fetch("B", "1d"), narrow.fetch("B", "1d"))
    part = wide.fetch("B", "1d", since=END - pd.Timedelta(days=10), until=END - pd.Timedelta(days=3))
    assert len(part) == 8
    assert wide.fetch("B", "1d", since=END).empty
    hourly = wide.fetch("A", "1h")
    assert len(hourly) == 200 and hourly["ts"].iloc[-1] == END - pd.Timedelta(hours=1)
    with pytest.raises(UnknownSymbolError, match="SYN-Q"):
        wide.fetch("SYN-Q", "1d")


def test_global_numpy_rng_is_left_alone():
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    SyntheticSource(["A"], bars=50, end=END).candles()
    assert np.array_equal(np.random.rand(3), expected)


def test_default_end_is_today_midnight_utc():
    now = pd.Timestamp("2026-03-05 17:45", tz="UTC")
    assert last_complete_day(now) == pd.Timestamp("2026-03-05", tz="UTC")
    assert SyntheticSource(["A"], bars=10).end == last_complete_day()


def test_a_later_end_extends_the_same_market():
    today = SyntheticSource(["SYN-A"], seed=42, bars=300, end=END).candles()
    later = SyntheticSource(["SYN-A"], seed=42, bars=300, end=END + pd.Timedelta(days=25)).candles()
    both = today.merge(later, on=["ts", "symbol"], suffixes=("", "_later"))
    assert len(both) == 275
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(both[c], both[f"{c}_later"], rtol=1e-12)


def test_planted_momentum_is_a_known_lag1_autocorrelation_and_zero_keeps_pure_gbm():
    """The offline demo's structure: the same GBM shocks, filtered so log returns have lag-1
    autocorrelation ≈ ``structure``; 0 leaves the market exactly as before."""

    syms = [f"S{i}" for i in range(40)]
    end = pd.Timestamp("2026-11-30", tz="UTC")
    pure = SyntheticSource(syms, bars=1000, end=end).candles()
    pd.testing.assert_frame_equal(pure, SyntheticSource(syms, bars=1000, end=end, structure=0.0).candles())
    planted = SyntheticSource(syms, bars=1000, end=end, structure=0.2).candles()

    def lag1(c: pd.DataFrame) -> float:
        r = np.log(c.pivot(index="ts", columns="symbol", values="close")).diff().iloc[1:].to_numpy()
        return float(np.mean([np.corrcoef(r[:-1, j], r[1:, j])[0, 1] for j in range(r.shape[1])]))

    assert abs(lag1(pure)) < 0.03
    assert 0.15 < lag1(planted) < 0.25
    # still a pure function of its inputs, and a later pull extends the same path
    later = SyntheticSource(syms, bars=1001, end=end + pd.Timedelta(days=1), structure=0.2).candles()
    common = later[later["ts"] < end].reset_index(drop=True)
    pd.testing.assert_frame_equal(common, planted.reset_index(drop=True), check_exact=False, rtol=1e-9)
    with pytest.raises(ValueError, match="structure"):
        SyntheticSource(syms, structure=1.0)
