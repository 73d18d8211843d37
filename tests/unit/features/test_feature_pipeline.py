"""Feature sets: shape, scale-freedom, warm-up, and no look-ahead (truncation equals full history)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.features import FEATURE_SETS, build_features, feature_atr, get_feature_set
from workbench.features import indicators as ind


def test_long_format_and_columns(sp500_panel):
    X = build_features(sp500_panel, "v1")
    fs = FEATURE_SETS["v1"]
    assert tuple(X.columns) == fs.columns
    assert X.index.names == ["ts", "symbol"]
    assert len(X) == int(sp500_panel.close.notna().sum().sum()) == 12590
    assert X.index.is_monotonic_increasing
    complete = X.dropna()
    # Every row after the warm-up is complete; MACD's signal line is the last to be defined (bar 33).
    first_complete = complete.index.get_level_values("ts").min()
    assert first_complete == sp500_panel.index[33]
    assert np.isfinite(complete.to_numpy()).all()
    assert complete["rsi_14"].between(0, 1).all()
    assert complete["atr_14"].gt(0).all() and complete["vol_20"].gt(0).all()


def test_features_are_scale_free(rw_panel):
    scaled = rw_panel._map(lambda f: f * 1000.0)
    volume_back = type(rw_panel)(
        **{f: getattr(scaled, f) for f in ("open", "high", "low", "close")},
        volume=rw_panel.volume,
        exchange=rw_panel.exchange,
        timeframe=rw_panel.timeframe,
    )
    a, b = build_features(rw_panel), build_features(volume_back)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_no_look_ahead_truncation_equals_full_history(sp500_panel, seed):
    full = build_features(sp500_panel)
    rng = np.random.default_rng(seed)
    for t in rng.choice(np.arange(40, len(sp500_panel.index) - 1), size=4, replace=False):
        ts = sp500_panel.index[t]
        cut = build_features(sp500_panel.upto(ts))
        pd.testing.assert_frame_equal(cut.xs(ts, level="ts"), full.xs(ts, level="ts"), rtol=1e-12, atol=1e-14)
        # And the whole truncated history equals the full one up to t.
        pd.testing.assert_frame_equal(cut, full.loc[:ts], rtol=1e-12, atol=1e-14)


def test_short_window_matches_full_history_after_warmup(sp500_panel):
    """What the live loop relies on: `warmup` bars of history reproduce full-history features."""
    fs = get_feature_set("v1")
    full = build_features(sp500_panel).xs(sp500_panel.index[-1], level="ts")
    live = build_features(sp500_panel.tail(fs.warmup)).xs(sp500_panel.index[-1], level="ts")
    assert float((live - full).abs().max().max()) < 1e-3


def test_late_listing_symbol(rw_panel):
    X = build_features(rw_panel)
    c = X.xs("SYN-C", level="symbol")
    assert c.index.min() == rw_panel.index[57]  # rows only where the symbol has a close
    assert c.dropna().index.min() == rw_panel.index[57 + 33]  # its own warm-up
    a = X.xs("SYN-A", level="symbol").dropna()
    assert a.index.min() == rw_panel.index[33]


def test_unknown_feature_set_lists_known():
    with pytest.raises(ValueError, match=r"unknown feature set 'v9'.*\['v1', 'v2'\]"):
        build_features(None, "v9")  # type: ignore[arg-type]


def test_feature_atr_is_wide_price_units(rw_panel):
    a = feature_atr(rw_panel, 14)
    assert a.shape == rw_panel.close.shape and a.index.equals(rw_panel.index)
    expected = ind.atr(rw_panel.high.to_numpy(), rw_panel.low.to_numpy(), rw_panel.close.to_numpy(), 14)
    np.testing.assert_allclose(a.to_numpy(), expected, equal_nan=True)
    assert a["SYN-A"].iloc[14:].between(0.5, 10).all()  # a 100-ish price with 2% daily moves
