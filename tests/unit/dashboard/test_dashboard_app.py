"""The dashboard app over a real store: tables fill from a live run, buttons write commands."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.kit.models import MomentumEngine, synthetic_panel
from workbench.dashboard.app import Dashboard, frame_to_html
from workbench.security.access import TOKEN_ENV
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store


def test_empty_home_shows_what_to_do(settings):
    app = Dashboard(settings, token=os.environ[TOKEN_ENV])
    assert "Start AI Trading" in app.views.status.value
    assert "Phase 1 has not run yet" in app.views.checks.value
    assert "workbench init --demo" in app.views.header.value
    assert "PAPER TRADING" in app.views.header.value
    assert app.start_button.description == "Start AI Trading"


def test_tables_show_a_finished_run(settings):
    feed = ReplayFeed.from_panel(synthetic_panel(6, 200), warmup_bars=40, replay_bars=20)
    run_id = run_live(settings, engine=MomentumEngine(gain=3.0), feed=feed, interval_s=0.01, min_interval_s=0, cycles=4)
    app = Dashboard(settings, token=os.environ[TOKEN_ENV])
    v = app.views
    assert f"run {run_id}" in v.status.value and "STOPPED" in v.status.value
    assert v.checks.value.count("PASS") >= 5 and "FAIL" not in v.checks.value
    assert "S000" in v.signals.value and "BUY" in v.signals.value
    assert "FILLED" in v.orders.value
    assert "S0" in v.positions.value
    assert "equity" in v.equity.value and "data:image/png;base64," in v.equity.value


def test_stop_buttons_write_commands_for_the_running_loop(settings):
    store = Store(settings.store_url).create()
    run_id = store.start_run(broker="paper", environment="paper", account="paper", pid=os.getpid())  # a live process
    app = Dashboard(settings, token=os.environ[TOKEN_ENV])
    app.stop()
    assert store.pending_command(run_id) == "stop"
    app.emergency_stop()
    assert store.pending_command(run_id) == "emergency_stop"
    assert "EMERGENCY STOP" in app.views.message.value


def test_stop_to_a_dead_run_says_dead_and_start_on_a_locked_account_is_refused(settings):
    from workbench.trading.runlock import acquire

    store = Store(settings.store_url).create()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id = store.start_run(broker="paper", environment="paper", account="paper", pid=gone.pid)
    app = Dashboard(settings, token=os.environ[TOKEN_ENV])
    app.emergency_stop()
    assert f"run {run_id} on account &#x27;paper&#x27; is DEAD" in app.views.message.value
    assert store.pending_command(run_id) is None
    lock = acquire(settings.data_dir, store, "paper:trader")  # the trader's own paper account
    lock.set_run(run_id)
    try:
        app.start()
        assert (
            "already has a live run" in app.views.message.value
            and f"live stop --run {run_id}" in app.views.message.value
        )
        assert getattr(app, "_process", None) is None
    finally:
        lock.release()
    from workbench.trading.runner import MIN_INTERVAL_S

    app.interval.value = 0
    assert app.interval.min == MIN_INTERVAL_S and app.interval.value == MIN_INTERVAL_S  # the widget holds the floor too


def test_html_tables_escape_text():
    import pandas as pd

    html = frame_to_html(pd.DataFrame({"message": ["<script>alert(1)</script>"], "x": [1.5]}))
    assert "<script>" not in html and "&lt;script&gt;" in html
