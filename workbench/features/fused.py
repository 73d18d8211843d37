"""Feature set v2 in three numba passes over the panel instead of ~150 whole-array numpy steps.

Why: composed from the streaming indicators (``streams``), v2 cost ~20 kernel launches plus ~150
temporaries of the panel's full size; at 5,000 instruments each temporary is 20 MB, so the build was
bound by memory traffic and page faults, not arithmetic. Here each instrument's bars are walked once
(``series_k``, instruments in parallel) with every indicator's state in registers-or-L1, then beta/corr
against the benchmark (``pair_k``, which needs every instrument's return first), then the
cross-sectional features row by row (``rank_k``, ``zscore_k``). All write straight into one (feature × time ×
instrument) block, which is also the long frame's memory layout, so no copy is needed to stack it.

The state of every indicator lives in per-instrument arrays owned by the caller (``V2State``), so one
pass over a whole history and many passes over one new row each give the same numbers: the live
loop's incremental update is this very code. Formulas and skipping rules are those of the streaming
indicators (tested equal to them, and those to TA-Lib); see ``sets.v2_stream``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

__all__ = ["V2State", "series_k", "pair_k", "rank_k", "rank_rows_k", "zscore_k", "SERIES", "PAIR", "CROSS", "RING"]

# Output columns each pass writes: the head of ``sets.V2_COLUMNS``, which is built from these (positions resolved there).
SERIES = (
    "ret_1", "ret_5", "ret_10", "ret_20", "ret_60", "vol_20", "vol_60",
    "rsi_14", "macd", "macd_signal", "macd_hist", "bb_pct_b", "bb_width", "atr_14",
    "ema_ratio_12", "ema_ratio_26", "ema_ratio_50", "adx_14", "di_spread_14", "stoch_k", "stoch_d",
    "mfi_14", "obv_flow_20", "volume_z_20", "vwap_dist_20",
    "dist_high_20", "dist_low_20", "dist_high_60", "dist_low_60", "breakout_up_20", "breakout_down_20",
)  # fmt: skip
PAIR = ("beta_60", "corr_60")
CROSS = ("cs_rank_ret_5", "cs_rank_ret_20", "cs_z_ret_20", "cs_rank_vol_20", "cs_rank_volume_z_20")
CROSS_SOURCES = ("ret_5", "ret_20", "ret_20", "vol_20", "volume_z_20")
RING = 60  # longest window: every ring buffer has this many slots

# Rolling statistics (modes as ``kernels``: MEAN, SUM, STD0, STD1, MAX, MIN); each has a ring and 5 floats.
_MEAN, _SUM, _STD0, _STD1, _MAX, _MIN = 0, 1, 2, 3, 4, 5
(R_VOL20, R_VOL60, R_BBM, R_BBS, R_STH, R_STL, R_SK, R_SD, R_MFP, R_MFN, R_OBVD, R_VZM, R_VZS, R_VWN, R_VWD,
 R_DH20, R_DL20, R_DH60, R_DL60, R_BKH, R_BKL, R_CLAG, R_OBVLAG) = range(23)  # fmt: skip
N_RINGS = 23
# Float state slots: 5 per rolling statistic, then the rest.
_O = 5 * 21
S_CLAG, S_HLC, S_TP, S_OBV, S_OBVLAG, S_BK = _O, _O + 2, _O + 6, _O + 8, _O + 11, _O + 13
(S_EG, S_EL, S_E26, S_E12F, S_SIG, S_E12, S_E50, S_ATR, S_ADX) = range(_O + 17, _O + 17 + 27, 3)
S_WP, S_WM, S_WT = _O + 44, _O + 46, _O + 48
N_STATE = _O + 50
N_PAIR = 9


@dataclass
class V2State:
    """Every v2 indicator's state, one row per instrument (zeros = nothing seen yet)."""

    s: np.ndarray  # (N, N_STATE) floats: positions, counts, sums, filter values
    rings: np.ndarray  # (N, N_RINGS, RING) ring buffers of the rolling windows and lags
    pair: np.ndarray  # (N, N_PAIR) beta/corr running sums
    pair_rings: np.ndarray  # (N, 2, RING)

    @classmethod
    def empty(cls, n: int) -> V2State:
        return cls(np.zeros((n, N_STATE)), np.zeros((n, N_RINGS, RING)), np.zeros((n, N_PAIR)), np.zeros((n, 2, RING)))


# ---- column primitives: one instrument's rows, state in locals while the loop runs ----------------
# Each reads scratch row ``a`` of ``W`` (one instrument's values in time order) and writes row ``d``;
# a non-finite value leaves the state alone and gives NaN (the streaming indicators' skipping rule).


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _roll_col(W, m, a, d, n, mode, S, j, o, R, ri):
    """``kernels.rolling_k`` on one column (same arithmetic, same exact re-sum at each wrap)."""
    p = int(S[j, o])
    c = S[j, o + 1]
    run = S[j, o + 2]
    run2 = S[j, o + 3]
    k = S[j, o + 4]
    for t in range(m):
        x = W[a, t]
        if not np.isfinite(x):
            W[d, t] = np.nan
            continue
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
            W[d, t] = np.nan
        elif mode == 0:
            W[d, t] = run / n
        elif mode == 1 or mode >= 4:
            W[d, t] = run
        else:
            ddof = 0 if mode == 2 else 1
            var = (run2 - run * run / n) / (n - ddof)
            if var > 0:
                W[d, t] = np.sqrt(var)
            else:
                W[d, t] = 0.0 if var == var else np.nan
    S[j, o] = p
    S[j, o + 1] = c
    S[j, o + 2] = run
    S[j, o + 3] = run2
    S[j, o + 4] = k


@njit(cache=True, error_model="numpy")
def _ema_col(W, m, a, d, n, alpha, skip, wilder, S, j, o):
    """``kernels.ema_k`` on one column: seeded with the mean of its first n values (after ``skip``)."""
    y = S[j, o]
    acc = S[j, o + 1]
    c = S[j, o + 2]
    for t in range(m):
        x = W[a, t]
        if not np.isfinite(x):
            W[d, t] = np.nan
            continue
        c += 1.0
        k = c - skip
        if k <= 0:
            W[d, t] = np.nan
        elif k < n:
            acc += x
            W[d, t] = np.nan
        elif k == n:
            acc += x
            y = acc / n
            W[d, t] = y
        else:
            if wilder:
                y = (y * (n - 1) + x) / n
            else:
                y = y + alpha * (x - y)
            W[d, t] = y
    S[j, o] = y
    S[j, o + 1] = acc
    S[j, o + 2] = c


@njit(cache=True, error_model="numpy")
def _wsum_col(W, m, a, d, n, S, j, o):
    """``kernels.wilder_sum_k`` on one column."""
    s = S[j, o]
    c = S[j, o + 1]
    for t in range(m):
        x = W[a, t]
        if not np.isfinite(x):
            W[d, t] = np.nan
            continue
        c += 1.0
        if c < n:
            s += x
            W[d, t] = np.nan
        else:
            s = s - s / n
            s = s + x
            W[d, t] = s
    S[j, o] = s
    S[j, o + 1] = c


@njit(cache=True, error_model="numpy")
def _lag1_col(W, m, a, d, S, j, o):
    """The previous finite value of the column (NaN before there is one)."""
    prev = S[j, o]
    c = S[j, o + 1]
    for t in range(m):
        x = W[a, t]
        if not np.isfinite(x):
            W[d, t] = np.nan
            continue
        W[d, t] = prev if c >= 1.0 else np.nan
        prev = x
        c += 1.0
    S[j, o] = prev
    S[j, o + 1] = c


# Scratch rows of one instrument (W): inputs, derived series, and indicator outputs.
(W_C, W_LR, W_GAIN, W_LOSS, W_HM, W_LM, W_CM, W_TR, W_PLUS, W_MINUS, W_POS, W_NEG, W_MF, W_VM, W_OBVD, W_VC,
 W_LOGV, W_CH, W_HC, W_CL, W_LC, W_A, W_B, W_D, W_E, W_F, W_G) = range(27)  # fmt: skip
N_W = 27


@njit(cache=True, error_model="numpy")
def _instrument(h, l, c, v, S, R, out, cols, W, j, t0, m):  # noqa: E741
    """Instrument ``j``'s rows t0 … t0+m−1: first the derived series that need only a previous
    value (scratch ``W``), then each indicator down its column in one tight loop, the way a
    per-symbol TA-Lib call runs."""
    # pass 1: the derived series that need only a previous value
    for t in range(m):
        hh = h[j, t0 + t]
        ll = l[j, t0 + t]
        cc = c[j, t0 + t]
        vr = v[j, t0 + t]
        vv = vr if vr > 0 else np.nan  # zero volume = not reported; NaN stays NaN
        okc = np.isfinite(cc)
        okhlc = okc and np.isfinite(hh) and np.isfinite(ll)
        okv = np.isfinite(vv)
        W[W_C, t] = cc
        # returns over valid closes: one ring of the last 60 closes serves every lag
        if okc:
            p = int(S[j, S_CLAG])
            n_seen = S[j, S_CLAG + 1]
            l1 = R[j, R_CLAG, (p - 1) % RING] if n_seen >= 1 else np.nan
            l5 = R[j, R_CLAG, (p - 5) % RING] if n_seen >= 5 else np.nan
            l10 = R[j, R_CLAG, (p - 10) % RING] if n_seen >= 10 else np.nan
            l20 = R[j, R_CLAG, (p - 20) % RING] if n_seen >= 20 else np.nan
            l60 = R[j, R_CLAG, (p - 60) % RING] if n_seen >= 60 else np.nan
            R[j, R_CLAG, p] = cc
            S[j, S_CLAG] = (p + 1) % RING
            S[j, S_CLAG + 1] = n_seen + 1.0
        else:
            l1 = l5 = l10 = l20 = l60 = np.nan
        out[cols[0], t0 + t, j] = _ratio(cc, l1) - 1.0
        out[cols[1], t0 + t, j] = _ratio(cc, l5) - 1.0
        out[cols[2], t0 + t, j] = _ratio(cc, l10) - 1.0
        out[cols[3], t0 + t, j] = _ratio(cc, l20) - 1.0
        out[cols[4], t0 + t, j] = _ratio(cc, l60) - 1.0
        rr = _ratio(cc, l1)
        W[W_LR, t] = np.log(rr) if rr > 0 else np.nan
        dd = cc - l1
        if np.isfinite(dd):
            W[W_GAIN, t] = dd if dd > 0 else 0.0
            W[W_LOSS, t] = -dd if dd < 0 else 0.0
        else:
            W[W_GAIN, t] = np.nan
            W[W_LOSS, t] = np.nan
        # bars with high, low and close: true range and directional movement
        if okhlc:
            hm, lm, cm = hh, ll, cc
            if S[j, S_HLC + 3] >= 1.0:
                ph, pl, pc = S[j, S_HLC], S[j, S_HLC + 1], S[j, S_HLC + 2]
            else:
                ph = pl = pc = np.nan
            S[j, S_HLC] = hh
            S[j, S_HLC + 1] = ll
            S[j, S_HLC + 2] = cc
            S[j, S_HLC + 3] += 1.0
        else:
            hm = lm = cm = ph = pl = pc = np.nan
        W[W_HM, t] = hm
        W[W_LM, t] = lm
        W[W_CM, t] = cm
        if np.isfinite(pc):
            W[W_TR, t] = max(hm - lm, max(abs(hm - pc), abs(lm - pc)))
            up = hm - ph
            down = pl - lm
            W[W_PLUS, t] = up if (up > 0 and up > down) else 0.0
            W[W_MINUS, t] = down if (down > 0 and down > up) else 0.0
        else:
            W[W_TR, t] = W[W_PLUS, t] = W[W_MINUS, t] = np.nan
        # bars with high, low, close and volume: money flow
        if okhlc and okv:
            tp = (hh + ll + cc) / 3.0
            vm = vv
            ptp = S[j, S_TP] if S[j, S_TP + 1] >= 1.0 else np.nan
            S[j, S_TP] = tp
            S[j, S_TP + 1] += 1.0
        else:
            tp = vm = ptp = np.nan
        mf = tp * vm
        W[W_MF, t] = mf
        W[W_VM, t] = vm
        if ptp == ptp:
            dtp = tp - ptp
            tol = 1e-12 * abs(ptp)
            W[W_POS, t] = mf if dtp > tol else 0.0
            W[W_NEG, t] = mf if dtp < -tol else 0.0
        else:
            W[W_POS, t] = W[W_NEG, t] = np.nan
        # close and volume: on-balance volume and its change over 20 of its bars
        if okc and okv:
            if S[j, S_OBV + 2] == 0.0:
                S[j, S_OBV + 1] = vv
            elif cc > S[j, S_OBV]:
                S[j, S_OBV + 1] += vv
            elif cc < S[j, S_OBV]:
                S[j, S_OBV + 1] -= vv
            S[j, S_OBV] = cc
            S[j, S_OBV + 2] += 1.0
            obv = S[j, S_OBV + 1]
            p = int(S[j, S_OBVLAG])
            then = R[j, R_OBVLAG, p] if S[j, S_OBVLAG + 1] >= 20 else np.nan
            R[j, R_OBVLAG, p] = obv
            S[j, S_OBVLAG] = (p + 1) % 20
            S[j, S_OBVLAG + 1] += 1.0
            W[W_OBVD, t] = obv - then
            W[W_VC, t] = vv
        else:
            W[W_OBVD, t] = W[W_VC, t] = np.nan
        W[W_LOGV, t] = np.log(vv) if okv else np.nan
        # a price and the close both valid: distance to the rolling high/low
        W[W_CH, t] = cc if np.isfinite(hh) else np.nan
        W[W_HC, t] = hh if okc else np.nan
        W[W_CL, t] = cc if np.isfinite(ll) else np.nan
        W[W_LC, t] = ll if okc else np.nan

    # pass 2: the indicators, one column loop each
    _roll_col(W, m, W_LR, W_A, 20, _STD1, S, j, 5 * R_VOL20, R, R_VOL20)
    _roll_col(W, m, W_LR, W_B, 60, _STD1, S, j, 5 * R_VOL60, R, R_VOL60)
    _ema_col(W, m, W_GAIN, W_D, 14, 1.0 / 14, 0, False, S, j, S_EG)
    _ema_col(W, m, W_LOSS, W_E, 14, 1.0 / 14, 0, False, S, j, S_EL)
    for t in range(m):
        out[cols[5], t0 + t, j] = W[W_A, t]
        out[cols[6], t0 + t, j] = W[W_B, t]
        g = W[W_D, t]
        total = g + W[W_E, t]
        out[cols[7], t0 + t, j] = (50.0 if total == 0 else 100.0 * g / total) / 100.0

    # MACD (fast seed aligned with the slow one, as TA-Lib) and the EMA ratios
    _ema_col(W, m, W_C, W_A, 26, 2.0 / 27, 0, False, S, j, S_E26)
    _ema_col(W, m, W_C, W_B, 12, 2.0 / 13, 14, False, S, j, S_E12F)
    for t in range(m):
        W[W_D, t] = W[W_B, t] - W[W_A, t]
    _ema_col(W, m, W_D, W_E, 9, 2.0 / 10, 0, False, S, j, S_SIG)
    _ema_col(W, m, W_C, W_F, 12, 2.0 / 13, 0, False, S, j, S_E12)
    _ema_col(W, m, W_C, W_G, 50, 2.0 / 51, 0, False, S, j, S_E50)
    for t in range(m):
        cc = W[W_C, t]
        line = W[W_D, t]
        sig = W[W_E, t]
        out[cols[8], t0 + t, j] = _ratio(line, cc)
        out[cols[9], t0 + t, j] = _ratio(sig, cc)
        out[cols[10], t0 + t, j] = _ratio(line - sig, cc)
        out[cols[14], t0 + t, j] = _ratio(cc, W[W_F, t]) - 1.0
        out[cols[15], t0 + t, j] = _ratio(cc, W[W_A, t]) - 1.0
        out[cols[16], t0 + t, j] = _ratio(cc, W[W_G, t]) - 1.0

    # Bollinger (population std) and ATR
    _roll_col(W, m, W_C, W_A, 20, _MEAN, S, j, 5 * R_BBM, R, R_BBM)
    _roll_col(W, m, W_C, W_B, 20, _STD0, S, j, 5 * R_BBS, R, R_BBS)
    _ema_col(W, m, W_TR, W_D, 14, 1.0 / 14, 0, False, S, j, S_ATR)
    for t in range(m):
        cc = W[W_C, t]
        mid = W[W_A, t]
        sd = W[W_B, t]
        upper = mid + 2.0 * sd
        lower = mid - 2.0 * sd
        width = upper - lower
        out[cols[11], t0 + t, j] = 0.5 if width == 0 else (cc - lower) / width
        out[cols[12], t0 + t, j] = _ratio(upper - lower, mid)
        out[cols[13], t0 + t, j] = _ratio(W[W_D, t], cc)

    # ADX and the DI spread: Wilder sums of +DM, −DM and true range
    _wsum_col(W, m, W_PLUS, W_A, 14, S, j, S_WP)
    _wsum_col(W, m, W_MINUS, W_B, 14, S, j, S_WM)
    _wsum_col(W, m, W_TR, W_D, 14, S, j, S_WT)
    for t in range(m):
        pdi = 100.0 * _ratio(W[W_A, t], W[W_D, t])
        mdi = 100.0 * _ratio(W[W_B, t], W[W_D, t])
        W[W_E, t] = 100.0 * _ratio(abs(pdi - mdi), pdi + mdi)
        out[cols[18], t0 + t, j] = (pdi - mdi) / 100.0
    _ema_col(W, m, W_E, W_F, 14, 2.0 / 15, 0, True, S, j, S_ADX)
    for t in range(m):
        out[cols[17], t0 + t, j] = W[W_F, t] / 100.0

    # slow stochastic (flat range → 50)
    _roll_col(W, m, W_HM, W_A, 14, _MAX, S, j, 5 * R_STH, R, R_STH)
    _roll_col(W, m, W_LM, W_B, 14, _MIN, S, j, 5 * R_STL, R, R_STL)
    for t in range(m):
        rng = W[W_A, t] - W[W_B, t]
        if rng > 0:
            W[W_D, t] = 100.0 * (W[W_CM, t] - W[W_B, t]) / rng
        elif rng == rng:
            W[W_D, t] = 50.0
        else:
            W[W_D, t] = np.nan
    _roll_col(W, m, W_D, W_E, 3, _MEAN, S, j, 5 * R_SK, R, R_SK)
    _roll_col(W, m, W_E, W_F, 3, _MEAN, S, j, 5 * R_SD, R, R_SD)
    for t in range(m):
        out[cols[19], t0 + t, j] = W[W_E, t] / 100.0
        out[cols[20], t0 + t, j] = W[W_F, t] / 100.0

    # breakouts beyond the previous 20 bars' extremes
    _roll_col(W, m, W_HM, W_A, 20, _MAX, S, j, 5 * R_BKH, R, R_BKH)
    _roll_col(W, m, W_LM, W_B, 20, _MIN, S, j, 5 * R_BKL, R, R_BKL)
    _lag1_col(W, m, W_A, W_D, S, j, S_BK)
    _lag1_col(W, m, W_B, W_E, S, j, S_BK + 2)
    for t in range(m):
        cm = W[W_CM, t]
        hi = W[W_D, t]
        lo = W[W_E, t]
        out[cols[29], t0 + t, j] = (1.0 if cm > hi else 0.0) if hi == hi else np.nan
        out[cols[30], t0 + t, j] = (1.0 if cm < lo else 0.0) if lo == lo else np.nan

    # MFI and the rolling VWAP
    _roll_col(W, m, W_POS, W_A, 14, _SUM, S, j, 5 * R_MFP, R, R_MFP)
    _roll_col(W, m, W_NEG, W_B, 14, _SUM, S, j, 5 * R_MFN, R, R_MFN)
    _roll_col(W, m, W_MF, W_D, 20, _SUM, S, j, 5 * R_VWN, R, R_VWN)
    _roll_col(W, m, W_VM, W_E, 20, _SUM, S, j, 5 * R_VWD, R, R_VWD)
    for t in range(m):
        ps = W[W_A, t]
        out[cols[21], t0 + t, j] = 100.0 * _ratio(ps, ps + W[W_B, t]) / 100.0
        out[cols[24], t0 + t, j] = _ratio(W[W_C, t], _ratio(W[W_D, t], W[W_E, t])) - 1.0

    # OBV flow and the volume z-score
    _roll_col(W, m, W_VC, W_A, 20, _SUM, S, j, 5 * R_OBVD, R, R_OBVD)
    _roll_col(W, m, W_LOGV, W_B, 20, _MEAN, S, j, 5 * R_VZM, R, R_VZM)
    _roll_col(W, m, W_LOGV, W_D, 20, _STD0, S, j, 5 * R_VZS, R, R_VZS)
    for t in range(m):
        out[cols[22], t0 + t, j] = _ratio(W[W_OBVD, t], W[W_A, t])
        out[cols[23], t0 + t, j] = _ratio(W[W_LOGV, t] - W[W_B, t], W[W_D, t])

    # distance to the rolling high/low
    _roll_col(W, m, W_HC, W_A, 20, _MAX, S, j, 5 * R_DH20, R, R_DH20)
    _roll_col(W, m, W_LC, W_B, 20, _MIN, S, j, 5 * R_DL20, R, R_DL20)
    _roll_col(W, m, W_HC, W_D, 60, _MAX, S, j, 5 * R_DH60, R, R_DH60)
    _roll_col(W, m, W_LC, W_E, 60, _MIN, S, j, 5 * R_DL60, R, R_DL60)
    for t in range(m):
        out[cols[25], t0 + t, j] = _ratio(W[W_CH, t], W[W_A, t]) - 1.0
        out[cols[26], t0 + t, j] = _ratio(W[W_CL, t], W[W_B, t]) - 1.0
        out[cols[27], t0 + t, j] = _ratio(W[W_CH, t], W[W_D, t]) - 1.0
        out[cols[28], t0 + t, j] = _ratio(W[W_CL, t], W[W_E, t]) - 1.0


# Rows per chunk: one chunk of a group's outputs (43 × CHUNK × 8 instruments) stays in L2.
CHUNK = 64
GROUP = 8  # instruments per group: one 64-byte line of each output row


@njit(cache=True, parallel=True, error_model="numpy")
def series_k(h, l, c, v, S, R, out, cols):  # noqa: E741
    """Every per-instrument v2 feature, continuing from state ``S``/``R``. The inputs are
    (instrument × time), each instrument's bars contiguous; ``out`` is (feature × time × instrument).

    ``cols[i]`` is the block row of ``SERIES[i]``. Follows ``sets.v2_stream``'s formulas: each
    indicator sees only the bars on which its own inputs are all valid. Groups of ``GROUP``
    instruments run in parallel, ``CHUNK`` rows at a time (the state carries across chunks), so
    the output lines a group writes are still in cache when its next instrument writes them.
    """
    N, T = c.shape
    for g in prange((N + GROUP - 1) // GROUP):
        W = np.empty((N_W, min(CHUNK, T)))
        for t0 in range(0, T, CHUNK):
            m = min(CHUNK, T - t0)
            for j in range(g * GROUP, min(N, (g + 1) * GROUP)):
                _instrument(h, l, c, v, S, R, out, cols, W, j, t0, m)


@njit(cache=True, parallel=True, error_model="numpy")
def pair_k(x, y, n, P, PR, beta, corr):
    """Rolling beta of x on y (1-D benchmark, one value per row) and their correlation over the
    last ``n`` bars where both are valid; running sums of deviations from a shift that is reset to
    the window means (and the sums re-summed exactly) each time the ring wraps."""
    T, N = x.shape
    for j in prange(N):
        for t in range(T):
            a = x[t, j]
            b = y[t]
            if not (np.isfinite(a) and np.isfinite(b)):
                beta[t, j] = np.nan
                corr[t, j] = np.nan
                continue
            pos = int(P[j, 0])
            kx = P[j, 7]
            ky = P[j, 8]
            if P[j, 1] >= n:
                dx = PR[j, 0, pos] - kx
                dy = PR[j, 1, pos] - ky
                P[j, 2] -= dx
                P[j, 3] -= dy
                P[j, 4] -= dx * dx
                P[j, 5] -= dy * dy
                P[j, 6] -= dx * dy
            dx = a - kx
            dy = b - ky
            P[j, 2] += dx
            P[j, 3] += dy
            P[j, 4] += dx * dx
            P[j, 5] += dy * dy
            P[j, 6] += dx * dy
            PR[j, 0, pos] = a
            PR[j, 1, pos] = b
            pos += 1
            if pos == n:
                pos = 0
                mx = _ring_sum(PR, j, 0, n) / n
                my = _ring_sum(PR, j, 1, n) / n
                sx = 0.0
                sy = 0.0
                sxx = 0.0
                syy = 0.0
                sxy = 0.0
                for i in range(n):
                    dx = PR[j, 0, i] - mx
                    dy = PR[j, 1, i] - my
                    sx += dx
                    sy += dy
                    sxx += dx * dx
                    syy += dy * dy
                    sxy += dx * dy
                P[j, 2] = sx
                P[j, 3] = sy
                P[j, 4] = sxx
                P[j, 5] = syy
                P[j, 6] = sxy
                P[j, 7] = mx
                P[j, 8] = my
            P[j, 0] = pos
            P[j, 1] += 1.0
            if P[j, 1] < n:
                beta[t, j] = np.nan
                corr[t, j] = np.nan
                continue
            cxy = P[j, 6] - P[j, 2] * P[j, 3] / n
            cxx = P[j, 4] - P[j, 2] * P[j, 2] / n
            cyy = P[j, 5] - P[j, 3] * P[j, 3] / n
            beta[t, j] = cxy / cyy if cyy > 0 else np.nan
            corr[t, j] = cxy / np.sqrt(cxx * cyy) if cxx > 0 and cyy > 0 else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def rank_rows_k(vals, order, dst):
    """``indicators.cs_rank`` of each row of ``vals`` into ``dst``: (average rank − ½)/count of the
    finite values, ties sharing their average rank. ``order`` is each row's argsort (numpy's SIMD
    sort, faster than one written here; NaN sorts last, so the finite values are one run of it,
    after any −inf). Without the GIL: the caller runs row blocks on several threads."""
    R, N = vals.shape
    for t in range(R):
        lead = 0  # −inf sorts first
        while lead < N and vals[t, order[t, lead]] == -np.inf:
            lead += 1
        end = lead
        while end < N and np.isfinite(vals[t, order[t, end]]):
            end += 1
        m = end - lead
        for j in range(N):
            dst[t, j] = np.nan
        first = lead
        while first < end:
            val = vals[t, order[t, first]]
            last = first
            while last + 1 < end and vals[t, order[t, last + 1]] == val:
                last += 1
            rank = ((first - lead + last - lead) / 2.0 + 1.0 - 0.5) / m
            for k in range(first, last + 1):
                dst[t, order[t, k]] = rank
            first = last + 1


@njit(cache=True, parallel=True, error_model="numpy")
def rank_k(block, src, dst, orders):
    """``rank_rows_k`` of block[src[i]] into block[dst[i]] for whole blocks, rows in parallel, with
    ``orders[i]`` each row's argsort (callers that rank one row of many instruments at once)."""
    for t in prange(block.shape[1]):
        for i in range(len(src)):
            rank_rows_k(block[src[i], t : t + 1], orders[i, t : t + 1], block[dst[i], t : t + 1])


@njit(cache=True, parallel=True, error_model="numpy")
def zscore_k(block, a, o):
    """``indicators.cs_zscore`` of block[a] into block[o], per row: population std, 0 for a row
    without dispersion, NaN where the value is not finite."""
    T, N = block.shape[1], block.shape[2]
    for t in prange(T):
        m = 0
        total = 0.0
        for j in range(N):
            x = block[a, t, j]
            block[o, t, j] = np.nan
            if np.isfinite(x):
                m += 1
                total += x
        if m == 0:
            continue
        mean = total / m
        ss = 0.0
        for j in range(N):
            x = block[a, t, j]
            if np.isfinite(x):
                ss += (x - mean) ** 2
        sd = np.sqrt(ss / m)
        for j in range(N):
            x = block[a, t, j]
            if np.isfinite(x):
                z = (x - mean) / sd if sd > 0 else 0.0
                block[o, t, j] = z if np.isfinite(z) else np.nan
