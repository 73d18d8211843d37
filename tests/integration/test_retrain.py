"""Retraining end to end: papermill runs notebooks/05_retrain.ipynb against a temp MLflow store on
real stocks, and the champion moves only when the numbers say so; failures and overlaps leave it alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from workbench.config import load_settings
from workbench.data.ingest import pull
from workbench.data.lake import Lake
from workbench.data.sources.csv_source import CsvSource
from workbench.errors import ConfigError
from workbench.models.registry import Registry
from workbench.models.retrain import cron_trigger, history, lock_path, make_scheduler, run_retrain

STOCKS = ("AAPL", "XOM", "KO")
FAST = {
    "exchange": "NYSE",
    "timeframe": "1d",
    "start": "2016-01-01",
    "kinds": ["lgbm"],
    "n_folds": 2,
    "model_params": {"lgbm": {"n_estimators": 25}},
}


@pytest.fixture(scope="module")
def home(shared_data, tmp_path_factory):
    settings = load_settings(tmp_path_factory.mktemp("retrain-home"))
    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    for sym in STOCKS:
        path = shared_data / "us_equities" / "sp500_5yr_kaggle_cnuge" / f"{sym}_data.csv"
        pull(lake, CsvSource(path, exchange="NYSE", symbol=sym), [sym], "1d", progress=False)
    return settings


def test_retrain_promotes_or_refuses_as_the_numbers_say(home):
    registry = Registry(home)
    first = run_retrain(home, FAST)
    assert first.status == "promoted" and "no champion was registered" in first.reason, first.reason
    assert registry.load("champion").ref.version == 1
    nb = json.loads(Path(first.notebook).read_text())
    assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])

    # Same data, a margin no model can clear: the challenger is registered but refused.
    second = run_retrain(home, {**FAST, "promote_margin": 1.0})
    d = second.decision
    assert second.status == "refused" and not second.promoted, second.reason
    assert d["challenger_score"] - d["champion_score"] <= 1.0 and d["metric"] == "auc"
    assert d["window_start"] >= registry.load("champion").split["test_start"]
    assert registry.load("champion").ref.version == 1 and registry.load("challenger").ref.version == 2
    run = registry.client.get_run(registry.load("challenger").ref.run_id)
    assert run.data.tags["retrain_decision"] == second.reason

    # A negative margin: the challenger wins as long as it is no worse by more than that.
    third = run_retrain(home, {**FAST, "promote_margin": -1.0})
    assert third.status == "promoted" and third.decision["champion_version"] == 1, third.reason
    assert registry.load("champion").ref.version == 3 and not registry.has("challenger")


def test_failed_run_leaves_the_champion_and_says_why(home):
    registry = Registry(home)
    before = registry.load("champion").ref.version if registry.has("champion") else None
    out = run_retrain(home, {**FAST, "kinds": ["xgb"]})
    assert out.status == "failed" and not out.promoted
    assert "unknown model kind 'xgb'" in out.reason and out.reason.startswith("retrain failed, champion unchanged")
    assert out.notebook is not None  # the executed notebook, with the error in it, is kept
    after = registry.load("champion").ref.version if registry.has("champion") else None
    assert after == before
    assert history(home)["status"].iloc[-1] == "failed"


def test_runs_never_overlap(home):
    with FileLock(str(lock_path(home))):
        out = run_retrain(home, FAST)
    assert out.status == "skipped" and "another retrain is running" in out.reason


def test_scheduler_job_and_cron():
    settings = load_settings("/tmp/unused-workbench-home")
    sched = make_scheduler(settings, "30 6 * * 1-5")
    (job,) = sched.get_jobs()
    # Cron's weekday numbers (0 = Sunday) — APScheduler's from_crontab would shift them by a day.
    t = datetime(2024, 1, 6, 12, tzinfo=UTC)  # a Saturday
    fires = []
    for _ in range(6):
        t = job.trigger.get_next_fire_time(None, t + timedelta(seconds=1))
        fires.append(t.strftime("%a %H:%M"))
    assert fires == ["Mon 06:30", "Tue 06:30", "Wed 06:30", "Thu 06:30", "Fri 06:30", "Mon 06:30"]
    assert str(cron_trigger("0 0 * * 0,6").fields[4]) == "sun,sat"
    assert job.max_instances == 1 and job.coalesce
    assert str(make_scheduler(settings).get_jobs()[0].trigger.fields[6]) == "0"  # default cron from settings: minute 0
    with pytest.raises(ConfigError, match="not valid"):
        make_scheduler(settings, "every day")
