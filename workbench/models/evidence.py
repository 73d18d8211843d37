"""The out-of-sample evidence of a trained model, per fold and per date, as tables and figures.

Why here and not in a notebook: the CLI (`workbench models show`), notebook 03 and the benchmark
show the same per-fold table, and the plots (IC through time, quantile returns, reliability per
fold) are the same figures wherever they appear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.models.evaluation import (
    daily_ic,
    long_short,
    quantile_returns,
    reliability_table,
)

__all__ = [
    "fold_table",
    "daily_ic_series",
    "quantile_table",
    "ic_figure",
    "quantile_figure",
    "reliability_figure_by_fold",
]

# (column in the fold table, short heading): narrow enough to print in 120 columns.
_COLUMNS = (
    ("ic_mean", "IC"),
    ("ic_t", "IC t"),
    ("ic_ir", "ICIR"),
    ("momentum_ic_mean", "mom IC"),
    ("reversal_ic_mean", "rev IC"),
    ("ls_return", "L-S ret"),
    ("turnover", "turnover"),
    ("auc", "AUC"),
    ("momentum_auc", "mom AUC"),
    ("reversal_auc", "rev AUC"),
    ("log_loss", "logloss"),
    ("majority_log_loss", "maj LL"),
    ("ece_quantile", "ECE(q)"),
)


def fold_table(folds) -> pd.DataFrame:
    """One row per fold (test window, the model's and the baselines' key scores) and a mean row.

    Accepts a ``TrainResult`` or its ``folds`` frame (as read back from the registry).
    """
    f = getattr(folds, "folds", folds)
    if f is None or len(f) == 0:
        return pd.DataFrame()
    start = pd.to_datetime(f["test_start"], utc=True).dt.strftime("%Y-%m-%d")
    end = pd.to_datetime(f["test_end"], utc=True).dt.strftime("%Y-%m-%d")
    out = pd.DataFrame({"test window": start + " … " + end}, index=f["fold"].astype(int).rename("fold"))
    for col, head in _COLUMNS:
        if col in f.columns:
            out[head] = pd.to_numeric(f[col], errors="coerce").to_numpy()
    mean = out.drop(columns="test window").mean(numeric_only=True)
    out.loc["mean"] = ["(mean of folds)", *mean.to_numpy()]
    return out


def daily_ic_series(result, column: str = "proba") -> pd.Series:
    """The daily cross-sectional rank IC of ``column`` (the model's proba or a baseline's ``*_score``)."""
    oos = result.oos
    return daily_ic(
        oos[column].to_numpy(), oos["forward_return"].to_numpy(), oos.index.get_level_values("ts").to_numpy()
    )


def quantile_table(result, q: int = 5) -> pd.DataFrame:
    """(fold × quantile) mean forward return of the model's score quantiles, plus top − bottom."""
    rows = {}
    for fold, part in result.oos.groupby("fold"):
        qr = quantile_returns(
            part["proba"].to_numpy(), part["forward_return"].to_numpy(), part.index.get_level_values("ts").to_numpy(), q
        )
        row = qr.mean()
        row["top − bottom"] = long_short(qr).mean()
        rows[int(fold)] = row
    out = pd.DataFrame(rows).T
    out.index.name = "fold"
    return out


def _shade_folds(ax, result) -> None:
    for fold, part in result.oos_fold.groupby(result.oos_fold):
        if int(fold) % 2:
            ax.axvspan(part.index.min(), part.index.max(), color="grey", alpha=0.08, lw=0)


def ic_figure(result, window: int = 63):
    """Daily rank IC through time (thin) with its rolling mean, beside the baselines' rolling means."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    ic = daily_ic_series(result)
    ax.plot(ic.index, ic.to_numpy(), lw=0.4, alpha=0.4, color="C0", label="model, daily")
    ax.plot(
        ic.index,
        ic.rolling(window, min_periods=window // 3).mean(),
        color="C0",
        lw=1.6,
        label=f"model, {window}-day mean",
    )
    for i, b in enumerate(("momentum", "reversal")):
        if f"{b}_score" in result.oos.columns:
            s = daily_ic_series(result, f"{b}_score")
            ax.plot(
                s.index,
                s.rolling(window, min_periods=window // 3).mean(),
                lw=1.1,
                color=f"C{i + 1}",
                label=f"{b}, {window}-day mean",
            )
    ax.axhline(0, color="black", lw=0.8)
    _shade_folds(ax, result)
    ax.set(title=f"{result.kind}: daily cross-sectional rank IC out of sample (folds shaded)", ylabel="Spearman IC")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def quantile_figure(result, q: int = 5):
    """Mean forward return per score quantile, one group of bars per fold."""
    from matplotlib.figure import Figure

    table = quantile_table(result, q)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    quant = table.drop(columns="top − bottom")
    width = 0.8 / max(len(quant), 1)
    x = np.arange(q)
    for i, (fold, row) in enumerate(quant.iterrows()):
        ax.bar(
            x + i * width,
            row.to_numpy() * 1e4,
            width,
            label=f"fold {fold} (L−S {table['top − bottom'].iloc[i] * 1e4:+.1f} bp)",
        )
    ax.set_xticks(x + width * (len(quant) - 1) / 2, [f"Q{k}" for k in range(1, q + 1)])
    ax.axhline(0, color="black", lw=0.8)
    ax.set(title=f"{result.kind}: mean {result.horizon}-bar forward return by score quantile", ylabel="bp")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def reliability_figure_by_fold(result, binning: str = "quantile"):
    """Reliability per fold (equal-count bins by default): predicted probability vs observed frequency."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    oos = result.oos[result.oos["label"].notna()]
    lo, hi = 1.0, 0.0
    for fold, part in oos.groupby("fold"):
        t = reliability_table(part["label"].to_numpy(), part["proba"].to_numpy(), 10, binning)
        t = t[t["n"] > 0]
        ax.plot(t["mean_predicted"], t["observed"], marker="o", ms=3, label=f"fold {fold}")
        lo = min(lo, t["mean_predicted"].min(), t["observed"].min())
        hi = max(hi, t["mean_predicted"].max(), t["observed"].max())
    lo, hi = min(lo, 0.4) - 0.02, max(hi, 0.6) + 0.02
    ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="calibrated")
    ax.set(
        xlim=(lo, hi),
        ylim=(lo, hi),
        xlabel="predicted probability",
        ylabel="observed frequency",
        title=f"{result.kind}: reliability per fold ({binning} bins)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
