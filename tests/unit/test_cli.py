"""Command-line parsing that is ours (not typer's)."""

import pytest
import typer
from typer.testing import CliRunner

from workbench.cli import _parameters, app


def test_papermill_style_parameters():
    assert _parameters(["-p", "kinds", "['lgbm','rf']", "-p", "n_folds", "2", "-p", "exchange", "NASDAQ"]) == {
        "kinds": ["lgbm", "rf"],
        "n_folds": 2,
        "exchange": "NASDAQ",
    }
    with pytest.raises(typer.BadParameter, match="-p NAME VALUE"):  # a usage error: exit 2
        _parameters(["-p", "kinds"])


def test_every_stage_has_a_command():
    out = CliRunner().invoke(app, ["--help"]).output
    for cmd in (
        "init",
        "instruments",
        "data",
        "train",
        "models",
        "backtest",
        "live",
        "retrain",
        "scheduler",
        "dashboard",
    ):
        assert cmd in out


def test_live_status_on_an_empty_home(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["live", "status", "--home", str(tmp_path)])
    assert result.exit_code == 11 and "not logged in" in result.output  # runs are some user's: a session is needed
    from tests.kit.users import trader
    from workbench.config import load_settings

    trader(load_settings(tmp_path), monkeypatch=monkeypatch)
    result = CliRunner().invoke(app, ["live", "status", "--home", str(tmp_path)])
    assert result.exit_code == 0 and '"run_id": null' in result.output
