"""The rule-based backup model ("rule"): what trades when no trained model is registered.

Why it exists: Phase 1 of the live loop must either load a trained model or say plainly that it
is running on a rule (spec: "Create backup model if none available"). The rule is also the
*momentum baseline* every trained model is scored against, so the backup is never a mystery: its
out-of-sample numbers sit in every fold table.

Rule: z = 20-bar return / (20-bar volatility × √20), a trend's signal-to-noise; P(up) = sigmoid(gain · z).
It reads two ``v1`` features, so it uses the very same feature pipeline as trained models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.models.base import check_predict_input

__all__ = ["RuleModel", "BackupModel", "backup_model", "BACKUP_REF"]

BACKUP_REF = "backup:momentum-rule"


class RuleModel:
    kind = "rule"
    description = "momentum rule: P(up) = sigmoid(gain × 20-bar return / (20-bar volatility × √20))"

    def __init__(self, params: dict | None = None, seed: int = 42):
        self.params = {"gain": 0.5, "window": 20, **(params or {})}
        self.seed = seed
        w = int(self.params["window"])
        if w != 20:
            raise ValueError("the rule reads the v1 features ret_20 and vol_20: window must be 20")
        self.feature_names: tuple[str, ...] = ("ret_20", "vol_20")

    def fit(self, X: pd.DataFrame, y: pd.Series | None = None) -> RuleModel:
        """Nothing to learn; checks the features are there so a misconfigured rule fails early."""
        check_predict_input(self, X, True)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_predict_input(self, X, True)
        if len(X) == 0:
            return np.empty(0)
        ret = X["ret_20"].to_numpy(dtype=float)
        vol = X["vol_20"].to_numpy(dtype=float) * np.sqrt(20.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(vol > 0, ret / vol, 0.0)
        z = np.clip(np.nan_to_num(z), -20, 20)
        return 1.0 / (1.0 + np.exp(-float(self.params["gain"]) * z))

    def feature_importance(self) -> pd.Series | None:
        return None

    def __repr__(self) -> str:
        return f"RuleModel(gain={self.params['gain']})"


class BackupModel:
    """Looks like a registry ``LoadedModel`` (same attributes), so serving code needs no branch."""

    def __init__(self, feature_set: str = "v1", horizon: int = 1, universe: dict | None = None):
        self.model = RuleModel()
        self.ref = BACKUP_REF
        self.kind = "rule"
        self.feature_set = feature_set
        self.feature_names = self.model.feature_names
        self.horizon = int(horizon)
        self.universe = universe
        self.split: dict = {}
        self.metrics: dict = {}
        self.strength_reference = np.array([])  # signals fall back to the raw |p − 0.5| × 2 scale
        self.meta = {"kind": "rule", "feature_set": feature_set, "backup": True, "description": RuleModel.description}

    def predict_proba(self, features_long: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(features_long)

    def describe(self) -> str:
        return f"BACKUP rule-based model ({RuleModel.description}); not trained, no out-of-sample metrics"

    def __repr__(self) -> str:
        return f"BackupModel({self.ref})"


def backup_model(feature_set: str = "v1", horizon: int = 1, universe: dict | None = None) -> BackupModel:
    return BackupModel(feature_set, horizon, universe)
