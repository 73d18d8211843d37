"""Research tools: how much a feature says about future returns, how fast that fades, how jumpy it is.

Why rank IC: features and returns are heavy-tailed; Spearman correlation of a feature with the next
return measures ordering power without being driven by a few outliers. Tables come back as
DataFrames (for numbers and tests); ``plot_*`` turn them into matplotlib figures for notebooks.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.features.labels import forward_return

__all__ = [
    "forward_returns_long", "ic_by_period", "ic_summary", "ic_decay", "feature_turnover", "feature_correlation",
    "plot_ic_summary", "plot_ic_decay", "plot_ic_timeseries", "plot_correlation",
]  # fmt: skip


def forward_returns_long(panel: Panel, horizon: int) -> pd.Series:
    """Forward returns on the features' (ts, symbol) index."""
    from workbench.features.pipeline import stack_wide

    return stack_wide(panel, {"fwd": forward_return(panel, horizon).to_numpy()})["fwd"]


def _spearman(x: np.ndarray, y: np.ndarray, min_obs: int) -> np.ndarray:
    """Spearman of each column of ``x`` with ``y`` over the rows where both are finite (pairwise)."""
    from scipy.stats import rankdata

    out = np.full(x.shape[1], np.nan)
    yok = np.isfinite(y)
    for j in range(x.shape[1]):
        ok = yok & np.isfinite(x[:, j])
        if ok.sum() < min_obs:
            continue
        a, b = rankdata(x[ok, j]), rankdata(y[ok])
        a, b = a - a.mean(), b - b.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        out[j] = (a * b).sum() / den if den > 0 else np.nan
    return out


def ic_by_period(features: pd.DataFrame, fwd: pd.Series, freq: str | None = "ME", min_obs: int = 20) -> pd.DataFrame:
    """Spearman rank IC of every feature with ``fwd``, one row per period.

    ``freq`` = a pandas period alias ("ME" month, "W", "QE") pools all (ts, symbol) rows of the period
    (works for one instrument too); ``freq=None`` gives the classic cross-sectional IC per timestamp
    (needs many instruments). Periods with fewer than ``min_obs`` pairs are NaN.
    """
    joined = features.join(fwd.rename("__fwd__"), how="inner")
    ts = pd.DatetimeIndex(joined.index.get_level_values("ts"))
    key = (
        ts
        if freq is None
        else ts.tz_convert(None).to_period(freq.rstrip("E") if freq.endswith("E") else freq).start_time
    )
    X = joined[list(features.columns)].to_numpy(dtype=float)
    y = joined["__fwd__"].to_numpy(dtype=float)
    codes, uniques = pd.factorize(pd.Index(key), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    rows = [_spearman(X[order[a:b]], y[order[a:b]], min_obs) for a, b in itertools.pairwise(bounds)]
    out = pd.DataFrame(rows, index=pd.Index(uniques, name="period"), columns=features.columns)
    return out


def ic_summary(ic: pd.DataFrame) -> pd.DataFrame:
    """Per feature: mean IC, its std, the information ratio (mean/std), a t-stat and the share of periods with IC > 0."""
    n = ic.notna().sum()
    mean, sd = ic.mean(), ic.std(ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ir = mean / sd
    return pd.DataFrame(
        {
            "mean_ic": mean,
            "ic_std": sd,
            "ir": ir,
            "t_stat": ir * np.sqrt(n),
            "hit_rate": (ic > 0).sum() / n,
            "periods": n,
        }
    )


def ic_decay(panel: Panel, features: pd.DataFrame, horizons=(1, 2, 5, 10, 20), freq: str | None = "ME") -> pd.DataFrame:
    """Mean rank IC per feature (columns) against forward returns over each horizon (rows)."""
    rows = {h: ic_by_period(features, forward_returns_long(panel, h), freq).mean() for h in horizons}
    out = pd.DataFrame(rows).T
    out.index.name = "horizon"
    return out


def feature_turnover(features: pd.DataFrame, lag: int = 1) -> pd.Series:
    """1 − rank autocorrelation of each feature from one bar to the ``lag``-th next, averaged over
    instruments: 0 for a feature that never reorders, ~1 for noise. High turnover means high trading costs."""
    out = {}
    for col in features.columns:
        wide = features[col].unstack("symbol")
        ac = [wide[s].rank().autocorr(lag) for s in wide.columns if wide[s].notna().sum() > lag + 2]
        ac = [a for a in ac if np.isfinite(a)]
        out[col] = 1.0 - float(np.mean(ac)) if ac else np.nan
    return pd.Series(out, name="turnover")


def feature_correlation(
    features: pd.DataFrame, method: Literal["pearson", "kendall", "spearman"] = "spearman"
) -> pd.DataFrame:
    """Feature × feature correlation over complete rows (redundant features show up as |ρ| near 1)."""
    return features.dropna(axis=1, how="all").dropna().corr(method=method)


# ---------------------------------------------------------------------------------------------
# Plots (each returns a matplotlib Figure)


def plot_ic_summary(summary: pd.DataFrame, title: str = "mean rank IC per feature"):
    import matplotlib.pyplot as plt

    s = summary["mean_ic"].sort_values()
    fig, ax = plt.subplots(figsize=(7, max(3, 0.22 * len(s))))
    err = summary["ic_std"].reindex(s.index) / np.sqrt(summary["periods"].reindex(s.index).clip(lower=1))
    ax.barh(s.index, s.to_numpy(), xerr=err.to_numpy(), color=np.where(s > 0, "tab:green", "tab:red"))
    ax.axvline(0, color="k", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("Spearman IC (± standard error)")
    fig.tight_layout()
    return fig


def plot_ic_decay(decay: pd.DataFrame, features: list[str] | None = None, title: str = "IC decay over horizons"):
    import matplotlib.pyplot as plt

    cols = features or list(decay.abs().mean().sort_values(ascending=False).index[:8])
    fig, ax = plt.subplots(figsize=(7, 4))
    for col in cols:
        ax.plot(decay.index, decay[col], marker="o", label=col)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("horizon (bars)")
    ax.set_ylabel("mean rank IC")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_ic_timeseries(ic: pd.DataFrame, feature: str, window: int = 6):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(ic.index, ic[feature], width=20, alpha=0.5, label="IC per period")
    ax.plot(ic.index, ic[feature].rolling(window, min_periods=1).mean(), color="k", label=f"{window}-period mean")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_title(f"rank IC of {feature}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_correlation(corr: pd.DataFrame, title: str = "feature correlation (Spearman)"):
    import matplotlib.pyplot as plt

    n = len(corr)
    fig, ax = plt.subplots(figsize=(max(5, 0.25 * n + 2), max(4, 0.25 * n + 1)))
    im = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), corr.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(n), corr.index, fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig
