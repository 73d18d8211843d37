"""The start page: Start launches one live process (a second click is refused on the page), the token
goes in its environment and never argv, Phase 1's steps appear one by one with their durations, real
money needs trade_live and the broker's name typed, and the interval holds the runner's floor."""

from __future__ import annotations

import os
from pathlib import Path

import ipywidgets as w

from tests.kit.users import PASSWORD, trader
from tests.unit.dashboard.pages import logged_in
from workbench.config import BrokerSettings, load_settings
from workbench.dashboard.common import broker_options
from workbench.trading.runlock import acquire
from workbench.trading.runner import MIN_INTERVAL_S
from workbench.trading.store import Store


def test_start_launches_one_process_with_the_token_in_its_environment_and_shows_phase1(settings, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)  # only the page's login counts
    app = logged_in(settings)
    start = app.start_page
    assert isinstance(start.model, w.Dropdown) and start.model.value == "backup"  # nothing registered: only the backup
    start.interval.value = 3600
    start.start_button.click()
    proc = start._process
    assert proc is not None, start.notice.text
    try:
        start.start_button.click()  # a double click: refused on the page, the first process is kept
        assert start._process is proc and "still going" in start.notice.text
        assert start.start_button.disabled
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace").split("\0")
        assert app.session.token not in argv and f"WORKBENCH_TOKEN={app.session.token}" in environ
        proc.wait(timeout=120)  # the lake is empty: Phase 1 passes authentication, then stops
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = Store(settings.store_url)
    run = store.latest_run()
    assert run is not None and run["user_id"] == app.user.id and run["pid"] == proc.pid
    assert run["id"] == 1  # a fresh home: the double click made no second run
    app.refresh()
    assert f"run {run['id']}" in start.status.value and "FAILED" in start.status.value
    assert "authentication" in start.checks.value and "PASS" in start.checks.value and "FAIL" in start.checks.value
    assert " s</td>" in start.checks.value  # each step's duration
    assert not start.start_button.disabled  # the process ended: a new start is allowed again


def test_phase1_steps_appear_one_by_one_with_their_durations(settings):
    store = Store(settings.store_url).create()
    app = logged_in(settings)
    start = app.start_page
    rid = store.start_run(broker="paper", environment="paper", account="paper", pid=os.getpid(), user_id=app.user.id)
    app.refresh()
    assert "Phase 1 has not run yet" in start.checks.value and "Phase 1 running" in start.checks.value
    store.add_check(rid, 1, "authentication", True, "user trader", duration_s=0.0123)
    app.refresh()
    assert "authentication" in start.checks.value and "0.01 s" in start.checks.value
    assert "broker" not in start.checks.value and "Phase 1 running" in start.checks.value
    store.add_check(rid, 2, "broker", True, "paper broker ready", duration_s=1.5)
    app.refresh()
    body = start.checks.value
    assert body.index("authentication") < body.index("broker") and "1.50 s" in body
    store.add_check(rid, 3, "models", False, "no model <registered>", duration_s=0.2)
    app.refresh()
    assert "FAIL" in start.checks.value and "&lt;registered&gt;" in start.checks.value  # escaped
    assert "Phase 1 running" not in start.checks.value


def test_live_money_needs_the_permission_and_the_broker_name_typed(tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home", broker=BrokerSettings(testnet=False))
    s.ensure_dirs()
    trader(s, "root", monkeypatch=monkeypatch)  # the home's admin
    trader(s, "paperonly")
    trader(s, "pro", permissions=("trade_paper", "trade_live"))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    app = logged_in(s, "paperonly", PASSWORD)
    start = app.start_page
    assert "needs the trade_live permission" in dict((v, k) for k, v in start.broker.options)["kite"]
    start.broker.value = "kite"
    assert start.live_box.layout.display is None and "REAL MONEY" in start.live_warning.value
    assert "LIVE · REAL MONEY · kite" in app.header.value
    start.live_confirm.value = "kite"
    start.start_button.click()
    assert start._process is None and "lacks the trade_live permission" in start.notice.text
    pro = logged_in(s, "pro", PASSWORD).start_page
    pro.broker.value = "kite"
    pro.start_button.click()
    assert pro._process is None and "type 'kite'" in pro.notice.text
    pro.live_confirm.value = "KITE "  # close is not enough
    pro.start_button.click()
    assert pro._process is None and "type 'kite'" in pro.notice.text
    store = Store(s.store_url).create()
    lock = acquire(s.data_dir, store, "kite@live:pro")  # a run holds the account: the gates passed, the lock refuses
    try:
        pro.live_confirm.value = "kite"
        pro.start_button.click()
        assert pro._process is None and "already has a live run" in pro.notice.text
        assert pro.live_confirm.value == ""  # the confirmation is for one click only
    finally:
        lock.release()
    pro.broker.value = "paper"
    assert pro.live_box.layout.display == "none"


def test_broker_choices_default_to_paper_and_say_what_each_trades(tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    t = trader(s, monkeypatch=monkeypatch)
    opts = dict((v, k) for k, v in broker_options(s))
    assert next(iter(opts)) == "paper" and "TESTNET" in opts["ccxt:binance"] and "LIVE — REAL MONEY" in opts["kite"]
    app = logged_in(s, t.user.username)
    assert app.start_page.broker.value == "paper" and "PAPER TRADING" in app.header.value
    app.start_page.broker.value = "ccxt:binance"
    assert "TESTNET" in app.header.value
    live = load_settings(tmp_path / "h2", broker=BrokerSettings(testnet=False, default="ccxt:kraken"))
    trader(live)
    assert "needs the trade_live permission" in dict((v, k) for k, v in broker_options(live))["ccxt:binance"]
    allowed = trader(live, "rich", permissions=("trade_paper", "trade_live")).user
    opts = dict((v, k) for k, v in broker_options(live, allowed))
    assert "ccxt:kraken" in opts and "LIVE — REAL MONEY" in opts["ccxt:binance"] and "needs" not in opts["ccxt:binance"]
    assert logged_in(live, "rich").start_page.broker.value == "ccxt:kraken"


def test_stop_buttons_write_commands_a_dead_run_is_named_dead_and_a_locked_account_refuses(settings):
    import subprocess
    import sys

    store = Store(settings.store_url).create()
    app = logged_in(settings)
    start = app.start_page
    run_id = store.start_run(broker="paper", environment="paper", account="paper", pid=os.getpid(), user_id=app.user.id)
    start.stop_button.click()
    assert store.pending_command(run_id) == "stop"
    start.emergency_button.click()
    assert store.pending_command(run_id) == "emergency_stop" and "EMERGENCY STOP" in start.notice.text
    store.finish_run(run_id, "STOPPED", "test")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = store.start_run(broker="paper", environment="paper", account="paper", pid=gone.pid, user_id=app.user.id)
    start.emergency_button.click()
    assert f"run {dead} on account 'paper' is DEAD" in start.notice.text and store.pending_command(dead) is None
    lock = acquire(settings.data_dir, store, "paper:trader")  # the trader's own paper account
    lock.set_run(dead)
    try:
        start.start_button.click()
        assert "already has a live run" in start.notice.text and f"live stop --run {dead}" in start.notice.text
        assert start._process is None
    finally:
        lock.release()
    start.interval.value = 0
    assert start.interval.min == MIN_INTERVAL_S and start.interval.value == MIN_INTERVAL_S  # the floor holds
