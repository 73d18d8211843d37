"""The fused v2 kernels' one-value steps: each indicator's update by one value, its state in the
caller's locals, and the ring helpers and state loads/saves around them.

Why a module of their own: ``fused.series_k`` runs them over a whole history and the live engine's
one-row path runs the very same steps, so both give the same bits; ``fused`` re-exports every name.
Modes of the rolling statistic are those of ``kernels.rolling_k``: MEAN, SUM, STD0, STD1, MAX, MIN.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "_MEAN", "_SUM", "_STD0", "_STD1", "_MAX", "_MIN",
    "_ratio", "_ring_sum", "_ring_dev", "_ring_extreme",
    "_rload", "_rsave", "_rstep", "_load3", "_save3", "_load2", "_save2",
    "_estep", "_wstep", "_lstep",
]  # fmt: skip

_MEAN, _SUM, _STD0, _STD1, _MAX, _MIN = 0, 1, 2, 3, 4, 5


# ---- column primitives: one instrument's rows, state in locals while the loop runs ----------------
# Each reads scratch row ``a`` of ``W`` (one instrument's values in time order) and writes row ``d``;
# a non-finite value leaves the state alone and gives NaN (the streaming indicators' skipping rule).


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _ratio(num, den):
    out = num / den
    return out if np.isfinite(out) and den > 0 else np.nan


@njit(cache=True, inline="always")
def _ring_sum(R, j, ri, n):
    """Exact re-sum of ring ``ri``'s ``n`` slots, oldest slot first (the rolling sums' reset)."""
    s = 0.0
    for i in range(n):
        s += R[j, ri, i]
    return s


@njit(cache=True, inline="always")
def _ring_dev(R, j, ri, n, m):
    """Sum and sum of squares of the ring's deviations from ``m`` (the rolling std's reset)."""
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        e = R[j, ri, i] - m
        s1 += e
        s2 += e * e
    return s1, s2


@njit(cache=True, inline="always")
def _ring_extreme(R, j, ri, n, highest):
    """The ring's maximum (``highest``) or minimum, rescanned when the extreme leaves the window."""
    m = R[j, ri, 0]
    for i in range(1, n):
        x = R[j, ri, i]
        if (x > m) if highest else (x < m):
            m = x
    return m


# ---- one-value steps: each indicator's update for one finite input, state in the caller's locals ----
# Why steps, not one loop per column: a column loop is latency-bound on its own recurrence (a count,
# a running sum, a filter value), ~12 cycles a value. Several independent steps in one loop over
# time let the core overlap their chains, and the derived inputs stay in registers instead of
# scratch rows. Same arithmetic as ``kernels.rolling_k``/``ema_k``/``wilder_sum_k``, value by value.


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _rload(S, j, o):
    """A rolling statistic's five state floats: (ring position, count, run, run2, shift)."""
    return int(S[j, o]), S[j, o + 1], S[j, o + 2], S[j, o + 3], S[j, o + 4]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _rsave(S, j, o, st):
    p, c, run, run2, k = st
    S[j, o] = p
    S[j, o + 1] = c
    S[j, o + 2] = run
    S[j, o + 3] = run2
    S[j, o + 4] = k


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _rstep(x, n, mode, R, j, ri, st):
    """``kernels.rolling_k``'s update by one value of ring ``ri``: (output, state). A non-finite
    ``x`` leaves the state alone and gives NaN (the streaming indicators' skipping rule)."""
    if not np.isfinite(x):
        return np.nan, st
    p, c, run, run2, k = st
    old = R[j, ri, p]
    R[j, ri, p] = x
    p += 1
    if p == n:
        p = 0
    c += 1.0
    full = c > n
    if mode <= 1:
        run += x - old if full else x
        if p == 0:
            run = _ring_sum(R, j, ri, n)
    elif mode <= 3:
        if full:
            e = old - k
            run -= e
            run2 -= e * e
        e = x - k
        run += e
        run2 += e * e
        if p == 0:
            k = _ring_sum(R, j, ri, n) / n
            run, run2 = _ring_dev(R, j, ri, n, k)
    else:
        highest = mode == _MAX
        if c == 1.0 or (x >= run if highest else x <= run):
            run = x
        elif full and old == run:
            run = _ring_extreme(R, j, ri, n, highest)
    if c < n:
        out = np.nan
    elif mode == 0:
        out = run / n
    elif mode == 1 or mode >= 4:
        out = run
    else:
        ddof = 0 if mode == 2 else 1
        var = (run2 - run * run / n) / (n - ddof)
        if var > 0:
            out = np.sqrt(var)
        else:
            out = 0.0 if var == var else np.nan
    return out, (p, c, run, run2, k)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _load3(S, j, o):
    """An EMA's state floats: (value, seed sum, count)."""
    return S[j, o], S[j, o + 1], S[j, o + 2]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _save3(S, j, o, st):
    S[j, o] = st[0]
    S[j, o + 1] = st[1]
    S[j, o + 2] = st[2]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _load2(S, j, o):
    """A Wilder sum's (sum, count) or a lag's (previous value, count)."""
    return S[j, o], S[j, o + 1]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _save2(S, j, o, st):
    S[j, o] = st[0]
    S[j, o + 1] = st[1]


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _estep(x, n, alpha, skip, wilder, st):
    """``kernels.ema_k``'s update by one value, seeded with the mean of its first n values after
    ``skip``: (output, state)."""
    if not np.isfinite(x):
        return np.nan, st
    y, acc, c = st
    c += 1.0
    k = c - skip
    if k <= 0:
        return np.nan, (y, acc, c)
    if k < n:
        return np.nan, (y, acc + x, c)
    if k == n:
        acc += x
        y = acc / n
        return y, (y, acc, c)
    if wilder:
        y = (y * (n - 1) + x) / n
    else:
        y = y + alpha * (x - y)
    return y, (y, acc, c)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _wstep(x, n, st):
    """``kernels.wilder_sum_k``'s update by one value: (output, state)."""
    if not np.isfinite(x):
        return np.nan, st
    s, c = st
    c += 1.0
    if c < n:
        return np.nan, (s + x, c)
    s = s - s / n
    s = s + x
    return s, (s, c)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _lstep(x, st):
    """The previous finite value (NaN before there is one): (output, state)."""
    if not np.isfinite(x):
        return np.nan, st
    prev, c = st
    return (prev if c >= 1.0 else np.nan), (x, c + 1.0)
