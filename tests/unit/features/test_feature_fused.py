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


def test_out_block_reused_gives_the_fresh_numbers_and_is_validated():
    """A reused block (filled with garbage first) gives exactly the fresh build: every cell is written."""
    from workbench.features.pipeline import build_wide, feature_block

    holes = _holey_panel()
    fresh = build_features(holes, "v2")
    out = feature_block(holes, "v2")
    out[...] = 7.25
    X = build_features(holes, "v2", out=out)
    pd.testing.assert_frame_equal(X, fresh)
    wide = build_wide(holes, "v2", out=out)
    assert all(np.shares_memory(wide[n], out) for n in V2_COLUMNS)
    with pytest.raises(ValueError, match="shape"):
        build_wide(holes, "v2", out=out[:, 1:])
    with pytest.raises(ValueError, match="v2 only"):
        build_wide(holes, "v1", out=out)


def test_cross_rank_rows_with_ties_infinities_and_holes():
    """``rank_rows_k`` equals pandas' average rank, (rank − ½)/count, on rows with ties, NaN and ±inf
    (kept out of the rank and the count)."""
    from workbench.features.fused import rank_k, rank_rows_k

    rng = np.random.default_rng(1)
    a = np.round(rng.normal(size=(70, 41)), 1)  # rounding makes ties
    a[rng.random(a.shape) < 0.1] = np.nan
    a[3, 5], a[3, 9], a[8, 0] = -np.inf, np.inf, -np.inf
    a[10] = np.nan
    clean = np.where(np.isfinite(a), a, np.nan)
    frame = pd.DataFrame(clean)
    ref = ((frame.rank(axis=1, method="average") - 0.5).div(frame.count(axis=1), axis=0)).to_numpy()
    got = np.empty_like(a)
    rank_rows_k(a, np.argsort(a, axis=1), got)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15, equal_nan=True)
    block = np.stack([a, np.full_like(a, 5.0)])  # rank_k: whole (feature × time × instrument) blocks
    rank_k(block, np.array([0]), np.array([1]), np.argsort(np.where(np.isfinite(a), a, np.inf), axis=1)[None])
    np.testing.assert_allclose(block[1], ref, rtol=0, atol=1e-15, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 3, 41, 1000, 5003])
def test_sort_order_ranks_as_argsort_does(n):
    """``sort_order`` (packed keys, numpy's sort, then runs of equal truncated keys re-sorted)
    gives every row the ranks ``np.argsort`` gives: ties, ±0, ±inf, NaN of either sign, and values
    that differ only in the bits the column index replaces."""
    from workbench.features.fused import rank_rows_k, sort_order

    rng = np.random.default_rng(n)
    a = rng.normal(size=(40, n))
    a[rng.random(a.shape) < 0.1] = np.nan
    a[rng.random(a.shape) < 0.1] = 0.0
    a[rng.random(a.shape) < 0.1] = -0.0
    a[rng.random(a.shape) < 0.05] = np.inf
    a[rng.random(a.shape) < 0.05] = -np.inf
    near = rng.random(a.shape) < 0.2  # within a few ulps of 1: the same truncated key, in random order
    a[near] = 1.0 + rng.integers(-40, 40, near.sum()) * np.finfo(float).eps
    a[2] = -a[2]
    a[3, : n // 2] = -np.nan  # a NaN with the sign bit set (what 0 × inf gives on x86)
    a[4] = np.nan
    a[5] = 7.0
    want, got = np.empty_like(a), np.empty_like(a)
    rank_rows_k(a, np.argsort(a, axis=1), want)
    rank_rows_k(a, sort_order(a), got)
    assert np.array_equal(got, want, equal_nan=True)
    order = sort_order(a)
    assert (np.sort(order, axis=1) == np.arange(n)).all()  # a permutation of the columns


def test_step_helpers_live_in_fused_steps_and_stay_importable_from_fused():
    """The one-row incremental path imports the steps from either module: both must give the same objects."""
    from workbench.features import fused, fused_steps

    assert fused_steps.__all__
    for name in fused_steps.__all__:
        assert getattr(fused, name) is getattr(fused_steps, name), name


def _thp_eligible(a: np.ndarray) -> bool:
    """Whether the kernel may back ``a``'s memory with transparent huge pages (the smaps entry of its
    middle: numpy's advice covers the whole 2 MB pages inside the allocation, not its first bytes)."""
    addr = a.__array_interface__["data"][0] + a.nbytes // 2
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "THPeligible:":
                return line.split()[1] == "1"
    raise AssertionError("no smaps entry with THPeligible for the block")


def test_fresh_v2_block_on_small_pages_reusable_block_on_huge_pages():
    """A one-off block must not make the faulting thread compact memory for huge pages (2.5 s CPU
    instead of 0.95 at 5,000 × 500); the block kept for reuse asks for them."""
    from pathlib import Path

    from workbench.features.pipeline import feature_block
    from workbench.features.sets import v2_block

    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not mode.exists() or "[madvise]" not in mode.read_text():
        pytest.skip("needs Linux with transparent huge pages in madvise mode (numpy's request decides)")
    fresh = v2_block(100, 2_000)  # 69 MB: numpy asks for huge pages at this size unless told not to
    assert fresh.flags.c_contiguous and np.isnan(fresh).all()
    assert not _thp_eligible(fresh)
    kept = feature_block(random_walk_panel(100, tuple(f"S{i}" for i in range(2_000))), "v2")
    assert _thp_eligible(kept)
    assert not _thp_eligible(v2_block(100, 2_000))  # the switch was put back after the kept block


def _lane_panel(seed: int = 11) -> tuple[np.ndarray, ...]:
    """(instrument × time) bars for 3 ``fused_simd.LANES`` + 5 instruments: one flat for a long stretch
    (±DI both 0: the ADX's input is NaN in that lane only), one with a flat range (stochastic → 50),
    one starting late (its state never matches the others': per-instrument path), one with a hole and
    one with a zero volume (per-instrument where those rows are in a call)."""
    from workbench.features.fused_simd import LANES

    rng = np.random.default_rng(seed)
    n, T = 3 * LANES + 5, 300
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, T)), axis=1))
    o = c * np.exp(rng.normal(0, 0.002, c.shape))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.004, c.shape)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.004, c.shape)))
    v = rng.lognormal(10, 1, c.shape)
    h[3, :80] = lo[3, :80] = c[3, :80] = 50.0  # flat from the start: no directional movement
    h[5, 120:160] = lo[5, 120:160] = c[5, 120:160] = c[5, 119]  # a flat range later
    for a in (h, lo, c, v):
        a[LANES + 7, :40] = np.nan  # late start
    c[2 * LANES + 4, 150] = np.nan
    v[2 * LANES + 9, 200] = 0.0
    return h, lo, c, v


def _read_only(x: np.ndarray) -> np.ndarray:
    y = np.ascontiguousarray(x)
    y.flags.writeable = False
    return y


def _per_instrument(h, lo, c, v, S, R, out, cols) -> None:
    from workbench.features import fused as F

    W = np.empty((F.N_W, c.shape[1]))
    for j in range(c.shape[0]):
        F._instrument(h, lo, c, v, S, R, out, cols, W, j, 0, c.shape[1])


def test_vector_lanes_give_the_per_instrument_bits():
    """``series_k`` (groups of clean instruments in vector lanes, the rest one by one) gives every
    output bit and every state value of the per-instrument path, in one pass and fed in parts
    (lanes gathered around the instruments with holes; a late starter whose counts never match the
    others' stays per instrument; lanes continue from a non-zero state)."""
    from workbench.features import fused as F
    from workbench.features.fused_simd import LANES, vector_groups

    h, lo, c, v = _lane_panel()
    n, T = c.shape
    cols = np.arange(len(F.SERIES), dtype=np.int64)
    ref = F.V2State.empty(n)
    want = np.full((len(F.SERIES), T, n), -1.0)
    _per_instrument(h, lo, c, v, ref.s, ref.rings, want, cols)
    groups = vector_groups(h, lo, c, v, F.V2State.empty(n).s)
    assert groups.shape == (3, LANES)  # the 194 clean instruments, gathered around the 3 with holes
    assert not np.isin([LANES + 7, 2 * LANES + 4, 2 * LANES + 9], groups).any()
    assert (np.diff(groups[1]) > 1).any()  # a gathered group: some lanes' stores are not four neighbours
    st = F.V2State.empty(n)
    F.series_k(*[_read_only(x[:, :65]) for x in (h, lo, c, v)], st.s, st.rings, np.empty((len(F.SERIES), 65, n)), cols)
    later = vector_groups(*[_read_only(x[:, 65:]) for x in (h, lo, c, v)], st.s)
    assert later.shape == (3, LANES) and LANES + 7 not in later  # clean now, but its counts differ: not uniform
    for parts in ([(0, T)], [(0, 1), (1, 64), (64, 65), (65, T)]):
        st = F.V2State.empty(n)
        got = np.full_like(want, -2.0)
        for a, b in parts:
            blk = np.full((len(F.SERIES), b - a, n), -3.0)
            args = [_read_only(x[:, a:b]) for x in (h, lo, c, v)]  # as v2_stream passes them: one compiled version
            F.series_k(*args, st.s, st.rings, blk, cols)
            got[:, a:b] = blk
        for k, name in enumerate(F.SERIES):
            assert np.array_equal(got[k], want[k], equal_nan=True), (name, parts)
        assert np.array_equal(st.s, ref.s, equal_nan=True)
        assert np.array_equal(st.rings, ref.rings, equal_nan=True)


def test_warm_up_compiles_the_vector_lanes_a_build_uses():
    """``compile_group`` (run by ``workbench init``'s warm-up) compiles ``group_k`` for the very input
    types a feature build passes, so a user's first build of a big panel compiles nothing new."""
    from bench._util import synthetic_panel
    from workbench.features import fused as F
    from workbench.features import fused_simd as FS
    from workbench.features.pipeline import build_wide

    FS.compile_group()
    before = set(FS.group_k.signatures)
    panel = synthetic_panel(FS.LANES + 3, 2 * FS.MIN_ROWS, symbol="S{i:04d}/USDT", exchange="binance", volume=None)
    hlcv = [np.ascontiguousarray(getattr(panel, f).to_numpy(dtype=float).T) for f in ("high", "low", "close", "volume")]
    assert FS.vector_groups(*hlcv, F.V2State.empty(FS.LANES + 3).s).shape == (1, FS.LANES)  # one group of lanes
    build_wide(panel, "v2")
    assert set(FS.group_k.signatures) == before
