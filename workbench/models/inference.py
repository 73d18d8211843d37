"""Model → probabilities → signals on a panel: the one path both the backtest and the live loop take.

Why one function: research/live parity. The backtest calls ``signals_for_panel`` on history and
trades every row; the live loop calls it on the latest window and trades the last row. Same
features, same model call, same signal rule — a difference between them would be a bug, and there
is a test for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pandas as pd

from workbench.config import SignalParams
from workbench.data.panel import Panel
from workbench.features.pipeline import build_features, feature_atr
from workbench.models.base import complete_rows
from workbench.signals import signal_frame

__all__ = ["Predictor", "predict_panel", "signals_for_panel"]


class Predictor(Protocol):
    """What serving needs: a registry ``LoadedModel`` or a fresh ``training.TrainResult``."""

    feature_set: str
    feature_names: tuple[str, ...]
    strength_reference: np.ndarray

    def predict_proba(self, features_long: pd.DataFrame) -> np.ndarray: ...


def predict_panel(model: Predictor, panel: Panel, lap: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Wide P(up) on the panel's grid (time × symbol); NaN where any feature is missing (warm-up, gaps).
    ``lap``: the live loop's stage clock (``lap("features")``, ``lap("inference")`` as each is done)."""
    X = build_features(panel, model.feature_set)
    if lap is not None:
        lap("features")
    ok = complete_rows(X[list(model.feature_names)])
    proba = np.full(len(X), np.nan)
    if ok.any():
        proba[ok] = model.predict_proba(X[ok])
    if lap is not None:
        lap("inference")
    wide = pd.Series(proba, index=X.index).unstack("symbol") if len(X) else pd.DataFrame()
    return wide.reindex(index=panel.index, columns=panel.close.columns).astype(float)


def signals_for_panel(
    model: Predictor, panel: Panel, params: SignalParams, lap: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame]:
    """``signals.signal_frame`` frames (side, strength, confidence, target, stop, take_profit, close)."""
    return signal_frame(
        predict_panel(model, panel, lap),
        panel.close,
        feature_atr(panel, params.atr_window),
        params,
        model.strength_reference,
    )
