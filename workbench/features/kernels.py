"""Streaming kernels: numba state machines over (time × instrument) float arrays.

Why state machines: the same kernel computes a whole history (state starts empty) and the newest
bar in the live loop (state kept from the last cycle), so an incremental update *is* the full
recomputation, step for step, not a re-implementation that could drift from it.

Every kernel walks each instrument's rows in time order (instruments in parallel: ``prange``; the
cache is on disk, see ``workbench.warmup``) and, per instrument, **skips invalid bars**: a non-finite
input leaves the state untouched and writes NaN (the "compute on each column's valid bars"
convention of ``indicators``). States are plain arrays owned by the caller (``streams.StreamState``);
kernels mutate them in place and write into a preallocated ``out``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = [
    "ema_k", "wilder_sum_k", "rolling_k", "lag_k", "obv_k", "pair_k", "session_vwap_k",
    "cs_rank_k", "run", "MEAN", "SUM", "STD0", "STD1", "MAX", "MIN", "SMALL",
]  # fmt: skip

MEAN, SUM, STD0, STD1, MAX, MIN = 0, 1, 2, 3, 4, 5

# Below this many cells a kernel runs on one thread: the live loop's one-row updates would pay a
# thread-pool launch per call (and wait for a second core on a busy machine) for no gain.
SMALL = 65_536


def run(kernel, cells: int, *args) -> None:
    """Call ``kernel(*args)``; on one thread when it covers fewer than ``SMALL`` cells. (Setting the
    thread count inside the kernels would make numba refuse to cache them.)"""
    prev = numba.get_num_threads()
    if cells >= SMALL or prev == 1:
        kernel(*args)
        return
    numba.set_num_threads(1)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(prev)


@njit(cache=True, parallel=True)
def ema_k(x, n, alpha, skip, wilder_form, y, acc, cnt, out):
    """Recursive filter seeded with the mean of its first ``n`` values (after ``skip`` ignored ones).

    ``wilder_form`` selects TA-Lib's Wilder update ``(y·(n−1) + x)/n`` instead of ``y + α(x − y)``.
    """
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            v = x[t, j]
            if not np.isfinite(v):
                out[t, j] = np.nan
                continue
            c = cnt[j] + 1
            cnt[j] = c
            k = c - skip
            if k <= 0:
                out[t, j] = np.nan
            elif k < n:
                acc[j] += v
                out[t, j] = np.nan
            elif k == n:
                acc[j] += v
                y[j] = acc[j] / n
                out[t, j] = y[j]
            else:
                if wilder_form:
                    y[j] = (y[j] * (n - 1) + v) / n
                else:
                    y[j] = y[j] + alpha * (v - y[j])
                out[t, j] = y[j]


@njit(cache=True, parallel=True)
def wilder_sum_k(x, n, s, cnt, out):
    """TA-Lib's smoothed *sum* (ADX's DM and TR): sum of the first n−1 values, then s − s/n + x."""
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            v = x[t, j]
            if not np.isfinite(v):
                out[t, j] = np.nan
                continue
            c = cnt[j] + 1
            cnt[j] = c
            if c < n:
                s[j] += v
                out[t, j] = np.nan
            else:
                s[j] = s[j] - s[j] / n
                s[j] = s[j] + v
                out[t, j] = s[j]


@njit(cache=True, parallel=True)
def rolling_k(x, n, mode, buf, pos, cnt, run, run2, shift, out):
    """Rolling statistic over each column's last ``n`` valid values (ring buffer ``buf`` (N × n)).

    O(1) per step: sums are running sums (like TA-Lib); the std keeps running sums of deviations
    from a shift near the window mean; max/min rescan only when the extreme leaves the window.
    Each time the ring wraps, sums are recomputed exactly from the window, so rounding cannot
    accumulate over a long history.
    """
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            v = x[t, j]
            if not np.isfinite(v):
                out[t, j] = np.nan
                continue
            p = pos[j]
            old = buf[j, p]
            buf[j, p] = v
            p += 1
            if p == n:
                p = 0
            pos[j] = p
            c = cnt[j] + 1
            cnt[j] = c
            full = c > n  # ``old`` left the window
            if mode <= 1:
                if full:
                    run[j] += v - old
                else:
                    run[j] += v
                if p == 0:
                    s = 0.0
                    for i in range(n):
                        s += buf[j, i]
                    run[j] = s
            elif mode <= 3:
                k = shift[j]
                if full:
                    d = old - k
                    run[j] -= d
                    run2[j] -= d * d
                d = v - k
                run[j] += d
                run2[j] += d * d
                if p == 0:
                    m = 0.0
                    for i in range(n):
                        m += buf[j, i]
                    m /= n
                    s1 = 0.0
                    s2 = 0.0
                    for i in range(n):
                        d = buf[j, i] - m
                        s1 += d
                        s2 += d * d
                    shift[j] = m
                    run[j] = s1
                    run2[j] = s2
            elif mode == 4:
                if c == 1 or v >= run[j]:
                    run[j] = v
                elif full and old == run[j]:
                    m = buf[j, 0]
                    for i in range(1, n):
                        if buf[j, i] > m:
                            m = buf[j, i]
                    run[j] = m
            else:
                if c == 1 or v <= run[j]:
                    run[j] = v
                elif full and old == run[j]:
                    m = buf[j, 0]
                    for i in range(1, n):
                        if buf[j, i] < m:
                            m = buf[j, i]
                    run[j] = m
            if c < n:
                out[t, j] = np.nan
            elif mode == 0:
                out[t, j] = run[j] / n
            elif mode == 1:
                out[t, j] = run[j]
            elif mode <= 3:
                ddof = 0 if mode == 2 else 1
                var = (run2[j] - run[j] * run[j] / n) / (n - ddof) if n > ddof else np.nan
                out[t, j] = np.sqrt(var) if var > 0 else (0.0 if var == var else np.nan)
            else:
                out[t, j] = run[j]


@njit(cache=True, parallel=True)
def lag_k(x, k, buf, pos, cnt, out):
    """The value ``k`` valid bars ago (NaN until there is one)."""
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            v = x[t, j]
            if not np.isfinite(v):
                out[t, j] = np.nan
                continue
            p = pos[j]
            out[t, j] = buf[j, p] if cnt[j] >= k else np.nan
            buf[j, p] = v
            p += 1
            if p == k:
                p = 0
            pos[j] = p
            cnt[j] += 1


@njit(cache=True, parallel=True)
def obv_k(c, v, prev, acc, cnt, out):
    """On-balance volume as TA-Lib: starts at the first bar's volume, ± volume on up/down closes."""
    T, N = c.shape
    for j in prange(N):
        for t in range(T):
            cc = c[t, j]
            vv = v[t, j]
            if not (np.isfinite(cc) and np.isfinite(vv)):
                out[t, j] = np.nan
                continue
            if cnt[j] == 0:
                acc[j] = vv
            elif cc > prev[j]:
                acc[j] += vv
            elif cc < prev[j]:
                acc[j] -= vv
            prev[j] = cc
            cnt[j] += 1
            out[t, j] = acc[j]


@njit(cache=True, parallel=True)
def pair_k(x, y, n, bx, by, pos, cnt, beta, corr):
    """Rolling beta of x on y and their correlation over the last ``n`` bars where both are valid."""
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            a = x[t, j]
            b = y[t, j]
            if not (np.isfinite(a) and np.isfinite(b)):
                beta[t, j] = np.nan
                corr[t, j] = np.nan
                continue
            p = pos[j]
            bx[j, p] = a
            by[j, p] = b
            p += 1
            if p == n:
                p = 0
            pos[j] = p
            cnt[j] += 1
            if cnt[j] < n:
                beta[t, j] = np.nan
                corr[t, j] = np.nan
                continue
            mx = 0.0
            my = 0.0
            for i in range(n):
                mx += bx[j, i]
                my += by[j, i]
            mx /= n
            my /= n
            sxy = 0.0
            sxx = 0.0
            syy = 0.0
            for i in range(n):
                dx = bx[j, i] - mx
                dy = by[j, i] - my
                sxy += dx * dy
                sxx += dx * dx
                syy += dy * dy
            beta[t, j] = sxy / syy if syy > 0 else np.nan
            corr[t, j] = sxy / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else np.nan


@njit(cache=True, parallel=True)
def session_vwap_k(pv, v, session, last, cpv, cv, out):
    """Session-anchored VWAP: cumulative Σ(price·volume)/Σvolume, reset when ``session`` (per row) changes."""
    T, N = pv.shape
    for j in prange(N):
        for t in range(T):
            s = session[t]
            if last[j] != s:
                last[j] = s
                cpv[j] = 0.0
                cv[j] = 0.0
            a = pv[t, j]
            b = v[t, j]
            if not (np.isfinite(a) and np.isfinite(b)):
                out[t, j] = np.nan
                continue
            cpv[j] += a
            cv[j] += b
            out[t, j] = cpv[j] / cv[j] if cv[j] > 0 else np.nan


@njit(cache=True, parallel=True)
def cs_rank_k(a, order, out):
    """Per row: (average rank − ½) / count of the finite values, ties sharing their average rank; NaN
    elsewhere. ``order`` is each row's argsort with the non-finite values keyed last (numpy sorts)."""
    T, N = a.shape
    for t in prange(T):
        m = 0
        for j in range(N):
            out[t, j] = np.nan
            if np.isfinite(a[t, j]):
                m += 1
        first = 0
        while first < m:
            v = a[t, order[t, first]]
            last = first
            while last + 1 < m and a[t, order[t, last + 1]] == v:
                last += 1
            r = ((first + last) / 2.0 + 1.0 - 0.5) / m
            for k in range(first, last + 1):
                out[t, order[t, k]] = r
            first = last + 1
