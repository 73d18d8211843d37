"""Labels: what the model is asked to predict, kept apart from features because labels look ahead.

Labels are the only code allowed to read the future, so they never run at inference time (qlib's
rule): the live loop imports features, never this module.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from workbench.config import CostModel, SignalParams
from workbench.data.panel import FIELDS, Panel
from workbench.features.pipeline import feature_atr, stack_wide

__all__ = [
    "forward_return",
    "direction_label",
    "updown_label",
    "round_trip_cost",
    "triple_barrier",
    "cross_sectional_label",
    "cross_sectional_rank",
    "LABELS",
    "CROSS_SECTIONAL",
    "training_label",
]


def _forward_p(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t+h] / close[t] − 1 over each column's own valid bars (gaps are skipped, as in features)."""
    valid = np.isfinite(close) & (close > 0)
    order = np.argsort(~valid, axis=0, kind="stable")
    packed = np.take_along_axis(np.where(valid, close, np.nan), order, axis=0)
    fwd = np.full(packed.shape, np.nan)
    if packed.shape[0] > horizon:
        fwd[:-horizon] = packed[horizon:] / packed[:-horizon] - 1.0
    out = np.full(close.shape, np.nan)
    np.put_along_axis(out, order, fwd, axis=0)
    out[~valid] = np.nan
    return out


def forward_return(panel: Panel, horizon: int) -> pd.DataFrame:
    """Wide return from bar t's close to the close ``horizon`` valid bars later; NaN where unknown."""
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    out = _forward_p(panel.close.to_numpy(dtype=float), int(horizon))
    return pd.DataFrame(out, index=panel.close.index, columns=panel.close.columns)


def direction_label(panel: Panel, horizon: int = 1) -> pd.Series:
    """Long (ts, symbol) label: 1.0 if the close rises over the next ``horizon`` bars, 0.0 if it
    falls or stays flat, NaN where the future is unknown. Same index as ``build_features``."""
    fwd = forward_return(panel, horizon).to_numpy()
    lab = np.where(np.isfinite(fwd), (fwd > 0).astype(float), np.nan)
    return stack_wide(panel, {"label": lab})["label"]


def _cs_rank(fwd: np.ndarray) -> np.ndarray:
    """Per row (date), each finite value's percentile rank in (0, 1]: average ranks for ties, NaN stays NaN."""
    out = pd.DataFrame(fwd).rank(axis=1, pct=True, method="average").to_numpy()
    n = np.isfinite(fwd).sum(axis=1, keepdims=True)
    return np.where(n >= 2, out, np.nan)  # one instrument has no cross-section to be ranked in


def cross_sectional_rank(panel: Panel, horizon: int = 1) -> pd.Series:
    """Long (ts, symbol) label: the percentile rank of the ``horizon``-bar forward return among that
    date's instruments (in (0, 1]); NaN where the future is unknown or the date has < 2 instruments.

    Why: a rank is stock selection only — the market's move that day is the same for every
    instrument and cancels out, so a model cannot score by timing the market.
    """
    return stack_wide(panel, {"label": _cs_rank(forward_return(panel, horizon).to_numpy())})["label"]


def cross_sectional_label(panel: Panel, horizon: int = 1) -> pd.Series:
    """Long (ts, symbol) label: 1.0 if the instrument beats that date's cross-sectional median
    forward return over ``horizon`` bars, 0.0 otherwise, NaN where unknown.

    About half the rows of every date are 1, so a model that only times the market scores AUC 0.5.
    """
    fwd = forward_return(panel, horizon).to_numpy()
    n = np.isfinite(fwd).sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN dates (the last h bars)
        med = np.nanmedian(fwd, axis=1, keepdims=True)
    lab = np.where(np.isfinite(fwd) & (n >= 2), (fwd > med).astype(float), np.nan)
    return stack_wide(panel, {"label": lab})["label"]


def round_trip_cost(costs: CostModel | None = None) -> float:
    """Fees and slippage of entering and leaving once, as a fraction of notional."""
    costs = costs or CostModel()
    return 2.0 * (costs.fee_rate + costs.slippage_bps / 1e4)


def updown_label(
    panel: Panel, horizon: int = 1, threshold: float | None = None, costs: CostModel | None = None
) -> pd.Series:
    """Long (ts, symbol) label: +1 up, −1 down, 0 flat, NaN where the future is unknown.

    "Flat" is a move too small to pay for a round trip: |forward return| ≤ ``threshold``, which
    defaults to ``round_trip_cost(costs)`` (0.3% with the default costs).
    """
    thr = round_trip_cost(costs) if threshold is None else float(threshold)
    if not thr >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    fwd = forward_return(panel, horizon).to_numpy()
    lab = np.where(fwd > thr, 1.0, np.where(fwd < -thr, -1.0, 0.0))
    return stack_wide(panel, {"label": np.where(np.isfinite(fwd), lab, np.nan)})["label"]


def _pack(valid: np.ndarray, *arrays: np.ndarray):
    order = np.argsort(~valid, axis=0, kind="stable")
    return order, [np.take_along_axis(np.where(valid, a, np.nan), order, axis=0) for a in arrays]


def triple_barrier(panel: Panel, params: SignalParams | None = None, horizon: int = 10) -> pd.DataFrame:
    """Triple-barrier outcome of a long entry at each bar's close, with the signals' own exits.

    The stop-loss and take-profit are those ``signals.signal_frame`` puts on a BUY at that bar
    (close ∓ ``stop_atr``·ATR, close + ``take_profit_atr``·ATR, ATR over ``atr_window``), watched on
    the next ``horizon`` valid bars' high/low like the backtest: a bar that touches both counts as
    the stop (the conservative reading), a gap through a barrier fills at the open.

    Long (ts, symbol) frame on the features' index, columns ``label`` (+1 take-profit, −1 stop,
    0 time limit), ``ret`` (exit / entry − 1) and ``bars`` (bars held); NaN where the outcome is not
    known yet (fewer than ``horizon`` bars ahead and no barrier touched) or there is no ATR.
    """
    from workbench.signals import signal_frame

    params = params or SignalParams()
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    horizon = int(horizon)
    atr = feature_atr(panel, params.atr_window)
    buy = pd.DataFrame(1.0, index=panel.close.index, columns=panel.close.columns)
    frames = signal_frame(buy, panel.close, atr, params, strength_reference=None)
    o, h, lo, c = (getattr(panel, f).to_numpy(dtype=float) for f in FIELDS[:4])
    stop, take = frames["stop"].to_numpy(dtype=float), frames["take_profit"].to_numpy(dtype=float)
    valid = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
    order, (o, h, lo, c, stop, take) = _pack(valid, o, h, lo, c, stop, take)
    T = c.shape[0]
    label = np.full(c.shape, np.nan)
    exit_px = np.full(c.shape, np.nan)
    held = np.full(c.shape, np.nan)
    open_ = np.isfinite(stop) & np.isfinite(take) & np.isfinite(c)
    for k in range(1, horizon + 1):
        if k >= T:
            break
        fo, fh, fl, fc = (np.full(c.shape, np.nan) for _ in range(4))
        fo[:-k], fh[:-k], fl[:-k], fc[:-k] = o[k:], h[k:], lo[k:], c[k:]
        known = open_ & np.isfinite(fc)
        hit_stop = known & (fl <= stop)
        hit_take = known & ~hit_stop & (fh >= take)
        exit_px = np.where(hit_stop, np.minimum(stop, fo), exit_px)
        exit_px = np.where(hit_take, np.maximum(take, fo), exit_px)
        label = np.where(hit_stop, -1.0, np.where(hit_take, 1.0, label))
        held = np.where(hit_stop | hit_take, float(k), held)
        open_ &= ~(hit_stop | hit_take)
        if k == horizon:
            timed = open_ & np.isfinite(fc)
            label = np.where(timed, 0.0, label)
            exit_px = np.where(timed, fc, exit_px)
            held = np.where(timed, float(k), held)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = exit_px / c - 1.0
    out = {}
    for name, arr in (("label", label), ("ret", ret), ("bars", held)):
        back = np.full(arr.shape, np.nan)
        np.put_along_axis(back, order, arr, axis=0)
        back[~valid] = np.nan
        out[name] = back
    return stack_wide(panel, out)


def _cost_binary(panel: Panel, horizon: int) -> pd.Series:
    """1.0 when the move up pays for a round trip (``updown_label`` == +1), else 0.0."""
    lab = updown_label(panel, horizon)
    return lab.where(lab.isna(), (lab == 1.0).astype(float))


def _barrier_binary(panel: Panel, horizon: int) -> pd.Series:
    """1.0 when a long entry reaches its take-profit before its stop or the time limit, else 0.0."""
    lab = triple_barrier(panel, horizon=horizon)["label"]
    return lab.where(lab.isna(), (lab == 1.0).astype(float))


def _xs_top(panel: Panel, horizon: int) -> pd.Series:
    """1.0 when the instrument is in the date's top quintile of ``horizon``-bar forward returns."""
    rank = cross_sectional_rank(panel, horizon)
    return rank.where(rank.isna(), (rank > 0.8).astype(float))


# The labels a model can be trained on: name → (panel, horizon) → long 0/1 label (NaN where unknown).
# Each is binary so every model kind, calibration and AUC apply; the ranking objective reads the
# cross-sectional ones as relevance grades within a date.
LABELS = {
    "sign": direction_label,  # the close rises over h bars (market timing + selection)
    "xs_median": cross_sectional_label,  # beats the date's median over h bars (selection only)
    "xs_top": _xs_top,  # in the date's top quintile over h bars
    "cost": _cost_binary,  # rises by more than a round trip's costs
    "barrier": _barrier_binary,  # a long entry's take-profit is hit first (triple barrier)
}
# Labels that compare instruments on the same date: judged by the daily rank IC first.
CROSS_SECTIONAL = ("xs_median", "xs_top")


def training_label(panel: Panel, label: str, horizon: int) -> pd.Series:
    """The long 0/1 label called ``label`` (see ``LABELS``); ValueError naming the known ones otherwise."""
    fn = LABELS.get(label)
    if fn is None:
        raise ValueError(f"unknown label {label!r}; known labels: {list(LABELS)}")
    return fn(panel, horizon)
