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

import numba
import numpy as np
from numba import njit, prange

from workbench.features.fused_steps import (  # noqa: F401  (re-exported: the one-row path imports them from here)
    _MAX,
    _MEAN,
    _MIN,
    _STD0,
    _STD1,
    _SUM,
    _estep,
    _load2,
    _load3,
    _lstep,
    _ratio,
    _ring_dev,
    _ring_extreme,
    _ring_sum,
    _rload,
    _rsave,
    _rstep,
    _save2,
    _save3,
    _wstep,
)

__all__ = [
    "V2State",
    "series_k",
    "instruments_k",
    "pair_k",
    "rank_k",
    "rank_rows_k",
    "sort_order",
    "zscore_k",
    "SERIES",
    "PAIR",
    "CROSS",
    "RING",
]

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
(R_VOL20, R_VOL60, R_BBM, R_BBS, R_STH, R_STL, R_SK, R_SD, R_MFP, R_MFN, R_OBVD, R_VZM, R_VZS, R_VWN, R_VWD,
 R_DH20, R_DL20, R_DH60, R_DL60, R_BKH, R_BKL, R_CLAG, R_OBVLAG) = range(23)  # fmt: skip
N_RINGS = 23
# The rolling extremes as (ring, window), a maximum then a minimum each (``fused_simd``'s order); typed
# here, where mypy knows the rings (``fused_simd`` reads this module while it is still importing).
EXTREMES: np.ndarray = np.array(
    [(R_STH, 14), (R_STL, 14), (R_BKH, 20), (R_BKL, 20), (R_DH20, 20), (R_DL20, 20), (R_DH60, 60), (R_DL60, 60)],
    dtype=np.int64,
)
# Float state slots: 5 per rolling statistic, then the rest.
_O = 5 * 21
# One per line with their types: fused_simd reads them while this module is still importing (mypy
# cannot infer types across that cycle from a tuple assignment).
S_CLAG: int = _O
S_HLC: int = _O + 2
S_TP: int = _O + 6
S_OBV: int = _O + 8
S_OBVLAG: int = _O + 11
S_BK: int = _O + 13
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


# Scratch rows of one instrument (W): inputs, derived series, and indicator outputs.
(W_C, W_LR, W_GAIN, W_LOSS, W_HM, W_LM, W_CM, W_TR, W_PLUS, W_MINUS, W_POS, W_NEG, W_MF, W_VM, W_OBVD, W_VC,
 W_LOGV, W_CH, W_HC, W_CL, W_LC, W_A, W_B, W_D, W_E, W_F, W_G) = range(27)  # fmt: skip
N_W = 27


@njit(cache=True, error_model="numpy")
def _instrument(h, l, c, v, S, R, out, cols, W, j, t0, m):  # noqa: E741
    """Instrument ``j``'s rows t0 … t0+m−1: first the derived series that need only a previous
    value (scratch ``W``), then the indicators in five loops over the rows, each stepping 4–8
    independent recurrences (one loop per indicator was latency-bound: ~25% more CPU)."""
    # pass 1: the derived series that need only a previous value (state in locals for the chunk)
    o = cols
    cp, cn = int(S[j, S_CLAG]), S[j, S_CLAG + 1]
    ph, pl, pc, nh = S[j, S_HLC], S[j, S_HLC + 1], S[j, S_HLC + 2], S[j, S_HLC + 3]
    ptp0, ntp = S[j, S_TP], S[j, S_TP + 1]
    obc, obv, nob = S[j, S_OBV], S[j, S_OBV + 1], S[j, S_OBV + 2]
    op, on = int(S[j, S_OBVLAG]), S[j, S_OBVLAG + 1]
    for t in range(m):
        u = t0 + t
        hh = h[j, u]
        ll = l[j, u]
        cc = c[j, u]
        vr = v[j, u]
        vv = vr if vr > 0 else np.nan  # zero volume = not reported; NaN stays NaN
        okc = np.isfinite(cc)
        okhlc = okc and np.isfinite(hh) and np.isfinite(ll)
        okv = np.isfinite(vv)
        W[W_C, t] = cc
        # returns over valid closes: one ring of the last 60 closes serves every lag
        if okc:
            l1 = R[j, R_CLAG, cp - 1 + (RING if cp < 1 else 0)] if cn >= 1 else np.nan
            l5 = R[j, R_CLAG, cp - 5 + (RING if cp < 5 else 0)] if cn >= 5 else np.nan
            l10 = R[j, R_CLAG, cp - 10 + (RING if cp < 10 else 0)] if cn >= 10 else np.nan
            l20 = R[j, R_CLAG, cp - 20 + (RING if cp < 20 else 0)] if cn >= 20 else np.nan
            l60 = R[j, R_CLAG, cp] if cn >= 60 else np.nan
            R[j, R_CLAG, cp] = cc
            cp = cp + 1 if cp + 1 < RING else 0
            cn += 1.0
        else:
            l1 = l5 = l10 = l20 = l60 = np.nan
        rr = _ratio(cc, l1)
        out[o[0], u, j] = rr - 1.0
        out[o[1], u, j] = _ratio(cc, l5) - 1.0
        out[o[2], u, j] = _ratio(cc, l10) - 1.0
        out[o[3], u, j] = _ratio(cc, l20) - 1.0
        out[o[4], u, j] = _ratio(cc, l60) - 1.0
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
            if nh >= 1.0:
                qh, ql, qc = ph, pl, pc
            else:
                qh = ql = qc = np.nan
            ph, pl, pc = hh, ll, cc
            nh += 1.0
        else:
            hm = lm = cm = qh = ql = qc = np.nan
        W[W_HM, t] = hm
        W[W_LM, t] = lm
        W[W_CM, t] = cm
        if np.isfinite(qc):
            W[W_TR, t] = max(hm - lm, max(abs(hm - qc), abs(lm - qc)))
            up = hm - qh
            down = ql - lm
            W[W_PLUS, t] = up if (up > 0 and up > down) else 0.0
            W[W_MINUS, t] = down if (down > 0 and down > up) else 0.0
        else:
            W[W_TR, t] = W[W_PLUS, t] = W[W_MINUS, t] = np.nan
        # bars with high, low, close and volume: money flow
        if okhlc and okv:
            tp = (hh + ll + cc) / 3.0
            vm = vv
            ptp = ptp0 if ntp >= 1.0 else np.nan
            ptp0 = tp
            ntp += 1.0
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
            if nob == 0.0:
                obv = vv
            elif cc > obc:
                obv += vv
            elif cc < obc:
                obv -= vv
            obc = cc
            nob += 1.0
            then = R[j, R_OBVLAG, op] if on >= 20 else np.nan
            R[j, R_OBVLAG, op] = obv
            op = op + 1 if op + 1 < 20 else 0
            on += 1.0
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
    S[j, S_CLAG], S[j, S_CLAG + 1] = cp, cn
    S[j, S_HLC], S[j, S_HLC + 1], S[j, S_HLC + 2], S[j, S_HLC + 3] = ph, pl, pc, nh
    S[j, S_TP], S[j, S_TP + 1] = ptp0, ntp
    S[j, S_OBV], S[j, S_OBV + 1], S[j, S_OBV + 2] = obc, obv, nob
    S[j, S_OBVLAG], S[j, S_OBVLAG + 1] = op, on

    # pass 2: the indicators, several independent recurrences per loop over time (their chains overlap)
    v20, v60 = _rload(S, j, 5 * R_VOL20), _rload(S, j, 5 * R_VOL60)
    bbm, bbs = _rload(S, j, 5 * R_BBM), _rload(S, j, 5 * R_BBS)
    eg, el, atr = _load3(S, j, S_EG), _load3(S, j, S_EL), _load3(S, j, S_ATR)
    for t in range(m):
        u = t0 + t
        cc = W[W_C, t]
        lr = W[W_LR, t]
        vol20, v20 = _rstep(lr, 20, _STD1, R, j, R_VOL20, v20)
        vol60, v60 = _rstep(lr, 60, _STD1, R, j, R_VOL60, v60)
        g, eg = _estep(W[W_GAIN, t], 14, 1.0 / 14, 0, False, eg)
        loss, el = _estep(W[W_LOSS, t], 14, 1.0 / 14, 0, False, el)
        mid, bbm = _rstep(cc, 20, _MEAN, R, j, R_BBM, bbm)
        sd, bbs = _rstep(cc, 20, _STD0, R, j, R_BBS, bbs)
        a14, atr = _estep(W[W_TR, t], 14, 1.0 / 14, 0, False, atr)
        out[o[5], u, j] = vol20
        out[o[6], u, j] = vol60
        total = g + loss
        out[o[7], u, j] = (50.0 if total == 0 else 100.0 * g / total) / 100.0
        upper = mid + 2.0 * sd
        lower = mid - 2.0 * sd
        width = upper - lower
        out[o[11], u, j] = 0.5 if width == 0 else (cc - lower) / width
        out[o[12], u, j] = _ratio(upper - lower, mid)
        out[o[13], u, j] = _ratio(a14, cc)
    _rsave(S, j, 5 * R_VOL20, v20)
    _rsave(S, j, 5 * R_VOL60, v60)
    _rsave(S, j, 5 * R_BBM, bbm)
    _rsave(S, j, 5 * R_BBS, bbs)
    _save3(S, j, S_EG, eg)
    _save3(S, j, S_EL, el)
    _save3(S, j, S_ATR, atr)

    # MACD (fast seed aligned with the slow one, as TA-Lib) and the EMA ratios
    e26, e12f, sig_, e12, e50 = (_load3(S, j, S_E26), _load3(S, j, S_E12F), _load3(S, j, S_SIG),
                                 _load3(S, j, S_E12), _load3(S, j, S_E50))  # fmt: skip
    for t in range(m):
        u = t0 + t
        cc = W[W_C, t]
        slow, e26 = _estep(cc, 26, 2.0 / 27, 0, False, e26)
        fast, e12f = _estep(cc, 12, 2.0 / 13, 14, False, e12f)
        line = fast - slow
        sig, sig_ = _estep(line, 9, 2.0 / 10, 0, False, sig_)
        f12, e12 = _estep(cc, 12, 2.0 / 13, 0, False, e12)
        f50, e50 = _estep(cc, 50, 2.0 / 51, 0, False, e50)
        out[o[8], u, j] = _ratio(line, cc)
        out[o[9], u, j] = _ratio(sig, cc)
        out[o[10], u, j] = _ratio(line - sig, cc)
        out[o[14], u, j] = _ratio(cc, f12) - 1.0
        out[o[15], u, j] = _ratio(cc, slow) - 1.0
        out[o[16], u, j] = _ratio(cc, f50) - 1.0
    _save3(S, j, S_E26, e26)
    _save3(S, j, S_E12F, e12f)
    _save3(S, j, S_SIG, sig_)
    _save3(S, j, S_E12, e12)
    _save3(S, j, S_E50, e50)

    # ADX and the DI spread (Wilder sums of +DM, −DM and true range); the slow stochastic (flat range → 50)
    wp, wm, wt, adx = _load2(S, j, S_WP), _load2(S, j, S_WM), _load2(S, j, S_WT), _load3(S, j, S_ADX)
    sth, stl, sk, sdd = _rload(S, j, 5 * R_STH), _rload(S, j, 5 * R_STL), _rload(S, j, 5 * R_SK), _rload(S, j, 5 * R_SD)
    for t in range(m):
        u = t0 + t
        tr = W[W_TR, t]
        sp, wp = _wstep(W[W_PLUS, t], 14, wp)
        sm, wm = _wstep(W[W_MINUS, t], 14, wm)
        st, wt = _wstep(tr, 14, wt)
        pdi = 100.0 * _ratio(sp, st)
        mdi = 100.0 * _ratio(sm, st)
        dx = 100.0 * _ratio(abs(pdi - mdi), pdi + mdi)
        out[o[18], u, j] = (pdi - mdi) / 100.0
        a, adx = _estep(dx, 14, 2.0 / 15, 0, True, adx)
        out[o[17], u, j] = a / 100.0
        hi, sth = _rstep(W[W_HM, t], 14, _MAX, R, j, R_STH, sth)
        lo, stl = _rstep(W[W_LM, t], 14, _MIN, R, j, R_STL, stl)
        rng = hi - lo
        if rng > 0:
            raw = 100.0 * (W[W_CM, t] - lo) / rng
        elif rng == rng:
            raw = 50.0
        else:
            raw = np.nan
        kk, sk = _rstep(raw, 3, _MEAN, R, j, R_SK, sk)
        dd, sdd = _rstep(kk, 3, _MEAN, R, j, R_SD, sdd)
        out[o[19], u, j] = kk / 100.0
        out[o[20], u, j] = dd / 100.0
    _save2(S, j, S_WP, wp)
    _save2(S, j, S_WM, wm)
    _save2(S, j, S_WT, wt)
    _save3(S, j, S_ADX, adx)
    _rsave(S, j, 5 * R_STH, sth)
    _rsave(S, j, 5 * R_STL, stl)
    _rsave(S, j, 5 * R_SK, sk)
    _rsave(S, j, 5 * R_SD, sdd)

    # breakouts beyond the previous 20 bars' extremes; distance to the rolling high/low
    bkh, bkl, lh, ll_ = _rload(S, j, 5 * R_BKH), _rload(S, j, 5 * R_BKL), _load2(S, j, S_BK), _load2(S, j, S_BK + 2)
    dh20, dl20 = _rload(S, j, 5 * R_DH20), _rload(S, j, 5 * R_DL20)
    dh60, dl60 = _rload(S, j, 5 * R_DH60), _rload(S, j, 5 * R_DL60)
    for t in range(m):
        u = t0 + t
        cm = W[W_CM, t]
        h20, bkh = _rstep(W[W_HM, t], 20, _MAX, R, j, R_BKH, bkh)
        l20, bkl = _rstep(W[W_LM, t], 20, _MIN, R, j, R_BKL, bkl)
        hi, lh = _lstep(h20, lh)
        lo, ll_ = _lstep(l20, ll_)
        out[o[29], u, j] = (1.0 if cm > hi else 0.0) if hi == hi else np.nan
        out[o[30], u, j] = (1.0 if cm < lo else 0.0) if lo == lo else np.nan
        hc = W[W_HC, t]
        lc = W[W_LC, t]
        ch = W[W_CH, t]
        cl = W[W_CL, t]
        x, dh20 = _rstep(hc, 20, _MAX, R, j, R_DH20, dh20)
        out[o[25], u, j] = _ratio(ch, x) - 1.0
        x, dl20 = _rstep(lc, 20, _MIN, R, j, R_DL20, dl20)
        out[o[26], u, j] = _ratio(cl, x) - 1.0
        x, dh60 = _rstep(hc, 60, _MAX, R, j, R_DH60, dh60)
        out[o[27], u, j] = _ratio(ch, x) - 1.0
        x, dl60 = _rstep(lc, 60, _MIN, R, j, R_DL60, dl60)
        out[o[28], u, j] = _ratio(cl, x) - 1.0
    _rsave(S, j, 5 * R_BKH, bkh)
    _rsave(S, j, 5 * R_BKL, bkl)
    _save2(S, j, S_BK, lh)
    _save2(S, j, S_BK + 2, ll_)
    _rsave(S, j, 5 * R_DH20, dh20)
    _rsave(S, j, 5 * R_DL20, dl20)
    _rsave(S, j, 5 * R_DH60, dh60)
    _rsave(S, j, 5 * R_DL60, dl60)

    # MFI and the rolling VWAP; OBV flow and the volume z-score
    mfp, mfn, vwn, vwd = (
        _rload(S, j, 5 * R_MFP),
        _rload(S, j, 5 * R_MFN),
        _rload(S, j, 5 * R_VWN),
        _rload(S, j, 5 * R_VWD),
    )
    obvd, vzm, vzs = _rload(S, j, 5 * R_OBVD), _rload(S, j, 5 * R_VZM), _rload(S, j, 5 * R_VZS)
    for t in range(m):
        u = t0 + t
        ps, mfp = _rstep(W[W_POS, t], 14, _SUM, R, j, R_MFP, mfp)
        ns, mfn = _rstep(W[W_NEG, t], 14, _SUM, R, j, R_MFN, mfn)
        num, vwn = _rstep(W[W_MF, t], 20, _SUM, R, j, R_VWN, vwn)
        den, vwd = _rstep(W[W_VM, t], 20, _SUM, R, j, R_VWD, vwd)
        out[o[21], u, j] = 100.0 * _ratio(ps, ps + ns) / 100.0
        out[o[24], u, j] = _ratio(W[W_C, t], _ratio(num, den)) - 1.0
        lv = W[W_LOGV, t]
        flow, obvd = _rstep(W[W_VC, t], 20, _SUM, R, j, R_OBVD, obvd)
        mu, vzm = _rstep(lv, 20, _MEAN, R, j, R_VZM, vzm)
        sv, vzs = _rstep(lv, 20, _STD0, R, j, R_VZS, vzs)
        out[o[22], u, j] = _ratio(W[W_OBVD, t], flow)
        out[o[23], u, j] = _ratio(lv - mu, sv)
    _rsave(S, j, 5 * R_MFP, mfp)
    _rsave(S, j, 5 * R_MFN, mfn)
    _rsave(S, j, 5 * R_VWN, vwn)
    _rsave(S, j, 5 * R_VWD, vwd)
    _rsave(S, j, 5 * R_OBVD, obvd)
    _rsave(S, j, 5 * R_VZM, vzm)
    _rsave(S, j, 5 * R_VZS, vzs)


from workbench.features import fused_simd as FS  # noqa: E402  (it reads this module's constants)

# Rows per chunk: one chunk of a group's outputs (43 × CHUNK × 8 instruments) stays in L2.
CHUNK = 64
GROUP = 8  # instruments per group: one 64-byte line of each output row


def series_k(h, l, c, v, S, R, out, cols) -> None:  # noqa: E741
    """Every per-instrument v2 feature, continuing from state ``S``/``R``. The inputs are
    (instrument × time), each instrument's bars contiguous; ``out`` is (feature × time × instrument).

    ``cols[i]`` is the block row of ``SERIES[i]``. Follows ``sets.v2_stream``'s formulas: each
    indicator sees only the bars on which its own inputs are all valid. Whole groups of clean
    instruments run in vector lanes (``fused_simd``), the rest one by one (``instruments_k``); on
    numba's thread count either way, and the same bits either way."""
    groups = FS.vector_groups(h, l, c, v, S)
    FS.run_groups(h, l, c, v, S, R, out, cols, groups, numba.get_num_threads())
    skip = np.zeros(c.shape[0], dtype=np.bool_)
    skip[groups.ravel()] = True
    if not skip.all():
        instruments_k(h, l, c, v, S, R, out, cols, skip)


@njit(cache=True, parallel=True, error_model="numpy")
def instruments_k(h, l, c, v, S, R, out, cols, skip):  # noqa: E741
    """``series_k``'s per-instrument path for the instruments not in ``skip``. Groups of ``GROUP``
    instruments run in parallel, ``CHUNK`` rows at a time (the state carries across chunks), so
    the output lines a group writes are still in cache when its next instrument writes them."""
    N, T = c.shape
    for g in prange((N + GROUP - 1) // GROUP):
        W = np.empty((N_W, min(CHUNK, T)))
        for t0 in range(0, T, CHUNK):
            m = min(CHUNK, T - t0)
            for j in range(g * GROUP, min(N, (g + 1) * GROUP)):
                if not skip[j]:
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


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _untie_k(vals, hi, order):
    """Insertion-sort each run of ``order`` whose truncated keys ``hi`` are equal by the values
    themselves (values within ~2⁻³⁹ of each other, or equal: those do not move)."""
    R, N = vals.shape
    for t in range(R):
        for k in range(1, N):
            h = hi[t, k]
            if h != hi[t, k - 1]:
                continue
            o = order[t, k]
            x = vals[t, o]
            i = k
            while i > 0 and hi[t, i - 1] == h and vals[t, order[t, i - 1]] > x:
                order[t, i] = order[t, i - 1]
                i -= 1
            order[t, i] = o


_TOP = np.uint64(1 << 63)
_ALL = np.uint64(2**64 - 1)


def sort_order(vals: np.ndarray) -> np.ndarray:
    """Each row's ascending order as ``rank_rows_k`` needs it (−inf first, NaN last, ties adjacent),
    from numpy's SIMD sort of unsigned keys instead of its argsort (~3× slower at 5,000 columns).

    Why it is exact: each value maps to a key whose unsigned order is the float order (sign bit
    flipped; NaN mapped to the top); its lowest ⌈log₂ N⌉ bits are replaced by the column, so one
    sort gives the order, and only values that share the truncated key (equal, or within ~2⁻³⁹
    relative at N ≤ 8,192) can be out of order: ``_untie_k`` sorts those runs by the values."""
    vals = np.ascontiguousarray(vals, dtype=np.float64)
    N = vals.shape[1]
    shift = max(1, (N - 1).bit_length())
    low = np.uint64((1 << shift) - 1)
    key = np.empty(vals.shape, dtype=np.uint64)
    _keys_k(vals, vals.view(np.uint64), low, key)
    key.sort(axis=1)
    order = (key & low).astype(np.int64)
    _untie_k(vals, (key >> np.uint64(shift)).view(np.int64), order)
    return order


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _keys_k(vals, bits, low, key):
    """``sort_order``'s keys in one pass (as numpy expressions: six passes and temporaries, 2.3×
    the sort itself at 5,000 columns). All-uint64 arithmetic: numba makes uint64 ∘ int64 a float."""
    R, N = vals.shape
    top, full, high = _TOP, _ALL, ~low
    for t in range(R):
        for j in range(N):
            b = bits[t, j]
            k = (~b if b >= top else b | top) if vals[t, j] == vals[t, j] else full
            key[t, j] = (k & high) | np.uint64(j)


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
