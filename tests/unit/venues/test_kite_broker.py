"""KiteBroker against the fake Kite through the real kiteconnect client: login, auth, faults, GTTs."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.kit.fake_kite import TRADING_INSTRUMENTS, FakeKite
from tests.kit.users import trader
from workbench.venues.base import (
    AuthenticationError,
    OrderRejected,
    OrderRequest,
    TemporaryBrokerError,
)
from workbench.venues.kite import KiteConfig
from workbench.venues.kite.broker import (
    KiteBroker,
    complete_kite_login,
    kite_login_url,
    kite_session_expiry,
    kite_tag,
)

KEY, SECRET, TOKEN = "kite-key", "kite-secret", "kite-token"


@pytest.fixture
def fake():
    with FakeKite(TRADING_INSTRUMENTS, api_key=KEY, api_secret=SECRET, access_token=TOKEN, cash=100_000.0) as f:
        f.set_price("NSE:INFY", 100.0)
        f.set_price("BSE:INFY", 100.1)
        yield f


def broker(fake, **kw) -> KiteBroker:
    return KiteBroker(KEY, TOKEN, root=fake.url, timeout_s=kw.pop("timeout_s", 2), backoff_s=0.01, **kw)


def places(fake) -> int:
    return sum(1 for m, p, _ in fake.requests if m == "POST" and p == "/orders/regular")


def test_login_flow_verifies_checksum_and_stores_the_token_encrypted(fake, settings, monkeypatch):
    settings = settings.model_copy(update={"venues": {"kite": KiteConfig(root=fake.url)}})
    vault = trader(settings).vault
    vault.put("kite/api_key", KEY)
    monkeypatch.setenv("WORKBENCH_KEY_KITE_API_SECRET", SECRET)  # env fallback for the secret
    assert kite_login_url(settings, vault).startswith(f"https://kite.zerodha.com/connect/login?api_key={KEY}")
    rt = fake.issue_request_token()
    expiry = complete_kite_login(settings, rt, vault)
    local = expiry.tz_convert("Asia/Kolkata")
    assert (local.hour, local.minute) == (6, 0) and pd.Timedelta(0) < expiry - pd.Timestamp.now(
        tz="UTC"
    ) <= pd.Timedelta(days=1)
    stored = vault.get("kite/access_token")
    assert stored.expires_at == expiry and stored.value in fake.sessions and stored.value not in repr(stored)
    with pytest.raises(AuthenticationError, match="single-use"):  # a request token works once
        complete_kite_login(settings, rt, vault)
    b = KiteBroker.from_settings(settings, vault)
    assert b.check().ok and "no sandbox" in b.check().message and b.environment == "live"
    # the fake checked the real checksum: a wrong secret is refused
    monkeypatch.setenv("WORKBENCH_KEY_KITE_API_SECRET", "wrong")
    with pytest.raises(AuthenticationError):
        complete_kite_login(settings, fake.issue_request_token(), vault)


def test_expired_session_says_log_in_again(fake, settings):
    b = broker(fake)
    assert b.check().ok
    fake.expire_sessions()  # 06:00 IST
    st = b.check()
    assert not st.ok and "workbench keys kite-login" in st.message
    assert "Incorrect `api_key` or `access_token`" in st.message and "sessions end at 06:00 IST" in st.message
    with pytest.raises(AuthenticationError, match="log in again"):
        b.positions()
    vault = trader(settings).vault
    vault.put("kite/api_key", KEY)
    vault.put("kite/access_token", TOKEN, expires_at=pd.Timestamp("2024-05-02 00:30", tz="UTC"))
    with pytest.raises(AuthenticationError, match=r"expired at 2024-05-02 06:00 IST"):
        KiteBroker.from_settings(settings, vault)
    late = KiteBroker(KEY, TOKEN, root=fake.url, expires_at=pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1))
    n = len(fake.requests)
    with pytest.raises(AuthenticationError):
        late.balances()
    assert len(fake.requests) == n  # an expired session is not even sent
    assert kite_session_expiry(pd.Timestamp("2024-05-01 23:00", tz="UTC")) == pd.Timestamp("2024-05-02 00:30", tz="UTC")


def test_a_refused_token_keeps_kites_words_and_is_not_called_expired(fake):
    """A token refused hours before 06:00 was revoked (a newer login, a logout, another key's token):
    the message quotes Kite and says so, instead of claiming the daily expiry."""
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=5)
    b = KiteBroker(KEY, TOKEN, root=fake.url, timeout_s=2, backoff_s=0.01, expires_at=later)
    fake.expire_sessions()
    with pytest.raises(AuthenticationError) as e:
        b.positions()
    msg = str(e.value)
    assert "Incorrect `api_key` or `access_token`" in msg and "revoked" in msg and "kite-login" in msg
    assert "expired" not in msg and "sessions end at 06:00" not in msg


def test_one_position_whichever_spelling(fake):
    """``INFY`` (the lake's bare name) and ``NSE:INFY`` are one instrument: a sale named one way sees
    the holding looked up the other way, and positions list it once."""
    b = broker(fake)
    assert b.markets(["INFY"])["INFY"].exchange == "NSE"
    fake.set_holding("NSE:INFY", 30)
    assert b.positions() == {"INFY": 30.0}
    sold = b.place(OrderRequest("sell-all", "NSE:INFY", "sell", 30))
    assert sold.status != "REJECTED" and sold.symbol == "NSE:INFY"
    with pytest.raises(OrderRejected) as e:  # the 30 are spoken for, under either name
        b.place(OrderRequest("one-more", "INFY", "sell", 1))
    assert e.value.reason == "insufficient_position"
    q = b.quotes(["INFY", "NSE:INFY"])
    assert q["INFY"].last == q["NSE:INFY"].last == 100.0


def test_tags_are_short_and_orders_carry_them(fake):
    b = broker(fake)
    cid = "wb-123456-789-VERYLONGSYMBOLNAME-bsl0"
    o = b.place(OrderRequest(cid, "NSE:INFY", "buy", 5))
    tag = kite_tag(cid)
    assert len(tag) == 20 and tag.isalnum() and fake.orders[o.broker_order_id]["tag"] == tag
    assert o.status == "FILLED" and o.average_price == pytest.approx(100.0)
    # another process (no ledger) finds it by its tag and does not send it again
    again = broker(fake).place(OrderRequest(cid, "NSE:INFY", "buy", 5))
    assert again.broker_order_id == o.broker_order_id and places(fake) == 1
    assert broker(fake).fills_for(cid)[0].quantity == 5


def test_rms_rejections_map_to_stable_reasons(fake):
    b = broker(fake)
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("big", "NSE:INFY", "buy", 5000))
    assert e.value.reason == "insufficient_funds" and "Required margin is 500000.00" in str(e.value)
    assert fake.orders[next(iter(fake.orders))]["status"] == "REJECTED"  # Kite accepted, then its RMS rejected
    with pytest.raises(OrderRejected):  # idempotent: the same id is the same rejected order
        b.place(OrderRequest("big", "NSE:INFY", "buy", 5000))
    assert places(fake) == 1
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("odd", "NSE:INFY", "buy", 1, "limit", limit_price=100.02))
    assert e.value.reason == "tick_size"


def test_temporary_errors_retry_then_give_up(fake):
    b = broker(fake)
    fake.fail_next(429)
    fake.fail_next(503)
    assert b.balances()["INR"].free == pytest.approx(100_000.0)  # two retries, then the answer
    fake.fail_next(502, times=5)
    with pytest.raises(TemporaryBrokerError, match="retry later"):
        b.positions()
    fake.delay_next(1.5, times=3)
    with pytest.raises(TemporaryBrokerError):
        broker(fake, timeout_s=0.3).quotes(["NSE:INFY"])


def test_lost_answer_is_recovered_by_tag_not_sent_twice(fake):
    b = broker(fake)
    fake.lose_next(path="/orders/regular")  # the POST is accepted, its answer never arrives
    o = b.place(OrderRequest("lost-1", "NSE:INFY", "buy", 3))
    assert o.status == "FILLED" and places(fake) == 1 and b.positions() == {"NSE:INFY": 3}
    fake.fail_next(500, path="/orders/regular")  # refused before it arrived: sent again once
    b.place(OrderRequest("lost-2", "NSE:INFY", "buy", 2))
    assert places(fake) == 3 and b.positions() == {"NSE:INFY": 5}


def test_a_rate_limited_send_is_sent_again_and_a_persistent_failure_is_bounded(fake):
    b = broker(fake)
    fake.fail_next(429, path="/orders/regular")  # refused before it arrived: looked up by tag, then sent again
    assert b.place(OrderRequest("r1", "NSE:INFY", "buy", 2)).status == "FILLED"
    assert places(fake) == 2 and len(fake.orders) == 1
    fake.fail_next(502, times=5, path="/orders/regular")
    with pytest.raises(TemporaryBrokerError, match="may or may not have arrived after 3 tries"):
        b.place(OrderRequest("r2", "NSE:INFY", "buy", 2))
    assert places(fake) == 2 + 3 and len(fake.orders) == 1  # exactly the adapter's 3 tries, nothing placed


def test_a_lost_gtt_answer_is_found_in_the_gtt_list_not_sent_twice(fake):
    b = broker(fake)
    fake.set_holding("NSE:INFY", 10)
    fake.lose_next(path="/gtt/triggers")  # the stop's GTT is created, its answer never arrives
    sl = b.place(OrderRequest("sl", "NSE:INFY", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    assert sl.status == "SUBMITTED" and len(fake.gtts) == 1
    assert sum(m == "POST" and p == "/gtt/triggers" for m, p, _ in fake.requests) == 1


def test_partial_fills_keep_filling_and_blocked_cash_counts(fake):
    b = broker(fake)
    fake.depth["NSE:INFY"] = 4
    o = b.place(OrderRequest("thin", "NSE:INFY", "buy", 10, "limit", limit_price=100.0))
    assert o.status == "PARTIALLY_FILLED" and o.filled_quantity == 4
    bal = b.balances()["INR"]
    assert bal.total == pytest.approx(100_000 - 400) and bal.free == pytest.approx(100_000 - 1000)
    fake.move("NSE:INFY", last=99.5, low=99.0, high=100.5, open=100.0)
    fake.move("NSE:INFY", last=99.5, low=99.0, high=100.5, open=100.0)
    o = b.order_status("thin")
    assert o.status == "FILLED" and o.filled_quantity == 10 and len(b.fills()) == 3
    assert [f.quantity for f in b.fills_for("thin")] == [4, 4, 2]


def test_gtt_pair_is_one_two_leg_trigger_and_take_profit_cancels_the_stop(fake):
    b = broker(fake)
    b.place(OrderRequest("in", "NSE:INFY", "buy", 10))
    b.place(OrderRequest("sl", "NSE:INFY", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    assert [g["type"] for g in fake.gtts.values()] == ["single"]
    b.place(OrderRequest("tp", "NSE:INFY", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    (g,) = fake.gtts.values()
    assert g["type"] == "two-leg" and g["condition"]["trigger_values"] == [95.0, 110.0]
    assert (
        g["orders"][0]["price"] == pytest.approx(94.05) and g["orders"][1]["price"] == 110.0
    )  # stop → marketable limit 1% below
    assert sorted(o.client_order_id for o in b.open_orders()) == ["sl", "tp"]
    fake.move("NSE:INFY", last=111.0, low=104.0, high=112.0, open=105.0)
    tp, sl = b.order_status("tp"), b.order_status("sl")
    assert tp.status == "FILLED" and tp.average_price == pytest.approx(110.0) and sl.status == "CANCELLED"
    assert b.positions() == {} and {f.client_order_id for f in b.fills()} == {"in", "tp"}
    assert b.balances()["INR"].total == pytest.approx(100_000 - 1000 + 1100)


def test_cancelling_one_gtt_leg_keeps_the_other(fake):
    b = broker(fake)
    fake.set_holding("NSE:INFY", 10)  # settled CNC holdings from earlier days
    assert b.positions() == {"NSE:INFY": 10}
    b.place(OrderRequest("sl", "NSE:INFY", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "NSE:INFY", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    assert b.cancel("tp").status == "CANCELLED"
    (g,) = fake.gtts.values()
    assert (
        g["type"] == "single"
        and g["condition"]["trigger_values"] == [95.0]
        and b.order_status("sl").status == "SUBMITTED"
    )
    fake.move("NSE:INFY", last=94.0, low=93.0, high=100.0, open=100.0)
    assert b.order_status("sl").status == "FILLED" and b.positions() == {}
    assert b.cancel("sl").status == "FILLED"  # cancelling a final order changes nothing


def test_mis_exits_are_day_orders_with_oco_enforced(fake):
    b = broker(fake, product="MIS")
    b.place(OrderRequest("in", "BSE:INFY", "buy", 10))
    sl = b.place(OrderRequest("sl", "BSE:INFY", "sell", 10, "stop_loss", stop_price=95.0, oco_group="g"))
    b.place(OrderRequest("tp", "BSE:INFY", "sell", 10, "take_profit", limit_price=110.0, oco_group="g"))
    assert (
        fake.orders[sl.broker_order_id]["order_type"] == "SL-M"
        and fake.orders[sl.broker_order_id]["status"] == "TRIGGER PENDING"
    )
    assert not fake.gtts
    fake.move("BSE:INFY", last=94.0, low=93.0, high=100.0, open=99.0)
    assert b.order_status("sl").status == "FILLED" and b.order_status("tp").status == "CANCELLED"
    with pytest.raises(OrderRejected) as e:  # MIS would short: refused here
        b.place(OrderRequest("short", "BSE:INFY", "sell", 1))
    assert e.value.reason == "insufficient_position"


def test_quotes_batch_500_and_markets_come_from_the_instrument_dump(fake):
    b = broker(fake)
    keys = ["NSE:INFY", "BSE:INFY"] + [f"NSE:S{i:04d}" for i in range(1000)]
    q = b.quotes(keys)
    assert len(q) == 1002 and q["NSE:INFY"].last == 100.0 and q["NSE:INFY"].bid < q["NSE:INFY"].ask
    assert sum(p == "/quote" for _, p, _ in fake.requests) == 3
    m = b.markets(["NSE:INFY", "BSE:INFY", "INFY", "NSE:NOPE"])
    assert (
        sorted(m) == ["BSE:INFY", "INFY", "NSE:INFY"]
        and m["BSE:INFY"].tick_size == 0.05
        and m["NSE:INFY"].quote == "INR"
    )
    assert (
        m["INFY"].exchange == "NSE" and m["INFY"].symbol == "INFY"
    )  # a bare lake symbol trades on venues.kite.exchange
