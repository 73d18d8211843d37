"""Technical indicators as pure numpy on (time × instrument) arrays.

Why this shape: a panel is many instruments on one time grid, so every indicator works on the whole
grid at once — research, backtest and the live loop call the same function on the same shape.

Conventions (all indicators):

- Input: 2-D float arrays shaped (time, instruments); 1-D arrays are treated as one instrument and
  come back 1-D. **DataFrames (or Series) are accepted too and come back as DataFrames (Series)
  with the same index and columns**; multi-output indicators return a tuple of them.
- Missing bars are *skipped*, not filled: each column is computed on its own valid (finite) bars,
  then written back to their rows. So an instrument whose history starts late warms up from its
  first valid bar, a crypto column and an equity column can share a grid with weekend gaps, and a
  gap simply joins the bars on either side. A missing input bar gives NaN on that row.
- Warm-up rows are NaN; the outputs are finite or NaN, never ±inf, and nothing raises on NaN.
- Recursive filters follow TA-Lib's seeding: EMA is seeded with the SMA of its first ``n`` values,
  Wilder's RSI/ATR with the mean of their first ``n`` gains/losses/true ranges. Deliberate departures
  (documented where they occur): RSI of a flat series is 50 (TA-Lib: 0), Bollinger %B of a flat
  window is 0.5.
- Recursions loop over time with numpy ops across the instrument axis: one step costs the same for
  1 or 5,000 instruments.
- The indicators added after v1 (ADX, stochastic, OBV, MFI, rolling extremes, VWAP, beta...) are thin
  wrappers over the streaming kernels in ``streams``/``kernels`` (numba): one pass with a fresh
  state, so the batch value and the live incremental value come from the same code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "sma", "ema", "rsi", "macd", "bollinger", "atr", "returns", "rolling_volatility",
    "adx", "stochastic", "obv", "mfi", "roc", "realised_volatility", "volume_zscore", "rolling_max", "rolling_min",
    "distance_to_high", "distance_to_low", "breakout", "vwap", "beta_corr", "cs_rank", "cs_zscore",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Plumbing: frames in/out, and "compute on each column's valid bars" (compact → compute → scatter)


def _frame_aware(fn: Callable) -> Callable:
    """Let ``fn`` (written for ndarrays) accept Series/DataFrames and return the same kind."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        template = next((a for a in args if isinstance(a, (pd.DataFrame, pd.Series))), None)
        if template is None:
            return fn(*args, **kwargs)
        args = tuple(a.to_numpy(dtype=float) if isinstance(a, (pd.DataFrame, pd.Series)) else a for a in args)
        out = fn(*args, **kwargs)

        def wrap(arr: np.ndarray):
            if isinstance(template, pd.Series):
                return pd.Series(arr, index=template.index, name=template.name)
            return pd.DataFrame(arr, index=template.index, columns=template.columns)

        return tuple(wrap(o) for o in out) if isinstance(out, tuple) else wrap(out)

    return wrapper


def _as_2d(*arrays) -> tuple[list[np.ndarray], bool]:
    out = [np.asarray(a, dtype=float) for a in arrays]
    one_d = out[0].ndim == 1
    if one_d:
        out = [a.reshape(-1, 1) for a in out]
    shape = out[0].shape
    for a in out:
        if a.ndim != 2 or a.shape != shape:
            raise ValueError(
                f"indicator inputs must be 2-D (time, instruments) of one shape, got {[x.shape for x in out]}"
            )
    return out, one_d


def _on_valid_bars(compute: Callable[..., tuple[np.ndarray, ...]], *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run ``compute`` on arrays whose valid bars are packed to the top of each column.

    A bar is valid when every input is finite there. After packing, each column is a gap-free
    series starting at row 0 followed by NaN padding, so ``compute`` needs no per-column logic;
    its outputs are scattered back to the original rows (and NaN on invalid rows).
    """
    valid = np.ones(arrays[0].shape, dtype=bool)
    for a in arrays:
        valid &= np.isfinite(a)
    if valid.all():
        return tuple(np.where(np.isfinite(o), o, np.nan) for o in compute(*arrays))
    order = np.argsort(~valid, axis=0, kind="stable")  # valid rows first, in time order
    packed = [np.take_along_axis(np.where(valid, a, np.nan), order, axis=0) for a in arrays]
    results = compute(*packed)
    outs = []
    for r in results:
        o = np.full(r.shape, np.nan)
        np.put_along_axis(o, order, r, axis=0)
        o[~valid] = np.nan
        o[~np.isfinite(o)] = np.nan
        outs.append(o)
    return tuple(outs)


def _finalise(outs: tuple[np.ndarray, ...], one_d: bool):
    outs = tuple(o[:, 0] if one_d else o for o in outs)
    return outs if len(outs) > 1 else outs[0]


def _check_window(n: int, name: str = "n") -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


# ---------------------------------------------------------------------------------------------
# Kernels on packed arrays (gap-free from their first finite row; NaN padding at the bottom).


def _sma_p(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if x.shape[0] >= n:
        out[n - 1 :] = sliding_window_view(x, n, axis=0).mean(axis=-1)
    return out


def _std_p(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if x.shape[0] >= n and n > ddof:
        out[n - 1 :] = sliding_window_view(x, n, axis=0).std(axis=-1, ddof=ddof)
    return out


def _recursive_p(x: np.ndarray, n: int, alpha: float, start: int = 0) -> np.ndarray:
    """y[t] = y[t-1] + alpha·(x[t] − y[t-1]), seeded at row start+n−1 with the mean of x[start:start+n].

    ``start`` is the first finite row (the same for every column once packed: 0 for prices, 1 for
    differences). NaN padding at the bottom propagates, which is harmless: those rows are dropped.
    """
    out = np.full(x.shape, np.nan)
    seed_row = start + n - 1
    if x.shape[0] <= seed_row:
        return out
    y = x[start : seed_row + 1].mean(axis=0)
    out[seed_row] = y
    for t in range(seed_row + 1, x.shape[0]):
        y = y + alpha * (x[t] - y)
        out[t] = y
    return out


def _ema_p(x: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    return _recursive_p(x, n, 2.0 / (n + 1), start)


def _diff_p(x: np.ndarray, periods: int = 1) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    out[periods:] = x[periods:] - x[:-periods]
    return out


# ---------------------------------------------------------------------------------------------
# Public indicators


@_frame_aware
def sma(x, n: int):
    """Simple moving average of the last ``n`` valid bars."""
    n = _check_window(n)
    (x,), one_d = _as_2d(x)
    return _finalise(_on_valid_bars(lambda a: (_sma_p(a, n),), x), one_d)


@_frame_aware
def ema(x, n: int):
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first ``n`` values (TA-Lib)."""
    n = _check_window(n)
    (x,), one_d = _as_2d(x)
    return _finalise(_on_valid_bars(lambda a: (_ema_p(a, n),), x), one_d)


def _rsi_p(c: np.ndarray, n: int) -> np.ndarray:
    d = _diff_p(c)
    gain = np.where(d > 0, d, 0.0)
    loss = np.where(d < 0, -d, 0.0)
    gain[~np.isfinite(d)] = np.nan
    loss[~np.isfinite(d)] = np.nan
    avg_gain = _recursive_p(gain, n, 1.0 / n, start=1)
    avg_loss = _recursive_p(loss, n, 1.0 / n, start=1)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * avg_gain / total
    # A flat window has no gains and no losses: neutral 50 (TA-Lib says 0, which reads as "oversold").
    return np.where(total == 0, 50.0, r)


@_frame_aware
def rsi(close, n: int = 14):
    """Wilder's RSI in [0, 100]; first value at the n-th difference, like TA-Lib."""
    n = _check_window(n)
    (c,), one_d = _as_2d(close)
    return _finalise(_on_valid_bars(lambda a: (_rsi_p(a, n),), c), one_d)


def _macd_p(c: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, ...]:
    # TA-Lib aligns the two EMAs: the fast one is seeded on the `fast` bars that end where the slow
    # seed ends, so both lines start on the same bar.
    slow_ema = _ema_p(c, slow)
    offset = max(slow - fast, 0)
    fast_ema = np.full(c.shape, np.nan)
    fast_ema[offset:] = _ema_p(c[offset:], fast)
    line = fast_ema - slow_ema
    first = max(slow, fast) - 1
    sig = _ema_p(line, signal, start=first)
    return line, sig, line - sig


@_frame_aware
def macd(close, fast: int = 12, slow: int = 26, signal: int = 9):
    """MACD ``(line, signal, hist)``: EMA(fast) − EMA(slow), its EMA(signal), and their difference.

    The line is defined from bar ``slow − 1``; signal and histogram from ``slow + signal − 2``.
    """
    fast, slow, signal = _check_window(fast, "fast"), _check_window(slow, "slow"), _check_window(signal, "signal")
    (c,), one_d = _as_2d(close)
    return _finalise(_on_valid_bars(lambda a: _macd_p(a, fast, slow, signal), c), one_d)


def _bollinger_p(c: np.ndarray, n: int, k: float) -> tuple[np.ndarray, ...]:
    mid = _sma_p(c, n)
    sd = _std_p(c, n, ddof=0)  # population std, as TA-Lib
    upper, lower = mid + k * sd, mid - k * sd
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_b = (c - lower) / width
    pct_b = np.where(width == 0, 0.5, pct_b)  # flat window: the close sits on the middle band
    return mid, upper, lower, pct_b


@_frame_aware
def bollinger(close, n: int = 20, k: float = 2.0):
    """Bollinger bands ``(mid, upper, lower, pct_b)`` with population std (TA-Lib); %B of a flat window is 0.5."""
    n = _check_window(n)
    (c,), one_d = _as_2d(close)
    return _finalise(_on_valid_bars(lambda a: _bollinger_p(a, n, float(k)), c), one_d)


def _atr_p(h: np.ndarray, l: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:  # noqa: E741
    prev = np.full(c.shape, np.nan)
    prev[1:] = c[:-1]
    tr = np.fmax(h - l, np.fmax(np.abs(h - prev), np.abs(l - prev)))
    tr[0] = np.nan  # TA-Lib: the first bar has no previous close, so no true range
    return _recursive_p(tr, n, 1.0 / n, start=1)


@_frame_aware
def atr(high, low, close, n: int = 14):
    """Wilder's average true range; first value at bar ``n`` (mean of the first n true ranges), like TA-Lib."""
    n = _check_window(n)
    (h, l, c), one_d = _as_2d(high, low, close)  # noqa: E741
    return _finalise(_on_valid_bars(lambda a, b, d: (_atr_p(a, b, d, n),), h, l, c), one_d)


def _returns_p(c: np.ndarray, periods: int) -> np.ndarray:
    out = np.full(c.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[periods:] = c[periods:] / c[:-periods] - 1.0
    return out


@_frame_aware
def returns(close, periods: int = 1):
    """Simple return over ``periods`` valid bars: close[t] / close[t−periods] − 1."""
    periods = _check_window(periods, "periods")
    (c,), one_d = _as_2d(close)
    return _finalise(_on_valid_bars(lambda a: (_returns_p(a, periods),), c), one_d)


def _volatility_p(c: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        logret = np.full(c.shape, np.nan)
        logret[1:] = np.log(c[1:] / c[:-1])
    out = np.full(c.shape, np.nan)
    if c.shape[0] > n:
        out[n:] = _std_p(logret[1:], n, ddof=1)[n - 1 :]
    return out


@_frame_aware
def rolling_volatility(close, n: int = 20):
    """Sample std (ddof=1) of the last ``n`` log returns (not annualised); first value at bar ``n``."""
    n = _check_window(n)
    if n < 2:
        raise ValueError(f"rolling_volatility needs n >= 2, got {n}")
    (c,), one_d = _as_2d(close)
    return _finalise(_on_valid_bars(lambda a: (_volatility_p(a, n),), c), one_d)


# ---------------------------------------------------------------------------------------------
# Indicators on the streaming kernels (batch = one pass with a fresh state)


def _stream(fn: Callable, *arrays, n_out: int = 1):
    from workbench.features.streams import StreamState

    arrs, one_d = _as_2d(*arrays)
    outs = fn(StreamState(arrs[0].shape[1]), *arrs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    outs = tuple(np.where(np.isfinite(o), o, np.nan) for o in outs)
    return _finalise(outs, one_d)


@_frame_aware
def adx(high, low, close, n: int = 14):
    """``(adx, plus_di, minus_di)`` in [0, 100] as TA-Lib (ADX first at bar 2n−1, DI at bar n).

    Departure: where the true range or the DI sum is zero (a flat market) the bar's DX is NaN and
    skipped, where TA-Lib counts it as 0 or carries the previous ADX.
    """
    from workbench.features.streams import s_adx

    n = _check_window(n)
    return _stream(lambda st, h, l, c: s_adx(st, h, l, c, n), high, low, close)  # noqa: E741


@_frame_aware
def stochastic(high, low, close, k: int = 14, smooth_k: int = 3, d: int = 3):
    """Slow stochastic ``(%K, %D)`` in [0, 100] (TA-Lib STOCH, SMA smoothing); a flat range gives 50."""
    from workbench.features.streams import s_stochastic

    k, smooth_k, d = _check_window(k, "k"), _check_window(smooth_k, "smooth_k"), _check_window(d, "d")
    return _stream(lambda st, h, l, c: s_stochastic(st, h, l, c, k, smooth_k, d), high, low, close)  # noqa: E741


@_frame_aware
def obv(close, volume):
    """On-balance volume (TA-Lib OBV). Its level depends on where history starts; use differences."""
    from workbench.features.streams import s_obv

    return _stream(lambda st, c, v: s_obv(st, c, v), close, volume)


@_frame_aware
def mfi(high, low, close, volume, n: int = 14):
    """Money flow index in [0, 100] (TA-Lib MFI); NaN where the window traded nothing (TA-Lib: 0)."""
    from workbench.features.streams import s_mfi

    n = _check_window(n)
    return _stream(lambda st, h, l, c, v: s_mfi(st, h, l, c, v, n), high, low, close, volume)  # noqa: E741


@_frame_aware
def roc(close, n: int = 10):
    """Rate of change as a fraction, close[t]/close[t−n] − 1 over valid bars (TA-Lib ROCP)."""
    from workbench.features.streams import s_returns

    n = _check_window(n)
    return _stream(lambda st, c: s_returns(st, c, n), close)


realised_volatility = rolling_volatility


@_frame_aware
def volume_zscore(volume, n: int = 20):
    """z-score of log(1 + volume) against its last ``n`` valid bars; NaN when volume is flat (e.g. all zero)."""
    from workbench.features.streams import s_zscore

    n = _check_window(n)

    def f(st, v):
        with np.errstate(invalid="ignore", divide="ignore"):
            lv = np.where(v >= 0, np.log1p(np.where(v >= 0, v, 0.0)), np.nan)
        return s_zscore(st, lv, n)

    return _stream(f, volume)


@_frame_aware
def rolling_max(x, n: int):
    """Highest of the last ``n`` valid values, current included (TA-Lib MAX)."""
    from workbench.features.kernels import MAX
    from workbench.features.streams import s_rolling

    n = _check_window(n)
    return _stream(lambda st, a: s_rolling(st, a, n, MAX), x)


@_frame_aware
def rolling_min(x, n: int):
    """Lowest of the last ``n`` valid values, current included (TA-Lib MIN)."""
    from workbench.features.kernels import MIN
    from workbench.features.streams import s_rolling

    n = _check_window(n)
    return _stream(lambda st, a: s_rolling(st, a, n, MIN), x)


def _distance_to_extreme(extreme: str, price, close, n: int):
    """close / rolling ``extreme`` (MAX or MIN kernel) of ``price`` over ``n`` bars − 1."""
    from workbench.features import kernels
    from workbench.features.streams import masked, ratio, s_rolling

    n = _check_window(n)
    which = getattr(kernels, extreme)

    def f(st, p, c):
        p, c = masked(p, c)
        return ratio(c, s_rolling(st, p, n, which)) - 1.0

    return _stream(f, price, close)


@_frame_aware
def distance_to_high(high, close, n: int = 20):
    """close / highest high of the last ``n`` bars − 1 (≤ 0): how far below resistance."""
    return _distance_to_extreme("MAX", high, close, n)


@_frame_aware
def distance_to_low(low, close, n: int = 20):
    """close / lowest low of the last ``n`` bars − 1 (≥ 0): how far above support."""
    return _distance_to_extreme("MIN", low, close, n)


@_frame_aware
def breakout(high, low, close, n: int = 20):
    """``(up, down)`` flags (1.0/0.0): the close beyond the highest high / lowest low of the *previous* n bars."""
    from workbench.features.streams import s_breakout

    n = _check_window(n)
    return _stream(lambda st, h, l, c: s_breakout(st, h, l, c, n), high, low, close)  # noqa: E741


@_frame_aware
def vwap(high, low, close, volume, n: int | None = 20, sessions=None):
    """Volume-weighted typical price: over the last ``n`` bars, or anchored at each session start
    when ``sessions`` (one integer/date label per row, e.g. the exchange-local date of intraday bars)
    is given. NaN where no volume traded."""
    from workbench.features.streams import s_rolling_vwap, s_session_vwap

    if sessions is not None:
        codes = pd.factorize(pd.Index(sessions))[0].astype(np.int64)
        return _stream(lambda st, h, l, c, v: s_session_vwap(st, h, l, c, v, codes), high, low, close, volume)  # noqa: E741
    if n is None:
        raise ValueError("vwap needs a window n, or sessions to anchor at")
    n = _check_window(n)
    return _stream(lambda st, h, l, c, v: s_rolling_vwap(st, h, l, c, v, n), high, low, close, volume)  # noqa: E741


@_frame_aware
def beta_corr(returns_, benchmark, n: int = 60):
    """``(beta, corr)`` of each column's returns to benchmark returns over the last ``n`` joint valid bars.

    ``benchmark`` is 1-D (one value per row, e.g. an index or BTC) or the same shape as ``returns_``.
    """
    from workbench.features.streams import StreamState, s_beta_corr

    n = _check_window(n)
    if n < 2:
        raise ValueError(f"beta_corr needs n >= 2, got {n}")
    b = np.asarray(benchmark, dtype=float)
    (r,), one_d = _as_2d(returns_)
    out = s_beta_corr(StreamState(r.shape[1]), r, b, n)
    return _finalise(tuple(np.where(np.isfinite(o), o, np.nan) for o in out), one_d)


@_frame_aware
def cs_rank(x):
    """Cross-sectional rank per row, (rank − ½)/count in (0, 1), ties averaged; NaN stays NaN."""
    from workbench.features.kernels import cs_rank_k, run

    (a,), one_d = _as_2d(x)
    a = np.ascontiguousarray(a)
    order = np.argsort(np.where(np.isfinite(a), a, np.inf), axis=1)  # missing values sort last
    out = np.empty(a.shape)
    run(cs_rank_k, a.size, a, order, out)
    return _finalise((out,), one_d)


@_frame_aware
def cs_zscore(x):
    """Cross-sectional z-score per row (population std); 0 where the row has no dispersion (e.g. one instrument)."""
    (a,), one_d = _as_2d(x)
    a = np.where(np.isfinite(a), a, np.nan)
    count = np.isfinite(a).sum(axis=1, keepdims=True)
    safe = np.where(np.isfinite(a), a, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=1, keepdims=True) / count
        sd = np.sqrt((np.where(np.isfinite(a), a - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count)
        z = np.where(sd > 0, (a - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    return _finalise((np.where(np.isfinite(a) & np.isfinite(z), z, np.nan),), one_d)
