"""A paper run on live data: three venues at once (Binance over ccxt.pro, NSE over KiteTicker, NASDAQ over
Alpaca's stream), the real clients against protocol-level fakes, the clock frozen to the fakes' tape.

What must hold: bars built from ticks equal the venues' bars (and reach the lake exactly once); orders
only for open markets (09:30 IST on a Monday: NSE and crypto trade, New York is closed); a quote that
went stale never feeds a signal; a venue that is down holds its instruments with the reason while the
others trade; after a disconnect the bars are backfilled, none missing, none twice.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pandas as pd
import pytest

from tests.kit.live_rig import MIN, T0, DrivenFeed, ThreeVenues, wait_for
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
    m = w.merge(g, on=["key", "ts"], how="outer", suffixes=("_venue", "_live"), indicator=True)
    off = m["_merge"] != "both"
    for c in OHLCV:
        off |= ~np.isclose(m[f"{c}_venue"], m[f"{c}_live"], equal_nan=True)
    assert not off.any(), f"bars that differ from the venue's:\n{m[off].head(20).to_string()}"
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


@pytest.mark.parametrize("down", ["binance", "kite", "alpaca"])
def test_a_venue_down_holds_its_instruments_then_reconnects_and_backfills(live_settings, down):
    """One venue's stream and REST both fail for three cycles: its instruments HOLD, saying why, while the
    others trade; when it is back, the bars it missed are backfilled, none missing, none twice."""
    settings = live_settings
    with ExitStack() as stack:
        rig = ThreeVenues(stack, 30, 30, 20, per_minute=6)
        feed = stack.enter_context(_feed(rig, settings, stale_after_s=45.0))
        rig.attach(feed)
        v = rig.venues[down]
        src = next(s for s in feed.sources if s.venue.endswith(down))

        def before(cycle: int) -> None:
            if cycle == 4:  # the network to this venue goes: the websocket is cut, REST answers 503
                rig.outage(down, True)
                wait_for(lambda: not src.status().connected, 30, f"{down} to notice the cut")
            if cycle == 7:  # back
                rig.outage(down, False)
                wait_for(lambda: src.status().reconnects >= 1 and rig.subscribed(), 60, f"{down} to reconnect")

        driven = DrivenFeed(rig, feed, STEP, before)
        run_id = run_live(
            settings, "paper", engine=_engine(rig.keys), feed=driven, cycles=10, interval_s=0, min_interval_s=0
        )
        store = Store(settings.store_url)
        assert store.run(run_id)["status"] == "STOPPED"
        sigs = store.signals(run_id, last_cycles=None)
        orders = store.orders(run_id, limit=100_000)
        for cycle in (4, 5, 6):
            tk = driven.ticks[cycle - 1]
            mine = set(v.keys)
            assert mine <= set(tk.hold) and all("down" in tk.hold[k] for k in mine), tk.note
            assert not any("down" in why for k, why in tk.hold.items() if k not in mine)
            assert "down" in tk.note
            s = sigs[(sigs["cycle"] == cycle) & sigs["symbol"].isin(mine)]
            assert (s["signal"] == "HOLD").all()
            assert not orders[(orders["cycle"] == cycle) & orders["symbol"].isin(mine)].shape[0]
            assert not any(k in tk.quotes for k in mine)
        others = orders[~orders["symbol"].isin(v.keys)]
        assert len(others[others["cycle"].isin([4, 5, 6])]) or down == "binance"  # the others kept trading
        assert not any(k in driven.ticks[-1].hold and "down" in driven.ticks[-1].hold[k] for k in v.keys)

        last_closed = pd.Timestamp(rig.now - rig.now % MIN - 2 * MIN, tz="UTC")
        got = _lake_bars(settings, rig.keys)
        assert not got.duplicated(["key", "ts"]).any()
        want = rig.venue_bars()
        _same(got[got["ts"] <= last_closed], want[want["ts"] <= last_closed])
        assert feed.health[feed.sources.index(src)].backfilled > 0


def test_a_restart_mid_day_warms_up_from_the_lake_and_trades_the_same_signals(settings, tmp_path):
    """Run A never stops; run B stops after three cycles, misses 40 s of ticks, and a new process starts:
    it warms up from the lake its predecessor wrote, backfills the rest from the venues, and from the
    first bar that closes after the restart on its signals are A's."""
    from workbench.config import load_settings

    sa, sb = settings, load_settings(tmp_path / "home_b")
    sb.ensure_dirs()
    ta, tb = trader(sa), trader(sb)
    step = MIN

    def feed(rig, s):
        return LiveFeed(rig.keys, rig.sources, timeframe="1m", warmup_bars=30, stale_after_s=45.0,
                        clock=rig.clock, lake=Lake(s.lake_dir), lateness_s=0.0)  # fmt: skip

    with ExitStack() as stack:
        rig_a = ThreeVenues(stack, 30, 30, 20, per_minute=6)  # clocks at 04:00:00, cycles on whole minutes
        rig_b = ThreeVenues(stack, 30, 30, 20, per_minute=6)
        fa = stack.enter_context(feed(rig_a, sa))
        rig_a.attach(fa)
        run_a = run_live(sa, "paper", engine=_engine(rig_a.keys), feed=DrivenFeed(rig_a, fa, step), cycles=8,
                         interval_s=0, min_interval_s=0, session=ta.token)  # fmt: skip

        fb1 = feed(rig_b, sb)
        rig_b.attach(fb1)
        run_b1 = run_live(sb, "paper", engine=_engine(rig_b.keys), feed=DrivenFeed(rig_b, fb1, step), cycles=3,
                          interval_s=0, min_interval_s=0, session=tb.token)  # fmt: skip
        # B's process is gone (its feed closed with the run) until 04:03:40: those ticks are lost to it
        rig_b.feed = None
        rig_b.advance(rig_b.now + 40 * 10**9, skip=tuple(rig_b.venues))
        fb2 = stack.enter_context(feed(rig_b, sb))
        rig_b.attach(fb2)  # starts at 04:03:40: warm-up from the lake B1 wrote
        assert fb2._times.size and fb2._times[-1] == int((T0 + pd.Timedelta(minutes=2)).value)
        rig_b.now -= 40 * 10**9  # the next cycle is at 04:04:00 (only the ticks after 04:03:40 are streamed)
        run_b2 = run_live(sb, "paper", engine=_engine(rig_b.keys), feed=DrivenFeed(rig_b, fb2, step), cycles=5,
                          interval_s=0, min_interval_s=0, session=tb.token)  # fmt: skip

        store_a, store_b = Store(sa.store_url), Store(sb.store_url)
        assert store_b.run(run_b1)["feed"] == store_b.run(run_b2)["feed"] == "LIVE"
        cols = ["bar_ts", "symbol", "signal", "strength"]
        sig_a = store_a.signals(run_a, last_cycles=None)
        sig_b = store_b.signals(run_b2, last_cycles=None)
        after = pd.Timestamp("2026-01-05 04:05", tz="UTC")  # the first bar closed after the restart is 04:04
        a = sig_a[pd.to_datetime(sig_a["bar_ts"], utc=True) >= after][cols].reset_index(drop=True)
        b = sig_b[pd.to_datetime(sig_b["bar_ts"], utc=True) >= after][cols].reset_index(drop=True)
        assert len(a) and (a["signal"] != "HOLD").any()
        pd.testing.assert_frame_equal(a, b)
