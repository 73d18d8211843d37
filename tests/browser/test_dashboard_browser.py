"""The dashboard in a real browser (Chromium via Playwright) against `workbench dashboard` on loopback:
the scenarios a user goes through, with screenshots at 1280 and 800 px, and no request leaving the
machine. Slow (each page load starts a kernel): the scenarios are grouped to load few pages."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

from tests.browser.conftest import Served, login, shot, tab
from tests.kit.users import PASSWORD
from workbench.signals import Signal
from workbench.trading.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

RENDER_5000_S = 30.0  # login click → 5,000-row signal table on the page (shared 2-core CI machine)
SORT_5000_S = 10.0  # a new sort of the 5,000 rows → shown


def _wait_store(cond, timeout: float = 120.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_start_paper_phase1_first_cycle_stop_and_emergency_stop(page, served: Served):
    store = Store(served.settings.store_url)
    login(page, served.url)
    page.get_by_label("Every (s)").fill("5")
    start = page.get_by_role("button", name="Start AI Trading")
    start.dblclick()  # a double-click must start one run, not two
    page.get_by_role("cell", name="PASS", exact=True).first.wait_for(timeout=120_000)  # Phase 1, step by step
    _wait_store(lambda: (store.latest_run() or {}).get("cycle", 0) >= 1, what="the first cycle")
    assert len(store.running_runs()) == 1 and store.latest_run()["id"] == 1
    tab(page, "Live")
    page.locator(".wb-signals-caption", has_text="6 instruments").wait_for()
    page.locator(".wb-kpis", has_text="position(s)").wait_for()
    shot(page, served, "first-cycle", 1280)
    # The first orders (the backup model may HOLD a cycle or two first): the page shows them all.
    _wait_store(lambda: len(store.orders(run_id=1, limit=10_000)) > 0, 120, "a first order")
    page.locator(".wb-caption-orders", has_text=" of 0 ").wait_for(state="detached", timeout=30_000)
    # Not asserted here: that the plotly charts' data reaches the browser (it did on a quiet machine,
    # not within 180 s in two CI runs; the issue's note says so). The views' data is tested in the kernel.
    shot(page, served, "orders", 1280)
    shot(page, served, "orders", 800)
    shot(page, served, "live-view", 1280, element=".wb-live")
    shot(page, served, "live-view", 800, element=".wb-live")
    # Stop (the page's Stop: the user's running run) → STOPPED after the cycle under way.
    tab(page, "Start")
    page.get_by_role("button", name=re.compile(r"^\W*Stop$")).first.click()
    _wait_store(lambda: store.run(1)["status"] == "STOPPED", 60, "run 1 STOPPED")
    # Start again, then Emergency stop from the run's own row, after confirming.
    start.click()
    _wait_store(lambda: len(store.running_runs()) == 1 and store.running_runs()[0]["cycle"] >= 1, what="run 2 cycling")
    run2 = store.running_runs()[0]["id"]
    tab(page, "Runs")
    row = page.locator(f".wb-run-{run2}")
    row.get_by_role("button", name="Emergency stop").click()
    page.get_by_text(f"EMERGENCY STOP (open orders cancelled at once) run {run2}?").wait_for()
    assert store.run(run2)["status"] == "RUNNING"  # nothing sent before the confirmation
    page.get_by_role("button", name="Confirm").click()
    _wait_store(lambda: store.run(run2)["status"] == "EMERGENCY_STOPPED", 60, "emergency stopped")
    page.locator(f".wb-run-{run2}", has_text="EMERGENCY_STOPPED").wait_for()
    shot(page, served, "after-emergency", 1280)
    assert served.outside == [], served.outside


def test_live_broker_without_permission_is_refused(page, served: Served):
    login(page, served.url, "bob")
    broker = page.locator(".wb-broker select")
    label = next(o for o in broker.locator("option").all_inner_texts() if o.startswith("kite"))
    assert "needs the trade_live permission" in label.replace("\xa0", " ")  # said before anyone presses Start
    broker.select_option(label=label)
    page.get_by_role("button", name="Start AI Trading").click()
    shot(page, served, "live-clicked", 800)
    # Refused on the page, before any process starts: the permission is named and how to get it.
    page.get_by_text("bob lacks the trade_live permission").first.wait_for()
    store = Store(served.settings.store_url)
    time.sleep(2)  # a launched process would have written its run row by now
    assert store.latest_run() is None and store.running_runs() == [] and store.orders(limit=10).empty
    shot(page, served, "live-refused", 800)


def _five_thousand(settings) -> tuple[int, str]:
    """A finished run with 5,000 instruments' signals (and an equity curve), as a big universe writes."""
    store = Store(settings.store_url).create()
    alice = 1
    run_id = store.start_run("paper", "paper", "paper:alice", "big-universe", 30.0, pid=None, user_id=alice)
    rng = np.random.default_rng(0)
    strength = rng.uniform(0, 1, 5000)
    sides = np.where(strength > 0.7, "BUY", np.where(strength < 0.3, "SELL", "HOLD"))
    sigs = [
        Signal(f"I{i:04d}", str(sides[i]), float(strength[i]), 0.5, None, None, None, price=100.0 + i)
        for i in range(5000)
    ]
    store.add_signals(run_id, 1, pd.Timestamp("2030-01-01", tz="UTC"), sigs)
    store.finish_run(run_id, "STOPPED", "seeded")
    return run_id, f"I{int(np.argmax(strength)):04d}"


def test_5000_instruments_render_and_sort_reload_keeps_state_and_no_kernel_leaks(page, served: Served):
    _run_id, strongest = _five_thousand(served.settings)
    page.goto(served.url)
    page.locator(".wb-username input").fill("alice")
    page.locator(".wb-password input").fill(PASSWORD)
    t0 = time.monotonic()
    page.get_by_role("button", name="Log in").click()
    tab(page, "Live")
    page.locator(".wb-signals-caption", has_text="5,000 instruments").wait_for()
    rendered = time.monotonic() - t0
    first = page.locator(".wb-signals-caption .wb-first")
    assert first.inner_text() == strongest  # sorted by strength ↓ by default
    t1 = time.monotonic()
    page.get_by_label("Sort").select_option("symbol A→Z")
    page.locator(".wb-signals-caption .wb-first", has_text="I0000").wait_for()
    sorted_in = time.monotonic() - t1
    print(
        f"\n5,000 signals: shown {rendered:.2f} s after the login click (bound {RENDER_5000_S} s); "
        f"re-sorted in {sorted_in:.2f} s (bound {SORT_5000_S} s)"
    )
    shot(page, served, "5000-signals", 1280, element=".wb-live")
    shot(page, served, "5000-signals", 800, element=".wb-live")
    assert rendered < RENDER_5000_S and sorted_in < SORT_5000_S
    # Reloads: each new page gets a kernel and the closed page's kernel is shut down (no leak); the
    # run is still there, and so is the login (the tab's sessionStorage hands the session to the new kernel).
    _wait_store(lambda: len(served.kernels()) == 1, 30, "one kernel")
    for _ in range(3):
        page.reload()
        page.get_by_text("logged in as alice").first.wait_for(timeout=120_000)  # the tab kept the session
        tab(page, "Live")
        page.locator(".wb-signals-caption", has_text="5,000 instruments").wait_for()
    _wait_store(lambda: len(served.kernels()) == 1, 60, f"one kernel after 3 reloads: {served.kernels()}")
    assert served.outside == [], served.outside
    # Closing the page: its shutdown beacon (with the _xsrf cookie now set) ends the kernel at once.
    ctx = page.context
    page.close(run_before_unload=True)
    _wait_store(lambda: served.kernels() == [], 30, f"the closed page's kernel shut down: {served.kernels()}")
    # A page gone without its beacon (a crashed tab, a lost connection): its kernel is culled.
    other = ctx.new_page()
    other.goto(served.url)
    other.locator(".wb-username input").wait_for()
    assert len(served.kernels()) == 1
    other.goto("about:blank")  # navigating away sends no beacon here: only the culling can end it
    _wait_store(lambda: served.kernels() == [], 180, f"the abandoned page's kernel culled: {served.kernels()}")
