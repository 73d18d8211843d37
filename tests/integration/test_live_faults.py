"""Faults isolated, in a live run against the local FakeBinance (a real ccxt client, real HTTP): a
rate limit and a venue outage (every request 503) neither end the run nor duplicate an order. The
venue's circuit breaker opens (closed → open, logged), entries stop while it is open (said as an event
and in the cycle rows), probes go out after the cooldown (half-open) and the first good answer closes
it; entries resume, and the book equals the venue at the end."""

from __future__ import annotations

import pytest

from tests.kit.ccxt_rig import (
    FaultsAtCycle,
    assert_each_entry_once_and_book_equals_venue,
    binance_with_pairs,
    usdt_panel,
)
from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from workbench.config import load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live, status
from workbench.trading.store import Store
from workbench.venues.ccxt.broker import CcxtBroker


@pytest.fixture
def venue():
    panel = usdt_panel(95)
    with binance_with_pairs(panel, -9, {"USDT": 50_000.0}) as fake:
        yield fake, panel


def test_an_outage_opens_the_breaker_pauses_entries_and_the_run_recovers_without_duplicates(
    tmp_path, venue, monkeypatch
):
    fake, panel = venue
    s = load_settings(tmp_path / "home", live={"breaker_failures": 2, "breaker_cooldown_s": 0.6})
    s.ensure_dirs()
    trader(s, monkeypatch=monkeypatch)
    broker = CcxtBroker("binance", api_key=fake.api_key, secret=fake.secret, urls=fake.ccxt_config()["urls"],
                        currency="USDT", ccxt_config={"enableRateLimit": False}, backoff_s=0.01)  # fmt: skip
    at = {
        1: [lambda: fake.fail_next(429, method="POST", path="/api/v3/order")],  # rate limited once: retried
        3: [lambda: fake.fail_next(503, times=100_000)],  # the venue goes down: every request 503
        6: [fake.clear_faults],  # and comes back
    }
    feed = FaultsAtCycle(ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=8), fake, at)
    rid = run_live(
        s, broker=broker, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.3, min_interval_s=0,
        cycles=8,
    )  # fmt: skip

    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED" and run["cycle"] == 8, run["message"]
    moves = [m.split(": ")[0] for m in store.events(rid, kind="breaker")["message"].iloc[::-1]]
    name = "ccxt:binance circuit breaker "
    assert moves[0] == name + "closed → open", moves
    # after each cooldown one probe: failed during the outage (open again), the first after it closes it
    assert all(m in (name + "open → half-open", name + "half-open → open") for m in moves[1:-2]), moves
    assert moves[-2:] == [name + "open → half-open", name + "half-open → closed"], moves
    paused = store.events(rid, kind="entries_paused")
    assert len(paused) == 1 and "every venue is down" in paused["message"].iloc[0]
    assert len(store.events(rid, kind="entries_resumed")) == 1
    stages = store.cycle_stages(rid).set_index("cycle")
    assert list(stages.index) == list(range(1, 9))  # every cycle finished, the outage's too
    assert store.events(rid, kind="cycle_failed").empty
    assert stages.loc[3:5, "entries_paused"].all() and not stages.loc[[1, 2, 8], "entries_paused"].any()
    assert stages["venues"].str.contains("ccxt:binance=open").any()
    cycles = store.cycles(rid).set_index("cycle")
    assert "ENTRIES PAUSED" in cycles.loc[3, "message"] and "venue trouble" in cycles.loc[3, "message"]
    # nothing sent twice, nothing lost: each entry once at the venue, the book equals the venue
    orders = store.orders(rid, limit=1000)
    buys = orders[orders["side"] == "buy"]
    assert len(buys) > 0 and set(buys["cycle"]).isdisjoint({3, 4, 5})  # no entry while the venue was down
    sent = buys[buys["status"] != "REJECTED"]["client_order_id"].tolist()
    assert_each_entry_once_and_book_equals_venue(store, rid, fake, sent)
    st = status(s, run_id=rid)
    assert st["last_cycle"]["venues"] == "ccxt:binance=closed" and st["recent"]["cycles"] == 8
