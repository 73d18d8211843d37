"""CcxtBroker with a real ccxt.binance client signing real requests to the local FakeBinance exchange:
keys and settings, authentication failures, commissions, partial fills, retries that never duplicate
an order, clock drift, exchange-side filters, and OCO exit pairs."""

from __future__ import annotations

import pytest

from tests.kit.fake_binance import FakeBinance
from tests.kit.users import trader
from workbench.config import load_settings
from workbench.venues.base import (
    AuthenticationError,
    ExchangeUnavailable,
    OrderRejected,
    OrderRequest,
    TemporaryBrokerError,
)
from workbench.venues.ccxt.broker import CcxtBroker
from workbench.venues.ledger import OrderLedger

SYM = "XYZ/USDT"


@pytest.fixture
def fake():
    with FakeBinance(symbols=("BTC/USDT",)) as f:
        f.add_market(SYM, step="0.001", tick="0.01", min_notional="10", price=100.0)
        f.set_balance("USDT", 10_000.0)
        yield f


def make(fake: FakeBinance, **kw) -> CcxtBroker:
    args = dict(api_key=fake.api_key, secret=fake.secret, urls=fake.ccxt_config()["urls"], currency="USDT",
                ccxt_config={"enableRateLimit": False}, backoff_s=0.01)  # fmt: skip
    args.update(kw)
    return CcxtBroker("binance", **args)


def n_orders(fake: FakeBinance) -> int:
    return len(fake.orders(SYM))


# ---- keys, settings, authentication ----------------------------------------------------------------
def test_from_settings_reads_the_vault_and_names_the_command_when_keys_are_missing(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("WORKBENCH_KEY_CCXT_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("WORKBENCH_KEY_CCXT_BINANCE_SECRET", raising=False)
    urls = fake.ccxt_config()["urls"]
    s = load_settings(tmp_path / "home", broker={"timeout_s": 3.0}, venues={"ccxt": {"urls": {"binance": urls}}})
    vault = trader(s).vault
    with pytest.raises(AuthenticationError, match="workbench keys set ccxt:binance"):
        CcxtBroker.from_settings(s, "binance", vault=vault)
    vault.put("ccxt:binance/api_key", fake.api_key)
    vault.put("ccxt:binance/secret", fake.secret)
    b = CcxtBroker.from_settings(s, "binance", vault=vault)
    assert b.environment == "testnet" and b.exchange.timeout == 3000 and b.check().ok
    assert fake.secret not in repr(b) and fake.api_key not in repr(b)


def test_from_settings_env_fallback_for_a_live_venue(tmp_path, fake, monkeypatch):
    """The real-money permission is the user's trade_live, checked by Phase 1 (tests/unit/trading)."""
    monkeypatch.setenv("WORKBENCH_KEY_CCXT_BINANCE_API_KEY", fake.api_key)
    monkeypatch.setenv("WORKBENCH_KEY_CCXT_BINANCE_SECRET", fake.secret)
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    urls = fake.ccxt_config()["urls"]
    ok = load_settings(tmp_path / "b", broker={"testnet": False}, venues={"ccxt": {"urls": {"binance": urls}}})
    b = CcxtBroker.from_settings(ok, "binance")
    assert b.environment == "live" and b.check().environment == "live"
    assert b.balances()["USDT"].total == pytest.approx(10_000.0)


def test_sandbox_mode_points_at_the_testnet_urls():
    b = CcxtBroker("binance", api_key="k" * 20, secret="s" * 20)
    assert b.exchange.urls["api"]["private"].startswith("https://testnet.binance.vision")


def test_wrong_key_wrong_secret_and_missing_trade_permission(fake):
    with pytest.raises(AuthenticationError, match="key is wrong or lacks trade permission") as e:
        make(fake, api_key="not-the-key-0000000000").check()
    assert "workbench keys set ccxt:binance" in str(e.value)
    with pytest.raises(AuthenticationError):
        make(fake, secret="not-the-secret-000000000000").balances()  # -1022: the HMAC was really checked
    fake.can_trade = False
    b = make(fake)
    st = b.check()
    assert not st.ok and "trade permission" in st.message
    with pytest.raises(AuthenticationError, match="lacks trade permission") as e:
        b.place(OrderRequest("noperm", SYM, "buy", 1.0))
    assert fake.secret not in str(e.value) and "signature=" not in str(e.value)


def test_down_venue_is_not_ok_and_maintenance_stops_new_orders(fake):
    b = make(fake, retries=2)
    fake.fail_next(503, times=2)  # both tries of loading the markets
    st = b.check()
    assert not st.ok and "not reachable" in st.message
    b.markets([SYM])
    fake.fail_next(503, body={"code": 1, "msg": "System is under maintenance."}, path="/api/v3/account")
    with pytest.raises(ExchangeUnavailable, match="maintenance"):
        b.balances()


# ---- fills, commissions, partial fills ---------------------------------------------------------------
def test_commission_in_the_received_asset_and_caller_spelling_round_trips(fake):
    b = make(fake)
    key = "binance:XYZ/USDT"
    assert b.markets([key])[key].min_notional == 10.0
    o = b.place(OrderRequest("buy1", key, "buy", 1.5))
    assert o.symbol == key and o.status == "FILLED" and o.average_price == pytest.approx(100.01)
    assert o.fee == pytest.approx(1.5 * 0.001 * 100.01)  # paid in XYZ, valued in USDT
    assert b.positions() == {key: pytest.approx(1.4985)}
    assert b.balances()["USDT"].total == pytest.approx(10_000.0 - 1.5 * 100.01)
    (f,) = b.fills_for("buy1")
    assert (f.symbol, f.quantity, f.fee, f.fee_currency) == (key, 1.5, pytest.approx(0.0015), "XYZ")
    s = b.place(OrderRequest("sell1", key, "sell", 1.498))
    assert s.fee == pytest.approx(1.498 * 99.99 * 0.001)  # paid in USDT
    assert [x.client_order_id for x in b.fills()] == ["buy1", "sell1"]
    assert b.positions() == {}  # 0.0005 XYZ of dust is below the lot: not a position


def test_market_order_partly_filled_expires_and_limit_fills_in_parts(fake):
    b = make(fake)
    fake.partial_fill(0.5)
    o = b.place(OrderRequest("half", SYM, "buy", 2.0))
    assert (o.status, o.filled_quantity) == ("EXPIRED", 1.0) and "did not fill the rest" in o.reason
    fake.set_liquidity(SYM, 0.4)
    lim = b.place(OrderRequest("lim", SYM, "buy", 1.0, "limit", limit_price=95.0))
    assert lim.status == "SUBMITTED" and b.balances()["USDT"].free < b.balances()["USDT"].total
    fake.move(SYM, last=94.0, low=94.0, high=96.0, open=96.0)
    part = b.order_status("lim")
    assert (part.status, part.filled_quantity, part.average_price) == ("PARTIALLY_FILLED", 0.4, 95.0)
    assert [x.client_order_id for x in b.open_orders()] == ["lim"]
    fake.move(SYM, last=94.5, low=94.5, high=95.5, open=95.5)
    fake.move(SYM, last=94.5, low=94.5, high=95.5, open=95.5)
    done = b.order_status("lim")
    assert (done.status, done.filled_quantity) == ("FILLED", 1.0) and len(b.fills_for("lim")) == 3
    assert b.open_orders() == []


# ---- retries never duplicate -----------------------------------------------------------------------
def test_rate_limit_and_5xx_are_retried_once_each(fake):
    b = make(fake)
    b.markets([SYM])
    fake.fail_next(429, method="POST", path="/api/v3/order")
    fake.fail_next(503, method="POST", path="/api/v3/order")
    o = b.place(OrderRequest("retry", SYM, "buy", 1.0))
    assert o.status == "FILLED" and n_orders(fake) == 1
    posts = [r for r in fake.requests if r[:2] == ("POST", "/api/v3/order")]
    assert len(posts) == 3


def test_a_lost_answer_is_looked_up_not_resent(fake):
    b = make(fake)
    fake.lose_next(503, method="POST", path="/api/v3/order")  # stored and filled, answer lost
    o = b.place(OrderRequest("lost", SYM, "buy", 1.0))
    assert o.status == "FILLED" and n_orders(fake) == 1 and len(b.fills_for("lost")) == 1
    assert sum(r[:2] == ("POST", "/api/v3/order") for r in fake.requests) == 1


def test_a_timed_out_send_is_looked_up_not_resent(fake):
    b = make(fake, timeout_s=0.3)
    b.markets([SYM])
    fake.delay_next(0.8, method="POST", path="/api/v3/order")  # arrives after the client gave up
    o = b.place(OrderRequest("slow", SYM, "buy", 1.0, "limit", limit_price=90.0))
    assert o.status == "SUBMITTED" and n_orders(fake) == 1


def test_persistent_failure_is_a_temporary_error_and_nothing_was_placed(fake):
    b = make(fake, retries=2)
    b.markets([SYM])
    fake.fail_next(503, times=10, method="POST", path="/api/v3/order")
    with pytest.raises(TemporaryBrokerError, match="may or may not have arrived"):
        b.place(OrderRequest("down", SYM, "buy", 1.0))
    assert n_orders(fake) == 0


def test_a_persistent_503_is_sent_exactly_attempts_times_with_a_look_up_before_each_resend(fake):
    b = make(fake, retries=3)
    b.markets([SYM])
    fake.fail_next(503, times=100, method="POST", path="/api/v3/order")
    with pytest.raises(TemporaryBrokerError, match="may or may not have arrived after 3 tries"):
        b.place(OrderRequest("down", SYM, "buy", 1.0))
    calls = [m for m, p, _ in fake.requests if p == "/api/v3/order"]
    assert calls == ["GET", "POST", "GET", "POST", "GET", "POST"] and n_orders(fake) == 0  # asked before each re-send
    fake.fail_next(503, times=100, path="/api/v3/account")
    before = len(fake.requests)
    with pytest.raises(TemporaryBrokerError):
        b.balances()
    assert len(fake.requests) - before == 3  # a read: 3 tries in all, nothing above the adapter retries it


# ---- Binance's "execution status unknown" (-1000/-1001/-1006): temporary, resolved by a look-up --------------
@pytest.mark.parametrize("code", [-1000, -1001, -1006])
def test_unknown_execution_status_with_the_order_taken_is_found_not_sent_again(fake, code):
    b = make(fake)
    b.markets([SYM])
    fake.unknown_next(code, accepted=True, method="POST", path="/api/v3/order")  # stored and filled, then the error
    o = b.place(OrderRequest("unk", SYM, "buy", 1.0))
    assert o.status == "FILLED" and o.client_order_id == "unk" and n_orders(fake) == 1
    assert [m for m, p, _ in fake.requests if p == "/api/v3/order"] == ["GET", "POST", "GET"]
    assert b.place(OrderRequest("unk", SYM, "buy", 1.0)).broker_order_id == o.broker_order_id and n_orders(fake) == 1


@pytest.mark.parametrize("code", [-1000, -1001, -1006])
def test_unknown_execution_status_without_the_order_is_sent_again_once(fake, code):
    b = make(fake)
    b.markets([SYM])
    fake.unknown_next(code, accepted=False, method="POST", path="/api/v3/order")
    o = b.place(OrderRequest("unk", SYM, "buy", 1.0))
    assert o.status == "FILLED" and n_orders(fake) == 1
    assert [m for m, p, _ in fake.requests if p == "/api/v3/order"] == ["GET", "POST", "GET", "POST"]


def test_unknown_execution_status_on_reads_and_cancels_is_retried(fake):
    b = make(fake)
    b.markets([SYM])
    fake.unknown_next(-1001, accepted=False, path="/api/v3/account")
    assert b.balances()["USDT"].total == pytest.approx(10_000.0)  # was a BrokerError that ended the run
    b.place(OrderRequest("rest", SYM, "buy", 1.0, "limit", limit_price=90.0))
    fake.unknown_next(-1006, accepted=True, method="DELETE", path="/api/v3/order")  # cancelled, answer unknown
    assert b.cancel("rest").status == "CANCELLED"
    assert [o["status"] for o in fake.orders(SYM)] == ["CANCELED"]


def test_a_new_broker_finds_its_orders_instead_of_resending(fake, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = make(fake, ledger=OrderLedger(url, "ccxt:binance", "binance"))
    first.place(OrderRequest("once", SYM, "buy", 1.0))
    again = make(fake, ledger=OrderLedger(url, "ccxt:binance", "binance"))  # a restarted process
    assert again.order_status("once").status == "FILLED"  # the ledger knows the symbol
    assert (
        again.place(OrderRequest("once", SYM, "buy", 1.0)).broker_order_id == first.order_status("once").broker_order_id
    )
    assert n_orders(fake) == 1


def test_clock_drift_is_resynchronised(fake):
    b = make(fake)
    b.markets([SYM])
    fake.clock_offset_ms = -20_000  # the server's clock is 20 s behind ours: -1021
    assert b.balances()["USDT"].total == pytest.approx(10_000.0)
    assert any(p == "/api/v3/time" for _, p, _ in fake.requests)


# ---- rules ------------------------------------------------------------------------------------------
def test_exchange_side_filters_map_to_reasons(fake):
    b = make(fake)
    b.markets([SYM])
    fake.set_filter(SYM, "LOT_SIZE", stepSize="0.01000000")  # tightened after our markets were loaded
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("lot", SYM, "buy", 1.005))
    assert e.value.reason == "lot_size" and "LOT_SIZE" in str(e.value)
    fake.set_filter(SYM, "PRICE_FILTER", tickSize="0.10000000")
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("tick", SYM, "buy", 1.0, "limit", limit_price=99.05))
    assert e.value.reason == "tick_size"
    with pytest.raises(OrderRejected) as again:
        b.place(OrderRequest("tick", SYM, "buy", 1.0, "limit", limit_price=99.05))
    assert again.value.reason == "tick_size"  # a re-send gets the first answer


def test_stops_on_a_market_without_native_stops_are_left_to_the_loop(fake):
    fake.add_market(
        "ABC/USDT", step="0.001", tick="0.01", min_notional="10", price=50.0, order_types=["LIMIT", "MARKET"]
    )
    fake.set_balance("ABC", 5.0)
    b = make(fake)
    with pytest.raises(OrderRejected, match="managed by the loop") as e:
        b.place(OrderRequest("nostop", "ABC/USDT", "sell", 1.0, "stop_loss", stop_price=45.0))
    assert e.value.reason == "bad_order" and len(fake.orders("ABC/USDT")) == 0


# ---- OCO exit pairs ---------------------------------------------------------------------------------
def test_exit_pair_becomes_one_oco_list_locking_the_position_once(fake):
    b = make(fake)
    b.place(OrderRequest("entry", SYM, "buy", 2.0))
    held = fake.balance("XYZ")[0]
    sl = b.place(OrderRequest("sl", SYM, "sell", 1.998, "stop_loss", stop_price=95.0, oco_group="g1"))
    assert sl.status == "SUBMITTED" and sl.stop_price == 95.0 and sl.type == "stop_loss"
    tp = b.place(OrderRequest("tp", SYM, "sell", 1.998, "take_profit", limit_price=110.0, oco_group="g1"))
    assert tp.status == "SUBMITTED" and tp.limit_price == 110.0 and tp.oco_group == "g1"
    live = {o["clientOrderId"]: o for o in fake.orders(SYM) if o["status"] == "NEW"}
    assert set(live) == {"sl", "tp"} and live["sl"]["orderListId"] == live["tp"]["orderListId"] != -1
    assert live["sl"]["type"] == "STOP_LOSS_LIMIT" and float(live["sl"]["price"]) == pytest.approx(94.05)
    assert fake.balance("XYZ") == (pytest.approx(held - 1.998), pytest.approx(1.998))  # locked once
    assert {o.client_order_id for o in b.open_orders()} == {"sl", "tp"}
    fake.move(SYM, last=111.0, low=100.0, high=111.0, open=100.0)
    assert b.order_status("tp").status == "FILLED" and b.order_status("tp").average_price == 110.0
    stop = b.order_status("sl")
    assert stop.status == "CANCELLED" and "oco" in stop.reason


def test_cancelling_one_leg_withdraws_the_pair(fake):
    b = make(fake)
    b.place(OrderRequest("e", SYM, "buy", 1.0))
    b.place(OrderRequest("s", SYM, "sell", 0.999, "stop_loss", stop_price=90.0, oco_group="g"))
    b.place(OrderRequest("t", SYM, "sell", 0.999, "take_profit", limit_price=120.0, oco_group="g"))
    assert b.cancel("s").status == "CANCELLED" and b.order_status("t").status == "CANCELLED"
    assert b.open_orders() == [] and fake.balance("XYZ")[1] == 0.0


def test_quotes_come_from_the_book(fake):
    b = make(fake)
    fake.set_price(SYM, 101.0, bid=100.9, ask=101.1)
    q = b.quotes([SYM, "NOPE/USDT"])
    assert list(q) == [SYM] and (q[SYM].last, q[SYM].bid, q[SYM].ask) == (101.0, 100.9, 101.1)


def test_a_duplicate_order_answer_on_a_resend_is_looked_up_not_booked_rejected(fake):
    """The send arrived but its answer was lost, and the venue's look-up lagged (said "does not exist"):
    the re-send meets Binance's -2010 "Duplicate order sent". That is our own order, found by its id."""
    b = make(fake)
    b.markets([SYM])
    missing = {"code": -2013, "msg": "Order does not exist."}
    fake.fail_next(400, times=2, body=missing, method="GET", path="/api/v3/order")  # the look-ups lag
    fake.lose_next(503, method="POST", path="/api/v3/order")  # stored (resting), answer lost
    o = b.place(OrderRequest("dup", SYM, "buy", 1.0, "limit", limit_price=90.0))
    assert o.status == "SUBMITTED" and o.client_order_id == "dup" and n_orders(fake) == 1
    assert [m for m, p, _ in fake.requests if p == "/api/v3/order"] == ["GET", "POST", "GET", "POST", "GET"]
    assert b.place(OrderRequest("dup", SYM, "buy", 1.0, "limit", limit_price=90.0)).status == "SUBMITTED"
    assert n_orders(fake) == 1
