"""The table of model kinds, apart from the ``Model`` protocol so that the command line can offer
the kinds as choices without importing numpy and pandas."""

from __future__ import annotations

__all__ = ["MODEL_KINDS", "TRAINABLE_KINDS"]

# kind → "module:Class"; each class is constructed as Class(params=None, seed=42).
# "ensemble" is not here: it is built from fitted members by ``training`` (see ``ensemble.py``).
MODEL_KINDS: dict[str, str] = {
    "lgbm": "workbench.models.lgbm:LightGBMModel",
    "lgbm_rank": "workbench.models.lgbm:LightGBMRanker",
    "rf": "workbench.models.forest:RandomForestModel",
    "lstm": "workbench.models.lstm:LSTMModel",
    "rule": "workbench.models.backup:RuleModel",
}

TRAINABLE_KINDS: tuple[str, ...] = (*MODEL_KINDS, "ensemble")  # what ``training.train`` accepts
