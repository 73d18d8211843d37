"""The ensemble ("ensemble"): the mean of its members' *calibrated* probabilities.

Why built from fitted members rather than fitted itself: every member is already calibrated on
held-out rows of the same walk-forward folds, so the ensemble costs no extra training and its
out-of-sample predictions are exactly the mean of the members' out-of-sample predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["EnsembleModel"]


class EnsembleModel:
    kind = "ensemble"

    def __init__(self, members: list, weights: list[float] | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one fitted member")
        self.members = list(members)
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(members)} non-negative numbers with a positive sum")
        self.weights = w / w.sum()
        names: dict[str, None] = {}
        for m in members:
            names.update(dict.fromkeys(m.feature_names))
        self.feature_names: tuple[str, ...] = tuple(names)
        self.lookback = max(int(getattr(m, "lookback", 1)) for m in members)
        self.params = {"members": ",".join(m.kind for m in members)}

    def fit(self, X: pd.DataFrame, y: pd.Series) -> EnsembleModel:
        raise TypeError("EnsembleModel is assembled from fitted members (training.ensemble_of), not fitted")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.empty(0)
        return np.sum([w * m.predict_proba(X) for w, m in zip(self.weights, self.members, strict=True)], axis=0)

    def feature_importance(self) -> pd.Series | None:
        parts = [m.feature_importance() for m in self.members if callable(getattr(m, "feature_importance", None))]
        parts = [p / p.sum() for p in parts if p is not None and p.sum() > 0]
        if not parts:
            return None
        return pd.concat(parts, axis=1).fillna(0.0).mean(axis=1).rename("mean_share").sort_values(ascending=False)

    def __repr__(self) -> str:
        return f"EnsembleModel({', '.join(m.kind for m in self.members)})"
