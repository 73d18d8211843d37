"""The Runs and Live views over a real store written by real live cycles (paper broker, replay feed):
what they show, that a refresh reads only new rows, and that the Runs page's actions reach the run."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import current_user, trader
from workbench.dashboard.live_charts import drawdown
from workbench.dashboard.live_view import LiveView, merge_latest, pnl_summary, position_table
from workbench.dashboard.runs_view import RunsView, heartbeat_text
from workbench.signals import Signal
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store


@pytest.fixture()
def finished_run(settings) -> int:
    feed = ReplayFeed.from_panel(synthetic_panel(6, 200), warmup_bars=40, replay_bars=100)
    return run_live(settings, engine=MomentumEngine(gain=3.0), feed=feed, interval_s=0, min_interval_s=0, cycles=4)


def test_live_view_shows_the_runs_signals_orders_positions_and_pnl(settings, finished_run):
    user = current_user(settings)
    view = LiveView(settings, lambda: user)
    cost = view.refresh()
    store = Store(settings.store_url)
    assert view.run_id == finished_run and cost["wall_s"] > 0
    # Signals: the newest per instrument, the whole universe.
    assert sorted(view.latest["symbol"]) == sorted(store.signals(finished_run, last_cycles=1)["symbol"])
    assert (view.latest["cycle"] == 4).all()
    assert view.signals_caption.value.count("6 instruments") == 1
    # Orders: the full history, not the last 50; fills of this run's orders.
    assert len(view.order_frame) == len(store.orders(run_id=finished_run, limit=100_000)) > 0
    assert set(view.fill_frame["client_order_id"]) <= set(view.order_frame["client_order_id"])
    # Positions: last price from the latest signal, market value and unrealised P&L from it.
    pos = view._pos_shown
    assert pos is not None and len(pos) == len(store.positions("paper:trader")) > 0
    last = view.latest.set_index("symbol")["price"]
    for sym, row in pos.iterrows():
        assert row["last_price"] == pytest.approx(last[sym])
        assert row["market_value"] == pytest.approx(row["quantity"] * last[sym])
        assert row["unrealized_pnl"] == pytest.approx((last[sym] - row["average_price"]) * row["quantity"])
    # Equity curve drawn in place; P&L and units on the page.
    curve = store.equity_curve(finished_run)
    assert list(view.equity_fig.data[0].y) == pytest.approx(list(curve["equity"]))
    assert "P&amp;L today" in view.kpis.value and settings.paper.currency in view.kpis.value
    assert "last cycle 4" in view.timing_note.value and list(view.timing_fig.data[0].x) == [1, 2, 3, 4]
    # Per stage, as the loop recorded them; "other" is the rest, so each stacked bar is the cycle's total.
    stages = store.cycle_stages(finished_run)
    by_name = {t.name: np.asarray(t.y, dtype=float) for t in view.timing_fig.data}
    assert by_name["data"] == pytest.approx(stages["data_s"].to_numpy(dtype=float))
    assert sum(by_name.values()) == pytest.approx(stages["total_s"].to_numpy(dtype=float), abs=1e-5)
    assert "(data " in view.timing_note.value
    assert len(view.event_frame) == len(store.events(run_id=finished_run, limit=100_000))


def test_refresh_reads_only_new_rows_and_sends_tables_only_when_they_change(settings, finished_run):
    user = current_user(settings)
    view = LiveView(settings, lambda: user)
    view.refresh()
    sent = []
    grid_cls = type(view.signals_grid)
    orig = grid_cls.data.fset

    def spy(grid, value):
        sent.append(grid)
        orig(grid, value)

    cursors = dict(view._tail.cursors)
    try:
        grid_cls.data = property(grid_cls.data.fget, spy)
        view.refresh()
        assert view.signals_grid not in sent and view.orders.grid not in sent  # nothing new, nothing sent
        store = Store(settings.store_url)
        sym = view.latest["symbol"].iloc[0]
        store.add_signals(finished_run, 5, pd.Timestamp("2030-01-01", tz="UTC"), [_sig(sym, "SELL", 123.0)])
        view.refresh()
    finally:
        grid_cls.data = property(grid_cls.data.fget, orig)
    assert view.signals_grid in sent
    assert view._tail.cursors["signals"] == cursors["signals"] + 1
    row = view.latest.set_index("symbol").loc[sym]
    assert row["signal"] == "SELL" and row["price"] == 123.0 and len(view.latest) == 6


def _sig(symbol: str, side: str, price: float) -> Signal:
    return Signal(symbol, side, 0.9, 0.8, None, None, None, price=price)


def test_search_side_filter_sort_and_price_chart(settings, finished_run):
    user = current_user(settings)
    view = LiveView(settings, lambda: user)
    view.refresh()
    view.sort.value = "symbol A→Z"
    assert list(view.signals_shown["symbol"]) == sorted(view.latest["symbol"])
    view.search.value = view.latest["symbol"].iloc[0]
    assert set(view.signals_shown["symbol"]) == {view.latest["symbol"].iloc[0]}
    view.search.value = ""
    view.side.value = "BUY"
    assert (view.signals_shown["signal"] == "BUY").all()
    sym = view.latest["symbol"].iloc[0]
    view.symbol_pick.value = sym
    assert len(view.price_fig.data[0].y) == 4  # one price per cycle
    # The fills sit on their cycle's bar (the run replays past bars: the fills' wall-clock times are not on the axis).
    traded = view.fill_frame["symbol"].iloc[0]
    view.symbol_pick.value = traded
    fills_x = [*view.price_fig.data[3].x, *view.price_fig.data[4].x]
    assert fills_x and set(fills_x) <= set(view.price_fig.data[0].x)
    assert view.signals_grid.data.index.name == "symbol"  # the instrument stays in view as the row header
    view.level.value = "WARNING"
    assert (view.log.frame["level"] == "WARNING").all()


def test_runs_view_lists_scoped_runs_and_flags_dead_ones(settings, finished_run, monkeypatch):
    admin = current_user(settings)
    store = Store(settings.store_url)
    dead = store.start_run("paper", "paper", "acct2", "m", 30.0, pid=2**22 + 12345, user_id=admin.id)
    view = RunsView(settings, lambda: admin)
    view.refresh()
    states = dict(zip(view.frame["id"], view.frame["state"], strict=True))
    assert states == {finished_run: "STOPPED", dead: "DEAD"}
    assert "DEAD" in view._rows[dead].summary.value and view._rows[dead].stop.disabled is False
    # A plain trader sees only their own runs.
    other = trader(settings, "bob").user
    mine = store.start_run("paper", "paper", "bob-acct", "m", 30.0, pid=os.getpid(), user_id=other.id)
    bob_view = RunsView(settings, lambda: other)
    bob_view.refresh()
    assert list(bob_view.frame["id"]) == [mine] and "bob" in bob_view._rows[mine].summary.value
    # Stop asks first; confirming sends the command to that run only (this process stands in for it).
    bob_view.ask_stop(mine, emergency=True)
    assert store.pending_command(mine, consume=False) is None and bob_view.confirm_bar.layout.display is None
    bob_view._confirm()
    assert store.pending_command(mine, consume=False) == "emergency_stop"
    bob_view.ask_action(mine, "flatten")
    bob_view._confirm()
    assert store.pending_actions(mine) == ["flatten"]
    # The dead run: stopping it says DEAD instead of pretending.
    view.ask_stop(dead, emergency=False)
    view._confirm()
    assert "DEAD" in view.message.value


def test_pure_helpers():
    assert list(drawdown(np.array([100.0, 110.0, 99.0, 121.0]))) == pytest.approx([0, 0, -0.1, 0])
    a = pd.DataFrame({"symbol": ["A", "B"], "signal": ["BUY", "HOLD"], "price": [1.0, 2.0]})
    b = pd.DataFrame({"symbol": ["B"], "signal": ["SELL"], "price": [3.0]})
    m = merge_latest(a, b).set_index("symbol")
    assert m.loc["B", "signal"] == "SELL" and m.loc["A", "signal"] == "BUY"
    pos = pd.DataFrame({"symbol": ["A", "C"], "quantity": [2.0, 1.0], "average_price": [1.0, 5.0], "realized_pnl": 0.0})
    t = position_table(pos, pd.Series({"A": 1.5}), 10.0).set_index("symbol")
    assert t.loc["A", "unrealized_pnl"] == 1.0 and t.loc["A", "weight"] == 0.3 and np.isnan(t.loc["C", "last_price"])
    curve = pd.DataFrame(
        {"equity": [100.0, 90.0, 99.0], "cash": 1.0, "positions_value": 0.0, "day_start_equity": [100.0, 100.0, 90.0]}
    )
    s = pnl_summary(curve)
    assert s["pnl_today"] == pytest.approx(9.0) and s["pnl_total"] == pytest.approx(-1.0)
    now = pd.Timestamp("2030-01-01 00:10", tz="UTC")
    assert heartbeat_text("2030-01-01T00:09:50+00:00", now) == "10 s ago" and heartbeat_text(None) == "never"
