"""``fused._instrument``'s arithmetic for ``LANES`` instruments at once, one vector lane each.

Why: one instrument at a time, every indicator is a chain of dependent scalar steps plus
data-dependent branches the predictor misses (gain or loss, a new high, the OBV's sign), ~12 cycles
a value. Across instruments those steps are independent: with the state laid out as structure of
arrays (one contiguous row of ``LANES`` values per quantity) the inner ``for g in range(LANES)``
loops have no branches, only selects, and LLVM's loop vectoriser packs them (``vmulpd``/``vdivpd``
on 4–8 lanes). numba leaves SLP vectorisation off, so straight-line code over a few instruments
would stay scalar: the lanes must be a loop.

When it applies (``vector_groups``): every bar of the group's rows is finite with a positive volume and
prices within 1e-100…1e100 (so no ratio, log or product of them overflows), and every count and
ring position of the group's state is the same (``UNIFORM``). Then each indicator's input is valid
on the same bars in every lane, so ring positions, counts and window resets stay one scalar for the
group; only the EMAs' counts (the ADX's input is NaN wherever ±DI are both 0) are per lane. Any
other group goes through ``fused._instrument``, instrument by instrument. Same operations in the
same order as ``fused_steps``, so the output is bit-identical (tested on blocks that mix both paths).

What made it fast (5,000 × 500, one thread, ``series_k``; each measured alone):
- the outputs go out through non-temporal stores of whole 64-byte lines (``_stream4``): a plain store
  first reads each line of the 860 MB block from memory, and those reads were 0.14 s of 0.31 s
  (0.31 → 0.22 s); a line streamed only in part was slower than plain stores (odd instrument counts);
- a group's lanes are any instruments with clean bars and one state (``vector_groups``), not
  neighbours: on the S&P 500 set (28 of 489 with holes) neighbours gave no group at all, gathered 92 %;
- the rolling extremes are Gil-Werman (``_extreme``), not rescans (most of a rescan's 95 ms);
- no reference counting: ``group_k`` and its helpers are compiled without numba's runtime, so a view
  of a scratch row costs no atomic increment (they were ~40 % of the profile's samples; the time
  saved was small, the stores above were the real bound);
- the helpers are called, not inlined by numba: inlining the 21 rolling statistics made ``group_k``
  take 60 s to compile (now ~20 s) for no measured gain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from workbench.features import fused as F
from workbench.features.fused_steps import _MEAN, _STD0, _STD1, _SUM, _ratio

__all__ = [
    "LANES",
    "MIN_ROWS",
    "UNIFORM",
    "compile_group",
    "clean_k",
    "group_k",
    "run_groups",
    "scratch",
    "vector_groups",
]

LANES = 64  # instruments per vector group: at 32 each loop's setup (alias checks) cost as much as its 4 iterations;
# at 128 the group's state, rings and suffix extremes (~1.2 MB) overflow the 1 MB L2 (0.31 against 0.29 s)
MIN_ROWS = 16  # fewer rows: copying the group's state in and out costs more than the lanes save
_CH = 64  # rows per transposed input chunk (4 × 64 × 64 doubles)
_LO, _HI = 1e-100, 1e100

# Compiled without numba's runtime (no reference counting: a view costs no atomic increment); the stubs
# do not know the option.
_kernel = njit(cache=True, error_model="numpy", boundscheck=False, _nrt=False)  # type: ignore[call-overload]
_inline_kernel = njit(cache=True, error_model="numpy", boundscheck=False, inline="always", _nrt=False)  # type: ignore[call-overload]
_nogil_kernel = njit(cache=True, error_model="numpy", boundscheck=False, nogil=True, _nrt=False)  # type: ignore[call-overload]

_ROLLING = 21  # rolling statistics with 5 state floats each (the rings before R_CLAG)
# State slots that must be equal across a group: rolling positions and counts, lags and bar counts.
UNIFORM = np.array(
    [5 * k for k in range(_ROLLING)]
    + [5 * k + 1 for k in range(_ROLLING)]
    + [F.S_CLAG, F.S_CLAG + 1, F.S_HLC + 3, F.S_TP + 1, F.S_OBV + 2, F.S_OBVLAG, F.S_OBVLAG + 1],
    dtype=np.int64,
)


def _stream4_typer(typingctx, out, f, u, j, src, g):
    """``out[f, u, j : j+4] = src[g : g+4]`` as one non-temporal store (``vmovntpd``; the caller makes
    sure ``out[f, u, j]`` is 32-byte aligned): the block's lines are written whole without being read
    first (a plain store reads each line from memory before writing it, which doubled the traffic of
    the ~620 MB ``group_k`` writes into a 5,000 × 500 block). Only whole lines: a line streamed in
    part is written back alone, slower than plain stores (489 instruments, rows 8-byte aligned: 132
    ns an instrument-bar against 83 at 640 with 32-byte aligned parts; whole lines only: see notes)."""
    sig = types.void(out, f, u, j, src, g)

    def codegen(context, builder, signature, args):
        oty, sty = signature.args[0], signature.args[4]
        oar = context.make_array(oty)(context, builder, args[0])
        sar = context.make_array(sty)(context, builder, args[4])
        idx = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:4], signature.args[1:4], strict=True)]
        dst = cgutils.get_item_pointer(context, builder, oty, oar, idx, wraparound=False)
        at = context.cast(builder, args[5], signature.args[5], types.intp)
        src_ = cgutils.get_item_pointer(context, builder, sty, sar, [at], wraparound=False)
        vec = ir.VectorType(ir.DoubleType(), 4).as_pointer()
        value = builder.load(builder.bitcast(src_, vec), align=8)
        store = builder.store(value, builder.bitcast(dst, vec), align=32)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return sig, codegen


def _sfence_typer(typingctx):
    """Orders the non-temporal stores before anything after (another thread reading the block)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


def _address_typer(typingctx, out, f, u, j):
    """The address of ``out[f, u, j]`` (to align the streaming stores)."""
    sig = types.intp(out, f, u, j)

    def codegen(context, builder, signature, args):
        oty = signature.args[0]
        oar = context.make_array(oty)(context, builder, args[0])
        idx = [context.cast(builder, a, t, types.intp) for a, t in zip(args[1:], signature.args[1:], strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, oty, oar, idx, wraparound=False)
        return builder.ptrtoint(ptr, context.get_value_type(types.intp))

    return sig, codegen


_stream4: Any = intrinsic(_stream4_typer)
_address: Any = intrinsic(_address_typer)
_sfence: Any = intrinsic(_sfence_typer)


@_kernel
def clean_k(h, l, c, v, t0, m, ok):  # noqa: E741
    """``ok[j]``: instrument j's rows t0 … t0+m−1 are all finite, with prices and volume in 1e-100…1e100
    (13 ms at 5,000 × 500: reading the 80 MB of bars once)."""
    for j in range(c.shape[0]):
        n = 0
        for u in range(t0, t0 + m):
            hh, ll, cc, vv = h[j, u], l[j, u], c[j, u], v[j, u]
            n += (
                (hh >= _LO)
                & (hh <= _HI)
                & (ll >= _LO)
                & (ll <= _HI)
                & (cc >= _LO)
                & (cc <= _HI)
                & (vv >= _LO)
                & (vv <= _HI)
            )
        ok[j] = n == m


@_inline_kernel
def _max(a, b):
    """numba's ``max(a, b)`` (``b if b > a else a``) as a select: the builtin stops the vectoriser."""
    return b if b > a else a


@_inline_kernel
def _min(a, b):
    """``_max``'s counterpart."""
    return b if b < a else a


@_kernel
def _roll(x, n, mode, rv, ri, sv, up, uc, y):
    """``fused_steps._rstep`` for every lane of ``x`` at once, sums and deviations (extremes: ``_extreme``);
    the ring position and count are the group's (``up[ri]``, ``uc[ri]``), the running sums per lane in
    ``sv``'s rows 5·ri+2 … 5·ri+4."""
    if not np.isfinite(x[0]):  # valid in every lane or in none (``vector_groups``)
        for g in range(LANES):
            y[g] = np.nan
        return
    p = up[ri]
    c = uc[ri] + 1.0
    full = c > n
    a, b, k = 5 * ri + 2, 5 * ri + 3, 5 * ri + 4
    q = p + 1
    if q == n:
        q = 0
    if mode <= 1:
        if full:
            for g in range(LANES):
                xx = x[g]
                old = rv[ri, p, g]
                rv[ri, p, g] = xx
                sv[a, g] += xx - old
        else:
            for g in range(LANES):
                xx = x[g]
                rv[ri, p, g] = xx
                sv[a, g] += xx
        if q == 0:
            for g in range(LANES):
                y[g] = 0.0
            for i in range(n):
                for g in range(LANES):
                    y[g] += rv[ri, i, g]
            for g in range(LANES):
                sv[a, g] = y[g]
    elif mode <= 3:
        for g in range(LANES):
            xx = x[g]
            old = rv[ri, p, g]
            rv[ri, p, g] = xx
            kk = sv[k, g]
            run = sv[a, g]
            run2 = sv[b, g]
            if full:
                e = old - kk
                run -= e
                run2 -= e * e
            e = xx - kk
            sv[a, g] = run + e
            sv[b, g] = run2 + e * e
        if q == 0:
            for g in range(LANES):
                y[g] = 0.0
            for i in range(n):
                for g in range(LANES):
                    y[g] += rv[ri, i, g]
            for g in range(LANES):
                sv[k, g] = y[g] / n
                sv[a, g] = 0.0
                sv[b, g] = 0.0
            for i in range(n):
                for g in range(LANES):
                    e = rv[ri, i, g] - sv[k, g]
                    sv[a, g] += e
                    sv[b, g] += e * e
    up[ri] = q
    uc[ri] = c
    if c < n:
        for g in range(LANES):
            y[g] = np.nan
    elif mode == _MEAN:
        for g in range(LANES):
            y[g] = sv[a, g] / n
    elif mode == _SUM:
        for g in range(LANES):
            y[g] = sv[a, g]
    else:
        ddof = 0 if mode == _STD0 else 1
        for g in range(LANES):
            run = sv[a, g]
            var = (sv[b, g] - run * run / n) / (n - ddof)
            y[g] = np.sqrt(var) if var > 0 else (0.0 if var == var else np.nan)


@_kernel
def _extreme(x, n, highest, rv, ri, sv, up, uc, y, sfx, pre):
    """``fused_steps._rstep``'s rolling maximum (``highest``) or minimum for every lane of ``x``.

    Why not its rescan: on prices the window's extreme is often its oldest value (a random walk's
    maximum sits near an end of the window), so some lane of 8 needed a rescan at ~2 of 3 bars and
    the rescans were a third of ``group_k``. Here (van Herk / Gil-Werman over the ring's cycles) the
    window after writing slot p is slots 0…p of this cycle, whose extreme ``pre`` runs along, and
    slots p+1…n−1 of the last cycle, whose suffix extremes ``sfx`` were taken when the ring wrapped:
    two selects a bar plus n per n bars. The extreme of a set of finite values is one of them, so it
    is the rescan's value bit for bit, and ``sv``'s running value stays the per-instrument path's.
    ``_extreme_init`` rebuilds ``sfx``/``pre`` from the ring at a call's start."""
    if not np.isfinite(x[0]):  # valid in every lane or in none (``vector_groups``)
        for g in range(LANES):
            y[g] = np.nan
        return
    p = up[ri]
    c = uc[ri] + 1.0
    a = 5 * ri + 2
    ring = rv[ri, p]
    run = sv[a]
    for g in range(LANES):
        ring[g] = x[g]
    if p == 0:
        for g in range(LANES):
            pre[g] = x[g]
    elif highest:
        for g in range(LANES):
            pre[g] = _max(pre[g], x[g])
    else:
        for g in range(LANES):
            pre[g] = _min(pre[g], x[g])
    if c > n:  # full: this cycle's head and the last cycle's tail
        tail = sfx[p + 1]
        if highest:
            for g in range(LANES):
                run[g] = _max(pre[g], tail[g])
        else:
            for g in range(LANES):
                run[g] = _min(pre[g], tail[g])
    elif c == 1.0:
        for g in range(LANES):
            run[g] = x[g]
    elif highest:  # filling: the extreme of the values seen (``_rstep``: x replaces an equal run)
        for g in range(LANES):
            run[g] = x[g] if x[g] >= run[g] else run[g]
    else:
        for g in range(LANES):
            run[g] = x[g] if x[g] <= run[g] else run[g]
    q = p + 1
    if q == n:
        q = 0
        _suffixes(rv, ri, n, highest, sfx, 0)
    up[ri] = q
    uc[ri] = c
    if c < n:
        for g in range(LANES):
            y[g] = np.nan
    else:
        for g in range(LANES):
            y[g] = run[g]


@_kernel
def _suffixes(rv, ri, n, highest, sfx, lo):
    """``sfx[i]`` = the extreme of ring slots i … n−1, for i ≥ ``lo``; ``sfx[n]`` the empty set's."""
    end = sfx[n]
    for g in range(LANES):
        end[g] = -np.inf if highest else np.inf
    for i in range(n - 1, lo - 1, -1):
        cur, nxt, slot = sfx[i], sfx[i + 1], rv[ri, i]
        if highest:
            for g in range(LANES):
                cur[g] = _max(slot[g], nxt[g])
        else:
            for g in range(LANES):
                cur[g] = _min(slot[g], nxt[g])


@_kernel
def _extreme_init(rv, ri, n, highest, up, sfx, pre):
    """``_extreme``'s running parts from a ring as a previous call (or the per-instrument path)
    left it: the extreme of this cycle's slots 0…p−1, and the suffixes of the slots p… still holding
    the last cycle's values (stale slots of a ring not yet full are never read: the window fills only
    after the ring wraps, which recomputes them)."""
    p = up[ri]
    for g in range(LANES):
        pre[g] = -np.inf if highest else np.inf
    for i in range(p):
        slot = rv[ri, i]
        if highest:
            for g in range(LANES):
                pre[g] = _max(pre[g], slot[g])
        else:
            for g in range(LANES):
                pre[g] = _min(pre[g], slot[g])
    _suffixes(rv, ri, n, highest, sfx, p)


@_kernel
def _ema(x, n, alpha, skip, wilder, sv, o, y):
    """``fused_steps._estep`` per lane, branch-free (its counts may differ between lanes)."""
    for g in range(LANES):
        xx = x[g]
        fin = np.isfinite(xx)
        yy, acc, cnt = sv[o, g], sv[o + 1, g], sv[o + 2, g]
        c2 = cnt + 1.0
        k = c2 - skip
        accx = acc + xx
        if wilder:
            upd = (yy * (n - 1) + xx) / n
        else:
            upd = yy + alpha * (xx - yy)
        ynew = accx / n if k == n else upd
        seeded = fin and k >= n
        sv[o, g] = ynew if seeded else yy
        sv[o + 1, g] = accx if (fin and k > 0 and k <= n) else acc
        sv[o + 2, g] = c2 if fin else cnt
        y[g] = ynew if seeded else np.nan


@_kernel
def _wilder(x, n, sv, o, y):
    """``fused_steps._wstep`` per lane, branch-free."""
    for g in range(LANES):
        xx = x[g]
        fin = np.isfinite(xx)
        s, cnt = sv[o, g], sv[o + 1, g]
        c2 = cnt + 1.0
        early = c2 < n
        s2 = (s + xx) if early else ((s - s / n) + xx)
        sv[o, g] = s2 if fin else s
        sv[o + 1, g] = c2 if fin else cnt
        y[g] = s2 if (fin and not early) else np.nan


@_kernel
def _lag(x, sv, o, y):
    """``fused_steps._lstep`` per lane."""
    for g in range(LANES):
        xx = x[g]
        fin = np.isfinite(xx)
        prev, cnt = sv[o, g], sv[o + 1, g]
        y[g] = (prev if cnt >= 1.0 else np.nan) if fin else np.nan
        sv[o, g] = xx if fin else prev
        sv[o + 1, g] = cnt + 1.0 if fin else cnt


# Slots of each ring that the path uses (its window): only those are copied in and out.
_RLEN = np.array([20, 60, 20, 20, 14, 14, 3, 3, 14, 14, 20, 20, 20, 20, 20, 20, 20, 60, 60, 20, 20, F.RING, 20])
# The rolling extremes' (ring, window), in ``sfx``/``pre`` order; even = maxima, odd = minima.
_EXTREMES = F.EXTREMES
# Per-lane scratch rows: the bar's derived series, then the indicators' outputs.
(D_LR, D_RR, D_GAIN, D_LOSS, D_TR, D_PLUS, D_MINUS, D_POS, D_NEG, D_MF, D_OBVD, D_LOGV) = range(12)
N_D = 12
N_Y = 8


def scratch() -> tuple[np.ndarray, ...]:
    """``group_k``'s working arrays, one set per thread: ``group_k`` runs without numba's reference
    counting, which cannot allocate."""
    G = LANES
    return (
        np.empty((F.N_STATE, G)),
        np.empty((F.N_RINGS, F.RING, G)),
        np.empty(F.N_RINGS, dtype=np.int64),
        np.empty(F.N_RINGS),
        np.empty((4, _CH, G)),
        np.empty((N_D, G)),
        np.empty((N_Y, G)),
        np.empty((len(_EXTREMES), F.RING + 1, G)),
        np.empty((len(_EXTREMES), G)),
        np.empty((len(F.SERIES), G)),
    )


def vector_groups(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, S: np.ndarray) -> np.ndarray:  # noqa: E741
    """The instruments ``series_k`` runs in vector lanes: (groups × ``LANES``) instrument numbers, each
    group clean on every row (``clean_k``) and of one ``UNIFORM`` state, in instrument order.

    Why gathered, not ``LANES`` neighbours: on real panels a few instruments with a late listing or
    a missing bar sit among the others (28 of the S&P 500 set's 489), and groups of neighbours then
    had one such instrument each: no group ran in lanes at all."""
    N, T = c.shape
    none = np.empty((0, LANES), dtype=np.int64)
    if T < MIN_ROWS or N < LANES:
        return none
    ok = np.empty(N, dtype=np.bool_)
    clean_k(h, l, c, v, 0, T, ok)
    idx = np.flatnonzero(ok)
    if len(idx) < LANES:
        return none
    state = S[idx][:, UNIFORM]
    if (state == state[0]).all():  # the usual case (a fresh state, or one history for all): one kind
        kind = np.zeros(len(idx), dtype=np.int64)
    else:
        kind = np.unique(state, axis=0, return_inverse=True)[1].ravel()
    groups = []
    for k in range(int(kind.max()) + 1):
        members = idx[kind == k]
        whole = len(members) // LANES * LANES
        groups.append(members[:whole].reshape(-1, LANES))
    return np.concatenate(groups).astype(np.int64) if groups else none


def compile_group() -> None:
    """Compile ``group_k`` for the inputs ``sets.v2_stream`` passes (read-only C arrays): a panel too
    small for a whole group (the warm-up's) would leave it to compile at a user's first big build."""
    from workbench.features.sets import _SERIES_POS, V2_COLUMNS

    rows = np.linspace(100.0, 110.0, LANES * MIN_ROWS).reshape(LANES, MIN_ROWS)
    bars = [rows * 1.01, rows * 0.99, rows, np.full_like(rows, 1e3)]
    for b in bars:
        b.flags.writeable = False
    st = F.V2State.empty(LANES)
    out = np.full((len(V2_COLUMNS), MIN_ROWS, LANES), np.nan)
    group_k(*bars, st.s, st.rings, out, _SERIES_POS, np.arange(LANES).reshape(1, LANES), 0, MIN_ROWS, scratch())


def run_groups(h, l, c, v, S, R, out, cols, groups: np.ndarray, threads: int) -> None:  # noqa: E741
    """``group_k`` over ``groups`` (``vector_groups``), split over ``threads`` Python threads (it holds no
    GIL). Why not numba's ``prange``: a kernel is compiled again inside each caller it is linked
    into, and ``group_k`` inside a parallel kernel cost ~40 s more of ``workbench init``."""
    if len(groups) == 0:
        return
    T = c.shape[1]
    threads = max(1, min(threads, len(groups)))
    if threads == 1:
        group_k(h, l, c, v, S, R, out, cols, groups, 0, T, scratch())
        return
    with ThreadPoolExecutor(threads) as pool:
        parts = np.array_split(groups, threads)
        list(pool.map(lambda p: group_k(h, l, c, v, S, R, out, cols, p, 0, T, scratch()), parts))


@_nogil_kernel
def group_k(h, l, c, v, S, R, out, cols, groups, t0, m, scratch):  # noqa: E741
    """Rows t0 … t0+m−1 of the instruments of each row of ``groups`` (``vector_groups``), state in and
    out of ``S``/``R`` as ``fused._instrument`` keeps it: the same numbers, bit for bit."""
    for b in range(groups.shape[0]):
        _group(h, l, c, v, S, R, out, cols, groups[b], t0, m, scratch)


@_nogil_kernel
def _group(h, l, c, v, S, R, out, cols, idx, t0, m, scratch):  # noqa: E741
    G = LANES
    o = cols
    sv, rv, up, uc, xin, w, ys, sfx, pre, orow = scratch
    j0 = idx[0]  # every lane has its state (``UNIFORM``)
    for g in range(G):
        for s in range(F.N_STATE):
            sv[s, g] = S[idx[g], s]
        for ri in range(F.N_RINGS):
            for i in range(_RLEN[ri]):
                rv[ri, i, g] = R[idx[g], ri, i]
    for ri in range(_ROLLING):
        up[ri] = int(S[j0, 5 * ri])
        uc[ri] = S[j0, 5 * ri + 1]
    cp, cn = int(S[j0, F.S_CLAG]), S[j0, F.S_CLAG + 1]
    nh, ntp, nob = S[j0, F.S_HLC + 3], S[j0, F.S_TP + 1], S[j0, F.S_OBV + 2]
    op, on = int(S[j0, F.S_OBVLAG]), S[j0, F.S_OBVLAG + 1]
    for e in range(len(_EXTREMES)):
        ri, n = _EXTREMES[e]
        _extreme_init(rv, ri, n, e % 2 == 0, up, sfx[e], pre[e])
    for c0 in range(t0, t0 + m, _CH):
        mc = min(_CH, t0 + m - c0)
        for g in range(G):
            for t in range(mc):
                xin[0, t, g] = h[idx[g], c0 + t]
                xin[1, t, g] = l[idx[g], c0 + t]
                xin[2, t, g] = c[idx[g], c0 + t]
                xin[3, t, g] = v[idx[g], c0 + t]
        for t in range(mc):
            u = c0 + t
            H, L, C, V = xin[0, t], xin[1, t], xin[2, t], xin[3, t]
            # pass 1: returns over the ring of the last 60 closes (every lane valid: one position)
            for k, lag in ((0, 1), (1, 5), (2, 10), (3, 20), (4, 60)):
                if cn >= lag:
                    i = cp - lag + (F.RING if cp < lag else 0)
                    rk = orow[k]
                    for g in range(G):
                        rk[g] = _ratio(C[g], rv[F.R_CLAG, i, g]) - 1.0
                else:
                    rk = orow[k]
                    for g in range(G):
                        rk[g] = np.nan
            if cn >= 1:
                i = cp - 1 + (F.RING if cp < 1 else 0)
                for g in range(G):
                    l1 = rv[F.R_CLAG, i, g]
                    w[D_RR, g] = _ratio(C[g], l1)
                    dd = C[g] - l1
                    w[D_GAIN, g] = dd if dd > 0 else 0.0
                    w[D_LOSS, g] = -dd if dd < 0 else 0.0
                for g in range(G):
                    rr = w[D_RR, g]
                    w[D_LR, g] = np.log(rr) if rr > 0 else np.nan
            else:
                for g in range(G):
                    w[D_LR, g] = w[D_GAIN, g] = w[D_LOSS, g] = np.nan
            for g in range(G):
                rv[F.R_CLAG, cp, g] = C[g]
            cp = cp + 1 if cp + 1 < F.RING else 0
            cn += 1.0
            # true range and directional movement against the previous bar
            b = F.S_HLC
            if nh >= 1.0:
                for g in range(G):
                    hm, lm, qh, ql, qc = H[g], L[g], sv[b, g], sv[b + 1, g], sv[b + 2, g]
                    w[D_TR, g] = _max(hm - lm, _max(abs(hm - qc), abs(lm - qc)))
                    up_ = hm - qh
                    down = ql - lm
                    w[D_PLUS, g] = up_ if (up_ > 0 and up_ > down) else 0.0
                    w[D_MINUS, g] = down if (down > 0 and down > up_) else 0.0
            else:
                for g in range(G):
                    w[D_TR, g] = w[D_PLUS, g] = w[D_MINUS, g] = np.nan
            for g in range(G):
                sv[b, g], sv[b + 1, g], sv[b + 2, g] = H[g], L[g], C[g]
            nh += 1.0
            # money flow
            ptp, mfs, pos, neg = sv[F.S_TP], w[D_MF], w[D_POS], w[D_NEG]
            for g in range(G):
                mfs[g] = (H[g] + L[g] + C[g]) / 3.0 * V[g]
            for g in range(G):
                tp = (H[g] + L[g] + C[g]) / 3.0
                dtp = tp - ptp[g]
                tol = 1e-12 * abs(ptp[g])
                pos[g] = (mfs[g] if dtp > tol else 0.0) if ntp >= 1.0 else np.nan
            for g in range(G):
                tp = (H[g] + L[g] + C[g]) / 3.0
                dtp = tp - ptp[g]
                tol = 1e-12 * abs(ptp[g])
                neg[g] = (mfs[g] if dtp < -tol else 0.0) if ntp >= 1.0 else np.nan
            for g in range(G):
                ptp[g] = (H[g] + L[g] + C[g]) / 3.0
            ntp += 1.0
            # on-balance volume and its change over 20 of its bars
            b = F.S_OBV
            obc, obv, lag = sv[b], sv[b + 1], rv[F.R_OBVLAG, op]  # one array written per loop: no alias checks
            for g in range(G):
                cc, vv, ob = C[g], V[g], obv[g]
                obv[g] = vv if nob == 0.0 else (ob + vv if cc > obc[g] else (ob - vv if cc < obc[g] else ob))
            for g in range(G):
                obc[g] = C[g]
            for g in range(G):
                w[D_OBVD, g] = obv[g] - (lag[g] if on >= 20 else np.nan)
            for g in range(G):
                lag[g] = obv[g]
            nob += 1.0
            op = op + 1 if op + 1 < 20 else 0
            on += 1.0
            for g in range(G):
                w[D_LOGV, g] = np.log(V[g])

            # vol, RSI, Bollinger bands, ATR
            _roll(w[D_LR], 20, _STD1, rv, F.R_VOL20, sv, up, uc, ys[0])
            _roll(w[D_LR], 60, _STD1, rv, F.R_VOL60, sv, up, uc, ys[1])
            _ema(w[D_GAIN], 14, 1.0 / 14, 0, False, sv, F.S_EG, ys[2])
            _ema(w[D_LOSS], 14, 1.0 / 14, 0, False, sv, F.S_EL, ys[3])
            _roll(C, 20, _MEAN, rv, F.R_BBM, sv, up, uc, ys[4])
            _roll(C, 20, _STD0, rv, F.R_BBS, sv, up, uc, ys[5])
            _ema(w[D_TR], 14, 1.0 / 14, 0, False, sv, F.S_ATR, ys[6])
            r5 = orow[5]
            r6 = orow[6]
            r7 = orow[7]
            r11 = orow[11]
            r12 = orow[12]
            r13 = orow[13]
            for g in range(G):
                r5[g] = ys[0, g]
                r6[g] = ys[1, g]
                gg, loss = ys[2, g], ys[3, g]
                total = gg + loss
                r7[g] = (50.0 if total == 0 else 100.0 * gg / total) / 100.0
                mid, sd = ys[4, g], ys[5, g]
                upper = mid + 2.0 * sd
                lower = mid - 2.0 * sd
                width = upper - lower
                r11[g] = 0.5 if width == 0 else (C[g] - lower) / width
                r12[g] = _ratio(upper - lower, mid)
                r13[g] = _ratio(ys[6, g], C[g])
            # MACD and the EMA ratios
            _ema(C, 26, 2.0 / 27, 0, False, sv, F.S_E26, ys[0])
            _ema(C, 12, 2.0 / 13, 14, False, sv, F.S_E12F, ys[1])
            for g in range(G):
                ys[2, g] = ys[1, g] - ys[0, g]
            _ema(ys[2], 9, 2.0 / 10, 0, False, sv, F.S_SIG, ys[3])
            _ema(C, 12, 2.0 / 13, 0, False, sv, F.S_E12, ys[4])
            _ema(C, 50, 2.0 / 51, 0, False, sv, F.S_E50, ys[5])
            r8 = orow[8]
            r9 = orow[9]
            r10 = orow[10]
            r14 = orow[14]
            r15 = orow[15]
            r16 = orow[16]
            for g in range(G):
                cc, line, sig = C[g], ys[2, g], ys[3, g]
                r8[g] = _ratio(line, cc)
                r9[g] = _ratio(sig, cc)
                r10[g] = _ratio(line - sig, cc)
                r14[g] = _ratio(cc, ys[4, g]) - 1.0
                r15[g] = _ratio(cc, ys[0, g]) - 1.0
                r16[g] = _ratio(cc, ys[5, g]) - 1.0
            # ADX and the DI spread; the slow stochastic
            _wilder(w[D_PLUS], 14, sv, F.S_WP, ys[0])
            _wilder(w[D_MINUS], 14, sv, F.S_WM, ys[1])
            _wilder(w[D_TR], 14, sv, F.S_WT, ys[2])
            r18 = orow[18]
            for g in range(G):
                pdi = 100.0 * _ratio(ys[0, g], ys[2, g])
                mdi = 100.0 * _ratio(ys[1, g], ys[2, g])
                ys[3, g] = 100.0 * _ratio(abs(pdi - mdi), pdi + mdi)
                r18[g] = (pdi - mdi) / 100.0
            _ema(ys[3], 14, 2.0 / 15, 0, True, sv, F.S_ADX, ys[4])
            r17 = orow[17]
            for g in range(G):
                r17[g] = ys[4, g] / 100.0
            _extreme(H, 14, True, rv, F.R_STH, sv, up, uc, ys[0], sfx[0], pre[0])
            _extreme(L, 14, False, rv, F.R_STL, sv, up, uc, ys[1], sfx[1], pre[1])
            for g in range(G):
                hi, lo = ys[0, g], ys[1, g]
                rng = hi - lo
                ys[2, g] = 100.0 * (C[g] - lo) / rng if rng > 0 else (50.0 if rng == rng else np.nan)
            _roll(ys[2], 3, _MEAN, rv, F.R_SK, sv, up, uc, ys[3])
            _roll(ys[3], 3, _MEAN, rv, F.R_SD, sv, up, uc, ys[4])
            r19 = orow[19]
            r20 = orow[20]
            for g in range(G):
                r19[g] = ys[3, g] / 100.0
                r20[g] = ys[4, g] / 100.0
            # breakouts beyond the previous 20 bars' extremes; distance to the rolling high/low
            _extreme(H, 20, True, rv, F.R_BKH, sv, up, uc, ys[0], sfx[2], pre[2])
            _extreme(L, 20, False, rv, F.R_BKL, sv, up, uc, ys[1], sfx[3], pre[3])
            _lag(ys[0], sv, F.S_BK, ys[2])
            _lag(ys[1], sv, F.S_BK + 2, ys[3])
            _extreme(H, 20, True, rv, F.R_DH20, sv, up, uc, ys[4], sfx[4], pre[4])
            _extreme(L, 20, False, rv, F.R_DL20, sv, up, uc, ys[5], sfx[5], pre[5])
            _extreme(H, 60, True, rv, F.R_DH60, sv, up, uc, ys[6], sfx[6], pre[6])
            _extreme(L, 60, False, rv, F.R_DL60, sv, up, uc, ys[7], sfx[7], pre[7])
            r29 = orow[29]
            r30 = orow[30]
            r25 = orow[25]
            r26 = orow[26]
            r27 = orow[27]
            r28 = orow[28]
            for g in range(G):
                cc, hi, lo = C[g], ys[2, g], ys[3, g]
                r29[g] = (1.0 if cc > hi else 0.0) if hi == hi else np.nan
                r30[g] = (1.0 if cc < lo else 0.0) if lo == lo else np.nan
                r25[g] = _ratio(cc, ys[4, g]) - 1.0
                r26[g] = _ratio(cc, ys[5, g]) - 1.0
                r27[g] = _ratio(cc, ys[6, g]) - 1.0
                r28[g] = _ratio(cc, ys[7, g]) - 1.0
            # MFI and the rolling VWAP; OBV flow and the volume z-score
            _roll(w[D_POS], 14, _SUM, rv, F.R_MFP, sv, up, uc, ys[0])
            _roll(w[D_NEG], 14, _SUM, rv, F.R_MFN, sv, up, uc, ys[1])
            _roll(w[D_MF], 20, _SUM, rv, F.R_VWN, sv, up, uc, ys[2])
            _roll(V, 20, _SUM, rv, F.R_VWD, sv, up, uc, ys[3])
            _roll(V, 20, _SUM, rv, F.R_OBVD, sv, up, uc, ys[4])
            _roll(w[D_LOGV], 20, _MEAN, rv, F.R_VZM, sv, up, uc, ys[5])
            _roll(w[D_LOGV], 20, _STD0, rv, F.R_VZS, sv, up, uc, ys[6])
            r21 = orow[21]
            r24 = orow[24]
            r22 = orow[22]
            r23 = orow[23]
            for g in range(G):
                ps, ns = ys[0, g], ys[1, g]
                r21[g] = 100.0 * _ratio(ps, ps + ns) / 100.0
                r24[g] = _ratio(C[g], _ratio(ys[2, g], ys[3, g])) - 1.0
                r22[g] = _ratio(w[D_OBVD, g], ys[4, g])
                lv = w[D_LOGV, g]
                r23[g] = _ratio(lv - ys[5, g], ys[6, g])
            for k in range(len(o)):
                # lanes before the first line boundary, then whole 64-byte lines, then the rest: a
                # streamed part of a line is written back alone, slower than a plain store
                head = ((-_address(out, o[k], u, idx[0])) & 63) >> 3
                for i in range(head):
                    out[o[k], u, idx[i]] = orow[k, i]
                g = head
                while g + 8 <= G:
                    j = idx[g]
                    if idx[g + 7] == j + 7 and (_address(out, o[k], u, j) & 63) == 0:  # one whole line
                        _stream4(out, o[k], u, j, orow[k], g)
                        _stream4(out, o[k], u, j + 4, orow[k], g + 4)
                    else:
                        for i in range(g, g + 8):
                            out[o[k], u, idx[i]] = orow[k, i]
                    g += 8
                for i in range(g, G):
                    out[o[k], u, idx[i]] = orow[k, i]
    _sfence()
    # state back, as the per-instrument path keeps it
    for ri in range(_ROLLING):
        sv[5 * ri, :] = up[ri]
        sv[5 * ri + 1, :] = uc[ri]
    sv[F.S_CLAG, :], sv[F.S_CLAG + 1, :] = cp, cn
    sv[F.S_HLC + 3, :], sv[F.S_TP + 1, :], sv[F.S_OBV + 2, :] = nh, ntp, nob
    sv[F.S_OBVLAG, :], sv[F.S_OBVLAG + 1, :] = op, on
    for g in range(G):
        for s in range(F.N_STATE):
            S[idx[g], s] = sv[s, g]
        for ri in range(F.N_RINGS):
            for i in range(_RLEN[ri]):
                R[idx[g], ri, i] = rv[ri, i, g]
