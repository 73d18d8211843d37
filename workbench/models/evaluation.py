"""Out-of-sample scores and the baselines a model must beat to be worth trading.

Why baselines sit beside every score: daily direction is close to a coin flip, so an AUC of 0.52
means nothing on its own. Each fold is scored for the model, for the majority class of its training
window (a constant probability) and for a plain momentum rule; a model that does not beat them is
reported as such.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["METRIC_KEYS", "HIGHER_IS_BETTER", "score", "expected_calibration_error", "reliability_table", "rank_ic"]

METRIC_KEYS = ("auc", "accuracy", "log_loss", "brier", "ece", "rank_ic")
HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "rank_ic": True, "log_loss": False, "brier": False, "ece": False}


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins: mean predicted vs observed frequency (the reliability curve)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=bins) / count
        freq = np.bincount(which, weights=y, minlength=bins) / count
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "n": count.astype(int),
                         "mean_predicted": mean_p, "observed": freq})


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |mean predicted − observed frequency| over equal-width bins."""
    t = reliability_table(y, p, bins)
    t = t[t["n"] > 0]
    if t.empty:
        return float("nan")
    return float(np.sum(t["n"] * (t["mean_predicted"] - t["observed"]).abs()) / t["n"].sum())


def rank_ic(score: np.ndarray, forward_return: np.ndarray) -> float:
    """Spearman correlation of score and forward return, pooled over instruments and time
    (the convention of notebook 02); NaN when either side is constant."""
    s = pd.Series(np.asarray(score, dtype=float))
    r = pd.Series(np.asarray(forward_return, dtype=float))
    ok = s.notna() & r.notna()
    if ok.sum() < 3 or s[ok].nunique() < 2 or r[ok].nunique() < 2:
        return float("nan")
    return float(s[ok].rank().corr(r[ok].rank()))


def score(y: np.ndarray, p: np.ndarray, forward_return: np.ndarray | None = None) -> dict[str, float]:
    """AUC, accuracy, log loss, Brier, ECE and rank IC of probabilities ``p`` for 0/1 labels ``y``."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    if len(y) == 0:
        return {k: float("nan") for k in METRIC_KEYS}
    two = np.unique(y).size == 2
    return {
        "auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "accuracy": float(accuracy_score(y, (p > 0.5).astype(int))),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "rank_ic": rank_ic(p, forward_return) if forward_return is not None else float("nan"),
    }
