"""One live run per account, stop/status by run id that never pretend, strict models, validated
arguments. In-process runs are threads on the real store and paper broker; the OS lock is also held
by a real second process (``python -c``) that is SIGKILLed to show the kernel releases it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from tests.unit.trading.test_trading_runner import start_thread
from workbench.cli import MIN_INTERVAL_S as CLI_MIN_INTERVAL_S
from workbench.cli import app
from workbench.errors import ConfigError, NoModelError, RunActiveError
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runlock import acquire, lock_path
from workbench.trading.runner import MIN_INTERVAL_S, run_live, start_background, status, stop_run
from workbench.trading.store import Store
from workbench.venues.paper.broker import PaperBroker


def cli(settings, *args):
    return CliRunner().invoke(app, [*args, "--home", str(settings.home)])


def feed():
    return ReplayFeed.from_panel(synthetic_panel(6, 400), warmup_bars=40, replay_bars=300)


def wait_running(store: Store, account: str, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = [r for r in store.running_runs(account) if (r["cycle"] or 0) >= 1]
        if rows:
            return rows[0]
        time.sleep(0.02)
    raise AssertionError(f"no run on account {account!r} reached cycle 1 in {timeout}s")


def paper(store: Store, account: str) -> PaperBroker:
    return PaperBroker(store, account=account)


def test_a_second_start_on_a_running_account_is_refused_naming_the_run(settings):
    store = Store(settings.store_url).create()
    t, out = start_thread(settings, engine=MomentumEngine(gain=3.0), feed=feed(), interval_s=0.2, min_interval_s=0)
    first = wait_running(store, "paper:trader")  # the trader's own paper account
    with pytest.raises(RunActiveError) as refused:
        run_live(settings, engine=MomentumEngine(gain=3.0), feed=feed(), interval_s=0.2, min_interval_s=0, cycles=1)
    msg = str(refused.value)
    assert f"run {first['id']}" in msg and f"pid {os.getpid()}" in msg and first["started_at"] in msg
    assert f"workbench live stop --run {first['id']}" in msg
    assert len(store.running_runs()) == 1 and store.latest_run()["id"] == first["id"]  # no row for the refused start
    assert stop_run(settings, run_id=first["id"]).sent
    t.join(timeout=10)
    assert store.run(first["id"])["status"] == "STOPPED" and "error" not in out
    assert not lock_path(settings.data_dir, "paper:trader").read_text()  # released and emptied


def test_two_accounts_run_at_once_and_are_stopped_by_run_id(settings):
    store = Store(settings.store_url).create()
    ta, oa = start_thread(
        settings,
        broker=paper(store, "alpha"),
        engine=MomentumEngine(gain=3.0),
        feed=feed(),
        interval_s=0.2,
        min_interval_s=0,
    )
    tb, ob = start_thread(
        settings,
        broker=paper(store, "beta"),
        engine=MomentumEngine(gain=3.0),
        feed=feed(),
        interval_s=0.2,
        min_interval_s=0,
    )
    a, b = wait_running(store, "alpha"), wait_running(store, "beta")
    try:
        listed = cli(settings, "live", "status")
        assert listed.exit_code == 0, listed.output
        assert {r["run_id"] for r in json.loads(listed.output)["running"]} == {a["id"], b["id"]}
        ambiguous = cli(settings, "live", "stop")  # two running: which one?
        assert (
            ambiguous.exit_code == 3 and f"run {a['id']}" in ambiguous.output and f"run {b['id']}" in ambiguous.output
        )
        one = cli(settings, "live", "status", "--account", "beta")
        assert json.loads(one.output)["run_id"] == b["id"]
        r = cli(settings, "live", "stop", "--run", str(a["id"]))
        assert r.exit_code == 0 and f"stop requested for run {a['id']} on account 'alpha'" in r.output
        ta.join(timeout=10)
        assert store.run(a["id"])["status"] == "STOPPED"
        assert store.run(b["id"])["status"] == "RUNNING" and tb.is_alive()  # the other account keeps trading
        r = cli(settings, "live", "emergency-stop", "--account", "beta")
        assert r.exit_code == 0 and f"emergency stop requested for run {b['id']}" in r.output
        tb.join(timeout=10)
        assert store.run(b["id"])["status"] == "EMERGENCY_STOPPED"
        assert "error" not in oa and "error" not in ob
        assert store.orders(a["id"])["client_order_id"].size and store.orders(b["id"])["client_order_id"].size
    finally:
        for rid in (a["id"], b["id"]):
            store.send_command("stop", rid)
        ta.join(timeout=10)
        tb.join(timeout=10)


def test_a_stop_sent_to_a_dead_run_says_it_is_dead_and_queues_nothing(settings):
    store = Store(settings.store_url).create()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rid = store.start_run("paper", "paper", "paper", "m", 30.0, pid=dead.pid)
    for cmd in ("stop", "emergency-stop"):
        r = cli(settings, "live", cmd, "--run", str(rid))
        assert r.exit_code == 9, r.output
        assert f"run {rid} on account 'paper' is DEAD" in r.output and f"pid {dead.pid}" in r.output
    assert store.pending_command(rid, consume=False) is None
    assert status(settings, run_id=rid)["alive"] is False and status(settings)["running"][0]["alive"] is False
    r = cli(settings, "live", "stop", "--run", "999")
    assert r.exit_code == 3 and "no run 999" in r.output
    store.finish_run(rid, "STOPPED", "done")
    r = cli(settings, "live", "stop", "--run", str(rid))
    assert r.exit_code == 0 and f"run {rid} is not running (it ended STOPPED" in r.output


def test_the_os_lock_holds_across_processes_and_dies_with_its_holder(settings):
    store = Store(settings.store_url).create()
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom workbench.trading.runlock import acquire\n"
        "from workbench.trading.store import Store\n"
        "lock = acquire(Path(sys.argv[1]), Store(sys.argv[2]), 'paper')\nprint('held', flush=True)\ntime.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(settings.data_dir), settings.store_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunActiveError, match=f"pid {holder.pid}"):
            acquire(settings.data_dir, store, "paper")
        acquire(settings.data_dir, store, "other").release()  # another account is free
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    acquire(settings.data_dir, store, "paper").release()  # the kernel released the dead holder's lock


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"interval_s": 0}, "interval 0s is too short"),
        ({"interval_s": 0.5}, "at least 1s"),
        ({"interval_s": float("nan")}, "too short"),
        ({"cycles": 0}, "cycles 0"),
        ({"cycles": -3}, "give 1 or more"),
    ],
)
def test_interval_and_cycles_are_validated_in_run_live_and_start_background(settings, kw, words):
    with pytest.raises(ConfigError, match=words):
        run_live(settings, engine=MomentumEngine(), feed=feed(), **kw)
    with pytest.raises(ConfigError, match=words):
        start_background(settings, broker="paper", model="backup", **kw)
    assert Store(settings.store_url).create().latest_run() is None
    assert not (settings.data_dir / "logs").exists() or not list((settings.data_dir / "logs").glob("live-*.log"))


def test_the_cli_refuses_interval_and_cycles_below_the_floor(settings):
    assert CLI_MIN_INTERVAL_S == MIN_INTERVAL_S
    for args, words in ((("--interval", "0"), "--interval"), (("--cycles", "0"), "--cycles")):
        r = cli(settings, "live", "run", "--model", "backup", *args)
        assert r.exit_code == 2 and words in r.output and "greater than or equal to 1" in r.output, r.output
    assert Store(settings.store_url).create().latest_run() is None


def test_the_lock_file_is_private_even_when_an_older_release_left_it_0644(settings):
    store = Store(settings.store_url).create()
    path = lock_path(settings.data_dir, "paper")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.chmod(path, 0o644)
    acquire(settings.data_dir, store, "paper").release()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = lock_path(settings.data_dir, "other")
    old = os.umask(0o022)
    try:
        acquire(settings.data_dir, store, "other").release()
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_start_background_refuses_at_once_while_the_account_is_locked(settings):
    store = Store(settings.store_url).create()
    lock = acquire(settings.data_dir, store, "paper:trader")
    try:
        with pytest.raises(RunActiveError, match="already has a live run"):
            start_background(settings, broker="paper", model="backup", interval_s=1, cycles=1)
    finally:
        lock.release()
    assert not (settings.data_dir / "logs").exists() or not list((settings.data_dir / "logs").glob("live-*.log"))


# ---- strict models --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A home with a champion trained walk-forward on a random walk (so its verdict is: no edge)."""
    pytest.importorskip("workbench.models.registry")
    from tests.unit.features.research_kit import random_walk_panel
    from workbench.config import load_settings
    from workbench.data.lake import Lake
    from workbench.models.registry import Registry
    from workbench.models.training import train

    settings = load_settings(tmp_path_factory.mktemp("strict-home"))
    settings.ensure_dirs()
    panel = random_walk_panel(n_bars=400, symbols=("SYN-A", "SYN-B", "SYN-C"))
    Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    result = train(panel, params={"n_estimators": 20}, validation="walk_forward", n_folds=3)
    Registry(settings).register(result)
    return settings, result


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mlflow on SQLAlchemy 2.1
def test_a_model_typo_fails_phase1_listing_what_is_registered(registered, monkeypatch):
    settings, _ = registered
    trader(settings, "typist", monkeypatch=monkeypatch)
    store = Store(settings.store_url).create()
    rid = run_live(settings, model="champoin", interval_s=1, cycles=1)
    run = store.run(rid)
    assert run["status"] == "FAILED" and "Phase 1 failed at 'models'" in run["message"]
    assert "'champoin'" in run["message"] and "Registered: champion (version 1)" in run["message"]
    assert f"{settings.model_name}/1" in run["message"] and "--model backup" in run["message"]
    assert store.cycles(rid).empty and store.orders(rid).empty


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_champion_without_edge_is_flagged_in_phase1(registered):
    from workbench.trading.loop import registry_engine_factory

    settings, result = registered
    assert not result.metrics["beats_baselines"]  # a random walk has nothing to find
    engine = registry_engine_factory(settings, "champion")()
    assert engine.describe().startswith("NO EDGE: it lost to its baselines out of sample") and not engine.backup


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_nothing_registered_runs_the_backup_on_paper_only(settings):
    pytest.importorskip("workbench.models.registry")
    from workbench.data.demo import ensure_demo_data
    from workbench.trading.loop import BACKUP_LABEL, registry_engine_factory

    ensure_demo_data(settings, "synthetic")
    with pytest.raises(NoModelError, match="paper only"):
        registry_engine_factory(settings, "champion", allow_backup=False)()
    on_paper = registry_engine_factory(settings, "champion", allow_backup=True)()
    assert on_paper.backup and on_paper.describe().startswith(f"{BACKUP_LABEL}, nothing is registered")
    chosen = registry_engine_factory(settings, "backup")()
    assert chosen.backup and "chosen with --model backup" in chosen.describe()
