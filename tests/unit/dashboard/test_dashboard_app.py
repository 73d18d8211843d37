"""The dashboard app over a real store: tables fill from a live run, buttons write commands."""

from __future__ import annotations

import os

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
    run_id = run_live(settings, engine=MomentumEngine(gain=3.0), feed=feed, interval_s=0.01, cycles=4)
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
    run_id = store.start_run(broker="paper", environment="paper", pid=None)
    app = Dashboard(settings, token=os.environ[TOKEN_ENV])
    app.stop()
    assert store.pending_command(run_id) == "stop"
    app.emergency_stop()
    assert store.pending_command(run_id) == "emergency_stop"
    assert "EMERGENCY STOP" in app.views.message.value


def test_html_tables_escape_text():
    import pandas as pd

    html = frame_to_html(pd.DataFrame({"message": ["<script>alert(1)</script>"], "x": [1.5]}))
    assert "<script>" not in html and "&lt;script&gt;" in html
