"""Faults isolated per symbol: one symbol whose exit orders keep failing is logged each cycle and tried
again, and never keeps the later symbols' positions without their resting exits (it used to stop
exit placement for every symbol after it)."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.trading.orders import OrderIntent, OrderManager
from workbench.trading.store import Store
from workbench.venues.base import EXIT_TYPES, Market, OrderRequest, Quote, TemporaryBrokerError
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
SYMBOLS = ("S000", "S001", "S002")


class ExitsFailFor:
    """The paper venue, except that ``symbol``'s exit orders fail with a 503 while ``failing``."""

    def __init__(self, inner: PaperBroker, symbol: str) -> None:
        self.inner, self.symbol, self.failing, self.refused = inner, symbol, True, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def place(self, order: OrderRequest):
        if self.failing and order.symbol == self.symbol and order.type in EXIT_TYPES:
            self.refused += 1
            raise TemporaryBrokerError("503 Service Unavailable (after the adapter's retries)")
        return self.inner.place(order)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


def test_one_symbols_failing_exits_never_block_the_others_and_are_retried(store):
    markets = {s: Market(s, s, "USD", lot_size=1.0, tick_size=0.01) for s in SYMBOLS}
    paper = PaperBroker(store, starting_cash=100_000.0, fee_rate=0.0, slippage_bps=0.0, markets=markets)
    paper.on_bar({s: Quote(s, 100.0, T0) for s in SYMBOLS})
    venue = ExitsFailFor(paper, "S001")
    om = OrderManager(store, venue, "paper", run_id=None, unknown_grace_s=3600.0)
    for s in SYMBOLS:
        req = OrderRequest(f"e-{s}", s, "buy", 10)
        om.submit(OrderIntent(req, None, 1, "entry", stop_loss=90.0, take_profit=120.0))
    assert paper.positions() == {s: 10 for s in SYMBOLS}

    assert om.sync_exits(cycle=1) == 4  # S000's and S002's pairs; S001's failed alone
    resting = {(o.symbol, o.type) for o in paper.open_orders()}
    assert resting == {(s, t) for s in ("S000", "S002") for t in ("stop_loss", "take_profit")}
    errors = store.events(kind="exit_error")["message"]
    assert len(errors) == 1 and "S001" in errors.iloc[0] and "503" in errors.iloc[0]
    assert "tried again next cycle" in errors.iloc[0]

    assert venue.refused == 2  # both legs were tried (and recorded NEW before each try)
    om.refresh_open()  # the next cycle: S001's recorded legs are sent again under their ids, fail again, logged
    assert venue.refused == 4 and len(store.events(kind="refresh_failed")) == 2
    venue.failing = False
    om.refresh_open()  # the venue takes it now
    om.sync_exits(cycle=3)
    resting = [(o.symbol, o.type) for o in paper.open_orders()]
    assert sorted(resting) == sorted((s, t) for s in SYMBOLS for t in ("stop_loss", "take_profit"))  # one pair each
    ids = [o.client_order_id for o in paper.open_orders()]
    assert len(ids) == len(set(ids))


class OpenOrdersDown:
    """The paper venue says it is up, but listing open orders fails (after the adapter's retries)."""

    def __init__(self, inner: PaperBroker) -> None:
        self.inner, self.down = inner, True

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def open_orders(self):
        if self.down:
            raise TemporaryBrokerError("-1001 Internal error; unable to process your request")
        return self.inner.open_orders()


def test_a_venue_read_failing_pauses_entries_for_the_cycle_and_says_so(settings, store):
    from tests.kit.models import MomentumEngine, synthetic_panel
    from tests.unit.trading.test_trading_loop import make_ctx, paper
    from workbench.trading.feeds import ReplayFeed
    from workbench.trading.loop import run_cycle

    feed = ReplayFeed.from_panel(synthetic_panel(6, 60), warmup_bars=40, replay_bars=4)
    venue = OpenOrdersDown(paper(store, settings))
    venue.down = False
    ctx = make_ctx(settings, store, venue, feed, MomentumEngine(lookback=10, gain=1.0))
    run_cycle(ctx)  # entries, and their exit pairs resting at the venue
    assert store.open_orders("paper") and not ctx.entries_paused
    venue.down = True
    r2 = run_cycle(ctx)  # the venue says it is up, but its open orders cannot be read
    assert "refreshing open orders" in (r2.note or "") and ctx.entries_paused
    orders = store.orders(ctx.run_id, limit=1000)
    assert not ((orders["cycle"] == 2) & (orders["side"] == "buy")).any()  # no entry while its state is unknown
    paused = store.events(ctx.run_id, kind="entry_paused")
    assert len(paused) > 0 and paused["message"].str.contains("cycle 2: BUY .* not sent: every venue is down").all()
    venue.down = False
    r3 = run_cycle(ctx)
    assert r3.note is None and not ctx.entries_paused
    assert len(store.events(ctx.run_id, kind="entries_paused")) == 1
    assert len(store.events(ctx.run_id, kind="entries_resumed")) == 1
