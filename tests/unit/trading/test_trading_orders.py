"""The order state machine, client order ids, and the order manager against the real paper broker."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from workbench.errors import InvalidTransition
from workbench.trading.orders import STATUSES, OrderIntent, OrderManager, client_order_id, path, transition
from workbench.trading.store import Store
from workbench.venues.base import Market, OrderRequest, Quote, TemporaryBrokerError
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")

LEGAL = {
    ("NEW", "SUBMITTED"),
    ("NEW", "REJECTED"),
    ("NEW", "CANCELLED"),
    ("SUBMITTED", "PARTIALLY_FILLED"),
    ("SUBMITTED", "FILLED"),
    ("SUBMITTED", "CANCELLED"),
    ("SUBMITTED", "REJECTED"),
    ("SUBMITTED", "EXPIRED"),
    ("PARTIALLY_FILLED", "PARTIALLY_FILLED"),
    ("PARTIALLY_FILLED", "FILLED"),
    ("PARTIALLY_FILLED", "CANCELLED"),
    ("PARTIALLY_FILLED", "EXPIRED"),
    ("NEW", "NEW"),
    ("SUBMITTED", "SUBMITTED"),  # re-stating a live status is a no-op
}


@pytest.mark.parametrize("current,new", list(itertools.product(STATUSES, STATUSES)))
def test_every_transition_is_legal_or_raises(current, new):
    if (current, new) in LEGAL:
        assert transition(current, new) == new
    else:
        with pytest.raises(InvalidTransition) as e:
            transition(current, new)
        assert current in str(e.value) and new in str(e.value)


def test_path_goes_through_submitted_and_final_is_final():
    assert path("NEW", "FILLED") == ["SUBMITTED", "FILLED"]
    assert path("NEW", "PARTIALLY_FILLED") == ["SUBMITTED", "PARTIALLY_FILLED"]
    assert path("SUBMITTED", "FILLED") == ["FILLED"]
    assert path("FILLED", "FILLED") == []
    with pytest.raises(InvalidTransition):
        path("FILLED", "CANCELLED")
    with pytest.raises(ValueError):
        transition("NEW", "DONE")


def test_client_order_ids_are_deterministic_short_ascii_and_distinct():
    assert client_order_id(12, 7, "AAPL", "buy") == "wb-12-7-AAPL-b"
    assert client_order_id(12, 7, "AAPL", "buy") == client_order_id(12, 7, "AAPL", "buy")
    ids = {
        client_order_id(r, c, s, side, p)
        for r in (1, 99999)
        for c in (1, 1234567)
        for s in ("BTC/USDT", "BTCUSDT", "M&M", "MM", "VERYLONGSYMBOLNAME-2030-12-31-C-100000")
        for side in ("buy", "sell")
        for p in ("", "x")
    }
    assert len(ids) == 2 * 2 * 5 * 2 * 2
    for cid in ids:
        assert len(cid) <= 36 and cid.isascii() and all(ch.isalnum() or ch == "-" for ch in cid)
    with pytest.raises(ValueError):
        client_order_id(1, 1, "AAPL", "BUY")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


@pytest.fixture
def paper(store) -> PaperBroker:
    b = PaperBroker(
        store,
        starting_cash=10_000.0,
        fee_rate=0.001,
        slippage_bps=0.0,
        markets={"AAA": Market("AAA", "AAA", "USD", lot_size=1.0)},
    )
    b.on_bar({"AAA": Quote("AAA", 100.0, T0)})
    return b


def intent(cid: str, side: str, qty: float, **kw) -> OrderIntent:
    return OrderIntent(
        OrderRequest(cid, "AAA", side, qty, **{k: v for k, v in kw.items() if k in ("type", "limit_price")}),
        run_id=None,
        cycle=1,
        reason="test",
        stop_loss=kw.get("stop_loss"),
        take_profit=kw.get("take_profit"),
    )


def test_submit_records_fill_position_and_event_trail(store, paper):
    om = OrderManager(store, paper, "paper")
    o = om.submit(intent("c1", "buy", 10, stop_loss=95.0, take_profit=110.0))
    assert o.status == "FILLED"
    assert list(store.order_events("c1")["status"]) == ["NEW", "SUBMITTED", "FILLED"]
    pos = store.get_position("paper", "AAA")
    # average price carries the buy fee: (10 × 100 + 1.0) / 10
    assert pos["quantity"] == 10 and pos["average_price"] == pytest.approx(100.1)
    assert (pos["stop_loss"], pos["take_profit"]) == (95.0, 110.0)
    paper.on_bar({"AAA": Quote("AAA", 120.0, T0)})
    om.submit(intent("c2", "sell", 10))
    pos = store.get_position("paper", "AAA")
    # realised = (120 − 100.1) × 10 − 1.2 fee
    assert pos["quantity"] == 0 and pos["realized_pnl"] == pytest.approx(197.8)
    assert pos["stop_loss"] is None and pos["average_price"] is None
    assert len(store.fills("paper")) == 2
    # Submitting a known id again asks the broker instead of sending.
    assert om.submit(intent("c1", "buy", 10)).status == "FILLED"
    assert len(paper.fills()) == 2


def test_broker_rejection_is_recorded_not_raised(store, paper):
    om = OrderManager(store, paper, "paper")
    o = om.submit(intent("big", "buy", 1000))
    assert o.status == "REJECTED" and o.reason == "insufficient_funds"
    row = store.get_order("big")
    assert row["status"] == "REJECTED" and "insufficient_funds" in row["reason"]
    (msg,) = store.events(kind="order_rejected")["message"]
    assert "1000 AAA" in msg and "needs" in msg


class Flaky:
    """A paper broker whose first ``n`` calls to ``place`` fail with a temporary error."""

    def __init__(self, inner: PaperBroker, n: int):
        self.inner, self.n, self.calls = inner, n, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def place(self, order):
        self.calls += 1
        if self.calls <= self.n:
            raise TemporaryBrokerError("503 from the venue")
        return self.inner.place(order)


def test_the_manager_sends_once_and_leaves_retrying_to_the_adapter(store, paper):
    """The adapters are the one retry layer: a temporary error that reaches the manager is not tried
    again here (that made 3 × 3 tries); the order stays NEW and the next cycle asks, then re-sends."""
    flaky = Flaky(paper, 1)
    om = OrderManager(store, flaky, "paper")
    with pytest.raises(TemporaryBrokerError):
        om.submit(intent("c1", "buy", 1))
    assert flaky.calls == 1 and store.get_order("c1")["status"] == "NEW"
    om.refresh_open()  # the next cycle: the venue does not know it, so it is sent again under the same id
    assert flaky.calls == 2 and store.get_order("c1")["status"] == "FILLED"


def test_order_is_written_before_sending_and_reconcile_never_resends_after_grace(store, paper):
    down = Flaky(paper, 99)
    om = OrderManager(store, down, "paper")
    with pytest.raises(TemporaryBrokerError):
        om.submit(intent("lost", "buy", 1))
    assert store.get_order("lost")["status"] == "NEW"  # recorded before the broker heard of it
    # A resting limit order that fills while "we are down".
    om_ok = OrderManager(store, paper, "paper")
    assert om_ok.submit(intent("rest", "buy", 2, type="limit", limit_price=90.0)).status == "SUBMITTED"
    paper.on_bar({"AAA": Quote("AAA", 89.0, T0, low=88.0, high=91.0, open=91.0)})
    fills_before = len(paper.fills())
    restarted = OrderManager(store, PaperBroker(store, markets=paper._markets), "paper", unknown_grace_s=0.0)
    restarted.reconcile()
    assert store.get_order("rest")["status"] == "FILLED" and store.get_position("paper", "AAA")["quantity"] == 2
    lost = store.get_order("lost")
    assert lost["status"] == "REJECTED" and "not re-sent" in lost["reason"]
    assert len(paper.fills()) == fills_before  # nothing was sent again
    assert store.open_orders("paper") == []


def test_cancel_all(store, paper):
    om = OrderManager(store, paper, "paper")
    om.submit(intent("l1", "buy", 1, type="limit", limit_price=50.0))
    om.submit(intent("l2", "buy", 1, type="limit", limit_price=60.0))
    out = om.cancel_all()
    assert sorted(o.client_order_id for o in out) == ["l1", "l2"] and all(o.status == "CANCELLED" for o in out)
    assert paper.open_orders() == [] and store.open_orders("paper") == []


def test_reconcile_within_grace_resends_under_the_same_id_once(store, paper):
    down = Flaky(paper, 99)
    om = OrderManager(store, down, "paper")
    with pytest.raises(TemporaryBrokerError):
        om.submit(intent("lost", "buy", 3))
    restarted = OrderManager(store, paper, "paper", unknown_grace_s=60.0)
    restarted.reconcile()  # start-up only asks: nothing is sent before the first cycle's prices
    assert store.get_order("lost")["status"] == "NEW" and paper.fills() == []
    restarted.refresh_open()  # the first cycle sends it, under the same id
    restarted.refresh_open()  # the venue knows it now: nothing is sent again
    restarted.reconcile()
    assert store.get_order("lost")["status"] == "FILLED"
    assert [f.client_order_id for f in paper.fills()] == ["lost"]
    assert list(store.order_events("lost")["status"]) == ["NEW", "SUBMITTED", "FILLED"]
    assert store.get_position("paper", "AAA")["quantity"] == 3


class CountingPaper(PaperBroker):
    """The paper venue, remembering the size of each batch it was sent."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batches: list[list[str]] = []

    def place_many(self, orders):
        self.batches.append([o.client_order_id for o in orders])
        return super().place_many(orders)


def test_orders_that_never_reached_the_venue_are_sent_again_as_one_batch(store, paper):
    """After a crash between the NEW rows and the venue, the next cycle re-sends them together (one
    venue call, one booking), each under its own id, each said once in the events; a second cycle
    sends nothing."""
    om = OrderManager(store, Flaky(paper, 99), "paper")
    answers = om.submit_many([intent(f"lost{i}", "buy", 1 + i) for i in range(3)])
    assert all(isinstance(a, TemporaryBrokerError) for a in answers)
    venue = CountingPaper(store, markets=paper._markets)
    venue.on_bar({"AAA": Quote("AAA", 100.0, T0)})
    restarted = OrderManager(store, venue, "paper", unknown_grace_s=60.0)
    restarted.refresh_open()
    assert venue.batches == [["lost0", "lost1", "lost2"]]
    restarted.refresh_open()
    assert venue.batches == [["lost0", "lost1", "lost2"]]  # known at the venue now: asked, not sent
    assert [store.get_order(f"lost{i}")["status"] for i in range(3)] == ["FILLED"] * 3
    assert sorted(f.client_order_id for f in venue.fills()) == ["lost0", "lost1", "lost2"]
    assert store.get_position("paper", "AAA")["quantity"] == 6
    resent = store.events(None, kind="resend")["message"]
    assert len(resent) == 3 and all(resent.str.contains("sent again under the same id"))


def test_unknown_submitted_order_waits_for_the_grace_period(store, paper):
    om = OrderManager(store, paper, "paper", unknown_grace_s=60.0)
    store.insert_order(
        {
            "client_order_id": "ghost",
            "account": "paper",
            "symbol": "AAA",
            "side": "buy",
            "type": "market",
            "quantity": 1.0,
            "status": "SUBMITTED",
            "reason": "venue lag",
        }
    )
    om.refresh_open()
    assert store.get_order("ghost")["status"] == "SUBMITTED" and paper.fills() == []
    om.unknown_grace_s = 0.0
    om.refresh_open()
    assert store.get_order("ghost")["status"] == "REJECTED" and paper.fills() == []


def test_entry_with_stops_gets_one_resting_oco_pair_sized_to_the_position(store):
    markets = {"AAA": Market("AAA", "AAA", "USD", lot_size=1.0, tick_size=0.05)}
    b = PaperBroker(
        store, starting_cash=100_000.0, fee_rate=0.0, slippage_bps=0.0, markets=markets, max_volume_share=0.1
    )
    b.on_bar({"AAA": Quote("AAA", 100.0, T0, volume=100.0)})
    om = OrderManager(store, b, "paper", run_id=None)
    entry = om.submit(intent("e1", "buy", 25, stop_loss=95.01, take_profit=110.02))
    assert entry.status == "PARTIALLY_FILLED" and entry.filled_quantity == 10
    assert om.sync_exits(cycle=1) == 2
    exits = {r["type"]: r for r in store.open_orders("paper") if r["side"] == "sell"}
    assert exits["stop_loss"]["quantity"] == 10 and exits["stop_loss"]["stop_price"] == 95.0  # on the tick grid
    assert (
        exits["take_profit"]["limit_price"] == 110.0
        and exits["stop_loss"]["oco_group"] == exits["take_profit"]["oco_group"]
    )
    assert om.sync_exits(cycle=1) == 0  # in step: nothing to do
    # The entry keeps filling: the pair is replaced by one sized to the new position.
    b.on_bar({"AAA": Quote("AAA", 101.0, T0, open=100.0, low=99.0, high=102.0, volume=1_000.0)})
    om.refresh_open()
    assert om.sync_exits(cycle=2) == 2
    open_exits = [r for r in store.open_orders("paper") if r["side"] == "sell"]
    assert len(open_exits) == 2 and {r["quantity"] for r in open_exits} == {25.0}
    assert len({r["oco_group"] for r in open_exits}) == 1
    # The stop fires: the position is flat, the take-profit twin cancelled, nothing left resting.
    b.on_bar({"AAA": Quote("AAA", 90.0, T0, open=94.0, low=89.0, high=94.5, volume=1_000.0)})
    om.refresh_open()
    assert store.get_position("paper", "AAA")["quantity"] == 0 and b.positions() == {}
    assert store.open_orders("paper") == [] and om.sync_exits(cycle=3) == 0
    stops = store.fills("paper")
    assert stops["side"].tolist() == ["buy", "buy", "sell"] and stops["price"].iloc[-1] == pytest.approx(94.0)


def test_a_closing_sell_withdraws_the_resting_exits_first(store, paper):
    om = OrderManager(store, paper, "paper")
    om.submit(intent("e1", "buy", 10, stop_loss=90.0, take_profit=120.0))
    om.sync_exits(cycle=1)
    assert len(paper.open_orders()) == 2
    assert om.submit(intent("s1", "sell", 10)).status == "FILLED"
    assert paper.open_orders() == [] and paper.positions() == {}
    assert store.open_orders("paper") == []
