"""The look-ahead checks of a cluster fit (``dask_lgbm``), run per time shard on the workers and combined.

Why per shard: in-process training runs ``leakage.leak_check`` on the whole training matrix, which a
cluster fit never holds in one process. Both checks decompose by date:

- **truncation**: the in-process cut dates (``leakage.cut_dates`` of the matrix's dates) are sent to
  every shard; the shard holding a cut date rebuilds its features on its own window cut there and
  compares the row at the cut with its matrix. A feature reading a later bar changes, as in-process.
  Combined: the worst difference per feature over the shards.
- **next-bar IC**: the in-process figure is the mean over dates of each date's cross-sectional IC.
  Each shard returns its dates' ICs and rows per date; the client takes the same mean over all dates,
  so the figure is in-process training's (up to the 1e-10 the shard features differ by).

One case does not combine exactly: with fewer than 10 instruments per date the in-process IC is one
Spearman pooled over all rows, whose ranks are global. There the shards' pooled ICs are averaged,
weighted by rows, and the report's ``method`` says so. The registered run records the method either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.models import leakage

__all__ = ["ShardLeaks", "combine", "shard_leaks"]


@dataclass(frozen=True)
class ShardLeaks:
    """One shard's pieces of the leak checks (small: a number per date and feature)."""

    truncation: dict[str, float]
    daily_ic: pd.DataFrame  # own dates × features
    names: pd.Series  # rows per own date
    pooled_ic: dict[str, float]  # Spearman over the shard's own rows (for the few-instruments case)
    rows: int


def shard_leaks(task: Any, cuts: pd.DatetimeIndex) -> ShardLeaks:
    """Run on a worker: the leak checks' pieces for ``task``'s (a ``dask_lgbm.ShardTask``) own dates."""
    from workbench.features.pipeline import build_features
    from workbench.models.base import complete_rows

    panel = task.load_window()
    X = build_features(panel, task.feature_set)
    ts = X.index.get_level_values("ts")
    X = X[complete_rows(X) & np.asarray((ts >= task.lo) & (ts <= task.hi))]
    own = pd.DatetimeIndex(cuts)
    own = own[(own >= task.lo) & (own <= task.hi)]
    trunc = (
        leakage.truncation_check(panel, X, lambda p: build_features(p, task.feature_set), at=own) if len(own) else {}
    )
    daily, names = leakage.daily_next_bar_ic(panel, X)
    pooled = leakage.next_bar_ic(panel, X, min_names=10**9)  # always the pooled Spearman of these rows
    return ShardLeaks(trunc, daily, names, {str(k): float(v) for k, v in pooled.items()}, len(X))


def combine(parts: list[ShardLeaks], ic_limit: float = leakage.IC_LIMIT) -> tuple[leakage.LeakReport, str]:
    """One ``LeakReport`` from the shards' pieces, and how its next-bar IC was combined."""
    trunc: dict[str, float] = {}
    for p in parts:
        for k, v in p.truncation.items():
            trunc[k] = max(trunc.get(k, 0.0), v)
    names = pd.concat([p.names for p in parts])
    if len(names) and names.median() >= 10:
        ic = pd.concat([p.daily_ic for p in parts]).mean()
        method = "next-bar IC: mean of the daily cross-sectional ICs over every date (exact combination)"
    else:
        weights = np.array([p.rows for p in parts], dtype=float)
        frame = pd.DataFrame([p.pooled_ic for p in parts])
        ok = frame.notna().to_numpy()
        w = np.where(ok, weights[:, None], 0.0)
        with np.errstate(invalid="ignore"):
            ic = pd.Series((np.nan_to_num(frame.to_numpy()) * w).sum(axis=0) / w.sum(axis=0), index=frame.columns)
        method = (
            "next-bar IC: fewer than 10 instruments per date, so the pooled Spearman of each shard, averaged "
            "by rows (an approximation of the in-process pooled figure, whose ranks span every shard)"
        )
    flagged = {str(k): float(v) for k, v in ic.items() if np.isfinite(v) and abs(v) > ic_limit}
    method += f"; truncation: the in-process cut dates, each checked by the shard holding it ({len(parts)} shards)"
    return leakage.LeakReport(trunc, flagged, ic.rename("next_bar_ic")), method
