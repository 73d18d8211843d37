"""A paper run on live data: three venues at once (Binance over ccxt.pro, NSE over KiteTicker, NASDAQ over
Alpaca's stream), the real clients against protocol-level fakes, the clock frozen to the fakes' tape.

What must hold: bars built from ticks equal the venues' bars (and reach the lake exactly once); orders
only for open markets (09:30 IST on a Monday: NSE and crypto trade, New York is closed); a quote that
went stale never feeds a signal; a venue that is down holds its instruments with the reason while the
others trade; after a disconnect the bars are backfilled, none missing, none twice.
"""

from __future__ import annotations

from contextlib import ExitStack

import pandas as pd
import pytest

from tests.kit.live_rig import MIN, DrivenFeed, ThreeVenues
from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from workbench.config import SignalParams
from workbench.data.lake import Lake
from workbench.live.feed import LiveFeed
from workbench.trading.runner import run_live
from workbench.trading.store import Store

STEP = 30 * 10**9
SIZES = (1200, 1300, 500)  # 3,000 instruments
OHLCV = ["open", "high", "low", "close", "volume"]


def _engine(keys: list[str]) -> MomentumEngine:
    # a short lookback and a low bar for a signal: the point is orders flowing, not edge
    params = SignalParams(atr_window=3)
    return MomentumEngine(
        lookback=3, gain=3.0, params=params, universe={"exchange": "mixed", "timeframe": "1m", "symbols": keys}
    )


def _feed(rig: ThreeVenues, settings, stale_after_s: float = 90.0) -> LiveFeed:
    return LiveFeed(
        rig.keys,
        rig.sources,
        timeframe="1m",
        warmup_bars=30,
        stale_after_s=stale_after_s,
        clock=rig.clock,
        lake=Lake(settings.lake_dir),
        lateness_s=1.0,
    )


def _lake_bars(settings, keys: list[str]) -> pd.DataFrame:
    lake, parts = Lake(settings.lake_dir), []
    for ex in dict.fromkeys(k.partition(":")[0] for k in keys):
        c = lake.load_candles(ex, "1m")
        parts.append(c.assign(key=ex + ":" + c.pop("symbol").astype(str)))
    return pd.concat(parts, ignore_index=True)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    cols = ["ts", "key", *OHLCV]
    g = got[cols].sort_values(["key", "ts"]).reset_index(drop=True)
    w = want[cols].sort_values(["key", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, w, check_dtype=False)


@pytest.fixture
def live_settings(settings, monkeypatch):
    trader(settings, monkeypatch=monkeypatch)
    return settings


def test_paper_run_on_three_live_venues_with_3000_instruments(live_settings):
    settings = live_settings
    with ExitStack() as stack:
        rig = ThreeVenues(stack, *SIZES)
        feed = stack.enter_context(_feed(rig, settings))
        rig.attach(feed)
        driven = DrivenFeed(rig, feed, STEP)
        cycles = 8
        run_id = run_live(
            settings, "paper", engine=_engine(rig.keys), feed=driven, cycles=cycles, interval_s=0, min_interval_s=0
        )
        store = Store(settings.store_url)
        run = store.run(run_id)
        assert run["status"] == "STOPPED" and run["feed"] == "LIVE", run
        assert len(rig.keys) == sum(SIZES) and driven.calls == cycles

        # bars: everything closed by the last cycle is in the lake, once, equal to the venues' own bars
        last_closed = rig.now - rig.now % MIN - MIN - MIN  # the bar before the last is past its lateness
        got = _lake_bars(settings, rig.keys)
        assert not got.duplicated(["key", "ts"]).any()
        want = rig.venue_bars()
        lo = want["ts"].min()
        want = want[(want["ts"] >= lo) & (want["ts"] <= pd.Timestamp(last_closed, tz="UTC"))]
        got = got[got["ts"] <= pd.Timestamp(last_closed, tz="UTC")]
        _same(got, want)

        # orders: crypto and NSE trade, New York is closed (its BUYs were held with the reason)
        orders = store.orders(run_id, limit=100_000)
        venues = orders["symbol"].str.partition(":")[0]
        assert len(orders) and set(venues) <= {"binance", "NSE"}, orders["symbol"].head()
        # NSE's BUYs reached the risk rules (an order, or a rejection such as buying power once the cash is
        # spent), never a "closed" hold; New York's were held before risk
        rejected = store.events(run_id, limit=100_000, kind="risk_rejection")["message"]
        assert rejected.str.contains("BUY NSE:").any() or (venues == "NSE").any()
        assert not rejected.str.contains("BUY NASDAQ:").any()  # (a SELL is an exit: still managed)
        tick = driven.ticks[-1]
        us = [k for k in rig.keys if k.startswith("NASDAQ:")]
        assert set(tick.no_entry) == set(us) and "NASDAQ is closed" in tick.no_entry[us[0]]
        held = store.events(run_id, limit=100_000, kind="hold")
        assert held["message"].str.contains("BUY NASDAQ:").any()
        assert not held["message"].str.contains("BUY NSE:|BUY binance:").any()

        # stale quotes never feed a signal: whatever was stale in a cycle has only HOLD there
        sigs = store.signals(run_id, last_cycles=None)
        seen_stale = 0
        for cycle, tk in enumerate(driven.ticks, start=1):
            stale = [s for s, why in tk.hold.items() if why.startswith("stale")]
            seen_stale += len(stale)
            mine = sigs[(sigs["cycle"] == cycle) & sigs["symbol"].isin(stale)]
            assert (mine["signal"] == "HOLD").all()
            assert tk.stale == len(stale)
        assert seen_stale > 0  # the tape's quiet instruments did go stale
        assert feed.stale_refused >= seen_stale
