"""The ``Model`` protocol and the table of model kinds.

Why a protocol: training, the registry, inference and the backtest only need ``fit`` and
``predict_proba``, so a new kind (rf, lstm, ensemble) is one module plus one line in ``MODEL_KINDS``.
Kinds are imported lazily, so asking for LightGBM never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.models.kinds import MODEL_KINDS

__all__ = ["Model", "MODEL_KINDS", "make_model", "complete_rows", "check_xy", "check_predict_input", "lookback_of"]


@runtime_checkable
class Model(Protocol):
    """A binary direction classifier on long feature frames.

    ``predict_proba`` returns P(up) as a 1-D array, one value per row of ``X``, using the columns
    named in ``feature_names`` (set by ``fit``) whatever their order in ``X``.
    """

    kind: str
    feature_names: tuple[str, ...]

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Model: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


def make_model(kind: str, params: dict | None = None, seed: int = 42) -> Model:
    """A fresh, unfitted model of ``kind``; ValueError listing the known kinds otherwise."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    module, cls = MODEL_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(params=params, seed=seed)


def complete_rows(X: pd.DataFrame) -> np.ndarray:
    """Rows with every feature finite: the rows models train and predict on (warm-up rows are not)."""
    return np.isfinite(X.to_numpy(dtype=float)).all(axis=1)


def check_xy(X: pd.DataFrame, y) -> np.ndarray:
    """``y`` as a float 0/1 array, or ValueError saying what is wrong with the training data."""
    y_arr = np.asarray(y, dtype=float)
    if len(X) != len(y_arr):
        raise ValueError(f"X has {len(X)} rows but y has {len(y_arr)}")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1 labels without NaN: drop rows whose future is unknown first")
    if np.unique(y_arr).size < 2:
        raise ValueError("y has a single class: need both up and down labels to train")
    return y_arr


def check_predict_input(model, X: pd.DataFrame, fitted: bool) -> None:
    if not fitted:
        raise ValueError(f"{type(model).__name__} is not fitted: call fit(X, y) first")
    missing = [c for c in model.feature_names if c not in X.columns]
    if missing:
        raise ValueError(f"features missing from X: {missing}; the model was trained on {list(model.feature_names)}")


def lookback_of(model) -> int:
    """How many rows per instrument a prediction reads (1 for row models, N for the LSTM)."""
    return int(getattr(model, "lookback", 1))
