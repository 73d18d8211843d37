"""The dashboard's position actions: 'close:<symbol>' and 'flatten' are done by the running loop between
cycles (its resting exits withdrawn first), the run keeps going, and nothing is sent to a run that is not
running. The run is run_live in a thread on the real store and paper broker."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from tests.kit.models import MomentumEngine
from tests.unit.trading.test_trading_runner import long_feed, start_thread, wait_for_cycle
from workbench.errors import ConfigError
from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.runner import request_stop, send_action
from workbench.trading.store import Store
from workbench.venues.base import Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

INTERVAL = 30.0  # long: the actions must be done in the wait, well before the next cycle


def _wait_for_actions(store: Store, run_id: int, n: int, timeout: float = 10.0) -> list[str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = store.events(run_id, kind="action")
        if len(ev) >= n:
            return list(ev["message"][::-1])
        time.sleep(0.02)
    raise AssertionError(f"{n} action(s) not done in {timeout}s: {store.events(run_id)}")


ACC = "paper:trader"  # the logged-in trader's own paper account


def test_close_one_position_then_flatten_while_the_run_goes_on(settings):
    store = Store(settings.store_url).create()
    t, out = start_thread(
        settings, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=INTERVAL, min_interval_s=0
    )
    try:
        run = wait_for_cycle(store, 1)
        held = PaperBroker(store, ACC).positions()
        assert len(held) >= 2, held  # the momentum engine bought several
        sym = sorted(held)[0]
        assert any(o["symbol"] == sym for o in store.open_orders(ACC))  # its stop/take-profit rest
        # A resting buy on the same symbol would buy it back: closing withdraws it too.
        avg = float(store.get_position(ACC, sym)["average_price"])
        pb = PaperBroker(store, ACC, markets={sym: Market(sym, sym, "USD")})
        pb.on_bar({sym: Quote(sym, avg, pd.Timestamp.now(tz="UTC"))})  # a price to judge the order by
        rest = OrderRequest("resting-buy", sym, "buy", 1, type="limit", limit_price=round(avg * 0.5, 2))
        ans = OrderManager(store, pb, ACC).submit(OrderIntent(rest, None, None, "old"))
        assert ans.status == "SUBMITTED", store.order_events("resting-buy")

        res = send_action(settings, f"close:{sym}", run["id"])
        assert res.sent, res.message
        assert _wait_for_actions(store, run["id"], 1) == [f"close {sym}: sold at market"]
        after = PaperBroker(store, ACC).positions()
        assert sym not in after and set(after) == set(held) - {sym}
        assert not any(o["symbol"] == sym for o in store.open_orders(ACC))  # exits withdrawn
        assert store.get_order("resting-buy")["status"] == "CANCELLED"
        sells = store.orders(run_id=run["id"], limit=1000)
        closing = sells[sells["reason"] == f"close {sym} requested from the dashboard"]
        assert list(closing["status"]) == ["FILLED"]

        assert send_action(settings, "flatten", run["id"]).sent
        assert _wait_for_actions(store, run["id"], 2)[1] == f"flatten: {len(held) - 1} position(s) sold at market"
        assert PaperBroker(store, ACC).positions() == {} and store.positions(ACC).empty
        assert store.open_orders(ACC) == []
        assert store.run(run["id"])["status"] == "RUNNING" and store.run(run["id"])["cycle"] == 1  # between cycles
    finally:
        request_stop(settings)
        t.join(timeout=10)
    assert "error" not in out and store.run(run["id"])["status"] == "STOPPED"
    # An ended run gets nothing queued; the message says why.
    res = send_action(settings, "flatten", run["id"])
    assert not res.sent and "not running" in res.message


def test_an_action_never_stops_the_run_and_a_stop_never_eats_an_action(settings):
    store = Store(settings.store_url).create()
    run_id = store.start_run("paper", "paper", "paper", "m", 1.0, pid=1)
    store.send_command("flatten", run_id)
    store.send_command("close:BTC/USDT", run_id)
    assert store.pending_command(run_id) is None  # actions are not stop reasons
    store.send_command("stop", run_id)
    assert store.pending_command(run_id) == "stop"
    assert store.pending_actions(run_id) == ["flatten", "close:BTC/USDT"]
    assert store.pending_actions(run_id) == []  # each done once


def test_malformed_or_too_long_actions_are_refused(settings):
    store = Store(settings.store_url).create()
    for bad in ("close", "flatten:X", "close:", "sell"):
        with pytest.raises(ValueError):
            store.send_command(bad, 1)
    with pytest.raises(ConfigError, match="flatten"):
        store.send_command("close:" + "X" * 200, 1)


def test_long_symbols_can_be_closed_alone(settings):
    """Revision 0006 widened commands.command from 20 characters: an NSE key or a ccxt contract fits."""
    store = Store(settings.store_url).create()
    run_id = store.start_run("paper", "paper", "paper", "m", 1.0, pid=1)
    long = ["close:NSE:BAJAJHLDNG-EQ", "close:1000SHIB/USDT:USDT", "close:NFO:BANKNIFTY26DEC55000CE"]
    for cmd in long:
        assert len(cmd) > 20
        store.send_command(cmd, run_id)
    assert store.pending_actions(run_id) == long
