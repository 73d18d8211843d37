"""`workbench live run --broker alpaca` end to end against the local FakeAlpaca (paper endpoint):
keys from the vault, the real alpaca-py client, whole-share orders, exits resting at the venue and
the local book equal to Alpaca's positions after every cycle."""

from __future__ import annotations

from tests.kit.fake_alpaca import FakeAlpaca
from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.users import trader
from tests.kit.venue import VenueFollowsTheFeed
from workbench.config import load_settings
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store

KEY, SECRET = "PKTESTKEY0123456789", "alpaca-secret-0123456789abcdef"


def test_live_run_on_alpaca_paper_trades_whole_shares_and_stays_in_sync(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_KEY_ALPACA_API_KEY", raising=False)
    panel = synthetic_panel(3, 90, seed=11, exchange="NASDAQ")
    with FakeAlpaca(key=KEY, secret=SECRET, cash=100_000.0) as fake:
        for sym in panel.symbols:
            fake.add_asset(sym, "NASDAQ", price=float(panel.close[sym].iloc[-6]))
        s = load_settings(
            tmp_path / "home", broker={"default": "alpaca", "timeout_s": 5.0}, venues={"alpaca": {"url": fake.url}}
        )
        s.ensure_dirs()
        vault = trader(s, monkeypatch=monkeypatch).vault  # the run's owner; keys in their vault
        vault.put("alpaca/api_key", KEY)
        vault.put("alpaca/secret", SECRET)
        feed = VenueFollowsTheFeed(ReplayFeed.from_panel(panel, warmup_bars=40, replay_bars=5), fake)
        rid = run_live(s, engine=MomentumEngine(lookback=10, gain=3.0), feed=feed, interval_s=0.0, cycles=3)

        store = Store(s.store_url)
        run = store.run(rid)
        assert run["status"] == "STOPPED", run["message"]
        assert run["broker"] == "alpaca" and run["environment"] == "testnet"
        assert store.checks(rid)["ok"].all()
        buys = store.orders(rid).query("side == 'buy' and status == 'FILLED'")
        assert len(buys) > 0 and (buys["quantity"] % 1 == 0).all()  # whole shares
        venue = {sym: float(p["qty"]) for sym, p in fake.positions.items() if float(p["qty"])}
        book = store.positions(run["account"]).set_index("symbol")["quantity"]
        assert venue and {sym: float(book[sym]) for sym in venue} == venue  # the book equals Alpaca's positions
        assert store.events(rid, kind="reconcile").empty, store.events(rid, kind="reconcile")["message"].tolist()
        resting = {
            o["symbol"]
            for o in fake.orders.values()
            if o["side"] == "sell" and o["status"] in ("new", "accepted", "held")
        }
        assert resting == set(venue)  # each position's exits rest at Alpaca
        assert len({o["client_order_id"] for o in fake.orders.values() if o["side"] == "buy"}) == len(
            buys
        )  # no entry sent twice
