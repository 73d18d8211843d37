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

__all__ = ["Model", "MODEL_KINDS", "make_model", "complete_rows"]


@runtime_checkable
class Model(Protocol):
    """A binary direction classifier on long feature frames.

    ``predict_proba`` returns P(up) as a 1-D array, one value per row of ``X``, using the columns
    named in ``feature_names`` (set by ``fit``) whatever their order in ``X``.
    """

    kind: str
    feature_names: tuple[str, ...]

    def fit(self, X: pd.DataFrame, y: pd.Series) -> "Model": ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


# kind → "module:Class"; each class is constructed as Class(params=None, seed=42).
MODEL_KINDS: dict[str, str] = {
    "lgbm": "workbench.models.lgbm:LightGBMModel",
}


def make_model(kind: str, params: dict | None = None, seed: int = 42) -> Model:
    """A fresh, unfitted model of ``kind``; ValueError listing the known kinds otherwise."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    module, cls = MODEL_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(params=params, seed=seed)


def complete_rows(X: pd.DataFrame) -> np.ndarray:
    """Rows with every feature finite: the rows models train and predict on (warm-up rows are not)."""
    return np.isfinite(X.to_numpy(dtype=float)).all(axis=1)
