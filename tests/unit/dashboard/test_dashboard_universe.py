"""The universe is a real choice on the Start page: the demo universe by default with its size, the
model's own, or symbols typed (a typo refused on the page, naming it, before any process starts); the
live process gets the choice, the run records it and the Runs view shows its size."""

from __future__ import annotations

from tests.kit.models import synthetic_panel
from tests.unit.dashboard.pages import logged_in, open_tab
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.trading.store import Store


def test_the_demo_universe_is_the_default_with_its_size(tmp_path):
    from workbench.data.demo import demo_universe_in_lake, ensure_demo_data

    root = tmp_path / "home"
    root.mkdir()
    (root / "workbench.toml").write_text('[demo]\nsource = "synthetic"\nbars = 120\n')
    settings = load_settings(root)
    settings.ensure_dirs()
    ensure_demo_data(settings)
    demo = demo_universe_in_lake(settings)
    assert demo is not None
    from tests.kit.users import trader

    trader(settings)
    start = logged_in(settings).start_page
    assert start.universe_choice.value == "demo" and start.universe_choice.options[0][1] == "demo"
    n = len(demo.symbols)
    assert f"Trades <b>{n} instruments</b> on {demo.exchange}" in start.universe_size.value
    assert start.universe_text.layout.display == "none"
    assert start.chosen_universe()[0] == "demo"
    start.universe_choice.value = ""
    assert start.chosen_universe() == (None, None) and "model's universe" in start.universe_size.value


def test_typed_symbols_are_checked_on_the_page_and_the_run_records_the_choice(settings, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    panel = synthetic_panel(5, 60)
    Lake(settings.lake_dir).write(panel.to_long(), "TEST", "1d", "synthetic")
    app = logged_in(settings)
    start = app.start_page
    assert start.universe_choice.value == ""  # no demo universe in this lake: the model's own
    start.universe_choice.value = "custom"
    assert start.universe_text.layout.display is None
    start.universe_text.value = "S000, S001, NOPE"
    assert "unknown symbol on TEST: NOPE (1 of 3)" in start.universe_size.value
    start.start_button.click()
    assert start._process is None and "unknown symbol on TEST: NOPE" in start.notice.text  # nothing started
    start.universe_text.value = "S000,S001,S002"
    assert "Trades <b>3 instruments</b> on TEST" in start.universe_size.value
    start.interval.value = 3600
    start.start_button.click()
    proc = start._process
    assert proc is not None, start.notice.text
    try:
        # What was started (not /proc/PID/cmdline: the run may already have ended, and a zombie's is empty);
        # the run row below proves the process itself received it.
        argv = list(proc.args)
        assert argv[argv.index("--universe") + 1] == "S000,S001,S002"
        proc.wait(timeout=180)  # the backup model finds no demo data: Phase 1 stops the run
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = Store(settings.store_url).latest_run()
    assert run is not None and (run["universe"], run["universe_size"]) == ("S000,S001,S002", 3)
    assert run["universe_symbols"] == "S000,S001,S002"
    runs = open_tab(app, "Runs")
    runs.refresh()
    assert "universe S000,S001,S002, <b>3 instruments</b>" in runs._rows[int(run["id"])].summary.value
