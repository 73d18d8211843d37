"""Feature set v2 for 5,000 instruments × 500 bars, and the incremental update of one new bar,
each beside a per-symbol loop over TA-Lib on the same data (TA-Lib is the yardstick, not a dependency
of the hot path). Ratios are from one run."""

from __future__ import annotations

import gc
import os
import time

import numpy as np

from bench._util import synthetic_panel
from workbench.data.panel import FIELDS, Panel
from workbench.features.sets import _set_madvise_hugepage  # numpy's private switch, with its fallback

N, BARS, LIVE = int(os.environ.get("BENCH_FEATURES_N", 5000)), 500, 20
REPEATS = 5  # medians: the machine is shared


def _panel(n: int, bars: int) -> Panel:
    return synthetic_panel(n, bars, symbol="S{i:04d}/USDT", exchange="binance", volume=None)


def _talib_symbol(h, lo, c, v):
    """The TA-Lib counterparts of v2's indicators for one symbol."""
    import talib

    out = [talib.ROCP(c, k) for k in (1, 5, 10, 20, 60)]
    logr = np.log(c[1:] / c[:-1])
    out += [talib.STDDEV(logr, 20), talib.STDDEV(logr, 60), talib.RSI(c, 14), *talib.MACD(c, 12, 26, 9)]
    out += [*talib.BBANDS(c, 20, 2, 2), talib.ATR(h, lo, c, 14), talib.EMA(c, 12), talib.EMA(c, 26), talib.EMA(c, 50)]
    out += [
        talib.ADX(h, lo, c, 14),
        talib.PLUS_DI(h, lo, c, 14),
        talib.MINUS_DI(h, lo, c, 14),
        *talib.STOCH(h, lo, c, 14, 3, 0, 3, 0),
    ]
    out += [talib.MFI(h, lo, c, v, 14), talib.OBV(c, v), talib.SMA(v, 20), talib.STDDEV(v, 20)]
    out += [
        talib.MAX(h, 20),
        talib.MIN(lo, 20),
        talib.MAX(h, 60),
        talib.MIN(lo, 60),
        talib.CORREL(c, c, 60),
        talib.BETA(c, c, 60),
    ]
    return out


def _talib_loop(panel: Panel, last: int | None = None, keep: bool = False) -> float:
    """Seconds for the per-symbol TA-Lib loop; ``keep`` also stores every output in one fresh
    (output × time × instrument) block, as a feature build must (the bare loop drops them)."""
    arr = {f: np.asfortranarray(getattr(panel, f).to_numpy(dtype=float)) for f in ("high", "low", "close", "volume")}
    t0 = time.perf_counter()
    block = None
    for j in range(arr["close"].shape[1]):
        cols = [
            np.ascontiguousarray(arr[f][-last:, j] if last else arr[f][:, j])
            for f in ("high", "low", "close", "volume")
        ]
        out = _talib_symbol(*cols)
        if keep:
            if block is None:  # on 4 kB pages as ``sets.v2_block``'s (huge pages would make it compact memory)
                previous = _set_madvise_hugepage(False)
                block = np.empty((len(out), len(cols[0]), arr["close"].shape[1]))
                _set_madvise_hugepage(previous)
            for k, o in enumerate(out):
                block[k, -len(o) :, j] = o
    return time.perf_counter() - t0


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU of all the process's threads) seconds of ``fn()``; its result is freed after the
    clocks stop, as the TA-Lib loop's block is (unmapping 860 MB is not feature work).

    Why ``gc.collect()``: a long frame sits in a pandas reference cycle, so ``del`` does not free
    its block (RSS checked): without it a later collection freed 860 MB inside another run."""
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    del result
    gc.collect()
    return w, c


def _talib_timed(panel: Panel, keep: bool) -> tuple[float, float]:
    c0 = time.process_time()
    w = _talib_loop(panel, keep=keep)
    c = time.process_time() - c0  # CPU includes the loop's input copies (a few ms)
    gc.collect()
    return w, c


def _compare(hist: Panel) -> dict[str, tuple[float, float]]:
    """Medians of ``REPEATS`` interleaved runs (a burst of load hits ours and the anchor alike)."""
    from workbench.features import build_features
    from workbench.features.pipeline import build_wide, feature_block

    out = feature_block(hist, "v2")
    runs = {
        "wide, fresh block": lambda: build_wide(hist, "v2"),
        "long frame, fresh block": lambda: build_features(hist, "v2"),
        "wide, reused block": lambda: build_wide(hist, "v2", out=out),
        "long frame, reused block": lambda: build_features(hist, "v2", out=out),
        "TA-Lib loop": lambda: _talib_timed(hist, keep=False),
        "TA-Lib loop keeping outputs": lambda: _talib_timed(hist, keep=True),
    }
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    pairs = [["wide, reused block", "wide, fresh block"], ["long frame, reused block", "long frame, fresh block"]]
    for r in range(REPEATS):
        # Each fresh build right after a reused one (nothing freed just before it), then the TA-Lib
        # loops. Why: a fresh 860 MB block costs ~0.5 s CPU less when a block of its size was just
        # unmapped (the kernel hands those pages straight back; otherwise it finds and zeroes new
        # huge pages, compacting memory for them: numpy asks for huge pages, THP defrag=madvise).
        # Since then ``sets.v2_block`` asks for 4 kB pages (2.5 s → 0.95 s CPU for a fresh build
        # at one thread); the TA-Lib loop keeping its outputs allocates its block the same way.
        # The old rotation always ran "long frame, fresh" right after "wide, fresh" had freed its
        # block, and "wide, fresh" after a run that freed nothing or less: the "wide, fresh block"
        # anomaly (1.27 s against 0.70 s CPU, one thread, at 5,000 × 500). Same code path.
        for name in [*pairs[r % 2], *pairs[1 - r % 2], "TA-Lib loop", "TA-Lib loop keeping outputs"]:
            fn = runs[name]
            samples[name].append(fn() if name.startswith("TA-Lib") else _timed(fn))
    return {k: (float(np.median([w for w, _ in v])), float(np.median([c for _, c in v]))) for k, v in samples.items()}


def _first_touch(shape: tuple[int, ...]) -> tuple[float, float]:
    """The floor a fresh output block costs: allocating it and writing each page once (wall, CPU)."""

    def touch() -> np.ndarray:
        block = np.empty(shape)
        block[:, :, :] = 0.0
        return block

    return _timed(touch)


def main() -> None:
    import numba

    from workbench.features import build_features, get_feature_set
    from workbench.features.pipeline import build_wide

    panel = _panel(N, BARS + LIVE)
    hist = panel.iloc(slice(0, BARS))
    build_wide(hist, "v2")  # warm: numba kernels loaded from cache, calendar and first-touch memory
    X = build_features(hist, "v2")
    most = numba.get_num_threads()
    talib_calls = len(_talib_symbol(*[np.ones(BARS) + np.arange(BARS) % 7] * 4))
    print(
        f"   full v2 ({X.shape[1]} features), {N} instruments × {BARS} bars; medians of {REPEATS}; wall s (CPU s of all threads)"
    )
    print(
        f"   anchor: a per-symbol TA-Lib loop of {talib_calls} calls per symbol (one thread); load {os.getloadavg()[0]:.1f}"
    )
    block_shape = (X.shape[1], BARS, N)
    del X
    for threads in sorted({most, 1}, reverse=True):
        numba.set_num_threads(threads)
        r = _compare(hist)
        print(f"   -- NUMBA_NUM_THREADS = {threads}")
        for name, (w, c) in r.items():
            print(f"      {name:28s} {w:6.3f} s  ({c:.3f} s CPU)")
        talib, talib_cpu = r["TA-Lib loop"]
        # By CPU too: on a loaded machine wall time also counts the waits for a core, and with one
        # thread CPU is what a quiet machine's wall time would be.
        for name in ("long frame, fresh block", "long frame, reused block", "wide, fresh block", "wide, reused block"):
            print(f"      ratio TA-Lib loop / ours, {name}: {talib / r[name][0]:.2f}× wall, "
                  f"{talib_cpu / r[name][1]:.2f}× CPU (goal ≥ 1.00)")  # fmt: skip
        print(f"      ratio TA-Lib loop keeping outputs / ours, long frame, fresh block: "
              f"{r['TA-Lib loop keeping outputs'][0] / r['long frame, fresh block'][0]:.2f}×")  # fmt: skip
    numba.set_num_threads(most)
    w, c = _first_touch(block_shape)
    print(
        f"   first touch of a fresh {np.prod(block_shape) * 8 / 1e6:.0f} MB block alone (one thread): {w:.3f} s ({c:.3f} s CPU)"
    )
    v1 = float(np.median([_timed(lambda: build_features(hist, "v1"))[0] for _ in range(3)]))
    print(f"   full v1 (13 features), long frame: {v1:.2f} s")

    upd = incremental(N, BARS, panel)
    warm = get_feature_set("v2").warmup
    talib_live = _talib_loop(panel, last=warm)
    print(
        f"   TA-Lib per-symbol loop on the last {warm} bars (warm-up window) for the newest bar: {talib_live:.2f} s → {talib_live / upd:.0f}× slower"
    )
    full = _timed(lambda: build_features(hist, "v2"))[0]
    print(f"   full v2 recomputation on {BARS} bars instead: {full / upd:.0f}× slower than the update")
    if N < 20_000:
        incremental(20_000, 300)
    real_panel()


def vector_share(panel: Panel) -> float:
    """Share of instruments ``fused.series_k`` runs in vector lanes from a fresh state (groups of
    ``fused_simd.LANES`` instruments with every bar finite and a positive volume; the rest one by one)."""
    from workbench.features import fused as F
    from workbench.features import fused_simd as FS

    h, lo, c, v = (
        np.ascontiguousarray(getattr(panel, f).to_numpy(dtype=float).T) for f in ("high", "low", "close", "volume")
    )
    n = c.shape[0]
    lanes = FS.vector_groups(h, lo, c, v, F.V2State.empty(n).s).size
    return lanes / n


def real_panel() -> None:
    """The same comparison on real bars: the S&P 500 daily set, with its late listings and holes (an
    instrument with any missing bar takes the per-instrument path)."""
    import numba

    from bench.sp500_data import SP500, load_sp500
    from workbench.features.pipeline import build_wide, feature_block

    if not SP500.exists():
        print(f"   real panel: skipped, {SP500} not found (set WORKBENCH_TEST_DATA)")
        return
    panel = load_sp500()[0]
    out = feature_block(panel, "v2")
    build_wide(panel, "v2", out=out)
    n, T = len(panel.symbols), len(panel.index)
    print(
        f"   real panel: S&P 500 daily, {n} instruments × {T} bars; {vector_share(panel):.0%} of instruments in vector lanes"
    )
    most = numba.get_num_threads()
    for threads in sorted({most, 1}, reverse=True):
        numba.set_num_threads(threads)
        ours, talib = [], []
        for _ in range(REPEATS):
            ours.append(_timed(lambda: build_wide(panel, "v2", out=out))[0])
            talib.append(_talib_timed(panel, keep=False)[0])
        o, t = float(np.median(ours)), float(np.median(talib))
        print(
            f"      NUMBA_NUM_THREADS = {threads}: wide, reused block {o:.3f} s; TA-Lib loop {t:.3f} s; ratio {t / o:.2f}× (goal ≥ 1.00)"
        )
    numba.set_num_threads(most)


def incremental(n: int, bars: int, panel: Panel | None = None) -> float:
    """The live loop's step: one new bar × ``n`` instruments through ``IncrementalFeatures.update`` (goal
    ≤ 5 ms at 5,000, ≤ 18 ms at 20,000), median of ``LIVE``; then its per-instrument pass alone beside the
    pass it replaced (``fused.series_k`` on the one row) on the same state and bar. Returns the update's
    seconds. ``panel`` (``bars`` + ``LIVE`` rows) is also checked against the full recomputation."""
    import numba

    from workbench.features import IncrementalFeatures, build_features, sets
    from workbench.features import fused as F
    from workbench.features.v2_row import row_k, row_parallel_k
    from workbench.features.v2_universe import v2_arrays

    check = panel is not None
    panel = panel if panel is not None else _panel(n, bars + LIVE)
    t0 = time.perf_counter()
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, bars)), "v2")
    setup = time.perf_counter() - t0
    times, cpu = [], []
    for t in range(bars, bars + LIVE):
        bar = panel.iloc(slice(t, t + 1))
        t0, c0 = time.perf_counter(), time.process_time()
        row = inc.update(bar)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    same = "not checked (the full block would take GBs)"
    if check:
        exp = build_features(panel, "v2").xs(panel.index[-1], level="ts")
        same = str(np.array_equal(row.to_numpy(), exp.reindex(row.index).to_numpy(), equal_nan=True))
    upd = float(np.median(times))
    chosen = inc._state.extra.get("row_pass")
    print(
        f"   incremental v2, one new bar × {n:,} instruments: {upd * 1e3:.1f} ms median of {LIVE} "
        f"({np.median(cpu) * 1e3:.1f} ms CPU; goal ≤ 5 ms at 5,000, ≤ 18 ms at 20,000; load {os.getloadavg()[0]:.1f}; "
        f"from_history once: {setup:.2f} s); equal to full recomputation: {same}"
    )
    print(f"      {chosen.summary() if chosen is not None else 'per-instrument pass: none ran'}")
    # The per-instrument pass alone, each kernel advancing its own copy of the state, the kernels
    # alternated bar by bar: each then finds its state out of cache (as after a live cycle's other
    # work), where the update above, stepping one state bar after bar, finds much of it in L3.
    s, rings, _, _ = v2_arrays(inc._state)
    most = numba.get_num_threads()
    kernels = {
        "fused.series_k (before, one thread)": lambda *a: F.series_k(*a),
        "v2_row.row_k (now, one thread)": lambda *a: row_k(*a),
    }
    if most > 1:
        kernels[f"v2_row.row_parallel_k ({most} threads)"] = lambda *a: row_parallel_k(*a, most)
    took: dict[str, list[float]] = {name: [] for name in kernels}
    states = {name: (s.copy(), rings.copy()) for name in kernels}  # each kernel advances its own copy
    block = sets.v2_block(1, n)
    for t in range(bars, bars + LIVE):
        hlcv = [np.ascontiguousarray(getattr(panel, f).to_numpy(dtype=float)[t : t + 1].T) for f in FIELDS[1:]]
        for name, kernel in kernels.items():  # alternated bar by bar: the machine's load hits all alike
            numba.set_num_threads(1 if "one thread" in name else most)
            t0 = time.perf_counter()
            kernel(*hlcv, *states[name], block, sets._SERIES_POS)
            took[name].append(time.perf_counter() - t0)
    numba.set_num_threads(most)
    base = float(np.median(took["fused.series_k (before, one thread)"]))
    for name, xs in took.items():
        print(
            f"      per-instrument pass alone, state out of cache, {name}: {np.median(xs) * 1e3:.2f} ms "
            f"({base / np.median(xs):.2f}× series_k)"
        )
    return upd


if __name__ == "__main__":
    main()
