"""Streaming indicators: each takes a ``StreamState`` and (time × instrument) arrays, returns arrays.

Why a state object threaded through every call: a feature set is a fixed sequence of these calls, so
the state of its k-th call is the k-th slot of ``StreamState``. Run the sequence over a whole history
with a fresh state and you get the batch features; run it again over one new row with the state
kept from before and you get exactly the newest row of the batch (``incremental.py``). One code
path, so research and the live loop cannot disagree.

Conventions are those of ``indicators`` (TA-Lib lookbacks and seeding; invalid bars skipped per
instrument; outputs finite or NaN). A multi-input indicator treats a bar as valid only when all its
inputs are finite there (``masked``).
"""

from __future__ import annotations

import copy

import numpy as np

from workbench.features import kernels as K

__all__ = [
    "StreamState", "masked", "ratio", "s_sma", "s_ema", "s_rolling", "s_lag", "s_returns", "s_log_returns",
    "s_rsi", "s_macd", "s_bollinger", "s_true_range", "s_atr", "s_adx", "s_stochastic", "s_obv", "s_mfi",
    "s_volatility", "s_zscore", "s_breakout", "s_beta_corr", "s_session_vwap", "s_rolling_vwap",
]  # fmt: skip


class StreamState:
    """The per-call states of a sequence of streaming indicators, in call order.

    ``begin()`` rewinds to the first slot before each pass; a slot is created on first use and
    checked by key afterwards, so a state can only be replayed by the same call sequence.
    """

    def __init__(self, n_instruments: int):
        self.n = int(n_instruments)
        self._slots: list[tuple[tuple, tuple]] = []
        self._i = 0
        self.extra: dict = {}  # builder-specific state that is not an array slot (e.g. a calendar clock)

    def begin(self) -> StreamState:
        self._i = 0
        return self

    def slot(self, key: tuple, make) -> tuple:
        if self._i < len(self._slots):
            have, arrays = self._slots[self._i]
            if have != key:
                raise RuntimeError(
                    f"stream state replayed by a different call sequence: slot {self._i} is {have}, not {key}"
                )
        else:
            arrays = make()
            self._slots.append((key, arrays))
        self._i += 1
        return arrays

    def copy(self) -> StreamState:
        return copy.deepcopy(self)

    def _f(self, *shape) -> np.ndarray:
        return np.zeros(shape or (self.n,), dtype=np.float64)

    def _i64(self) -> np.ndarray:
        return np.zeros(self.n, dtype=np.int64)


def _c(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def masked(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays with NaN wherever any of them is not finite: one validity for a multi-input indicator."""
    valid = np.ones(np.shape(arrays[0]), dtype=bool)
    for a in arrays:
        valid &= np.isfinite(a)
    return [np.where(valid, a, np.nan) for a in arrays]


def ratio(num: np.ndarray, den: np.ndarray, positive: bool = True) -> np.ndarray:
    """num / den, NaN where the denominator is zero (or ≤ 0 when ``positive``) or the result is not finite."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = num / den
    ok = np.isfinite(out) & ((den > 0) if positive else (den != 0))
    return np.where(ok, out, np.nan)


# ---------------------------------------------------------------------------------------------
# Primitive streams (one kernel each)


def s_ema(st: StreamState, x, n: int, alpha: float | None = None, skip: int = 0, wilder: bool = False) -> np.ndarray:
    alpha = 2.0 / (n + 1) if alpha is None else float(alpha)
    y, acc, cnt = st.slot(("ema", n, alpha, skip, wilder), lambda: (st._f(), st._f(), st._i64()))
    x = _c(x)
    out = np.empty_like(x)
    K.run(K.ema_k, x.size, x, int(n), alpha, int(skip), bool(wilder), y, acc, cnt, out)
    return out


def s_rolling(st: StreamState, x, n: int, mode: int) -> np.ndarray:
    buf, pos, cnt, run, run2, shift = st.slot(
        ("roll", n, mode), lambda: (st._f(st.n, n), st._i64(), st._i64(), st._f(), st._f(), st._f())
    )
    x = _c(x)
    out = np.empty_like(x)
    K.run(K.rolling_k, x.size, x, int(n), int(mode), buf, pos, cnt, run, run2, shift, out)
    return out


def s_sma(st: StreamState, x, n: int) -> np.ndarray:
    return s_rolling(st, x, n, K.MEAN)


def s_lag(st: StreamState, x, k: int = 1) -> np.ndarray:
    buf, pos, cnt = st.slot(("lag", k), lambda: (st._f(st.n, k), st._i64(), st._i64()))
    x = _c(x)
    out = np.empty_like(x)
    K.run(K.lag_k, x.size, x, int(k), buf, pos, cnt, out)
    return out


def s_wilder_sum(st: StreamState, x, n: int) -> np.ndarray:
    s, cnt = st.slot(("wsum", n), lambda: (st._f(), st._i64()))
    x = _c(x)
    out = np.empty_like(x)
    K.run(K.wilder_sum_k, x.size, x, int(n), s, cnt, out)
    return out


# ---------------------------------------------------------------------------------------------
# Indicators


def s_returns(st: StreamState, c, periods: int) -> np.ndarray:
    """close / close ``periods`` valid bars ago − 1 (TA-Lib ROCP)."""
    return ratio(c, s_lag(st, c, periods)) - 1.0


def s_log_returns(st: StreamState, c) -> np.ndarray:
    r = ratio(c, s_lag(st, c, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), np.nan)


def s_rsi(st: StreamState, c, n: int = 14) -> np.ndarray:
    d = c - s_lag(st, c, 1)
    gain = np.where(d > 0, d, 0.0)
    loss = np.where(d < 0, -d, 0.0)
    bad = ~np.isfinite(d)
    gain[bad] = np.nan
    loss[bad] = np.nan
    g = s_ema(st, gain, n, alpha=1.0 / n)
    lo = s_ema(st, loss, n, alpha=1.0 / n)
    total = g + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * g / total
    return np.where(total == 0, 50.0, r)  # flat window: neutral, as ``indicators.rsi``


def s_macd(st: StreamState, c, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[np.ndarray, ...]:
    slow_ema = s_ema(st, c, slow)
    fast_ema = s_ema(st, c, fast, skip=max(slow - fast, 0))  # TA-Lib aligns the fast seed with the slow one
    line = fast_ema - slow_ema
    sig = s_ema(st, line, signal)
    return line, sig, line - sig


def s_bollinger(st: StreamState, c, n: int = 20, k: float = 2.0) -> tuple[np.ndarray, ...]:
    mid = s_rolling(st, c, n, K.MEAN)
    sd = s_rolling(st, c, n, K.STD0)
    upper, lower = mid + k * sd, mid - k * sd
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_b = (c - lower) / width
    return mid, upper, lower, np.where(width == 0, 0.5, pct_b)


def s_true_range(st: StreamState, h, l, c) -> np.ndarray:  # noqa: E741
    """True range on bars where h, l, c are all valid; NaN on the first (no previous close), as TA-Lib."""
    h, l, c = masked(h, l, c)  # noqa: E741
    prev = s_lag(st, c, 1)
    return np.fmax(h - l, np.fmax(np.abs(h - prev), np.abs(l - prev))) + 0.0 * prev


def s_atr(st: StreamState, h, l, c, n: int = 14) -> np.ndarray:  # noqa: E741
    return s_ema(st, s_true_range(st, h, l, c), n, alpha=1.0 / n)


def s_adx(st: StreamState, h, l, c, n: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: E741
    """TA-Lib ADX, +DI, −DI: Wilder-smoothed sums of directional movement and true range."""
    h, l, c = masked(h, l, c)  # noqa: E741
    ph, pl, pc = s_lag(st, h, 1), s_lag(st, l, 1), s_lag(st, c, 1)
    up, down = h - ph, pl - l
    plus = np.where((up > 0) & (up > down), up, 0.0) + 0.0 * ph
    minus = np.where((down > 0) & (down > up), down, 0.0) + 0.0 * ph
    tr = np.fmax(h - l, np.fmax(np.abs(h - pc), np.abs(l - pc))) + 0.0 * pc
    sp, sm, st_ = s_wilder_sum(st, plus, n), s_wilder_sum(st, minus, n), s_wilder_sum(st, tr, n)
    pdi, mdi = 100.0 * ratio(sp, st_), 100.0 * ratio(sm, st_)
    dx = 100.0 * ratio(np.abs(pdi - mdi), pdi + mdi)
    adx = s_ema(st, dx, n, wilder=True)
    return adx, pdi, mdi


def s_stochastic(st: StreamState, h, l, c, k: int = 14, smooth_k: int = 3, d: int = 3) -> tuple[np.ndarray, np.ndarray]:  # noqa: E741
    """Slow stochastic (TA-Lib STOCH with SMAs): %K = SMA(fast %K), %D = SMA(%K); flat range → 50."""
    h, l, c = masked(h, l, c)  # noqa: E741
    hh, ll = s_rolling(st, h, k, K.MAX), s_rolling(st, l, k, K.MIN)
    rng = hh - ll
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(rng > 0, 100.0 * (c - ll) / np.where(rng > 0, rng, 1.0), 50.0) + 0.0 * rng
    slow_k = s_sma(st, fast, smooth_k)
    return slow_k, s_sma(st, slow_k, d)


def s_breakout(st: StreamState, h, l, c, n: int = 20) -> tuple[np.ndarray, np.ndarray]:  # noqa: E741
    """1.0 where the close breaks above the highest high (below the lowest low) of the previous n bars."""
    h, l, c = masked(h, l, c)  # noqa: E741
    prev_hi = s_lag(st, s_rolling(st, h, n, K.MAX), 1)
    prev_lo = s_lag(st, s_rolling(st, l, n, K.MIN), 1)
    up = np.where(c > prev_hi, 1.0, 0.0) + 0.0 * prev_hi
    down = np.where(c < prev_lo, 1.0, 0.0) + 0.0 * prev_lo
    return up, down


def s_obv(st: StreamState, c, v) -> np.ndarray:
    prev, acc, cnt = st.slot(("obv",), lambda: (st._f(), st._f(), st._i64()))
    c, v = _c(c), _c(v)
    out = np.empty_like(c)
    K.run(K.obv_k, c.size, c, v, prev, acc, cnt, out)
    return out


def s_mfi(st: StreamState, h, l, c, v, n: int = 14) -> np.ndarray:  # noqa: E741
    """Money flow index (TA-Lib MFI); NaN when the window traded no volume (TA-Lib: 0)."""
    h, l, c, v = masked(h, l, c, v)  # noqa: E741
    tp = (h + l + c) / 3.0
    prev = s_lag(st, tp, 1)
    mf = tp * v
    # Equal typical prices that differ by rounding alone ((34.1+33.6+33.76)/3 vs (34.23+33.41+33.82)/3)
    # are a flat bar, not a tiny move: TA-Lib agrees on real data only with this tolerance.
    d = tp - prev
    tol = 1e-12 * np.abs(prev)
    pos = np.where(d > tol, mf, 0.0) + 0.0 * prev
    neg = np.where(d < -tol, mf, 0.0) + 0.0 * prev
    ps, ns = s_rolling(st, pos, n, K.SUM), s_rolling(st, neg, n, K.SUM)
    return 100.0 * ratio(ps, ps + ns)


def s_volatility(st: StreamState, c, n: int = 20) -> np.ndarray:
    """Sample std (ddof=1) of the last ``n`` log returns, as ``indicators.rolling_volatility``."""
    return s_rolling(st, s_log_returns(st, c), n, K.STD1)


def s_zscore(st: StreamState, x, n: int = 20) -> np.ndarray:
    """(x − rolling mean) / rolling population std over ``n`` valid bars; NaN for a flat window."""
    m = s_rolling(st, x, n, K.MEAN)
    sd = s_rolling(st, x, n, K.STD0)
    return ratio(x - m, sd)


def s_beta_corr(st: StreamState, r, bench, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Rolling beta and correlation of returns ``r`` to benchmark returns ``bench`` (1-D per row or 2-D)."""
    r = _c(r)
    b = np.broadcast_to(np.asarray(bench, dtype=float).reshape(len(r), -1), r.shape)
    bx, by, pos, cnt = st.slot(("pair", n), lambda: (st._f(st.n, n), st._f(st.n, n), st._i64(), st._i64()))
    beta, corr = np.empty_like(r), np.empty_like(r)
    K.run(K.pair_k, r.size, r, _c(b), int(n), bx, by, pos, cnt, beta, corr)
    return beta, corr


def s_rolling_vwap(st: StreamState, h, l, c, v, n: int = 20) -> np.ndarray:  # noqa: E741
    h, l, c, v = masked(h, l, c, v)  # noqa: E741
    pv = (h + l + c) / 3.0 * v
    return ratio(s_rolling(st, pv, n, K.SUM), s_rolling(st, v, n, K.SUM))


def s_session_vwap(st: StreamState, h, l, c, v, session: np.ndarray) -> np.ndarray:  # noqa: E741
    """VWAP anchored at each session's first bar; ``session`` is one integer id per row."""
    h, l, c, v = masked(h, l, c, v)  # noqa: E741
    last, cpv, cv = st.slot(
        ("svwap",), lambda: (np.full(st.n, np.iinfo(np.int64).min, dtype=np.int64), st._f(), st._f())
    )
    pv = _c((h + l + c) / 3.0 * v)
    out = np.empty_like(pv)
    K.run(K.session_vwap_k, pv.size, pv, _c(v), np.ascontiguousarray(session, dtype=np.int64), last, cpv, cv, out)
    return out
