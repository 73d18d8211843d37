"""LightGBM direction classifier: the baseline model kind ("lgbm").

Small, deterministic defaults: daily panels of tens of instruments give tens of thousands of noisy
rows, where shallow trees with a large leaf minimum overfit least and train in about a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.models.base import check_predict_input, check_xy

__all__ = ["LightGBMModel", "LightGBMRanker", "DEFAULT_PARAMS"]

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
        self._clf: Any = None  # a fitted LGBMClassifier (lightgbm is untyped)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> LightGBMModel:
        from lightgbm import LGBMClassifier

        y_arr = check_xy(X, y)
        self.feature_names = tuple(map(str, X.columns))
        clf = LGBMClassifier(random_state=self.seed, **self.params)
        clf.fit(X.to_numpy(dtype=float), y_arr.astype(int))
        self._clf = clf
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_predict_input(self, X, self._clf is not None)
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


class LightGBMRanker(LightGBMModel):
    """LightGBM ``lambdarank`` with one query group per date: learns to *order* the instruments of a
    date, the cross-sectional task, instead of classifying rows one by one.

    The 0/1 label is the relevance grade (above the date's median, or in its top quintile).
    ``predict_proba`` returns the sigmoid of the ranking score; the calibrator that wraps every
    trained model maps it to a probability of the label.
    """

    kind = "lgbm_rank"

    def fit(self, X: pd.DataFrame, y: pd.Series) -> LightGBMRanker:
        from lightgbm import LGBMRanker

        y_arr = check_xy(X, y)
        self.feature_names = tuple(map(str, X.columns))
        ts = pd.DatetimeIndex(X.index.get_level_values("ts"))
        order = np.argsort(ts.asi8, kind="stable")  # LightGBM wants each group's rows together
        _, sizes = np.unique(ts.asi8[order], return_counts=True)
        params = {k: v for k, v in self.params.items() if k not in ("subsample", "subsample_freq")}
        clf = LGBMRanker(random_state=self.seed, objective="lambdarank", **params)
        clf.fit(X.to_numpy(dtype=float)[order], y_arr.astype(int)[order], group=sizes)
        self._clf = clf
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_predict_input(self, X, self._clf is not None)
        if len(X) == 0:
            return np.empty(0)
        raw = self._clf.predict(X[list(self.feature_names)].to_numpy(dtype=float))
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -30, 30)))
