"""The paper broker on a real SQLite store: fills, fees, slippage, every reject reason, idempotency,
limit orders, and state that survives a new broker object on the same store."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.trading.store import Store
from workbench.venues.base import Broker, Market, OrderRejected, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")
MARKETS = {
    "AAPL": Market("AAPL", "AAPL", "USD", lot_size=1.0, tick_size=0.01, min_notional=1.0),
    "BTC/USDT": Market("BTC/USDT", "BTC", "USDT", lot_size=0.001, tick_size=0.01, min_notional=10.0),
}


def q(sym: str, last: float, **kw) -> Quote:
    return Quote(sym, last, T0, **kw)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'wb.db'}").create()


@pytest.fixture
def broker(store) -> PaperBroker:
    b = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.001, slippage_bps=10.0, markets=MARKETS)
    b.on_bar({"AAPL": q("AAPL", 100.0), "BTC/USDT": q("BTC/USDT", 20_000.0)})
    return b


def test_is_a_broker_in_paper_environment(broker):
    assert isinstance(broker, Broker)
    st = broker.check()
    assert st.ok and st.environment == "paper" and "10,000.00 USD" in st.message


def test_market_buy_fills_at_last_plus_slippage_with_fee(broker):
    o = broker.place(OrderRequest("c1", "AAPL", "buy", 10))
    assert o.status == "FILLED" and o.filled_quantity == 10
    assert o.average_price == pytest.approx(100.0 * 1.001)  # 10 bps
    assert o.fee == pytest.approx(10 * 100.1 * 0.001)
    cash = broker.balances()["USD"]
    assert cash.total == pytest.approx(10_000 - 1001.0 - 1.001)
    assert broker.positions() == {"AAPL": 10.0}
    (fill,) = broker.fills()
    assert (fill.client_order_id, fill.quantity, fill.fee_currency) == ("c1", 10.0, "USD")


def test_market_sell_fills_at_last_minus_slippage(broker):
    broker.place(OrderRequest("c1", "AAPL", "buy", 10))
    broker.on_bar({"AAPL": q("AAPL", 110.0)})
    o = broker.place(OrderRequest("c2", "AAPL", "sell", 10))
    assert o.average_price == pytest.approx(110.0 * 0.999)
    assert broker.positions() == {}
    expected = 10_000 - 1001.0 - 1.001 + 10 * 109.89 - 10 * 109.89 * 0.001
    assert broker.balances()["USD"].total == pytest.approx(expected)


@pytest.mark.parametrize(
    "request_, reason",
    [
        (OrderRequest("r1", "AAPL", "buy", 1000), "insufficient_funds"),
        (OrderRequest("r2", "MSFT", "buy", 1), "unknown_symbol"),
        (OrderRequest("r3", "AAPL", "buy", 1.5), "lot_size"),
        (OrderRequest("r4", "BTC/USDT", "buy", 0.0001), "lot_size"),
        (OrderRequest("r5", "AAPL", "sell", 1), "insufficient_position"),
    ],
)
def test_each_reject_reason(broker, request_, reason):
    with pytest.raises(OrderRejected) as e:
        broker.place(request_)
    assert e.value.reason == reason
    assert broker.order_status(request_.client_order_id).status == "REJECTED"
    assert broker.balances()["USD"].total == 10_000.0


def test_min_notional_and_no_price(store):
    markets = {**MARKETS, "ETH/USDT": Market("ETH/USDT", "ETH", "USDT", lot_size=0.001, min_notional=10.0)}
    b = PaperBroker(store, account="other", starting_cash=10_000.0, markets=markets)
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("n1", "ETH/USDT", "buy", 0.001))
    assert e.value.reason == "no_price"
    b.on_bar({"ETH/USDT": q("ETH/USDT", 2000.0)})
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("n2", "ETH/USDT", "buy", 0.004))  # 8 < 10
    assert e.value.reason == "min_notional"
    assert b.place(OrderRequest("n3", "ETH/USDT", "buy", 0.005)).status == "FILLED"


def test_resend_is_idempotent_including_rejections(broker):
    first = broker.place(OrderRequest("c1", "AAPL", "buy", 10))
    again = broker.place(OrderRequest("c1", "AAPL", "buy", 10))
    assert again == first
    assert broker.positions() == {"AAPL": 10.0} and len(broker.fills()) == 1
    with pytest.raises(OrderRejected):
        broker.place(OrderRequest("bad", "AAPL", "buy", 10_000))
    with pytest.raises(OrderRejected) as e:
        broker.place(OrderRequest("bad", "AAPL", "buy", 10_000))
    assert e.value.reason == "insufficient_funds"


def test_limit_orders_rest_reserve_cash_and_fill_when_crossed(broker):
    o = broker.place(OrderRequest("l1", "AAPL", "buy", 50, type="limit", limit_price=95.0))
    assert o.status == "SUBMITTED" and [x.client_order_id for x in broker.open_orders()] == ["l1"]
    bal = broker.balances()["USD"]
    assert bal.total == 10_000.0 and bal.free == pytest.approx(10_000.0 - 50 * 95.0 * 1.001)
    # Cash reserved for l1 is not spendable twice.
    with pytest.raises(OrderRejected, match="free"):
        broker.place(OrderRequest("l2", "AAPL", "buy", 60, type="limit", limit_price=95.0))
    assert broker.on_bar({"AAPL": q("AAPL", 97.0, low=96.0, high=99.0, open=98.0)}) == []
    filled = broker.on_bar({"AAPL": q("AAPL", 93.0, low=92.0, high=94.0, open=94.0)})  # gapped through 95
    assert [f.client_order_id for f in filled] == ["l1"]
    o = broker.order_status("l1")
    assert o.status == "FILLED" and o.average_price == pytest.approx(94.0)
    assert broker.positions() == {"AAPL": 50.0}


def test_marketable_limit_fills_at_once_and_cancel(broker):
    o = broker.place(OrderRequest("l1", "AAPL", "buy", 1, type="limit", limit_price=105.0))
    assert o.status == "FILLED" and o.average_price == pytest.approx(100.1)
    r = broker.place(OrderRequest("l2", "AAPL", "sell", 1, type="limit", limit_price=120.0))
    assert r.status == "SUBMITTED"
    assert broker.cancel("l2").status == "CANCELLED"
    assert broker.cancel("l2").status == "CANCELLED"  # cancelling twice is harmless
    assert broker.cancel("l1").status == "FILLED"  # a filled order stays filled
    with pytest.raises(OrderRejected) as e:
        broker.order_status("nope")
    assert e.value.reason == "unknown_order"


def test_state_survives_a_new_broker_on_the_same_store(store, broker):
    broker.place(OrderRequest("c1", "AAPL", "buy", 10))
    broker.place(OrderRequest("l1", "AAPL", "buy", 5, type="limit", limit_price=90.0))
    cash = broker.balances()["USD"].total
    again = PaperBroker(store, starting_cash=1.0, markets=MARKETS)  # starting cash only seeds a new account
    assert again.balances()["USD"].total == pytest.approx(cash)
    assert again.positions() == {"AAPL": 10.0}
    assert again.order_status("c1").status == "FILLED"
    assert [o.client_order_id for o in again.open_orders()] == ["l1"]
    assert again.quotes(["AAPL"]) == {}  # prices are never remembered: they come from the next bar
    again.on_bar({"AAPL": q("AAPL", 89.0, low=88.0, high=90.5, open=90.5)})
    assert again.order_status("l1").status == "FILLED" and again.positions() == {"AAPL": 15.0}


def test_accounts_are_separate(store):
    a = PaperBroker(store, account="a", starting_cash=1000.0)
    b = PaperBroker(store, account="b", starting_cash=2000.0)
    a.on_bar({"X": q("X", 10.0)})
    a.place(OrderRequest("same-id", "X", "buy", 5))
    assert b.positions() == {} and b.balances()["USD"].total == 2000.0
    with pytest.raises(OrderRejected):
        b.order_status("same-id")
    # Default markets: any quoted symbol, tiny lots, priced in the account currency.
    assert a.markets(["BTC/USDT"])["BTC/USDT"].base == "BTC"


def test_make_broker_without_a_store_books_in_the_settings_database(settings):
    """The registry's factory called without a store (as a notebook would) opens ``settings.store_url``
    itself: it used to name a ``Store`` it never imported (a NameError found by the type gate)."""
    from workbench.venues.paper.broker import make_broker

    b = make_broker(settings)
    assert b.balances()[settings.paper.currency].total == pytest.approx(settings.paper.starting_cash)
    again = Store(settings.store_url).create()  # the same database, seen through the trading store
    assert PaperBroker(again, starting_cash=1.0).balances()[settings.paper.currency].total == pytest.approx(
        settings.paper.starting_cash
    )


def test_a_batch_sees_what_resting_orders_hold_back_in_its_symbols(broker):
    """A batch loads only its symbols' open orders (and every open buy): the quantity a resting exit
    pair holds and the cash a resting buy holds are still held back from it, and the OCO sibling of
    a leg the batch fills is still cancelled."""
    broker.place(OrderRequest("b1", "AAPL", "buy", 10))
    broker.place(OrderRequest("b2", "BTC/USDT", "buy", 0.01))
    legs = [
        OrderRequest("sl", "AAPL", "sell", 8, type="stop_loss", stop_price=90.0, oco_group="g1"),
        OrderRequest("tp", "AAPL", "sell", 8, type="take_profit", limit_price=120.0, oco_group="g1"),
        OrderRequest("rest", "BTC/USDT", "buy", 0.01, type="limit", limit_price=15_000.0),
    ]
    assert all(not isinstance(a, OrderRejected) for a in broker.place_many(legs))
    out = broker.place_many(
        [OrderRequest("s3", "AAPL", "sell", 3), OrderRequest("s2", "AAPL", "sell", 2)]  # 10 held, 8 held back
    )
    assert isinstance(out[0], OrderRejected) and out[0].reason == "insufficient_position"
    assert not isinstance(out[1], OrderRejected) and out[1].status == "FILLED"
    fits = int(broker.balances()["USD"].total // (100.1 * 1.001))  # fits the cash, not the cash 'rest' leaves
    (big,) = broker.place_many([OrderRequest("big", "AAPL", "buy", fits, type="limit", limit_price=100.0)])
    assert isinstance(big, OrderRejected) and big.reason == "insufficient_funds"
    broker.on_bar({"AAPL": q("AAPL", 89.0, low=88.0, high=91.0, open=90.0)})  # the stop leg fills
    assert broker.order_status("sl").status == "FILLED" and broker.order_status("tp").status == "CANCELLED"


def test_two_processes_opening_one_paper_account_at_once_both_succeed_and_cash_is_seeded_once(tmp_path):
    """Two ``live run``s started together on one account both build the paper venue before the run lock
    refuses one: seeding the starting cash must not fail the loser with a store error (exit 7 instead
    of "this account already has a live run", exit 9), and the cash must be seeded once."""
    import threading

    from workbench.trading.store import Store

    url = f"sqlite:///{tmp_path / 'race.db'}"
    Store(url).create().dispose()
    for trial in range(40):  # the window is one SELECT wide: many tries, each on a fresh account
        stores = [Store(url), Store(url)]
        gate, errors = threading.Barrier(2), []

        def open_one(store: Store, acct: str, gate: threading.Barrier, errors: list[Exception]) -> None:
            gate.wait()
            try:
                PaperBroker(store, account=acct, starting_cash=1_000.0)
            except Exception as e:  # any failure is the finding
                errors.append(e)

        threads = [threading.Thread(target=open_one, args=(s, f"race-{trial}", gate, errors)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [], f"trial {trial}: {errors[0]!r}"
        assert PaperBroker(stores[0], account=f"race-{trial}").balances()["USD"].total == 1_000.0
        for s in stores:
            s.dispose()
