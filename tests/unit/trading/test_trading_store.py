"""The operational store on a real SQLite file: schema, WAL, round trips, commands."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from workbench.signals import Signal
from workbench.trading.store import Store, iso
from workbench.venues.base import Fill


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops' / 'wb.db'}").create()


def test_create_is_idempotent_and_sqlite_runs_in_wal_with_foreign_keys(store, tmp_path):
    store.create()
    store.create()
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("busy_timeout") == 10_000
    # Another process (plain sqlite3) sees every table.
    con = sqlite3.connect(tmp_path / "ops" / "wb.db")
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {
        "runs",
        "checks",
        "cycles",
        "signals",
        "orders",
        "order_events",
        "fills",
        "positions",
        "equity",
        "events",
        "commands",
        "paper_balances",
        "paper_orders",
        "paper_fills",
    } <= names


def test_foreign_keys_are_enforced(store):
    with pytest.raises(IntegrityError):
        store.add_check(run_id=999, seq=1, name="x", ok=True, message="no such run")


def test_iso_times_are_one_sortable_utc_form():
    assert iso(pd.Timestamp("2024-01-02 03:04:05", tz="Asia/Kolkata")) == "2024-01-01T21:34:05.000000+00:00"
    assert iso(pd.Timestamp("2024-01-02")) == "2024-01-02T00:00:00.000000+00:00"
    assert iso(None) is None


def test_run_checks_cycles_signals_equity_round_trip(store):
    run_id = store.start_run("paper", "paper", "paper", "m/1 (champion)", 30.0, 4242)
    assert store.latest_run()["id"] == run_id and store.run(run_id)["status"] == "RUNNING"
    store.add_check(run_id, 1, "authentication", True, "paper")
    store.add_check(run_id, 2, "models", False, "no model")
    checks = store.checks(run_id)
    assert list(checks["name"]) == ["authentication", "models"] and list(checks["ok"]) == [True, False]
    assert str(checks["ts"].dt.tz) == "UTC"
    bar = pd.Timestamp("2024-03-01", tz="UTC")
    sigs = [
        Signal("AAA", "BUY", 0.9, 0.8, 101.0, 95.0, 110.0, ts=bar, price=100.0),
        Signal("BBB", "HOLD", 0.2, 0.55, None, None, None, ts=bar, price=50.0),
    ]
    store.add_signals(run_id, 1, bar, sigs)
    store.add_signals(run_id, 2, bar + pd.Timedelta(days=1), sigs[:1])
    last = store.signals(run_id, last_cycles=1)
    assert list(last["cycle"]) == [2] and last["stop_loss"].iloc[0] == 95.0
    both = store.signals(run_id, last_cycles=2)
    assert len(both) == 3 and both.loc[both["symbol"] == "BBB", "target_price"].isna().all()
    store.add_equity(run_id, "paper", bar, 1000.0, 250.0, 1250.0, 1200.0)
    curve = store.equity_curve(run_id)
    assert curve[["cash", "positions_value", "equity", "day_start_equity"]].iloc[0].tolist() == [
        1000.0,
        250.0,
        1250.0,
        1200.0,
    ]
    assert curve["bar_ts"].iloc[0] == bar
    assert store.last_equity_before("paper", bar + pd.Timedelta(hours=1)) == 1250.0
    assert store.last_equity_before("paper", bar) is None
    store.heartbeat(run_id, cycle=2, cursor=7)
    store.finish_run(run_id, "STOPPED", "done")
    r = store.run(run_id)
    assert (r["status"], r["cycle"], r["cursor"], r["message"]) == ("STOPPED", 2, 7, "done") and r["ended_at"]
    with pytest.raises(ValueError, match="run status"):
        store.update_run(run_id, status="PAUSED")


def test_orders_events_fills_positions(store):
    run_id = store.start_run("paper", "paper", "paper")
    store.insert_order(
        {
            "client_order_id": "wb-1",
            "run_id": run_id,
            "cycle": 1,
            "account": "paper",
            "symbol": "AAA",
            "side": "buy",
            "type": "market",
            "quantity": 3.0,
            "status": "NEW",
            "reason": "test",
        }
    )
    store.update_order("wb-1", status="SUBMITTED", event_detail="sent")
    store.update_order("wb-1", status="FILLED", filled_quantity=3.0, average_price=10.5, fee=0.03)
    assert [o["client_order_id"] for o in store.open_orders("paper")] == []
    ev = store.order_events("wb-1")
    assert list(ev["status"]) == ["NEW", "SUBMITTED", "FILLED"]
    o = store.orders(run_id)
    assert o.iloc[0]["status"] == "FILLED" and o.iloc[0]["average_price"] == 10.5
    fill = Fill("f1", "wb-1", "AAA", "buy", 3.0, 10.5, 0.03, "USD", pd.Timestamp("2024-01-01", tz="UTC"))
    assert store.add_fill(fill, "paper") is True
    assert store.add_fill(fill, "paper") is False  # recorded once
    assert len(store.fills("paper")) == 1
    store.upsert_position("paper", "AAA", quantity=3.0, average_price=10.51, stop_loss=9.0)
    store.upsert_position("paper", "AAA", take_profit=12.0)
    pos = store.positions("paper")
    assert pos.iloc[0][["quantity", "average_price", "stop_loss", "take_profit"]].tolist() == [3.0, 10.51, 9.0, 12.0]
    store.upsert_position("paper", "AAA", quantity=0.0)
    assert store.positions("paper").empty and len(store.positions("paper", include_closed=True)) == 1


def test_commands_are_consumed_once_and_emergency_wins(store):
    r1 = store.start_run("paper", "paper")
    assert store.pending_command(r1) is None
    store.send_command("stop", r1)
    store.send_command("emergency_stop", r1)
    assert store.pending_command(r1) == "emergency_stop"
    assert store.pending_command(r1) is None
    with pytest.raises(ValueError):
        store.send_command("pause", r1)
    # A run-less command sent before a run started does not stop it.
    store.send_command("stop")
    r2 = store.start_run("paper", "paper")
    assert store.pending_command(r2) is None
    store.send_command("stop")
    assert store.pending_command(r2) == "stop"


def test_events_log_newest_first(store):
    run_id = store.start_run("paper", "paper")
    for i in range(3):
        store.log_event("risk_rejection", f"m{i}", "INFO", run_id)
    store.log_event("other", "x")
    ev = store.events(run_id)
    assert list(ev["message"]) == ["m2", "m1", "m0"]
    assert len(store.events()) == 4 and len(store.events(kind="other")) == 1


def test_day_start_is_written_once(store):
    assert store.set_day_start("paper", "2024-01-01", 100.0) == 100.0
    assert store.set_day_start("paper", "2024-01-01", 90.0) == 100.0
    assert store.day_start("paper", "2024-01-01") == 100.0 and store.day_start("paper", "2024-01-02") is None


def test_order_counts_by_status(store):
    run_id = store.start_run("paper", "paper")
    for i, st in enumerate(["FILLED", "FILLED", "REJECTED"]):
        store.insert_order(
            {
                "client_order_id": f"o{i}",
                "run_id": run_id,
                "account": "paper",
                "symbol": "A",
                "side": "buy",
                "type": "market",
                "quantity": 1.0,
                "status": st,
            }
        )
    assert store.order_counts(run_id) == {"FILLED": 2, "REJECTED": 1} and store.order_counts(run_id + 1) == {}


def test_open_orders_reads_the_status_index_not_every_order_ever_placed(store):
    from workbench.trading.orders import STATUSES
    from workbench.trading.store import _OPEN_STATUSES
    from workbench.venues.base import FINAL_STATUSES

    assert set(_OPEN_STATUSES) == set(STATUSES) - FINAL_STATUSES
    store.insert_orders([
        {"client_order_id": f"c{i}", "account": "paper", "symbol": "AAA", "side": "buy", "type": "market",
         "quantity": 1.0, "status": status}
        for i, status in enumerate(STATUSES)
    ])  # fmt: skip
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        assert {r["status"] for r in store.open_orders("paper")} == set(_OPEN_STATUSES)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    ((statement, parameters),) = seen
    with store.engine.connect() as c:
        plan = " ".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "USING INDEX" in plan and "SCAN orders" not in plan, plan
