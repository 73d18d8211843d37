"""Out-of-sample scores, per date and per fold, and the baselines a model must beat to be worth trading.

Why per date and per fold: a pooled Spearman over all dates mixes the market's moves (timing) with
stock selection and lets a few volatile days dominate; a pooled AUC mixes folds whose base rates
differ (so even a constant scores ≠ 0.5). So:

- the rank IC is the mean of *daily* cross-sectional Spearman ICs, with its t-statistic (Newey–West,
  2·horizon lags, because h-bar labels overlap) and ICIR (mean / std of the daily ICs);
- AUC, log loss, Brier and ECE (equal-width and equal-count bins) are computed per fold; the
  summary is their mean over folds, and a pooled figure is only ever named ``pooled_*``;
- the long–short return is the mean over dates of (top-quantile − bottom-quantile) forward return,
  and turnover the mean share of those two legs replaced from one date to the next.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "METRIC_KEYS",
    "HIGHER_IS_BETTER",
    "PROMOTABLE",
    "score",
    "expected_calibration_error",
    "reliability_table",
    "daily_ic",
    "ic_summary",
    "newey_west_t",
    "quantile_returns",
    "long_short",
    "turnover",
    "fold_scores",
    "confidence_table",
]

# Per-fold probability scores and cross-sectional scores.
PROB_KEYS = ("auc", "accuracy", "log_loss", "brier", "ece", "ece_quantile", "confidence_ece")
XS_KEYS = ("ic_mean", "ic_t", "ic_ir", "ls_return", "turnover")
METRIC_KEYS = PROB_KEYS + XS_KEYS
HIGHER_IS_BETTER = {
    "auc": True,
    "accuracy": True,
    "ic_mean": True,
    "ic_t": True,
    "ic_ir": True,
    "ls_return": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
    "ece_quantile": False,
    "confidence_ece": False,
    "turnover": False,
}
# What retraining may promote on: means over folds / over dates, never a pooled figure.
PROMOTABLE = ("auc", "log_loss", "brier", "accuracy", "ic_mean", "ic_t")


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Mean predicted vs observed frequency per bin: equal-width (``uniform``) or equal-count (``quantile``).

    Equal-width bins put almost every row of a near-coin-flip model into the two middle bins and hide
    miscalibration there; equal-count bins spread the rows so each bin's gap is measured.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1)) if len(p) else np.linspace(0.0, 1.0, bins + 1)
    else:
        raise ValueError(f"unknown binning {strategy!r}; use 'uniform' or 'quantile'")
    which = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=bins) / count
        freq = np.bincount(which, weights=y, minlength=bins) / count
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "n": count.astype(int),
            "mean_predicted": mean_p,
            "observed": freq,
        }
    )


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10, strategy: str = "uniform") -> float:
    """Row-weighted mean |mean predicted − observed frequency| over the bins of ``reliability_table``."""
    t = reliability_table(y, p, bins, strategy)
    t = t[t["n"] > 0]
    if t.empty:
        return float("nan")
    return float(np.sum(t["n"] * (t["mean_predicted"] - t["observed"]).abs()) / t["n"].sum())


def confidence_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Reliability of a signal's ``confidence`` = max(p, 1 − p): does a 0.6 call come true 60 % of the time?"""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    conf = np.maximum(p, 1 - p)
    right = np.where(p >= 0.5, y, 1 - y)
    return reliability_table(right, conf, bins, "quantile")


def score(y: np.ndarray, p: np.ndarray, rank_score: np.ndarray | None = None) -> dict[str, float]:
    """AUC, accuracy, log loss, Brier, ECE (both binnings) and confidence ECE of probabilities ``p``.

    ``rank_score`` (default ``p``) is what the AUC ranks: a baseline's raw signal, whose calibrated
    probability may have been flipped by a Platt fit with a negative slope.
    """
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    if len(y) == 0:
        return {k: float("nan") for k in PROB_KEYS}
    r = p if rank_score is None else np.asarray(rank_score, dtype=float)
    two = np.unique(y).size == 2
    conf = confidence_table(y, p)
    conf = conf[conf["n"] > 0]
    return {
        "auc": float(roc_auc_score(y, r)) if two else float("nan"),
        "accuracy": float(accuracy_score(y, (p > 0.5).astype(int))),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "ece_quantile": expected_calibration_error(y, p, strategy="quantile"),
        "confidence_ece": float(
            np.sum(conf["n"] * (conf["mean_predicted"] - conf["observed"]).abs()) / conf["n"].sum()
        ),
    }


def _date_codes(ts: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    codes, uniq = pd.factorize(pd.DatetimeIndex(ts), sort=True)
    return codes, pd.Index(uniq, name="ts")


def daily_ic(score: np.ndarray, forward_return: np.ndarray, ts: np.ndarray, min_names: int = 5) -> pd.Series:
    """Spearman IC of ``score`` vs ``forward_return`` across instruments, one value per date.

    A date with fewer than ``min_names`` usable rows, or a constant score or return, gets NaN.
    """
    s = np.asarray(score, dtype=float)
    r = np.asarray(forward_return, dtype=float)
    ok = np.isfinite(s) & np.isfinite(r)
    codes, dates = _date_codes(np.asarray(ts)[ok])
    frame = pd.DataFrame({"d": codes, "s": s[ok], "r": r[ok]})
    g = frame.groupby("d", sort=True)
    rs = g["s"].rank().to_numpy()
    rr = g["r"].rank().to_numpy()
    n = np.bincount(codes, minlength=len(dates)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = np.bincount(codes, rs, len(dates)) / n
        mr = np.bincount(codes, rr, len(dates)) / n
        ds, dr = rs - ms[codes], rr - mr[codes]
        cov = np.bincount(codes, ds * dr, len(dates))
        vs = np.bincount(codes, ds * ds, len(dates))
        vr = np.bincount(codes, dr * dr, len(dates))
        ic = cov / np.sqrt(vs * vr)
    ic = np.where((n >= min_names) & (vs > 1e-12) & (vr > 1e-12), ic, np.nan)
    return pd.Series(ic, index=dates, name="ic")


def newey_west_t(x: np.ndarray, lags: int) -> float:
    """t-statistic of the mean of ``x`` with a Newey–West (Bartlett) standard error of ``lags`` lags.

    h-bar forward returns of consecutive dates share h − 1 bars, so their daily ICs are correlated;
    an i.i.d. t-statistic would overstate the evidence about √h-fold. Bartlett weights shrink the
    autocovariances, so ``ic_summary`` uses 2·h lags: with h − 1 lags the variance of an h-bar overlap
    is still underestimated by about a third (t inflated ~20 %), with 2·h by under a tenth.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return float("nan")
    e = x - x.mean()
    var = e @ e / n
    for k in range(1, min(int(lags), n - 1) + 1):
        var += 2.0 * (1.0 - k / (lags + 1.0)) * (e[k:] @ e[:-k]) / n
    if var <= 0:
        return float("nan")
    return float(x.mean() / np.sqrt(var / n))


def ic_summary(ic: pd.Series, horizon: int = 1) -> dict[str, float]:
    """Mean daily IC, its Newey–West t-statistic, ICIR (mean / std) and the number of dates."""
    x = ic.dropna().to_numpy(dtype=float)
    if len(x) < 2:
        return {"ic_mean": float("nan"), "ic_t": float("nan"), "ic_ir": float("nan"), "n_dates": float(len(x))}
    sd = x.std(ddof=1)
    return {
        "ic_mean": float(x.mean()),
        "ic_t": newey_west_t(x, 2 * int(horizon)),
        "ic_ir": float(x.mean() / sd) if sd > 0 else float("nan"),
        "n_dates": float(len(x)),
    }


def _buckets(score: np.ndarray, ts: np.ndarray | pd.DatetimeIndex, q: int) -> np.ndarray:
    """Quantile bucket 1..q of each row's score within its date (0 where the score is NaN)."""
    s = pd.Series(np.asarray(score, dtype=float))
    pct = s.groupby(pd.DatetimeIndex(ts)).rank(pct=True, method="first").to_numpy()
    return np.where(np.isfinite(pct), np.ceil(pct * q), 0).astype(int)


def quantile_returns(score: np.ndarray, forward_return: np.ndarray, ts: np.ndarray, q: int = 5) -> pd.DataFrame:
    """(date × quantile 1..q) mean forward return of the instruments in each score quantile that date.

    A date whose scores are all equal (a constant baseline) has no ranking: its row is NaN.
    """
    s = np.asarray(score, dtype=float)
    r = np.asarray(forward_return, dtype=float)
    ok = np.isfinite(s) & np.isfinite(r)
    days = pd.DatetimeIndex(np.asarray(ts)[ok])
    frame = pd.DataFrame({"ts": days, "b": _buckets(s[ok], days, q), "r": r[ok], "s": s[ok]})
    table = frame.pivot_table(index="ts", columns="b", values="r", aggfunc="mean")
    flat = frame.groupby("ts")["s"].agg(["min", "max"])
    table.loc[flat.index[(flat["max"] - flat["min"]).to_numpy() <= 0]] = np.nan
    table.columns.name = "quantile"
    return table.reindex(columns=range(1, q + 1))


def long_short(qr: pd.DataFrame) -> pd.Series:
    """Per date: top-quantile minus bottom-quantile mean forward return."""
    return (qr.iloc[:, -1] - qr.iloc[:, 0]).rename("long_short")


def turnover(score: np.ndarray, ts: np.ndarray, symbols: np.ndarray, q: int = 5) -> float:
    """Mean share of the top and bottom quantile legs replaced from one date to the next."""
    s = np.asarray(score, dtype=float)
    ok = np.isfinite(s)
    days = pd.DatetimeIndex(np.asarray(ts)[ok])
    b = _buckets(s[ok], days, q)
    sym = np.asarray(symbols)[ok]
    shares = []
    for leg in (q, 1):
        m = (
            pd.DataFrame({"ts": days, "sym": sym, "in": b == leg})
            .pivot_table(index="ts", columns="sym", values="in", aggfunc="max", fill_value=False)
            .to_numpy(dtype=bool)
        )
        if len(m) < 2:
            continue
        size = m[1:].sum(axis=1)
        kept = (m[1:] & m[:-1]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares.append(np.where(size > 0, 1.0 - kept / size, np.nan))
    every = np.concatenate(shares) if shares else np.empty(0)
    return float(np.nanmean(every)) if np.isfinite(every).any() else float("nan")


def fold_scores(
    part: pd.DataFrame, col: str, horizon: int, rank_col: str | None = None, q: int = 5
) -> dict[str, float]:
    """Every score of one column of an out-of-sample frame (index (ts, symbol); ``label`` and
    ``forward_return`` columns): probability scores on labelled rows, cross-sectional ones per date."""
    lab = part["label"].notna().to_numpy()
    y = part["label"].to_numpy()[lab]
    p = part[col].to_numpy(dtype=float)
    r = part[rank_col].to_numpy(dtype=float) if rank_col else p
    out = score(y, p[lab], r[lab])
    ts = part.index.get_level_values("ts").to_numpy()
    fwd = part["forward_return"].to_numpy(dtype=float)
    out.update({k: v for k, v in ic_summary(daily_ic(r, fwd, ts), horizon).items() if k != "n_dates"})
    ls = long_short(quantile_returns(r, fwd, ts, q))
    out["ls_return"] = float(ls.mean()) if ls.notna().any() else float("nan")
    ranked = np.isfinite(r).any() and np.nanmax(r) > np.nanmin(r)  # a constant (majority) has no legs
    out["turnover"] = turnover(r, ts, part.index.get_level_values("symbol").to_numpy(), q) if ranked else float("nan")
    return out
