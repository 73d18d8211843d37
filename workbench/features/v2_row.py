"""v2's per-instrument features for ONE new bar: the live loop's update, with the state's lines fetched ahead.

Why a row entry point beside ``fused.series_k``: for one bar the arithmetic is ~0.3 µs an instrument,
but every instrument's state sits in its own 11 KB of ring buffers (``fused.V2State``), and one step
reads and writes one slot of each of its 23 rings: 23 cache lines at a 480-byte stride that the
hardware prefetcher cannot predict. ``series_k`` walks them one dependent load after another, so a
one-row update at 5,000 instruments was mostly waiting on memory. ``row_k`` runs the very same step
(``fused._instrument``, one row: no second copy of any formula) over the instruments in order, and
before each one asks the memory system for the ring slots the instrument ``AHEAD`` places later will
touch (their positions are in its state row, which is read in order and so prefetched by the
hardware). It also allocates its scratch once instead of once per group of 8.

Measured (one thread, load ~4 on 2 cores, the state stepped bar after bar): on 5,000 instruments
``series_k`` on one row 6.2 ms, this kernel without the prefetch 5.2 ms, with it 3.4 ms; on 20,000,
44 ms against 27 ms. With the state out of cache (``python -m bench features``) the gain is smaller at
5,000 (~1.2×) and ~2× at 20,000. The output is bit-identical (same code, same order of operations per
instrument); a prefetch never changes a value.

``row_parallel_k`` walks contiguous blocks of instruments on numba's threads; ``row_pass`` picks it or
``row_k`` by what each recently took (see ``RowPass``: under load the 2-thread pass loses). A peek's
scratch state is made equal to the committed one inside the same walk (``row_synced_k``).
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass, field
from typing import Any

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from workbench.features import fused as F

__all__ = [
    "row_k",
    "row_parallel_k",
    "row_pass",
    "RowPass",
    "written_slots_k",
    "copy_slots_k",
    "copy_pair_slots_k",
    "row_synced_k",
    "row_parallel_synced_k",
    "PENDING",
    "AHEAD",
    "N_WRITTEN",
    "MIN_PARALLEL",
    "compile_passes",
]

_ROLLING = F._O // 5  # rings 0 … _ROLLING−1 are rolling statistics, each with 5 state floats at 5·ring
AHEAD = 2  # instruments between a prefetch and the step that uses it (1–16 measured alike; 2 was best at 5,000)


def _prefetch_typer(typingctx, arr, i, k, p):
    """``llvm.prefetch`` (read, keep in all cache levels) of ``arr[i, k, p]``: a hint that never
    faults and never changes a value, unlike a load it does not hold the core until the line is in."""
    sig = types.void(arr, i, k, p)

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        idx = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], signature.args[1:], strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch: Any = intrinsic(_prefetch_typer)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _slot(S, j, o):
    """Ring position stored at state float ``o`` of instrument ``j`` (always inside its ring: a step
    keeps it there; clamped all the same, so no address computed here can leave the array)."""
    p = S[j, o]
    return int(p) if p >= 0.0 and p < F.RING else 0


@njit(cache=True, error_model="numpy", boundscheck=False)
def _prefetch_state(S, R, j):
    """Prefetch the ring slots instrument ``j``'s next step reads: each rolling statistic's slot at its
    position (its 5 state floats start at 5·ring), and the close-lag ring at the 1, 5, 10, 20 and 60 bar
    lags the returns read."""
    for ri in range(_ROLLING):
        _prefetch(R, j, ri, _slot(S, j, 5 * ri))
    cp = _slot(S, j, F.S_CLAG)
    for lag in (0, 1, 5, 10, 20):
        q = cp - lag
        _prefetch(R, j, F.R_CLAG, q + F.RING if q < 0 else q)
    _prefetch(R, j, F.R_OBVLAG, _slot(S, j, F.S_OBVLAG))


@njit(cache=True, error_model="numpy", inline="always")
def _walk(h, l, c, v, S, R, out, cols, lo, hi):  # noqa: E741
    """Instruments ``lo`` … ``hi``−1, one bar each, in order; scratch allocated once."""
    W = np.empty((F.N_W, 1))
    for j in range(lo, min(lo + AHEAD, hi)):
        _prefetch_state(S, R, j)
    for j in range(lo, hi):
        if j + AHEAD < hi:
            _prefetch_state(S, R, j + AHEAD)
        F._instrument(h, l, c, v, S, R, out, cols, W, j, 0, 1)


@njit(cache=True, error_model="numpy", inline="always")
def _walk_synced(h, l, c, v, S, R, out, cols, S0, R0, pos, lo, hi):  # noqa: E741
    """``_walk`` on a state that is another's (``S0``, ``R0``) but for the ring slots ``pos`` and its
    floats, made equal instrument by instrument just before its step: the lines copied are the lines
    the step then reads and writes, so they are fetched once (``copy_slots_k`` then ``_walk`` fetched
    them twice, the second time after 5,000 instruments had pushed them out of the caches)."""
    W = np.empty((F.N_W, 1))
    for j in range(lo, min(lo + AHEAD, hi)):
        _prefetch_state(S0, R0, j)
        _prefetch_state(S0, R, j)
    for j in range(lo, hi):
        if j + AHEAD < hi:
            _prefetch_state(S0, R0, j + AHEAD)
            _prefetch_state(S0, R, j + AHEAD)
        for k in range(S.shape[1]):
            S[j, k] = S0[j, k]
        _copy_rings(R, R0, pos, j)
        F._instrument(h, l, c, v, S, R, out, cols, W, j, 0, 1)


@njit(cache=True, error_model="numpy")
def row_synced_k(h, l, c, v, S, R, out, cols, S0, R0, pos):  # noqa: E741
    """``S`` ← ``S0``, the ``pos`` slots of ``R`` ← ``R0``'s (``copy_slots_k``'s layout), then ``row_k``:
    fused per instrument."""
    _walk_synced(h, l, c, v, S, R, out, cols, S0, R0, pos, 0, c.shape[0])


@njit(cache=True, parallel=True, error_model="numpy")
def row_parallel_synced_k(h, l, c, v, S, R, out, cols, S0, R0, pos, parts):  # noqa: E741
    """``row_synced_k`` on ``parts`` contiguous blocks of instruments in parallel."""
    N = c.shape[0]
    for p in prange(parts):
        _walk_synced(h, l, c, v, S, R, out, cols, S0, R0, pos, p * N // parts, (p + 1) * N // parts)


@njit(cache=True, error_model="numpy")
def row_k(h, l, c, v, S, R, out, cols):  # noqa: E741
    """``fused.series_k`` for inputs of one bar ((instrument × 1) arrays, ``out`` (feature × 1 ×
    instrument)): the same step per instrument, on one thread, the state's ring slots prefetched
    ``AHEAD`` instruments ahead."""
    _walk(h, l, c, v, S, R, out, cols, 0, c.shape[0])


@njit(cache=True, parallel=True, error_model="numpy")
def row_parallel_k(h, l, c, v, S, R, out, cols, parts):  # noqa: E741
    """``row_k`` on ``parts`` contiguous blocks of instruments in parallel (each walks its own)."""
    N = c.shape[0]
    for p in prange(parts):
        _walk(h, l, c, v, S, R, out, cols, p * N // parts, (p + 1) * N // parts)


# ---- which of the two passes runs: measured as the live loop runs them ---------------------------------
# Why not a fixed size threshold alone: both passes give the same bits, but which is faster depends on
# the machine's load more than on the size. Measured on 2 cores (state out of cache, a call every 0.2 s
# as the live loop calls it every cycle): quiet (load ~1), 2 threads halve the pass from ~1,000
# instruments up; under the other agents' load (3–4 on 2 cores) the parallel pass cost 8–16 ms at any
# size up to 5,000 (the one-thread pass: 0.4–7.7 ms), because numba's OpenMP worker has slept since the
# last cycle and the pass ends only once the scheduler has given it a core (a trivial 2-thread region
# took 12–18 ms after a pause under that load, 2 µs back to back). So the pass that has been faster on
# this machine lately runs, and the other is tried again now and then.

PARALLEL = "row_parallel_k"
SERIAL = "row_k"
MIN_PARALLEL = 1_000  # fewer instruments: the one-thread pass (< ~0.5 ms) leaves a second thread too little to win
_WINDOW = 5  # recent timings per pass whose median decides
_EXPLORE = 16  # every so many calls the pass not chosen runs, so a change of load is noticed


@dataclass
class RowPass:
    """Which per-instrument pass ``row_pass`` runs: the one whose recent timings (seconds per instrument,
    medians of the last ``_WINDOW``) are lower; one thread, or fewer than ``MIN_PARALLEL`` instruments,
    always runs ``row_k``. Kept in the stream state (``StreamState.extra``) so a peek and the commit
    that follows share what they measured. ``counts`` and ``last`` say what ran (the benches print them)."""

    timings: dict[str, list[float]] = field(default_factory=lambda: {SERIAL: [], PARALLEL: []})
    counts: dict[str, int] = field(default_factory=lambda: {SERIAL: 0, PARALLEL: 0})
    calls: int = 0
    last: str = ""
    # kernels called at least once: a kernel's first call may load or compile it, or start numba's
    # threads (measured: one took 30 s), which says nothing of the pass's speed, so it is not timed
    called: set[str] = field(default_factory=set)

    def choose(self, n: int, threads: int) -> str:
        if threads < 2 or n < MIN_PARALLEL:
            return SERIAL
        seq, par = self.timings[SERIAL], self.timings[PARALLEL]
        if len(seq) < 2 or len(par) < 2:  # learn both first, alternating
            return SERIAL if self.counts[SERIAL] <= self.counts[PARALLEL] else PARALLEL
        best = PARALLEL if float(np.median(par)) < float(np.median(seq)) else SERIAL
        if self.calls % _EXPLORE == _EXPLORE - 1:
            return SERIAL if best == PARALLEL else PARALLEL
        return best

    def summary(self) -> str:
        """What ran, for a bench line: each pass's count and its recent median per 1,000 instruments."""
        ran = ", ".join(
            f"{path} {self.counts[path]}×"
            + (f" ({float(np.median(self.timings[path])) * 1e6:.2f} ms/1,000)" if self.timings[path] else "")
            for path in (PARALLEL, SERIAL)
        )
        return f"per-instrument pass: {ran}; last {self.last or 'none'}; {numba.get_num_threads()} numba threads"

    def record(self, path: str, seconds: float, n: int, kernel: str = "") -> None:
        """``path`` took ``seconds`` for ``n`` instruments (``kernel``: the function that ran; its first
        call is counted but not timed)."""
        if kernel not in self.called:
            self.called.add(kernel)
        else:
            kept = self.timings[path]
            kept.append(seconds / max(n, 1))
            del kept[:-_WINDOW]
        self.counts[path] += 1
        self.calls += 1
        self.last = path


PENDING = "v2_row_pending"  # a stream state's ``extra`` key: (S0, R0, pos) the state is still to be made equal to


def row_pass(kept: dict[str, Any], h, l, c, v, S, R, out, cols) -> str:  # noqa: E741
    """One bar's per-instrument pass (``row_k``'s arguments) through whichever of ``row_k`` and
    ``row_parallel_k`` ``kept["row_pass"]`` (a ``RowPass``, created there) picks; the same bits either
    way (the same step per instrument, each instrument on one thread). Returns the pass that ran.

    ``kept[PENDING]``, when present (``incremental``'s peek leaves it), is taken out and the state is
    first made equal to ``(S0, R0)`` at the ring slots ``pos`` and in its floats, instrument by instrument
    inside the same pass (``row_synced_k``)."""
    chooser = kept.get("row_pass")
    if not isinstance(chooser, RowPass):
        chooser = kept["row_pass"] = RowPass()
    pending = kept.pop(PENDING, None)
    n, threads = c.shape[0], numba.get_num_threads()
    path = chooser.choose(n, threads)
    t0 = time.perf_counter()
    if pending is not None:  # the state is another's but for these slots and its floats: copied as it steps
        S0, R0, pos = pending
        if path == PARALLEL:
            kernel = "row_parallel_synced_k"
            row_parallel_synced_k(h, l, c, v, S, R, out, cols, S0, R0, pos, threads)
        else:
            kernel = "row_synced_k"
            row_synced_k(h, l, c, v, S, R, out, cols, S0, R0, pos)
    elif path == PARALLEL:
        kernel = "row_parallel_k"
        row_parallel_k(h, l, c, v, S, R, out, cols, threads)
    else:
        kernel = "row_k"
        row_k(h, l, c, v, S, R, out, cols)
    chooser.record(path, time.perf_counter() - t0, n, kernel)
    return path


def compile_passes() -> None:
    """Call each one-bar pass once on a 2-instrument state, with the argument types the live update
    passes (``warmup.compile_kernels``): ``row_pass`` runs only ``row_k`` below ``MIN_PARALLEL``
    instruments, so a tiny warm-up panel would leave the others to compile in the first live cycle."""
    n = 2
    s, rings, _, pair_rings = (np.ascontiguousarray(a) for a in astuple(F.V2State.empty(n)))
    out = np.empty((len(F.SERIES), 1, n))
    cols = np.arange(len(F.SERIES), dtype=np.int64)
    pos = np.zeros((1, n, N_WRITTEN), dtype=np.int64)
    for writeable in (True, False):  # bars from arrays, and from a Panel (pandas hands out read-only arrays)
        h, l, c, v = (np.ones((n, 1)) for _ in range(4))  # noqa: E741
        for a in (h, l, c, v):
            a.flags.writeable = writeable
        row_k(h, l, c, v, s.copy(), rings.copy(), out, cols)
        row_parallel_k(h, l, c, v, s.copy(), rings.copy(), out, cols, 2)
        row_synced_k(h, l, c, v, s.copy(), rings.copy(), out, cols, s, rings, pos)
        row_parallel_synced_k(h, l, c, v, s.copy(), rings.copy(), out, cols, s, rings, pos, 2)
    copy_slots_k(rings.copy(), pair_rings.copy(), rings, pair_rings, pos)
    copy_pair_slots_k(pair_rings.copy(), pair_rings, pos)


# ---- what one step writes in the rings: keeping a second copy of the state in step cheaply ----------
# A one-bar step rewrites each instrument's state floats (``S``, the pair sums) but only ONE slot of each
# ring: the slot at the ring's position before the step. So two copies of the state that differ by a few
# one-bar steps are made equal again by copying the floats and just those slots (1/60 of the rings),
# instead of the whole 11 KB per instrument (``incremental``'s peek scratch and checkpoint).

N_WRITTEN = _ROLLING + 3  # slots a step writes per instrument: each rolling ring, the two lag rings, the pair rings


@njit(cache=True, error_model="numpy", boundscheck=False)
def written_slots_k(S, P, pos):
    """``pos[j]``: the ring positions the next step of instrument ``j`` writes (``_rstep`` at each rolling
    statistic's position, the close and OBV lag rings at theirs, ``fused.pair_k`` at the pair's)."""
    for j in range(S.shape[0]):
        for ri in range(_ROLLING):
            pos[j, ri] = _slot(S, j, 5 * ri)
        pos[j, _ROLLING] = _slot(S, j, F.S_CLAG)
        pos[j, _ROLLING + 1] = _slot(S, j, F.S_OBVLAG)
        pos[j, _ROLLING + 2] = _slot(P, j, 0)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _copy_rings(dst_rings, rings, pos, j):
    for k in range(pos.shape[0]):
        for ri in range(_ROLLING):
            p = pos[k, j, ri]
            dst_rings[j, ri, p] = rings[j, ri, p]
        p = pos[k, j, _ROLLING]
        dst_rings[j, F.R_CLAG, p] = rings[j, F.R_CLAG, p]
        p = pos[k, j, _ROLLING + 1]
        dst_rings[j, F.R_OBVLAG, p] = rings[j, F.R_OBVLAG, p]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _copy_pair_rings(dst_pair_rings, pair_rings, pos, j):
    for k in range(pos.shape[0]):
        p = pos[k, j, _ROLLING + 2]
        dst_pair_rings[j, 0, p] = pair_rings[j, 0, p]
        dst_pair_rings[j, 1, p] = pair_rings[j, 1, p]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _copy_instrument(dst_rings, dst_pair_rings, rings, pair_rings, pos, j):
    _copy_rings(dst_rings, rings, pos, j)
    _copy_pair_rings(dst_pair_rings, pair_rings, pos, j)


@njit(cache=True, error_model="numpy", boundscheck=False)
def _prefetch_slots(dst_rings, rings, pos, j):
    for k in range(pos.shape[0]):
        for ri in range(_ROLLING):
            _prefetch(rings, j, ri, pos[k, j, ri])
            _prefetch(dst_rings, j, ri, pos[k, j, ri])


@njit(cache=True, error_model="numpy", boundscheck=False)
def copy_slots_k(dst_rings, dst_pair_rings, rings, pair_rings, pos):
    """Copy the ring slots ``pos`` ((steps × instrument × slot), ``written_slots_k``'s layout) from one
    state's rings into another's: instrument by instrument, the slots of every step at once (they share
    lines), the rolling rings' lines prefetched ``AHEAD`` instruments ahead as in ``row_k``."""
    N = pos.shape[1]
    for j in range(min(AHEAD, N)):
        _prefetch_slots(dst_rings, rings, pos, j)
    for j in range(N):
        if j + AHEAD < N:
            _prefetch_slots(dst_rings, rings, pos, j + AHEAD)
        _copy_instrument(dst_rings, dst_pair_rings, rings, pair_rings, pos, j)


@njit(cache=True, error_model="numpy", boundscheck=False)
def copy_pair_slots_k(dst_pair_rings, pair_rings, pos):
    """``copy_slots_k`` for the pair rings alone (the rings' slots then copied by ``row_synced_k``)."""
    for j in range(pos.shape[1]):
        _copy_pair_rings(dst_pair_rings, pair_rings, pos, j)
