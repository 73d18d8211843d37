"""One live run per account with real processes: two `workbench live run` racing on one paper account,
two dashboard Start clicks 50 ms apart (``start_background``), and the PostgreSQL advisory lock that
refuses a second machine sharing the store. The runs use `--model backup` on the synthetic demo data,
so they also show the backup model chosen explicitly and labelled as such."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.kit.users import trader
from workbench.config import load_settings
from workbench.data.demo import ensure_demo_data
from workbench.errors import RunActiveError
from workbench.trading.loop import BACKUP_LABEL
from workbench.trading.runlock import acquire
from workbench.trading.runner import start_background
from workbench.trading.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def demo_settings(tmp_path, monkeypatch):
    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    ensure_demo_data(settings, "synthetic")
    trader(settings, monkeypatch=monkeypatch)  # the processes inherit its $WORKBENCH_TOKEN
    return settings


def _assert_one_backup_run(store: Store, cycles: int) -> dict:
    (run,) = [store.run(i) for i in range(1, 10) if store.run(i) is not None]  # exactly one run row
    assert run["status"] == "STOPPED" and run["message"] == f"completed {cycles} cycle(s)"
    assert run["model_ref"] == BACKUP_LABEL
    checks = store.checks(run["id"])
    models = checks.loc[checks["name"] == "models", "message"].iloc[0]
    assert models.startswith(f"{BACKUP_LABEL}, chosen with --model backup")
    assert len(store.cycles(run["id"])) == cycles
    return run


def test_two_processes_racing_on_one_account_one_trades_the_other_is_refused(demo_settings):
    env = {**os.environ, "WORKBENCH_HOME": str(demo_settings.home)}
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "live",
        "run",
        "--broker",
        "paper",
        "--model",
        "backup",
        "--interval",
        "1",
        "--cycles",
        "3",
    ]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 9], outs
    won, lost = (outs[0], outs[1]) if procs[0].returncode == 0 else (outs[1], outs[0])
    run = _assert_one_backup_run(Store(demo_settings.store_url), 3)
    assert f"run {run['id']} ended: STOPPED" in won[0]  # each invocation reports its own run
    refusal = " ".join(lost[1].split())
    assert "account 'paper:trader' already has a live run" in refusal and f"run {run['id']}" in refusal
    assert f"pid {run['pid']}" in refusal and f"workbench live stop --run {run['id']}" in refusal


def test_two_dashboard_clicks_50ms_apart_start_one_run(demo_settings):
    first = start_background(demo_settings, broker="paper", model="backup", interval_s=1, cycles=2)
    time.sleep(0.05)
    second = start_background(demo_settings, broker="paper", model="backup", interval_s=1, cycles=2)
    try:
        codes = sorted(p.wait(timeout=300) for p in (first, second))
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    assert codes == [0, 9]
    run = _assert_one_backup_run(Store(demo_settings.store_url), 2)
    logs = [" ".join(f.read_text().split()) for f in (demo_settings.data_dir / "logs").glob("live-*.log")]
    assert len(logs) == 2 and sum("already has a live run" in t and f"run {run['id']}" in t for t in logs) == 1


def test_postgres_advisory_lock_refuses_a_second_machine(pg_server, tmp_path):
    """Two 'machines' (separate data dirs, so separate file locks) sharing one PostgreSQL store."""
    url = pg_server.create_database("runlock")
    here, there = Store(url).create(), Store(url).create()
    lock = acquire(tmp_path / "machine-a", here, "paper")
    try:
        with pytest.raises(RunActiveError, match="on another machine sharing this store"):
            acquire(tmp_path / "machine-b", there, "paper")
        acquire(tmp_path / "machine-b", there, "binance@testnet").release()  # other accounts are free
    finally:
        lock.release()
    acquire(tmp_path / "machine-b", there, "paper").release()  # released with the run
