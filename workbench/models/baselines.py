"""The baselines every model is scored beside, on the same folds, rows and calibration slices.

- ``majority``: the training window's share of 1-labels as a constant probability (no ranking, so
  no IC: it is the yardstick for log loss and Brier only);
- ``momentum``: the rule model's trend signal, z = 20-bar return / (20-bar vol × √20);
- ``reversal``: short-term reversal, −(5-bar return) / (20-bar vol × √5): last week's losers
  bounce — the classic cross-sectional effect a stock-selection model must beat.

A baseline's raw signal is what its AUC and IC rank (its sign is fixed, so momentum and reversal
stay distinct); its probability for log loss, Brier and ECE comes from a Platt fit on the model's
own calibration slice, so it is judged on the same footing as the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BASELINES", "SIGNALS", "signal"]

BASELINES = ("majority", "momentum", "reversal")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.nan_to_num(z), -20, 20)))


def _momentum(X: pd.DataFrame) -> np.ndarray:
    from workbench.models.backup import RuleModel

    return RuleModel().predict_proba(X)


def _reversal(X: pd.DataFrame) -> np.ndarray:
    ret = X["ret_5"].to_numpy(dtype=float)
    vol = X["vol_20"].to_numpy(dtype=float) * np.sqrt(5.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(vol > 0, -ret / vol, 0.0)
    return _sigmoid(0.5 * z)


SIGNALS = {"momentum": _momentum, "reversal": _reversal}


def signal(name: str, X: pd.DataFrame) -> np.ndarray:
    """Raw signal in (0, 1) of baseline ``name`` on feature rows ``X`` (needs ret_5, ret_20, vol_20)."""
    missing = [c for c in ("ret_5", "ret_20", "vol_20") if c not in X.columns]
    if missing:
        raise ValueError(f"the {name} baseline needs the features {missing}: use a feature set that has them (v1, v2)")
    return SIGNALS[name](X)
