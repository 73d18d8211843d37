"""Purged, embargoed time splits: walk-forward test windows and the calibration slice of each fit.

Why purging: rows of a panel are not independent across time, and a label looks ``horizon`` bars
ahead. A row may train a model scored on a later window only if its *label* ends before that window
starts and it lies at least ``embargo`` (≥ horizon) bars before it; the same rule separates the rows
a base model fits on from the later rows its calibrator fits on, at every horizon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.features.pipeline import stack_wide

__all__ = ["Fold", "label_end", "purged_before", "walk_forward_splits", "calibration_split", "span_fraction"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: boolean masks over the rows, and the test window's bounds."""

    number: int
    train: np.ndarray
    test: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def label_end(panel: Panel, horizon: int) -> pd.Series:
    """Long (ts, symbol) → timestamp of the close each label looks at (NaT when unknown)."""
    close = panel.close.to_numpy(dtype=float)
    valid = np.isfinite(close) & (close > 0)
    order = np.argsort(~valid, axis=0, kind="stable")
    pos = np.take_along_axis(np.broadcast_to(np.arange(close.shape[0])[:, None], close.shape), order, axis=0)
    pos = np.where(np.take_along_axis(valid, order, axis=0), pos, -1).astype(float)
    pos[pos < 0] = np.nan
    ahead = np.full(pos.shape, np.nan)
    if pos.shape[0] > horizon:
        ahead[:-horizon] = pos[horizon:]
    end = np.full(close.shape, np.nan)
    np.put_along_axis(end, order, ahead, axis=0)
    end_pos = stack_wide(panel, {"end": end})["end"]
    ts = pd.Series(pd.NaT, index=end_pos.index, dtype=panel.index.dtype)
    ok = end_pos.notna().to_numpy()
    ts.iloc[np.nonzero(ok)[0]] = panel.index[end_pos.to_numpy()[ok].astype(int)]
    return ts


def purged_before(
    row_ts: pd.DatetimeIndex, row_label_end: pd.Series, stamps: pd.DatetimeIndex, start_pos: int, embargo: int
) -> np.ndarray:
    """Rows whose label ends before stamps[start_pos] and that lie ≥ embargo bars before it."""
    test_start = stamps[start_pos]
    if start_pos - embargo - 1 < 0:
        return np.zeros(len(row_ts), dtype=bool)
    last_ok = stamps[start_pos - embargo - 1]
    ends_ok = np.asarray(pd.DatetimeIndex(row_label_end) < test_start)  # NaT (unknown) → False
    return ends_ok & np.asarray(pd.DatetimeIndex(row_ts) <= last_ok)


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([ymwd])\s*$", re.IGNORECASE)
_DAYS = {"y": 365.25, "m": 30.44, "w": 7.0, "d": 1.0}


def span_fraction(test_span: float | str, stamps: pd.DatetimeIndex) -> float:
    """The share of ``stamps`` the test span covers: a fraction in (0, 1) as is, or a calendar span
    such as ``"3y"``, ``"18m"``, ``"26w"`` or ``"250d"`` counted back from the last stamp."""
    if isinstance(test_span, str):
        m = _SPAN.match(test_span)
        if m is None:
            try:
                test_span = float(test_span)
            except ValueError:
                raise ValueError(
                    f"test span {test_span!r}: use a fraction such as 0.3 or a span such as 3y, 18m, 250d"
                ) from None
        else:
            start = stamps[-1] - pd.Timedelta(days=float(m.group(1)) * _DAYS[m.group(2).lower()])
            share = float(np.mean(stamps > start)) if len(stamps) else 0.0
            if not 0.0 < share < 1.0:
                raise ValueError(
                    f"test span {test_span!r} covers {share:.0%} of the {len(stamps)} bars "
                    f"({stamps[0].date()} … {stamps[-1].date()}): choose a shorter span or load more history"
                )
            return share
    if not 0.0 < float(test_span) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_span}")
    return float(test_span)


def walk_forward_splits(
    row_ts: pd.Index, row_label_end: pd.Series, n_folds: int, test_fraction: float | str, embargo: int
) -> list[Fold]:
    """Expanding-window folds over the last ``test_fraction`` of timestamps, purged and embargoed.

    Fold k tests on the k-th of ``n_folds`` consecutive windows and trains on rows whose label
    ends before that window and that lie at least ``embargo`` bars before it.
    """
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds!r}")
    row_ts = pd.DatetimeIndex(row_ts)
    stamps = row_ts.unique().sort_values()
    frac = span_fraction(test_fraction, stamps)
    cut = min(max(int(np.floor(len(stamps) * (1.0 - frac))), 1), len(stamps) - 1) if len(stamps) >= 2 else 0
    if len(stamps) - cut < n_folds or cut < 1:
        raise ValueError(
            f"{len(stamps)} timestamps cannot hold {n_folds} test windows: load more history or use fewer folds"
        )
    folds = []
    for k, chunk in enumerate(np.array_split(np.arange(cut, len(stamps)), n_folds)):
        start, end = stamps[chunk[0]], stamps[chunk[-1]]
        test = np.asarray((row_ts >= start) & (row_ts <= end))
        train = purged_before(row_ts, row_label_end, stamps, int(chunk[0]), embargo) & ~test
        folds.append(Fold(k, train, test, start, end))
    return folds


def calibration_split(
    row_ts: pd.Index, row_label_end: pd.Series, train: np.ndarray, calib_fraction: float, embargo: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, calibrate) masks inside a training mask: the calibrator gets the latest ``calib_fraction``
    of the training timestamps; the base model gets the earlier rows whose labels end before them,
    at least ``embargo`` bars before (so a calibrator never sees a row its base model's labels overlap)."""
    if not 0.0 < calib_fraction < 1.0:
        raise ValueError(f"calib_fraction must be in (0, 1), got {calib_fraction}")
    row_ts = pd.DatetimeIndex(row_ts)
    stamps = row_ts[train].unique().sort_values()
    cut = int(np.floor(len(stamps) * (1.0 - calib_fraction)))
    if cut < embargo + 2 or cut >= len(stamps):
        raise ValueError(
            f"training window of {len(stamps)} timestamps is too short to hold out a calibration set: load more history"
        )
    all_stamps = row_ts.unique().sort_values()
    loc = all_stamps.get_loc(stamps[cut])
    assert isinstance(loc, (int, np.integer))  # a unique index gives a position
    pos = int(loc)
    cal = train & np.asarray(row_ts >= stamps[cut])
    fit = train & purged_before(row_ts, row_label_end, all_stamps, pos, embargo)
    return fit, cal
