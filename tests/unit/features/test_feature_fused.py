"""The fused v2 kernels equal v2 composed from the streaming indicators (which are tested against
TA-Lib): on real S&P 500 bars, and on a random panel with every kind of hole (missing closes, highs,
lows, volumes, zero volume, late starts, an instrument that stops), in one pass and fed in chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from tests.unit.features.v2_reference import v2_composed
from workbench.data.panel import Panel
from workbench.features import build_features
from workbench.features.pipeline import stack_wide
from workbench.features.sets import V2_COLUMNS, Bars, v2_stream
from workbench.features.streams import StreamState


def _holey_panel(n_bars: int = 260, n: int = 23) -> Panel:
    syms = tuple(f"S{i:02d}" for i in range(n))
    p = random_walk_panel(n_bars, syms, seed=3, late_start={"S03": 70, "S04": 5}, early_end={"S05": 150})
    rng = np.random.default_rng(5)
    fields = {}
    for f, frac in (("open", 0.0), ("high", 0.03), ("low", 0.03), ("close", 0.04), ("volume", 0.05)):
        df = p.field(f).copy()
        fields[f] = df.mask(rng.random(df.shape) < frac)
    fields["volume"].iloc[::9, ::4] = 0.0  # a source that reports no volume on some bars
    fields["volume"]["S06"] = 0.0  # ...or never
    fields["close"].iloc[100:140, 7] = fields["close"].iloc[99, 7]  # a flat stretch
    return Panel(**fields, exchange="SYNTH", timeframe="1d")


def assert_same(got: dict, ref: dict) -> None:
    for name in V2_COLUMNS:
        a, b = np.asarray(got[name]), np.asarray(ref[name])
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}: NaN on different cells"
        assert np.isfinite(a[~np.isnan(a)]).all(), name
        # Same formulas, same order of operations, except beta/corr (running sums re-summed at each
        # wrap instead of a fresh two-pass sum every bar) and the z-score (one sum instead of numpy's pairwise).
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("which", ["holes", "sp500"])
def test_fused_equals_composed_streams(which, sp500_panel):
    panel = _holey_panel() if which == "holes" else sp500_panel
    b = Bars.from_panel(panel)
    ref = v2_composed(StreamState(len(b.symbols)), b)
    got = v2_stream(StreamState(len(b.symbols)), b)
    assert_same(got, ref)


def test_fused_in_chunks_equals_one_pass():
    """The state carries everything: rows fed 1, 7 and the rest at a time give the one-pass numbers exactly."""
    panel = _holey_panel()
    whole = v2_stream(StreamState(len(panel.symbols)), Bars.from_panel(panel))
    st = StreamState(len(panel.symbols))
    parts = []
    for lo, hi in ((0, 1), (1, 8), (8, 9), (9, len(panel.index))):
        parts.append(v2_stream(st.begin(), Bars.from_panel(panel.iloc(slice(lo, hi)))))
    for name in V2_COLUMNS:
        stacked = np.concatenate([np.asarray(p[name]) for p in parts])
        assert np.array_equal(stacked, whole[name], equal_nan=True), name


def test_long_frame_is_the_kernels_block_without_a_copy():
    panel = random_walk_panel(120, ("A", "B", "C"))
    X = build_features(panel, "v2")
    wide = v2_stream(StreamState(3), Bars.from_panel(panel))
    for name in ("ret_1", "beta_60", "cs_rank_ret_20", "hours_to_close"):
        np.testing.assert_array_equal(X[name].to_numpy(), np.asarray(wide[name]).ravel())
    assert np.shares_memory(stack_wide(panel, wide).to_numpy(), wide["ret_1"])  # the kernels' memory, no copy
    holes = _holey_panel()
    Xh = build_features(holes, "v2")
    assert len(Xh) == int(np.isfinite(holes.close.to_numpy()).sum())
    ref = v2_composed(StreamState(len(holes.symbols)), Bars.from_panel(holes))
    valid = np.isfinite(holes.close.to_numpy())
    np.testing.assert_allclose(Xh["rsi_14"].to_numpy(), ref["rsi_14"][valid], rtol=1e-12, equal_nan=True)
    assert isinstance(Xh.index, pd.MultiIndex)
