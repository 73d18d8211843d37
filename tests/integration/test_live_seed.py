"""A quiet instrument has a fresh quote from the start: Binance's all-market stream sends only what
changed, so without the REST snapshot at start it would HOLD as stale until its first trade.
Real ccxt (REST) and ccxt.pro (websocket) clients against the local fakes."""

from __future__ import annotations

import time

import pandas as pd

from tests.kit.fake_binance import FakeBinance
from tests.kit.fake_binance_ws import FakeBinanceWs
from tests.kit.live_rig import wait_for
from workbench.live.feed import LiveFeed
from workbench.live.sources import ccxt_data

SYMBOLS = ("AAA/USDT", "BBB/USDT")


def test_a_quiet_symbol_is_quoted_from_the_rest_snapshot_at_start():
    keys = [f"binance:{s}" for s in SYMBOLS]
    with FakeBinance(symbols=("BTC/USDT",)) as rest, FakeBinanceWs() as ws:
        for s, p in zip(SYMBOLS, (12.5, 40.25), strict=True):
            rest.add_market(s, step="0.001", tick="0.01", min_notional="10", price=p)
        config = {**ws.ccxt_config(rest), "rateLimit": 1}
        feed = LiveFeed(
            keys,
            lambda buf, slots: [ccxt_data("binance", keys, buf, slots, "1m", config)],
            timeframe="1m",
            warmup_bars=10,
            stale_after_s=60.0,
            columns=list(SYMBOLS),
            exchange="binance",
        )
        with feed:
            feed.start()
            wait_for(lambda: "!miniTicker@arr" in ws.subscribed(), 30, "the all-market subscription")
            assert not feed.bars.at(int(pd.Timestamp.now(tz="UTC").value) // 60_000_000_000 * 60_000_000_000).shape[0]
            time.sleep(0.05)
            tick = feed.next()  # no ticker frame has arrived: the market is quiet
    stale = {s: r for s, r in tick.hold.items() if "stale" in r}
    assert tick.stale == 0 and not stale, stale
    assert {s: q.last for s, q in tick.quotes.items()} == {"AAA/USDT": 12.5, "BBB/USDT": 40.25}
    assert tick.panel.close.iloc[-1].tolist() == [12.5, 40.25]  # the forming bar, flat at the quote
    assert tick.panel.volume.iloc[-1].tolist() == [0.0, 0.0]  # a ticker's 24 h total is no traded size
