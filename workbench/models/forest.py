"""scikit-learn RandomForest direction classifier ("rf").

Why these defaults: shallow-ish trees with a large leaf minimum average many weak, decorrelated
views of noisy daily rows; 150 trees on two cores train in a second or two on ~10k rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.models.base import check_predict_input, check_xy

__all__ = ["RandomForestModel", "DEFAULT_PARAMS"]

DEFAULT_PARAMS: dict = {
    "n_estimators": 150,
    "max_depth": 6,
    "min_samples_leaf": 50,
    "max_features": "sqrt",
    "max_samples": 0.7,
    "n_jobs": 2,
}


class RandomForestModel:
    kind = "rf"

    def __init__(self, params: dict | None = None, seed: int = 42):
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed
        self.feature_names: tuple[str, ...] = ()
        self._clf: Any = None  # a fitted RandomForestClassifier (sklearn is untyped)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> RandomForestModel:
        from sklearn.ensemble import RandomForestClassifier

        y_arr = check_xy(X, y)
        self.feature_names = tuple(map(str, X.columns))
        clf = RandomForestClassifier(random_state=self.seed, **self.params)
        clf.fit(X.to_numpy(dtype=float), y_arr.astype(int))
        # Predict on one thread: threaded tree averaging sums in a varying order, and a registered
        # model must give bit-identical numbers wherever it runs.
        clf.set_params(n_jobs=1)
        self._clf = clf
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_predict_input(self, X, self._clf is not None)
        if len(X) == 0:
            return np.empty(0)
        return self._clf.predict_proba(X[list(self.feature_names)].to_numpy(dtype=float))[:, 1]

    def feature_importance(self) -> pd.Series | None:
        """Mean decrease in impurity per feature (None before fit)."""
        if self._clf is None:
            return None
        return pd.Series(self._clf.feature_importances_, index=list(self.feature_names), name="impurity").sort_values(
            ascending=False
        )

    def __repr__(self) -> str:
        return f"RandomForestModel({'fitted' if self._clf is not None else 'unfitted'}, {len(self.feature_names)} features)"
