"""The live one-bar update's choices: the 2-thread row pass (the same bits as ``row_k``, picked by what it
measured), the time features computed ahead (the same bits as ``time_features`` of the one bar)."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest

from tests.unit.features.test_feature_row import _hlcv, _holey_panel
from workbench.data.candles import timeframe_delta
from workbench.data.panel import FIELDS
from workbench.features import IncrementalFeatures
from workbench.features import fused as F
from workbench.features.sets import _SERIES_POS, v2_block
from workbench.features.time_ahead import AHEAD, time_row
from workbench.features.timefeatures import session_clock, time_features
from workbench.features.v2_row import (
    MIN_PARALLEL,
    N_WRITTEN,
    PARALLEL,
    SERIAL,
    RowPass,
    compile_passes,
    copy_slots_k,
    row_k,
    row_parallel_k,
    row_parallel_synced_k,
    row_pass,
    row_synced_k,
    written_slots_k,
)
from workbench.features.v2_universe import v2_arrays

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


@two_threads
@pytest.mark.parametrize(("n", "parts"), [(1, 2), (5, 3), (37, 2), (301, 7)])
def test_parallel_row_kernel_equals_row_k_bit_for_bit(n, parts):
    """Blocks smaller than the prefetch distance, more blocks than instruments, uneven blocks; 90 rows so
    every ring wraps; output block and state (floats and rings) equal after every bar."""
    symbols = tuple(f"S{i}" for i in range(n))
    panel = _holey_panel(150, symbols, seed=n)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 60)), "v2")
    s, rings, _, _ = v2_arrays(inc._state)
    a = (s.copy(), rings.copy(), v2_block(1, n))
    b = (s.copy(), rings.copy(), v2_block(1, n))
    was = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        for t in range(60, 150):
            row_parallel_k(*_hlcv(panel, t), a[0], a[1], a[2], _SERIES_POS, parts)
            row_k(*_hlcv(panel, t), b[0], b[1], b[2], _SERIES_POS)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
    finally:
        numba.set_num_threads(was)
    assert np.isfinite(a[2][_SERIES_POS]).any()


def test_row_pass_choice_follows_its_timings():
    rp = RowPass()
    assert rp.choose(MIN_PARALLEL * 10, 1) == SERIAL  # one thread
    assert rp.choose(MIN_PARALLEL - 1, 2) == SERIAL  # too few instruments
    seen = []
    for i in range(6):  # learning: the two alternate until each has two timings
        path = rp.choose(MIN_PARALLEL, 2)
        seen.append(path)
        first = i < 2  # a kernel's first call (compiling, starting threads) is not timed: here 100× slower
        took = (1.0 if path == SERIAL else 0.5) * MIN_PARALLEL * (100.0 if first else 1.0)
        rp.record(path, took, MIN_PARALLEL, kernel=path)
    assert seen == [SERIAL, PARALLEL] * 3
    runs = []
    for _ in range(2 * 16):
        path = rp.choose(MIN_PARALLEL, 2)
        runs.append(path)
        rp.record(path, (1.0 if path == SERIAL else 0.5) * MIN_PARALLEL, MIN_PARALLEL, kernel=path)
    assert runs.count(SERIAL) == 2 and runs.count(PARALLEL) == 30  # the faster one, the other now and then
    for _ in range(5):  # the machine got busy: the parallel pass is now slower
        rp.record(PARALLEL, 3.0 * MIN_PARALLEL, MIN_PARALLEL, kernel=PARALLEL)
    assert rp.choose(MIN_PARALLEL, 2) == SERIAL
    assert rp.counts[PARALLEL] == 3 + 30 + 5 and rp.last == PARALLEL


@two_threads
def test_row_pass_gives_row_ks_bits_whichever_pass_ran():
    """A stream state stepped through ``row_pass`` (which tries both passes while learning, and whichever it
    then picks) equals one stepped by ``row_k`` alone, bar after bar."""
    n = MIN_PARALLEL
    symbols = tuple(f"S{i}" for i in range(n))
    panel = _holey_panel(70, symbols, seed=5)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 60)), "v2")
    s, rings, _, _ = v2_arrays(inc._state)
    a = (s.copy(), rings.copy(), v2_block(1, n))
    b = (s.copy(), rings.copy(), v2_block(1, n))
    kept: dict = {}
    ran = []
    for t in range(60, 70):
        ran.append(row_pass(kept, *_hlcv(panel, t), a[0], a[1], a[2], _SERIES_POS))
        row_k(*_hlcv(panel, t), b[0], b[1], b[2], _SERIES_POS)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert {SERIAL, PARALLEL} <= set(ran)
    assert kept["row_pass"].counts == {SERIAL: ran.count(SERIAL), PARALLEL: ran.count(PARALLEL)}


@two_threads
def test_the_warm_up_compiles_every_version_the_live_update_runs():
    """After ``compile_passes`` (``warmup.compile_kernels``), updates and peeks of bars from a Panel
    (read-only arrays) and from arrays, through both passes, compile nothing more."""
    kernels = (row_k, row_parallel_k, row_synced_k, row_parallel_synced_k)
    compile_passes()
    compiled = [set(k.signatures) for k in kernels]
    symbols = tuple(f"S{i}" for i in range(MIN_PARALLEL))
    panel = _holey_panel(70, symbols, seed=6)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 60)), "v2")
    for t in range(60, 66):  # six bars: both passes run while it learns
        bar = panel.iloc(slice(t, t + 1))
        inc.peek(bar)
        inc.peek_arrays(bar.index, {f: getattr(bar, f).to_numpy(dtype=float).copy() for f in FIELDS})
        if t % 2:
            inc.update(bar)
        else:
            inc.update_arrays(bar.index, {f: getattr(bar, f).to_numpy() for f in FIELDS})
    assert min(inc._state.extra["row_pass"].counts.values()) > 0
    for kernel, before in zip(kernels, compiled, strict=True):
        assert set(kernel.signatures) == before, kernel


@pytest.mark.parametrize(
    ("exchange", "timeframe", "start", "bars"),
    [
        ("binance", "1h", "2026-03-27 20:00", 200),  # past Europe's clock change: hours are UTC anyway
        ("NYSE", "30m", "2026-03-06 14:30", 300),  # New York's clock change, weekends, session ends
        ("NYSE", "1d", "2026-11-20", 40),  # Thanksgiving and weekends: the next bar is off the grid
        ("NSE", "15m", "2026-10-30 03:45", 150),
    ],
)
def test_time_row_equals_time_features_of_the_one_bar_and_of_the_batch(exchange, timeframe, start, bars):
    """Bar by bar as the live loop asks (gaps included: only the exchange's session bars, or every bar),
    each row bit for bit ``time_features`` of that one timestamp and of the whole index at once; most
    bars come from the rows computed ahead, not from a new call."""
    step = timeframe_delta(timeframe)
    grid = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=bars * 3, freq=step, name="ts")
    clock = session_clock(exchange, grid[0], grid[-1])
    batch = time_features(grid, clock, timeframe)
    live = np.isfinite(batch["session_phase"]) & (batch["session_phase"] < 1.0) if exchange != "binance" else None
    keep = np.flatnonzero(live)[:bars] if live is not None else np.arange(bars)
    kept: dict = {}
    computed = 0
    for i in keep:
        one = grid[i : i + 1]
        before = kept.get("time_ahead")
        got = time_row(kept, one, clock, timeframe)
        computed += kept.get("time_ahead") is not before
        want = time_features(one, clock, timeframe)
        for name, values in want.items():
            np.testing.assert_array_equal(got[name], values)
            np.testing.assert_array_equal(got[name], batch[name][i : i + 1])
    assert computed < len(keep) / 2 if timeframe != "1d" else computed >= 1
    assert computed >= len(keep) / AHEAD


def test_time_row_computes_afresh_for_another_clock_or_timeframe():
    grid = pd.date_range("2026-05-04 13:30", periods=4, freq="30min", tz="UTC", name="ts")
    a, b = session_clock("NYSE", grid[0], grid[-1]), session_clock("NSE", grid[0], grid[-1])
    kept: dict = {}
    for clock, timeframe in ((a, "30m"), (b, "30m"), (b, "15m")):
        got = time_row(kept, grid[1:2], clock, timeframe)
        want = time_features(grid[1:2], clock, timeframe)
        for name, values in want.items():
            np.testing.assert_array_equal(got[name], values)


@pytest.mark.parametrize(("n", "parts"), [(1, 1), (37, 1), (37, 3), (301, 2)])
def test_synced_row_kernels_equal_copying_the_slots_then_row_k(n, parts):
    """A scratch two one-bar steps behind the committed state: made equal inside the step
    (``row_synced_k``, ``row_parallel_synced_k``) or by ``copy_slots_k`` and a float copy first, then
    stepped by ``row_k``: the same output, floats and rings, bar after bar (every ring wraps)."""
    symbols = tuple(f"S{i}" for i in range(n))
    panel = _holey_panel(160, symbols, seed=n + parts)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 60)), "v2")
    s, rings, pair, _ = v2_arrays(inc._state)
    committed = (s.copy(), rings.copy())
    got = (s.copy(), rings.copy(), v2_block(1, n))
    want = (s.copy(), rings.copy(), v2_block(1, n))
    scratch_out = v2_block(1, n)
    was = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for t in range(60, 158, 3):
            pos = np.empty((2, n, N_WRITTEN), dtype=np.int64)
            for k in range(2):  # the committed state takes two bars the scratch does not see
                written_slots_k(committed[0], pair, pos[k])
                row_k(*_hlcv(panel, t + k), committed[0], committed[1], scratch_out, _SERIES_POS)
            if parts == 1:
                row_synced_k(*_hlcv(panel, t + 2), got[0], got[1], got[2], _SERIES_POS, *committed, pos)
            else:
                row_parallel_synced_k(*_hlcv(panel, t + 2), got[0], got[1], got[2], _SERIES_POS, *committed, pos, parts)
            np.copyto(want[0], committed[0])
            copy_slots_k(want[1], np.zeros((n, 2, F.RING)), committed[1], np.zeros((n, 2, F.RING)), pos)
            row_k(*_hlcv(panel, t + 2), want[0], want[1], want[2], _SERIES_POS)
            for x, y in zip(got, want, strict=True):
                np.testing.assert_array_equal(x, y)
            row_k(*_hlcv(panel, t + 2), committed[0], committed[1], scratch_out, _SERIES_POS)
            np.testing.assert_array_equal(got[1], committed[1])  # and the scratch is the committed state again
    finally:
        numba.set_num_threads(was)
    assert np.isfinite(got[2][_SERIES_POS]).any()
