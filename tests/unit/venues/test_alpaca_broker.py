"""AlpacaBroker against the fake Alpaca through the real alpaca-py clients: auth, faults, OCO, fills."""

from __future__ import annotations

import pytest

from tests.kit.fake_alpaca import FakeAlpaca
from tests.kit.users import trader
from workbench.venues.alpaca import AlpacaConfig
from workbench.venues.alpaca.broker import AlpacaBroker
from workbench.venues.base import (
    AuthenticationError,
    OrderRejected,
    OrderRequest,
    TemporaryBrokerError,
)

KEY, SECRET = "PKTEST123", "apca-secret-value"


@pytest.fixture
def fake():
    with FakeAlpaca(key=KEY, secret=SECRET, cash=10_000.0) as f:
        f.add_asset("AAPL", "NASDAQ", price=100.0)
        f.add_asset("IBM", "NYSE", price=50.0)
        yield f


def broker(fake, **kw) -> AlpacaBroker:
    return AlpacaBroker(
        kw.pop("key", KEY), SECRET, url_override=fake.url, timeout_s=kw.pop("timeout_s", 2), backoff_s=0.01, **kw
    )


def posts(fake) -> int:
    return sum(1 for m, p, _ in fake.requests if m == "POST" and p == "/v2/orders")


def test_keys_are_checked_and_paper_is_testnet(fake, settings):
    assert broker(fake).environment == "testnet" and broker(fake, paper=False).environment == "live"
    st = broker(fake, key="wrong").check()
    assert not st.ok and "refused the keys" in st.message and "HTTP 401" in st.message
    with pytest.raises(AuthenticationError):
        broker(fake, key="wrong").positions()
    vault = trader(settings).vault
    vault.put("alpaca/api_key", KEY)
    vault.put("alpaca/secret", SECRET)
    s = settings.model_copy(update={"venues": {"alpaca": AlpacaConfig(url=fake.url)}})
    b = AlpacaBroker.from_settings(s, vault)
    st = b.check()
    assert st.ok and st.environment == "testnet" and "$10,000.00 cash" in st.message and SECRET not in repr(b)


def test_market_buy_fills_and_positions_are_named_by_exchange(fake):
    b = broker(fake)
    o = b.place(OrderRequest("b1", "IBM", "buy", 10))
    assert o.status == "FILLED" and o.average_price == pytest.approx(50.0) and o.symbol == "IBM"
    assert b.positions() == {"IBM": 10.0}  # named as the caller named it, so book and venue agree
    assert broker(fake).positions() == {"NYSE:IBM": 10.0}  # a fresh client that was never asked: exchange-qualified
    assert b.balances()["USD"].total == pytest.approx(9_500.0)
    (f,) = b.fills()
    assert (f.client_order_id, f.quantity, f.price, f.side) == ("b1", 10.0, 50.0, "buy")
    assert fake.orders[o.broker_order_id]["client_order_id"] == "b1"


def test_venue_rejections_map_to_stable_reasons(fake):
    b = broker(fake)
    with pytest.raises(OrderRejected) as e:  # the venue's 403 40310000
        b.place(OrderRequest("rich", "NASDAQ:AAPL", "buy", 1000))
    assert e.value.reason == "insufficient_funds" and "buying power" in str(e.value)
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("frac", "NASDAQ:AAPL", "buy", 1.5))
    assert e.value.reason == "lot_size"
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("wrongex", "NYSE:AAPL", "buy", 1))  # AAPL is listed on NASDAQ
    assert e.value.reason == "unknown_symbol"


def test_retries_429_and_5xx_then_gives_up(fake):
    b = broker(fake)
    fake.fail_next(429)
    fake.fail_next(500)
    assert b.balances()["USD"].free == pytest.approx(10_000.0)
    fake.fail_next(502, times=5)
    with pytest.raises(TemporaryBrokerError):
        b.positions()
    fake.delay_next(1.5, times=3)
    with pytest.raises(TemporaryBrokerError, match="did not answer"):
        broker(fake, timeout_s=0.3).balances()


def test_lost_answer_is_found_by_client_order_id_not_sent_twice(fake):
    b = broker(fake)
    fake.fail_next(504, path="/v2/orders")  # a gateway timeout on the POST: it never arrived, so it is sent again
    o = b.place(OrderRequest("t1", "NASDAQ:AAPL", "buy", 5))
    assert o.status == "FILLED" and posts(fake) == 2 and b.positions() == {"NASDAQ:AAPL": 5.0}
    fake.lose_next(path="/v2/orders")  # accepted, then the answer is lost: found by its client order id
    o = b.place(OrderRequest("t2", "NASDAQ:AAPL", "buy", 5))
    assert o.status == "FILLED" and posts(fake) == 3 and b.positions() == {"NASDAQ:AAPL": 10.0}
    assert (
        b.place(OrderRequest("t2", "NASDAQ:AAPL", "buy", 5)).broker_order_id == o.broker_order_id and posts(fake) == 3
    )


def test_a_rate_limited_send_is_looked_up_then_sent_again_and_a_persistent_one_is_bounded(fake):
    b = broker(fake)
    fake.fail_next(429, path="/v2/orders")  # refused before it arrived
    o = b.place(OrderRequest("r1", "NASDAQ:AAPL", "buy", 2))
    assert o.status == "FILLED" and posts(fake) == 2 and len(fake.orders) == 1
    lookups = [p for m, p, _ in fake.requests if p == "/v2/orders:by_client_order_id"]
    assert len(lookups) == 2  # before the first send (idempotent place) and before the re-send
    fake.fail_next(500, times=5, path="/v2/orders")
    with pytest.raises(TemporaryBrokerError, match="may or may not have arrived after 3 tries"):
        b.place(OrderRequest("r2", "NASDAQ:AAPL", "buy", 2))
    assert posts(fake) == 2 + 3 and len(fake.orders) == 1  # exactly the adapter's 3 tries, nothing placed


def test_partial_fills_rest_and_finish(fake):
    b = broker(fake)
    fake.depth["AAPL"] = 3
    o = b.place(OrderRequest("p1", "NASDAQ:AAPL", "buy", 8, "limit", limit_price=100.0))
    assert o.status == "PARTIALLY_FILLED" and o.filled_quantity == 3
    assert [x.client_order_id for x in b.open_orders()] == ["p1"]
    for _ in range(2):
        fake.move("AAPL", last=99.0, low=98.0, high=100.0, open=100.0)
    o = b.order_status("p1")
    assert o.status == "FILLED" and o.filled_quantity == 8 and [f.quantity for f in b.fills()] == [3, 3, 2]


def test_exit_pair_becomes_one_oco_and_cancel_keeps_the_other_leg(fake):
    b = broker(fake)
    b.place(OrderRequest("in", "NASDAQ:AAPL", "buy", 10))
    b.place(OrderRequest("sl", "NASDAQ:AAPL", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "NASDAQ:AAPL", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    oco = [o for o in fake.orders.values() if o["order_class"] == "oco"]
    assert len(oco) == 1 and oco[0]["limit_price"] == "110.0" and oco[0]["legs"][0]["stop_price"] == "95.0"
    assert sorted(o.client_order_id for o in b.open_orders()) == ["sl", "tp"]
    assert b.cancel("tp").status == "CANCELLED" and b.order_status("sl").status == "SUBMITTED"
    assert [o.client_order_id for o in b.open_orders()] == ["sl"]
    fake.move("AAPL", last=94.0, low=93.0, high=100.0, open=99.0)
    sl = b.order_status("sl")
    assert sl.status == "FILLED" and sl.average_price == pytest.approx(95.0) and b.positions() == {}
    assert {f.client_order_id for f in b.fills()} == {"in", "sl"}


def test_take_profit_leg_fill_cancels_the_stop_and_no_short_sales(fake):
    b = broker(fake)
    b.place(OrderRequest("in", "NASDAQ:AAPL", "buy", 10))
    b.place(OrderRequest("sl", "NASDAQ:AAPL", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "NASDAQ:AAPL", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    with pytest.raises(OrderRejected) as e:  # the pair holds the shares
        b.place(OrderRequest("more", "NASDAQ:AAPL", "sell", 1))
    assert e.value.reason == "insufficient_position"
    fake.move("AAPL", last=111.0, low=104.0, high=112.0, open=105.0)
    assert b.order_status("tp").status == "FILLED" and b.order_status("sl").status == "CANCELLED"
    assert b.balances()["USD"].total == pytest.approx(10_000 - 1000 + 1100)


def test_more_than_one_page_of_fills_is_read_whole(fake):
    """Alpaca answers at most 100 activities per request: a busy account's 230 fills come in three pages."""
    b = broker(fake)
    fake.cash = 1e7
    for i in range(230):
        assert b.place(OrderRequest(f"m{i}", "IBM", "buy", 1)).status == "FILLED"
    fills = b.fills()
    assert len(fills) == 230 and [f.client_order_id for f in fills] == [f"m{i}" for i in range(230)]
    pages = [p for m, p, _ in fake.requests if m == "GET" and p == "/v2/account/activities/FILL"]
    assert len(pages) == 3
    later = b.fills(since=fills[150].ts)
    assert next(f.client_order_id for f in later) == "m150" and len(later) == 80
