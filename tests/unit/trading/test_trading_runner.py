"""The live process: run_live in a thread on the real store and paper broker; stop and emergency
stop obeyed within one cycle; Phase 1 failure ends the run FAILED; status from the store."""

from __future__ import annotations

import os
import threading
import time

import pandas as pd
import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from workbench.config import RiskLimits, load_settings
from workbench.data.lake import Lake
from workbench.trading.feeds import ReplayFeed
from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.runner import request_stop, run_live, status
from workbench.trading.store import Store
from workbench.venues.base import Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

INTERVAL = 0.2


def start_thread(settings, **kw) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target():
        try:
            out["run_id"] = run_live(settings, **kw)
        except BaseException as e:  # surfaced by the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, out


def wait_for_cycle(store: Store, n: int, timeout: float = 20.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run = store.latest_run()
        if run is not None and run["cycle"] >= n:
            return run
        time.sleep(0.02)
    raise AssertionError(f"the run did not reach cycle {n} in {timeout}s: {store.latest_run()}")


def long_feed(n_symbols=8):
    return ReplayFeed.from_panel(synthetic_panel(n_symbols, 400), warmup_bars=40, replay_bars=300)


def test_stop_is_obeyed_within_one_cycle(settings):
    store = Store(settings.store_url).create()
    t, out = start_thread(
        settings, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=INTERVAL, min_interval_s=0
    )
    run = wait_for_cycle(store, 2)
    assert status(settings)["status"] == "RUNNING" and status(settings)["alive"] is True
    asked_at = store.run(run["id"])["cycle"]
    assert request_stop(settings) == run["id"]
    t.join(timeout=5 * INTERVAL + 2)
    assert not t.is_alive() and "error" not in out
    final = store.run(run["id"])
    assert final["status"] == "STOPPED" and "stopped by request" in final["message"]
    assert final["cycle"] <= asked_at + 1  # at most the cycle under way finishes
    st = status(settings)
    assert st["run_id"] == run["id"] and st["status"] == "STOPPED" and st["equity"] > 0 and st["n_orders"] > 0
    assert request_stop(settings) is None  # nothing running any more


def test_emergency_stop_cancels_open_orders_and_flattens(tmp_path, monkeypatch):
    settings = load_settings(tmp_path / "home", risk=RiskLimits(flatten_on_emergency=True))
    settings.ensure_dirs()
    trader(settings, monkeypatch=monkeypatch)
    store = Store(settings.store_url).create()
    ACCOUNT = "paper:trader"  # the trader's own paper account (accounts are per user)
    # An order resting at the venue from an earlier session.
    pb = PaperBroker(
        store, ACCOUNT, starting_cash=settings.paper.starting_cash, markets={"S000": Market("S000", "S000", "USD")}
    )
    pb.on_bar({"S000": Quote("S000", 100.0, pd.Timestamp("2024-01-01", tz="UTC"))})
    OrderManager(store, pb, ACCOUNT).submit(
        OrderIntent(OrderRequest("resting", "S000", "buy", 1, type="limit", limit_price=1.0), None, None, "old")
    )
    t, out = start_thread(
        settings, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=INTERVAL, min_interval_s=0
    )
    run = wait_for_cycle(store, 2)
    assert len(PaperBroker(store, ACCOUNT).positions()) > 0  # the momentum engine bought
    request_stop(settings, emergency=True)
    t.join(timeout=5 * INTERVAL + 2)
    assert not t.is_alive() and "error" not in out
    final = store.run(run["id"])
    assert final["status"] == "EMERGENCY_STOPPED" and "open order(s) cancelled" in final["message"]
    assert store.open_orders(ACCOUNT) == [] and PaperBroker(store, ACCOUNT).open_orders() == []  # exits withdrawn too
    assert store.get_order("resting")["status"] == "CANCELLED"
    assert PaperBroker(store, ACCOUNT).positions() == {} and store.positions(ACCOUNT).empty
    assert store.events(run["id"], kind="emergency")["level"].iloc[0] == "WARNING"


def test_emergency_stop_keeps_positions_unless_asked(settings):
    store = Store(settings.store_url).create()
    t, _out = start_thread(
        settings, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=INTERVAL, min_interval_s=0
    )
    run = wait_for_cycle(store, 1)
    request_stop(settings, emergency=True)
    t.join(timeout=5 * INTERVAL + 2)
    assert store.run(run["id"])["status"] == "EMERGENCY_STOPPED"
    assert len(PaperBroker(store, "paper:trader").positions()) > 0


def test_cycles_budget_then_restart_continues_the_replay_on_the_model_universe(settings):
    lake = Lake(settings.lake_dir)
    panel = synthetic_panel(5, 200)
    lake.write(panel.to_long(), "TEST", "1d", "synthetic")
    engine = MomentumEngine(universe={"exchange": "TEST", "timeframe": "1d", "symbols": ["S000", "S001", "S002"]})
    store = Store(settings.store_url).create()
    r1 = run_live(settings, engine=engine, interval_s=0.0, min_interval_s=0, cycles=3)
    assert store.run(r1)["status"] == "STOPPED" and store.run(r1)["cursor"] == 3
    r2 = run_live(settings, engine=engine, interval_s=0.0, min_interval_s=0, cycles=2)
    bars = store.cycles(r2)["bar_ts"]
    # replay_bars from the end, but not before a full warm-up window exists
    first = max(len(panel.index) - settings.live.replay_bars, settings.live.warmup_bars - 1)
    assert list(bars) == list(panel.index[first + 3 : first + 5])
    assert set(store.signals(r2)["symbol"]) == {"S000", "S001", "S002"}
    assert len(store.checks(r2)) == 5


def test_phase1_failure_ends_the_run_failed(settings):
    from workbench.errors import NoModelError

    class Unloadable:
        def describe(self):
            raise NoModelError("no model registered as 'champion': run `workbench train` first")

        def signals(self, panel):  # pragma: no cover - never reached
            raise AssertionError

    store = Store(settings.store_url).create()
    rid = run_live(settings, engine=Unloadable(), feed=long_feed(), interval_s=0.0, min_interval_s=0, cycles=1)
    run = store.run(rid)
    assert (
        run["status"] == "FAILED"
        and "Phase 1 failed at 'models'" in run["message"]
        and "workbench train" in run["message"]
    )
    assert store.cycles(rid).empty and status(settings)["status"] == "FAILED"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mlflow on SQLAlchemy 2.1
def test_no_registered_model_fails_phase1_with_the_registry_message(settings):
    pytest.importorskip("workbench.models.registry")
    store = Store(settings.store_url).create()
    rid = run_live(settings, interval_s=0.0, min_interval_s=0, cycles=1)
    run = store.run(rid)
    assert run["status"] == "FAILED" and "'models'" in run["message"] and "workbench train" in run["message"]
    checks = store.checks(rid)
    assert list(checks["name"]) == ["authentication", "api_keys", "exchange", "models"] and not checks["ok"].iloc[-1]


def test_unknown_broker_fails_the_run(settings):
    rid = run_live(settings, broker="nope", engine=MomentumEngine(), feed=long_feed(), cycles=1)
    run = Store(settings.store_url).run(rid)
    assert (
        run["status"] == "FAILED"
        and "unknown broker 'nope'" in run["message"]
        and "ccxt:<exchange id>" in run["message"]
    )


def test_status_without_runs(settings):
    assert status(settings) == {"run_id": None, "status": "NO_RUN", "message": "no live run yet"}
    assert request_stop(settings) is None


def test_status_reports_a_dead_process_as_stale(settings):
    store = Store(settings.store_url).create()
    rid = store.start_run("paper", "paper", "paper", "m", 30.0, pid=2**22 + 12345)
    st = status(settings)
    assert st["run_id"] == rid and st["alive"] is False and st["stale"] is True and st["heartbeat_age_s"] >= 0
    store.update_run(rid, pid=os.getpid())
    assert status(settings)["alive"] is True


@pytest.mark.slow
def test_start_background_runs_the_cli_detached_and_logs(settings):
    """The Start button's path: `python -m workbench live run` in its own session. With no model
    registered in this fresh home, the process records a FAILED run and exits non-zero."""
    pytest.importorskip("workbench.models.registry")
    from workbench.trading.runner import start_background

    proc = start_background(settings, broker="paper", model="champion", interval_s=1, cycles=1)
    try:
        assert os.getpgid(proc.pid) == proc.pid  # its own session/process group: closing the kernel won't kill it
        assert proc.args[1:6] == ["-m", "workbench", "live", "run", "--broker"] and "--cycles" in proc.args
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    st = status(settings)
    assert st["status"] == "FAILED" and "models" in st["message"] and st["alive"] is False
    (log,) = (settings.data_dir / "logs").glob("live-*.log")
    assert "FAILED" in log.read_text()


def test_sigterm_stops_cleanly_after_the_cycle(settings):
    """In the main thread run_live traps SIGTERM/SIGINT: the cycle under way finishes, the run is
    STOPPED, and the previous handlers come back."""
    import signal

    class Terminating:
        def __init__(self, inner):
            self.inner, self.cursor, self.n = inner, None, 0

        def next(self):
            self.n += 1
            if self.n == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return self.inner.next()

    before = signal.getsignal(signal.SIGTERM)
    rid = run_live(
        settings, engine=MomentumEngine(), feed=Terminating(long_feed(3)), interval_s=0.05, min_interval_s=0, cycles=50
    )
    run = Store(settings.store_url).run(rid)
    assert run["status"] == "STOPPED" and "signal" in run["message"] and run["cycle"] == 2
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mlflow on SQLAlchemy 2.1
def test_no_registered_model_but_data_runs_the_backup_model_and_says_so(tmp_path, monkeypatch):
    from workbench.data.demo import ensure_demo_data

    settings = load_settings(tmp_path / "home", demo={"source": "synthetic", "bars": 300})
    trader(settings, monkeypatch=monkeypatch)
    ensure_demo_data(settings)
    store = Store(settings.store_url).create()
    rid = run_live(settings, interval_s=0.0, min_interval_s=0, cycles=2)
    run = store.run(rid)
    assert run["status"] == "STOPPED", run
    checks = store.checks(rid).set_index("name")
    assert checks["ok"].all()
    assert (
        "BACKUP rule-based model" in checks.loc["models", "message"]
        and "workbench train" in checks.loc["models", "message"]
    )
    assert len(store.cycles(rid)) == 2 and set(store.signals(rid)["symbol"]) == set(settings.demo.synthetic_symbols)


def test_calendar_warning_reaches_the_console_and_the_log(settings, monkeypatch, capsys):
    """An NSE model in December 2026 (its holidays recorded to 2026-12-31): the run goes on, says so on
    stderr and in a WARNING event, and Phase 1 keeps the row. Only the day Phase 1 believes it is is set."""
    from workbench.trading import loop

    real = loop.calendar_warnings
    monkeypatch.setattr(loop, "calendar_warnings", lambda s, engine, today=None: real(s, engine, "2026-12-20"))
    lake = Lake(settings.lake_dir)
    lake.write(synthetic_panel(3, 150).to_long(), "NSE", "1d", "synthetic")
    engine = MomentumEngine(universe={"exchange": "NSE", "timeframe": "1d", "symbols": ["S000", "S001", "S002"]})
    store = Store(settings.store_url).create()
    rid = run_live(settings, engine=engine, interval_s=0.0, min_interval_s=0, cycles=1, replay=True)
    assert store.run(rid)["status"] == "STOPPED"
    assert "calendar" in list(store.checks(rid)["name"])
    events = store.events(rid, kind="calendar")
    assert events["level"].tolist() == ["WARNING"] and "recorded only to 2026-12-31" in events["message"].iloc[0]
    assert f"run {rid}: WARNING: NSE holidays are recorded only to 2026-12-31" in capsys.readouterr().err
