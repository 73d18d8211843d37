"""LightGBM direction classifier: the baseline model kind ("lgbm").

Small, deterministic defaults: daily panels of tens of instruments give tens of thousands of noisy
rows, where shallow trees with a large leaf minimum overfit least and train in about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["LightGBMModel", "DEFAULT_PARAMS"]

DEFAULT_PARAMS: dict = {
    "n_estimators": 200,
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "n_jobs": 2,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}


class LightGBMModel:
    kind = "lgbm"

    def __init__(self, params: dict | None = None, seed: int = 42):
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed
        self.feature_names: tuple[str, ...] = ()
        self._clf = None

    def fit(self, X: pd.DataFrame, y: pd.Series) -> "LightGBMModel":
        from lightgbm import LGBMClassifier

        y_arr = np.asarray(y, dtype=float)
        if len(X) != len(y_arr):
            raise ValueError(f"X has {len(X)} rows but y has {len(y_arr)}")
        if not np.isin(y_arr, (0.0, 1.0)).all():
            raise ValueError("y must be 0/1 labels without NaN: drop rows whose future is unknown first")
        if np.unique(y_arr).size < 2:
            raise ValueError("y has a single class: need both up and down labels to train")
        self.feature_names = tuple(map(str, X.columns))
        clf = LGBMClassifier(random_state=self.seed, **self.params)
        clf.fit(X.to_numpy(dtype=float), y_arr.astype(int))
        self._clf = clf
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self._clf is None:
            raise ValueError("LightGBMModel is not fitted: call fit(X, y) first")
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"features missing from X: {missing}; the model was trained on {list(self.feature_names)}")
        if len(X) == 0:
            return np.empty(0)
        return self._clf.predict_proba(X[list(self.feature_names)].to_numpy(dtype=float))[:, 1]

    def feature_importance(self) -> pd.Series | None:
        """Total split gain per feature (None before fit)."""
        if self._clf is None:
            return None
        gain = self._clf.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=list(self.feature_names), name="gain").sort_values(ascending=False)

    def __repr__(self) -> str:
        state = "fitted" if self._clf is not None else "unfitted"
        return f"LightGBMModel({state}, {len(self.feature_names)} features)"
