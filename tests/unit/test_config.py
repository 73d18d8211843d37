"""Settings: defaults, then the home's workbench.toml, then env vars, then explicit arguments."""

import pytest
from pydantic import ValidationError

from workbench.config import load_settings
from workbench.errors import ConfigError


def test_defaults_are_the_design_risk_rules(tmp_path):
    s = load_settings(tmp_path)
    assert (s.risk.max_position_pct, s.risk.max_daily_loss_pct, s.risk.min_strength) == (0.10, 0.05, 0.70)
    assert s.store_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'workbench.db'}"
    assert s.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"


def test_toml_then_env_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "workbench.toml").write_text("[risk]\nmin_strength = 0.8\nmax_position_pct = 0.05\n")
    s = load_settings(tmp_path)
    assert s.risk.min_strength == 0.8 and s.risk.max_position_pct == 0.05
    monkeypatch.setenv("WORKBENCH_RISK__MIN_STRENGTH", "0.9")
    assert load_settings(tmp_path).risk.min_strength == 0.9
    assert load_settings(tmp_path, risk={"min_strength": 0.75}).risk.min_strength == 0.75


def test_a_bad_value_names_the_setting(tmp_path):
    (tmp_path / "workbench.toml").write_text("[risk]\nmax_position_pct = 1.5\n")
    with pytest.raises(ConfigError, match="max_position_pct"):
        load_settings(tmp_path)


def test_settings_are_frozen(tmp_path):
    s = load_settings(tmp_path)
    with pytest.raises(ValidationError, match="frozen"):
        s.model_name = "other"


def test_per_exchange_costs_from_the_toml(tmp_path):
    (tmp_path / "workbench.toml").write_text("[paper.exchange_costs]\nNSE = [0.0003, 2.0]\n")
    s = load_settings(tmp_path)
    models = s.paper.cost_models()
    assert list(models) == ["NSE"]
    assert (models["NSE"].fee_rate, models["NSE"].slippage_bps) == (0.0003, 2.0)
    (tmp_path / "workbench.toml").write_text("[paper.exchange_costs]\nNSE = [0.5, 2.0]\n")
    with pytest.raises(ConfigError, match=r"exchange_costs\['NSE'\] = \(0.5, 2.0\).*fee_rate"):
        load_settings(tmp_path)  # a fee of 50% is a typo: said at load time, naming the exchange
