"""The rule-based backup model: same interface as a trained one, used only when none is registered."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import SignalParams, load_settings
from workbench.features import build_features
from workbench.models.backup import BACKUP_REF, BackupModel, RuleModel
from workbench.models.base import make_model
from workbench.models.inference import signals_for_panel
from workbench.models.registry import LoadedModel, Registry
from workbench.signals import latest_signals


def test_rule_model_is_a_momentum_rule(rw_panel):
    m = make_model("rule")
    assert isinstance(m, RuleModel) and m.kind == "rule"
    X = build_features(rw_panel).dropna()
    p = m.fit(X).predict_proba(X)
    assert p.shape == (len(X),) and ((p > 0) & (p < 1)).all()
    assert np.array_equal(p > 0.5, X["ret_20"].to_numpy() > 0)
    with pytest.raises(ValueError, match="features missing"):
        m.predict_proba(X.drop(columns="vol_20"))


def test_load_or_backup(rw_panel, rw_result, tmp_path):
    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    registry = Registry(settings)
    model, used_backup, message = registry.load_or_backup("champion")
    assert used_backup and isinstance(model, BackupModel) and model.ref == BACKUP_REF and model.kind == "rule"
    assert message.startswith("no model registered as 'champion'") and "BACKUP rule-based model" in message
    signals = latest_signals(signals_for_panel(model, rw_panel, SignalParams()), "SYNTH")
    assert {s.symbol for s in signals} == set(rw_panel.symbols)
    registry.register(rw_result)
    model, used_backup, message = registry.load_or_backup("champion")
    assert not used_backup and isinstance(model, LoadedModel) and message.startswith("loaded lgbm model workbench/1")
