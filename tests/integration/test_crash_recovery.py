"""Crash safety with a real process: a live run is SIGKILLed in the middle of a cycle (right after an
order was written NEW, or right after the venue filled it but before the store heard), then started
again. The restarted process resumes the same run, re-runs the cut cycle under the same client
order ids, and leaves a consistent store: nothing sent twice, every fill recorded once, positions
equal to the fills, no order left open by mistake."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
EXIT_TYPES = ("stop_loss", "take_profit")


def _launch(home: Path, cycles: int, hook: str | None = None, token: str | None = None) -> subprocess.Popen:
    """The live process; with ``token`` as its owner's session, without one as an unattended restart."""
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_TOKEN"} | {"WORKBENCH_HOME": str(home)}
    if token:
        env["WORKBENCH_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "tests.kit.crash_run", str(home), str(cycles), *([hook] if hook else [])],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at(home: Path, point: str, nth: int, tmp_path: Path) -> None:
    from tests.kit.users import trader
    from workbench.config import load_settings

    marker = tmp_path / f"{point}.marker"
    owner = trader(load_settings(home))  # the run is started by a logged-in user
    proc = _launch(home, 5, hook=f"{point}@{nth}:{marker}", token=owner.token)
    deadline = time.monotonic() + 90
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before reaching {point}: {proc.stdout.read()}\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run never reached {point}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()


def _finish(home: Path, cycles: int) -> None:
    """The restart carries no session: the crashed run resumes under its stored owner (unattended)."""
    proc = _launch(home, cycles)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"restart failed:\n{out}\n{err}"


def _tables(home: Path) -> dict[str, pd.DataFrame]:
    con = sqlite3.connect(home / "data" / "workbench.db")
    try:
        q = lambda sql: pd.read_sql_query(sql, con)
        return {
            "runs": q("SELECT * FROM runs"),
            "orders": q("SELECT * FROM orders"),
            "fills": q("SELECT * FROM fills"),
            "venue_orders": q("SELECT * FROM paper_orders"),
            "venue_fills": q("SELECT * FROM paper_fills"),
            "venue_held": q("SELECT asset, total FROM paper_balances WHERE kind = 'holding'"),
            "positions": q("SELECT * FROM positions"),
            "cycles": q("SELECT * FROM cycles"),
            "signals": q("SELECT * FROM signals"),
            "cash": q("SELECT total FROM paper_balances WHERE kind = 'cash'"),
            "events": q("SELECT * FROM events"),
        }
    finally:
        con.close()


def _assert_consistent(t: dict[str, pd.DataFrame], cycles: int) -> None:
    runs = t["runs"]
    assert len(runs) == 1 and runs["status"].iloc[0] == "STOPPED", runs.to_dict("records")  # resumed, not replaced
    assert runs["cycle"].iloc[0] == cycles and sorted(t["cycles"]["cycle"]) == list(range(1, cycles + 1))
    assert t["signals"].groupby("cycle").size().nunique() == 1  # the cut cycle's signals are not doubled
    orders, venue = t["orders"], t["venue_orders"]
    # Nothing sent twice: one intent per (cycle, symbol, side) for entries, one venue order per id.
    entries = orders[~orders["type"].isin(EXIT_TYPES)]
    assert not entries.duplicated(["cycle", "symbol", "side"]).any()
    assert not venue["client_order_id"].duplicated().any()
    assert set(venue["client_order_id"]) <= set(orders["client_order_id"])
    # Every venue fill recorded exactly once, and order rows agree with their fills.
    assert sorted(t["fills"]["fill_id"]) == sorted(t["venue_fills"]["fill_id"])
    per_order = t["fills"].groupby("client_order_id")["quantity"].sum()
    filled = orders.set_index("client_order_id")["filled_quantity"]
    assert (per_order - filled.reindex(per_order.index)).abs().max() < 1e-9
    # The store's status of each order is the venue's.
    both = orders.merge(venue, on="client_order_id", suffixes=("", "_venue"))
    assert (both["status"] == both["status_venue"]).all(), both[both["status"] != both["status_venue"]][
        ["client_order_id", "status", "status_venue"]
    ]
    assert not (orders["status"] == "NEW").any()
    # Positions: the store's book = the venue's holdings = the signed sum of fills.
    f = t["fills"]
    signed = (f["quantity"].where(f["side"] == "buy", -f["quantity"])).groupby(f["symbol"]).sum()
    held = t["venue_held"].set_index("asset")["total"]
    book = t["positions"].set_index("symbol")["quantity"]
    for sym in set(signed.index) | set(held.index):
        assert (
            signed.get(sym, 0.0)
            == pytest.approx(held.get(sym, 0.0), abs=1e-9)
            == pytest.approx(book.get(sym, 0.0), abs=1e-9)
        )
    assert (t["cash"]["total"] >= 0).all()


@pytest.mark.parametrize("point", ["after_new", "after_place"])
def test_sigkill_mid_cycle_then_restart_is_consistent(point, tmp_path):
    home = tmp_path / "home"
    _kill_at(home, point, nth=3, tmp_path=tmp_path)  # the third order of the first cycle
    cut = _tables(home)
    assert cut["runs"]["status"].iloc[0] == "RUNNING" and cut["cycles"].empty
    (pending,) = cut["orders"][cut["orders"]["status"] == "NEW"]["client_order_id"]
    at_venue = set(cut["venue_orders"]["client_order_id"])
    assert (pending in at_venue) == (point == "after_place")  # the kill landed where we meant it to
    done_before = set(cut["orders"]["client_order_id"]) - {pending}
    assert len(done_before) == 2

    _finish(home, cycles=3)
    t = _tables(home)
    _assert_consistent(t, cycles=3)
    assert t["runs"]["user_id"].iloc[0] == 1  # still its owner's run
    assert t["events"]["message"].str.contains("resumed under its owner trader").any()
    orders = t["orders"].set_index("client_order_id")
    assert orders.loc[pending, "status"] == "FILLED" and orders.loc[pending, "cycle"] == 1
    assert done_before <= set(orders.index)
    kinds = set(t["events"]["kind"])
    assert "recover" in kinds and ("resend" in kinds) == (point == "after_new")
