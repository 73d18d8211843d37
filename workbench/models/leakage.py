"""Leak checks run on the very matrix a model trains on: a feature that knows the future is refused.

Two independent checks:

- **truncation**: rebuild the features on the panel cut at a few dates and compare the rows *at* the
  cut with the training matrix's rows for those dates. A feature that reads any later bar changes
  (or turns NaN) when the later bars are gone, however small the leak.
- **next-bar IC**: each feature's mean daily cross-sectional Spearman IC (pooled over time when
  the panel has too few instruments per date) with the return of the very next bar, the first bar
  of the label window. Honest daily features reach |IC| of a few hundredths; far above ``ic_limit``
  is implausible and flagged. This one also catches a leak planted in the matrix after it was built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.errors import LeakError

__all__ = [
    "IC_LIMIT",
    "LeakError",
    "LeakReport",
    "cut_dates",
    "daily_next_bar_ic",
    "leak_check",
    "next_bar_ic",
    "truncation_check",
]

log = logging.getLogger(__name__)

IC_LIMIT = 0.10  # |mean next-bar IC| above this is not a daily feature, it is the label leaking in


@dataclass(frozen=True)
class LeakReport:
    truncation: dict[str, float] = field(default_factory=dict)  # feature → max |Δ| at the cuts (NaN: turned NaN)
    ic: dict[str, float] = field(default_factory=dict)  # flagged feature → next-bar IC
    next_bar_ic: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # every feature's IC

    @property
    def leaky(self) -> list[str]:
        return sorted(set(self.truncation) | set(self.ic))

    def __bool__(self) -> bool:
        return bool(self.leaky)

    def __str__(self) -> str:
        if not self.leaky:
            return "no leak found (truncation and next-bar IC checks)"
        parts = [f"{k}: changes when later bars are removed (max |Δ| {v:.3g})" for k, v in self.truncation.items()]
        parts += [f"{k}: next-bar IC {v:+.3f} (limit ±{IC_LIMIT})" for k, v in self.ic.items()]
        return "features look into the future — " + "; ".join(parts)


def truncation_check(
    panel: Panel,
    X: pd.DataFrame,
    build: Callable[[Panel], pd.DataFrame],
    cuts: int = 3,
    atol: float = 1e-9,
    rtol: float = 1e-6,
    at: pd.DatetimeIndex | None = None,
) -> dict[str, float]:
    """Features whose rows at ``cuts`` dates (or the dates ``at``) differ between ``X`` and
    ``build(panel cut at that date)``."""
    stamps = pd.DatetimeIndex(X.index.get_level_values("ts")).unique().sort_values()
    picks = cut_dates(stamps, cuts) if at is None else pd.DatetimeIndex(at)
    worst: dict[str, float] = {}
    for ts in picks:
        loc = panel.index.get_loc(ts)
        assert isinstance(loc, (int, np.integer))  # the panel's index is unique
        pos = int(loc)
        short = build(panel.iloc(slice(0, pos + 1)))
        full = X.xs(ts, level="ts", drop_level=True)
        rows = short.xs(ts, level="ts", drop_level=True)
        assert isinstance(full, pd.DataFrame) and isinstance(rows, pd.DataFrame)  # a level of a frame's index
        cut = rows.reindex(index=full.index, columns=full.columns)
        a, b = full.to_numpy(dtype=float), cut.to_numpy(dtype=float)
        fin_a, fin_b = np.isfinite(a), np.isfinite(b)
        with np.errstate(invalid="ignore"):
            diff = np.where(fin_a & fin_b, np.abs(a - b), 0.0)
        bad = (fin_a != fin_b) | (diff > atol + rtol * np.abs(np.nan_to_num(a)))
        for j in np.nonzero(bad.any(axis=0))[0]:
            name = str(full.columns[int(j)])
            d = float(np.nanmax(np.where(bad[:, j], np.where(fin_a[:, j] & fin_b[:, j], diff[:, j], np.inf), 0)))
            worst[name] = max(worst.get(name, 0.0), d)
    return worst


def cut_dates(stamps: pd.DatetimeIndex, cuts: int = 3) -> pd.DatetimeIndex:
    """The dates the truncation check cuts the panel at: ``cuts`` of the matrix's dates from 30 % in
    to the last but one (none when it has fewer than 4 dates)."""
    if len(stamps) < 4:
        return stamps[:0]
    return stamps[np.unique(np.linspace(len(stamps) * 0.3, len(stamps) - 2, cuts).astype(int))]


def daily_next_bar_ic(panel: Panel, X: pd.DataFrame, min_names: int = 10) -> tuple[pd.DataFrame, pd.Series]:
    """Each feature's cross-sectional Spearman IC with the next bar's return, per date (dates ×
    features), and the number of rows per date: the pieces ``next_bar_ic`` averages, which a cluster
    computes per time shard and combines exactly."""
    from workbench.features.labels import forward_return
    from workbench.features.pipeline import stack_wide
    from workbench.models.evaluation import daily_ic

    nxt = stack_wide(panel, {"r": forward_return(panel, 1).to_numpy()})["r"].reindex(X.index).to_numpy()
    ts = X.index.get_level_values("ts").to_numpy()
    daily = pd.DataFrame(
        {str(c): daily_ic(X[c].to_numpy(dtype=float), nxt, ts, min_names=min_names) for c in X.columns}
    )
    return daily, pd.Series(1, index=X.index).groupby(level="ts").size()


def next_bar_ic(panel: Panel, X: pd.DataFrame, min_names: int = 10) -> pd.Series:
    """Each feature's IC with the next bar's return: mean daily cross-sectional Spearman when dates
    hold ≥ ``min_names`` instruments, else one Spearman pooled over all rows."""
    from workbench.features.labels import forward_return
    from workbench.features.pipeline import stack_wide
    from workbench.models.evaluation import daily_ic

    nxt = stack_wide(panel, {"r": forward_return(panel, 1).to_numpy()})["r"].reindex(X.index).to_numpy()
    ts = X.index.get_level_values("ts").to_numpy()
    names_per_date = pd.Series(1, index=X.index).groupby(level="ts").size()
    cross = names_per_date.median() >= min_names
    out = {}
    for col in X.columns:
        v = X[col].to_numpy(dtype=float)
        if cross:
            out[str(col)] = float(daily_ic(v, nxt, ts, min_names=min_names).mean())
        else:
            ok = np.isfinite(v) & np.isfinite(nxt)
            out[str(col)] = (
                float(pd.Series(v[ok]).rank().corr(pd.Series(nxt[ok]).rank())) if ok.sum() > 10 else float("nan")
            )
    return pd.Series(out, name="next_bar_ic")


def leak_check(
    panel: Panel,
    X: pd.DataFrame,
    build: Callable[[Panel], pd.DataFrame] | None = None,
    ic_limit: float = IC_LIMIT,
    cuts: int = 3,
) -> LeakReport:
    """Both checks on a training matrix ``X`` built from ``panel`` (``build`` rebuilds it; None skips truncation)."""
    trunc = truncation_check(panel, X, build, cuts) if build is not None else {}
    ic = next_bar_ic(panel, X)
    flagged = {str(k): float(v) for k, v in ic.items() if np.isfinite(v) and abs(v) > ic_limit}
    return LeakReport(trunc, flagged, ic)


def enforce(report: LeakReport, mode: str) -> None:
    """``refuse``: raise LeakError; ``warn``: log a warning; ``off``: nothing."""
    if not report or mode == "off":
        return
    if mode == "warn":
        log.warning("%s", report)
        return
    raise LeakError(
        f"{report}. Training refused: remove or fix those features (or pass leak_check='warn' "
        "to train anyway and see the inflated scores)"
    )
