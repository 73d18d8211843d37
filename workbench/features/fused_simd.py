"""``fused._instrument``'s arithmetic for ``LANES`` instruments at once, one vector lane each.

Why: one instrument at a time, every indicator is a chain of dependent scalar steps plus
data-dependent branches the predictor misses (gain or loss, a new high, the OBV's sign), ~12 cycles
a value. Across instruments those steps are independent: with the state laid out as structure of
arrays (one contiguous row of ``LANES`` values per quantity) the inner ``for g in range(LANES)``
loops have no branches, only selects, and LLVM's loop vectoriser packs them (``vmulpd``/``vdivpd``
on 4–8 lanes). numba leaves SLP vectorisation off, so straight-line code over a few instruments
would stay scalar: the lanes must be a loop.

When it applies (``eligible``): every bar of the group's rows is finite with a positive volume and
prices within 1e-100…1e100 (so no ratio, log or product of them overflows), and every count and
ring position of the group's state is the same (``UNIFORM``). Then each indicator's input is valid
on the same bars in every lane, so ring positions, counts and window resets stay one scalar for the
group; only the EMAs' counts (the ADX's input is NaN wherever ±DI are both 0) are per lane. Any
other group goes through ``fused._instrument``, instrument by instrument. Same operations in the
same order as ``fused_steps``, so the output is bit-identical (tested on blocks that mix both paths).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from workbench.features import fused as F
from workbench.features.fused_steps import _MAX, _MEAN, _MIN, _STD0, _STD1, _SUM, _ratio

__all__ = ["LANES", "MIN_ROWS", "UNIFORM", "eligible", "group_k"]

LANES = 128  # instruments per vector group: at 32 each loop's setup (alias checks) cost as much as its 4 iterations
MIN_ROWS = 16  # fewer rows: copying the group's state in and out costs more than the lanes save
_SUB = 8  # lanes whose rolling extreme is rescanned together (the scalar path rescans one)
_CH = 64  # rows per transposed input chunk (4 × 64 × 128 doubles: L2)
_LO, _HI = 1e-100, 1e100

_ROLLING = 21  # rolling statistics with 5 state floats each (the rings before R_CLAG)
# State slots that must be equal across a group: rolling positions and counts, lags and bar counts.
UNIFORM = np.array(
    [5 * k for k in range(_ROLLING)]
    + [5 * k + 1 for k in range(_ROLLING)]
    + [F.S_CLAG, F.S_CLAG + 1, F.S_HLC + 3, F.S_TP + 1, F.S_OBV + 2, F.S_OBVLAG, F.S_OBVLAG + 1],
    dtype=np.int64,
)


@njit(cache=True, error_model="numpy", boundscheck=False)
def eligible(h, l, c, v, S, j0, t0, m):  # noqa: E741
    """Whether instruments j0 … j0+LANES−1 may take the vector path for rows t0 … t0+m−1."""
    for j in range(j0 + 1, j0 + LANES):
        for s in UNIFORM:
            if S[j, s] != S[j0, s]:
                return False
    for j in range(j0, j0 + LANES):
        ok = True
        for u in range(t0, t0 + m):
            hh, ll, cc, vv = h[j, u], l[j, u], c[j, u], v[j, u]
            ok &= (hh >= _LO) & (hh <= _HI) & (ll >= _LO) & (ll <= _HI)
            ok &= (cc >= _LO) & (cc <= _HI) & (vv >= _LO) & (vv <= _HI)
        if not ok:
            return False
    return True


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _max(a, b):
    """numba's ``max(a, b)`` (``b if b > a else a``) as a select: the builtin stops the vectoriser."""
    return b if b > a else a


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _pick(z, m, highest):
    """``_ring_extreme``'s step: ``z`` if it beats ``m``."""
    return z if ((z > m) if highest else (z < m)) else m


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
def _roll(x, n, mode, rv, ri, sv, up, uc, y, need):
    """``fused_steps._rstep`` for every lane of ``x`` at once; the ring position and count are the
    group's (``up[ri]``, ``uc[ri]``), the running sums per lane in ``sv``'s rows 5·ri+2 … 5·ri+4."""
    if not np.isfinite(x[0]):  # valid in every lane or in none (``eligible``)
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
    else:
        highest = mode == _MAX
        if c == 1.0:
            for g in range(LANES):
                rv[ri, p, g] = x[g]
                sv[a, g] = x[g]
        else:
            for g in range(LANES):
                xx = x[g]
                old = rv[ri, p, g]
                rv[ri, p, g] = xx
                run = sv[a, g]
                take = (xx >= run) if highest else (xx <= run)
                need[g] = (not take) and full and old == run
                sv[a, g] = xx if take else run
            if full:
                for s0 in range(0, LANES, _SUB):
                    anyn = False
                    for g in range(s0, s0 + _SUB):
                        anyn |= need[g]
                    if anyn:  # views: an index s0 + g could be negative for all LLVM knows
                        ym, nd, run_ = y[s0 : s0 + _SUB], need[s0 : s0 + _SUB], sv[a, s0 : s0 + _SUB]
                        first = rv[ri, 0, s0 : s0 + _SUB]
                        for g in range(_SUB):
                            ym[g] = first[g]
                        for i in range(1, n):
                            slot = rv[ri, i, s0 : s0 + _SUB]
                            for g in range(_SUB):
                                ym[g] = _pick(slot[g], ym[g], highest)
                        for g in range(_SUB):
                            run_[g] = ym[g] if nd[g] else run_[g]
    up[ri] = q
    uc[ri] = c
    if c < n:
        for g in range(LANES):
            y[g] = np.nan
    elif mode == _MEAN:
        for g in range(LANES):
            y[g] = sv[a, g] / n
    elif mode == _SUM or mode >= _MAX:
        for g in range(LANES):
            y[g] = sv[a, g]
    else:
        ddof = 0 if mode == _STD0 else 1
        for g in range(LANES):
            run = sv[a, g]
            var = (sv[b, g] - run * run / n) / (n - ddof)
            y[g] = np.sqrt(var) if var > 0 else (0.0 if var == var else np.nan)


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
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


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
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


@njit(cache=True, error_model="numpy", boundscheck=False, inline="always")
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
# Per-lane scratch rows: the bar's derived series, then the indicators' outputs.
(D_LR, D_RR, D_GAIN, D_LOSS, D_TR, D_PLUS, D_MINUS, D_POS, D_NEG, D_MF, D_OBVD, D_LOGV) = range(12)
N_D = 12
N_Y = 8


@njit(cache=True, error_model="numpy", boundscheck=False)
def group_k(h, l, c, v, S, R, out, cols, j0, t0, m):  # noqa: E741
    """Rows t0 … t0+m−1 of instruments j0 … j0+LANES−1 (``eligible`` for them), state in and out of
    ``S``/``R`` as ``fused._instrument`` keeps it: the same numbers, bit for bit."""
    G = LANES
    o = cols
    sv = np.empty((F.N_STATE, G))
    rv = np.empty((F.N_RINGS, F.RING, G))
    for g in range(G):
        for s in range(F.N_STATE):
            sv[s, g] = S[j0 + g, s]
        for ri in range(F.N_RINGS):
            for i in range(_RLEN[ri]):
                rv[ri, i, g] = R[j0 + g, ri, i]
    up = np.empty(F.N_RINGS, dtype=np.int64)
    uc = np.empty(F.N_RINGS)
    for ri in range(_ROLLING):
        up[ri] = int(S[j0, 5 * ri])
        uc[ri] = S[j0, 5 * ri + 1]
    cp, cn = int(S[j0, F.S_CLAG]), S[j0, F.S_CLAG + 1]
    nh, ntp, nob = S[j0, F.S_HLC + 3], S[j0, F.S_TP + 1], S[j0, F.S_OBV + 2]
    op, on = int(S[j0, F.S_OBVLAG]), S[j0, F.S_OBVLAG + 1]
    xin = np.empty((4, _CH, G))
    w = np.empty((N_D, G))
    ys = np.empty((N_Y, G))
    need = np.zeros(G, dtype=np.bool_)
    for c0 in range(t0, t0 + m, _CH):
        mc = min(_CH, t0 + m - c0)
        for g in range(G):
            for t in range(mc):
                xin[0, t, g] = h[j0 + g, c0 + t]
                xin[1, t, g] = l[j0 + g, c0 + t]
                xin[2, t, g] = c[j0 + g, c0 + t]
                xin[3, t, g] = v[j0 + g, c0 + t]
        for t in range(mc):
            u = c0 + t
            H, L, C, V = xin[0, t], xin[1, t], xin[2, t], xin[3, t]
            # pass 1: returns over the ring of the last 60 closes (every lane valid: one position)
            for k, lag in ((0, 1), (1, 5), (2, 10), (3, 20), (4, 60)):
                if cn >= lag:
                    i = cp - lag + (F.RING if cp < lag else 0)
                    rk = out[o[k], u, j0 : j0 + G]
                    for g in range(G):
                        rk[g] = _ratio(C[g], rv[F.R_CLAG, i, g]) - 1.0
                else:
                    rk = out[o[k], u, j0 : j0 + G]
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
            _roll(w[D_LR], 20, _STD1, rv, F.R_VOL20, sv, up, uc, ys[0], need)
            _roll(w[D_LR], 60, _STD1, rv, F.R_VOL60, sv, up, uc, ys[1], need)
            _ema(w[D_GAIN], 14, 1.0 / 14, 0, False, sv, F.S_EG, ys[2])
            _ema(w[D_LOSS], 14, 1.0 / 14, 0, False, sv, F.S_EL, ys[3])
            _roll(C, 20, _MEAN, rv, F.R_BBM, sv, up, uc, ys[4], need)
            _roll(C, 20, _STD0, rv, F.R_BBS, sv, up, uc, ys[5], need)
            _ema(w[D_TR], 14, 1.0 / 14, 0, False, sv, F.S_ATR, ys[6])
            r5 = out[o[5], u, j0 : j0 + G]
            r6 = out[o[6], u, j0 : j0 + G]
            r7 = out[o[7], u, j0 : j0 + G]
            r11 = out[o[11], u, j0 : j0 + G]
            r12 = out[o[12], u, j0 : j0 + G]
            r13 = out[o[13], u, j0 : j0 + G]
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
            r8 = out[o[8], u, j0 : j0 + G]
            r9 = out[o[9], u, j0 : j0 + G]
            r10 = out[o[10], u, j0 : j0 + G]
            r14 = out[o[14], u, j0 : j0 + G]
            r15 = out[o[15], u, j0 : j0 + G]
            r16 = out[o[16], u, j0 : j0 + G]
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
            r18 = out[o[18], u, j0 : j0 + G]
            for g in range(G):
                pdi = 100.0 * _ratio(ys[0, g], ys[2, g])
                mdi = 100.0 * _ratio(ys[1, g], ys[2, g])
                ys[3, g] = 100.0 * _ratio(abs(pdi - mdi), pdi + mdi)
                r18[g] = (pdi - mdi) / 100.0
            _ema(ys[3], 14, 2.0 / 15, 0, True, sv, F.S_ADX, ys[4])
            r17 = out[o[17], u, j0 : j0 + G]
            for g in range(G):
                r17[g] = ys[4, g] / 100.0
            _roll(H, 14, _MAX, rv, F.R_STH, sv, up, uc, ys[0], need)
            _roll(L, 14, _MIN, rv, F.R_STL, sv, up, uc, ys[1], need)
            for g in range(G):
                hi, lo = ys[0, g], ys[1, g]
                rng = hi - lo
                ys[2, g] = 100.0 * (C[g] - lo) / rng if rng > 0 else (50.0 if rng == rng else np.nan)
            _roll(ys[2], 3, _MEAN, rv, F.R_SK, sv, up, uc, ys[3], need)
            _roll(ys[3], 3, _MEAN, rv, F.R_SD, sv, up, uc, ys[4], need)
            r19 = out[o[19], u, j0 : j0 + G]
            r20 = out[o[20], u, j0 : j0 + G]
            for g in range(G):
                r19[g] = ys[3, g] / 100.0
                r20[g] = ys[4, g] / 100.0
            # breakouts beyond the previous 20 bars' extremes; distance to the rolling high/low
            _roll(H, 20, _MAX, rv, F.R_BKH, sv, up, uc, ys[0], need)
            _roll(L, 20, _MIN, rv, F.R_BKL, sv, up, uc, ys[1], need)
            _lag(ys[0], sv, F.S_BK, ys[2])
            _lag(ys[1], sv, F.S_BK + 2, ys[3])
            _roll(H, 20, _MAX, rv, F.R_DH20, sv, up, uc, ys[4], need)
            _roll(L, 20, _MIN, rv, F.R_DL20, sv, up, uc, ys[5], need)
            _roll(H, 60, _MAX, rv, F.R_DH60, sv, up, uc, ys[6], need)
            _roll(L, 60, _MIN, rv, F.R_DL60, sv, up, uc, ys[7], need)
            r29 = out[o[29], u, j0 : j0 + G]
            r30 = out[o[30], u, j0 : j0 + G]
            r25 = out[o[25], u, j0 : j0 + G]
            r26 = out[o[26], u, j0 : j0 + G]
            r27 = out[o[27], u, j0 : j0 + G]
            r28 = out[o[28], u, j0 : j0 + G]
            for g in range(G):
                cc, hi, lo = C[g], ys[2, g], ys[3, g]
                r29[g] = (1.0 if cc > hi else 0.0) if hi == hi else np.nan
                r30[g] = (1.0 if cc < lo else 0.0) if lo == lo else np.nan
                r25[g] = _ratio(cc, ys[4, g]) - 1.0
                r26[g] = _ratio(cc, ys[5, g]) - 1.0
                r27[g] = _ratio(cc, ys[6, g]) - 1.0
                r28[g] = _ratio(cc, ys[7, g]) - 1.0
            # MFI and the rolling VWAP; OBV flow and the volume z-score
            _roll(w[D_POS], 14, _SUM, rv, F.R_MFP, sv, up, uc, ys[0], need)
            _roll(w[D_NEG], 14, _SUM, rv, F.R_MFN, sv, up, uc, ys[1], need)
            _roll(w[D_MF], 20, _SUM, rv, F.R_VWN, sv, up, uc, ys[2], need)
            _roll(V, 20, _SUM, rv, F.R_VWD, sv, up, uc, ys[3], need)
            _roll(V, 20, _SUM, rv, F.R_OBVD, sv, up, uc, ys[4], need)
            _roll(w[D_LOGV], 20, _MEAN, rv, F.R_VZM, sv, up, uc, ys[5], need)
            _roll(w[D_LOGV], 20, _STD0, rv, F.R_VZS, sv, up, uc, ys[6], need)
            r21 = out[o[21], u, j0 : j0 + G]
            r24 = out[o[24], u, j0 : j0 + G]
            r22 = out[o[22], u, j0 : j0 + G]
            r23 = out[o[23], u, j0 : j0 + G]
            for g in range(G):
                ps, ns = ys[0, g], ys[1, g]
                r21[g] = 100.0 * _ratio(ps, ps + ns) / 100.0
                r24[g] = _ratio(C[g], _ratio(ys[2, g], ys[3, g])) - 1.0
                r22[g] = _ratio(w[D_OBVD, g], ys[4, g])
                lv = w[D_LOGV, g]
                r23[g] = _ratio(lv - ys[5, g], ys[6, g])
    # state back, as the per-instrument path keeps it
    for ri in range(_ROLLING):
        sv[5 * ri, :] = up[ri]
        sv[5 * ri + 1, :] = uc[ri]
    sv[F.S_CLAG, :], sv[F.S_CLAG + 1, :] = cp, cn
    sv[F.S_HLC + 3, :], sv[F.S_TP + 1, :], sv[F.S_OBV + 2, :] = nh, ntp, nob
    sv[F.S_OBVLAG, :], sv[F.S_OBVLAG + 1, :] = op, on
    for g in range(G):
        for s in range(F.N_STATE):
            S[j0 + g, s] = sv[s, g]
        for ri in range(F.N_RINGS):
            for i in range(_RLEN[ri]):
                R[j0 + g, ri, i] = rv[ri, i, g]
