"""Calibrated probabilities: the ``confidence`` of a signal must mean what it says (DESIGN.md §4).

Why a wrapper: the calibrator is fitted on held-out rows (later in time than the rows the base
model saw, with a purge between them) and then travels *inside* the pickled model, so the registered
pyfunc, the backtest and the live loop all return the same calibrated number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["Calibrator", "CalibratedModel", "CALIBRATION_METHODS"]

CALIBRATION_METHODS = ("platt", "isotonic", "none")


class Calibrator:
    """Maps raw scores in [0, 1] to calibrated probabilities: Platt (logistic on the logit) or isotonic."""

    def __init__(self, method: str = "platt"):  # a user's choice (CLI, settings): checked here
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration {method!r}; use one of {CALIBRATION_METHODS}")
        self.method = method
        self._fn = None

    @staticmethod
    def _logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        y = np.asarray(y, dtype=int)
        if self.method == "none" or np.unique(y).size < 2:
            self._fn = None
            return self
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            self._fn = LogisticRegression(C=1e6, max_iter=1000).fit(self._logit(raw), y)
        else:
            from sklearn.isotonic import IsotonicRegression

            self._fn = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                np.asarray(raw, dtype=float), y
            )
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self._fn is None or raw.size == 0:
            return raw
        if self.method == "platt":
            out = self._fn.predict_proba(self._logit(raw))[:, 1]
        else:
            out = self._fn.predict(raw)
        # Keep probabilities strictly inside (0, 1): a calibrated 0 or 1 would make log loss infinite.
        return np.clip(out, 1e-4, 1 - 1e-4)


class CalibratedModel:
    """A fitted base model and its calibrator, served as one ``Model``."""

    def __init__(self, base, calibrator: Calibrator):
        self.base = base
        self.calibrator = calibrator
        self.kind: str = base.kind
        self.feature_names: tuple[str, ...] = tuple(base.feature_names)
        self.lookback: int = int(getattr(base, "lookback", 1))
        self.params: dict = dict(getattr(base, "params", {}))

    def fit(self, X: pd.DataFrame, y: pd.Series) -> CalibratedModel:
        raise TypeError("CalibratedModel is built by training.fit_calibrated, not fitted directly")

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.base.predict_proba(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrator.transform(self.base.predict_proba(X))

    def feature_importance(self) -> pd.Series | None:
        fn = getattr(self.base, "feature_importance", None)
        return fn() if callable(fn) else None

    def __repr__(self) -> str:
        return f"CalibratedModel({self.base!r}, {self.calibrator.method})"
