"""The live feed as a user's run builds it: from settings alone. ``[venues.kite] root/ws_root`` and
``[venues.alpaca] data_url/stream_url`` point the real KiteConnect/KiteTicker and alpaca-py clients at
the local fakes; nothing is handed to the sources directly."""

from __future__ import annotations

import time
from contextlib import ExitStack

import numpy as np
import pandas as pd
import pytest

from tests.kit.fake_alpaca import FakeAlpaca
from tests.kit.fake_alpaca_stream import FakeAlpacaStream
from tests.kit.fake_kite import FakeKite
from tests.kit.fake_kite_ticker import FakeKiteTicker
from tests.kit.live_rig import wait_for
from tests.kit.tape import Tape
from workbench.config import load_settings
from workbench.instruments import InstrumentMaster, refresh
from workbench.live.sources import feed_for

NSE = ("RELIANCE", "TCS")  # what FakeKite's instrument list holds (tokens 738561, 2953217)
US = ("AAPL", "MSFT")


@pytest.fixture
def venues(tmp_path, monkeypatch):
    with ExitStack() as stack:
        kite_rest = stack.enter_context(FakeKite())
        kite_ws = stack.enter_context(FakeKiteTicker("api-key", "access-token"))
        alp_rest = stack.enter_context(FakeAlpaca(page_size=10_000))
        alp_ws = stack.enter_context(FakeAlpacaStream("key", "secret"))
        for name, value in {
            "KITE_API_KEY": "api-key",
            "KITE_ACCESS_TOKEN": "access-token",
            "ALPACA_API_KEY": "key",
            "ALPACA_SECRET": "secret",
        }.items():
            monkeypatch.setenv(f"WORKBENCH_KEY_{name}", value)
        settings = load_settings(
            tmp_path / "home",
            venues={
                "kite": {"root": kite_rest.url, "ws_root": kite_ws.url},
                "alpaca": {"url": alp_rest.url, "data_url": alp_rest.url, "stream_url": alp_ws.url},
            },
            live={"warmup_bars": 30, "stale_after_s": 600.0},
        )
        settings.ensure_dirs()
        yield settings, kite_rest, kite_ws, alp_rest, alp_ws


def test_kite_and_alpaca_streams_built_from_settings_reach_the_configured_urls(venues):
    from kiteconnect import KiteConnect

    from workbench.venues.kite.instruments import load_kite

    settings, kite_rest, kite_ws, alp_rest, alp_ws = venues
    kite = KiteConnect(api_key="api-key", access_token="access-token", root=kite_rest.url)
    refresh(InstrumentMaster.of(settings), "kite", loaders={"kite": lambda _: load_kite(kite=kite)})
    table = InstrumentMaster.of(settings).table().set_index("key")
    tokens = np.array([int(table.loc[f"NSE:{s}", "kite_token"]) for s in NSE])
    now = pd.Timestamp.now(tz="UTC").floor("s")
    nse_tape = Tape.make(NSE, now - pd.Timedelta(minutes=5), 5, per_minute=6, seed=1)
    us_tape = Tape.make(US, now - pd.Timedelta(minutes=5), 5, per_minute=6, seed=2)
    for i, (_, df) in enumerate(nse_tape.bars().groupby("symbol", sort=False)):
        kite_rest.set_candles(int(tokens[NSE.index(df["symbol"].iloc[0])]), df)
        assert i < len(NSE)
    for sym, df in us_tape.bars().groupby("symbol"):
        alp_rest.set_bars(sym, df)

    universe = {
        "exchange": "mixed",
        "timeframe": "1m",
        "symbols": [f"NSE:{s}" for s in NSE] + [f"NASDAQ:{s}" for s in US],
    }
    feed = feed_for(settings, universe, broker="paper")
    try:
        feed.start()
        wait_for(lambda: len(kite_ws.subscribed()) == len(NSE), 60, "the Kite subscription from settings")
        wait_for(lambda: alp_ws.subscribed() == set(US), 60, "the Alpaca subscription from settings")
        base = feed.buffer.received
        sent = kite_ws.send_tape(nse_tape, nse_tape.seconds(), tokens) + alp_ws.send_tape(us_tape, us_tape.seconds())
        assert sent == len(nse_tape) + len(us_tape)
        wait_for(lambda: feed.buffer.received - base >= sent, 60, "the ticks of both venues")
        # the REST side (backfill after a reconnect) of the same settings-built sources: their history
        lo, hi = now - pd.Timedelta(minutes=5), now
        got = {src.venue: src.history(list(src.keys), lo, hi) for src in feed.sources}
    finally:
        feed.close()
    assert set(got) == {"kite", "alpaca"}
    assert len(got["kite"]) and len(got["alpaca"])
    assert any(p.startswith("/instruments/historical") for _, p, _ in kite_rest.requests)
    assert any("/bars" in p for _, p, _ in alp_rest.requests), alp_rest.requests[:3]


def test_an_alpaca_pull_and_a_live_run_extend_one_lake_series(venues):
    """`data pull --source alpaca` stores AAPL under the master's NASDAQ (not a venue-made ``US``), the
    name the live feed's key NASDAQ:AAPL uses: the live run warms up from the pulled bars and appends
    its own closed bars to the same series."""
    from workbench.data.ingest import pull
    from workbench.data.lake import Lake
    from workbench.instruments import _frame
    from workbench.venues import venue_config
    from workbench.venues.alpaca.data import make_source

    settings, _, _, alp_rest, alp_ws = venues
    listed = _frame(2, symbol=list(US), exchange=["NASDAQ", "NASDAQ"], active=True, source="nasdaqlisted")
    InstrumentMaster.of(settings).replace_sources({"nasdaqlisted": listed})
    now = pd.Timestamp.now(tz="UTC").floor("min")
    tape = Tape.make(US, now - pd.Timedelta(minutes=40), 40, per_minute=6, seed=4)
    cut = now - pd.Timedelta(minutes=10)
    bars = tape.bars()
    for sym, df in bars[bars["ts"] < cut].groupby("symbol"):  # the venue's history at the time of the pull
        alp_rest.set_bars(sym, df)
    lake = Lake(settings.lake_dir)
    source = make_source(settings, venue_config(settings, "alpaca"))
    report = pull(lake, source, list(US), "1m", since=now - pd.Timedelta(minutes=40), progress=False)
    assert report.ok and not report.errors, report
    assert lake.symbols("US", "1m") == [] and set(lake.symbols("NASDAQ", "1m")) == set(US)
    pulled = lake.load_candles("NASDAQ", "1m", ["AAPL"])
    assert len(pulled) and pulled["ts"].max() < cut
    for sym, df in bars.groupby("symbol"):  # ten minutes later: the live run starts
        alp_rest.set_bars(sym, df)

    universe = {"exchange": "NASDAQ", "timeframe": "1m", "symbols": list(US)}
    feed = feed_for(settings, universe, broker="paper")
    try:
        feed.start()
        wait_for(lambda: alp_ws.subscribed() == set(US), 60, "the Alpaca subscription")
        later = Tape.make(US, now, 1, per_minute=20, seed=5)  # the minute being traded now
        alp_ws.send_tape(later, [f for f in later.seconds() if later.ts[f.start] <= time.time_ns()])
        feed.next()
    finally:
        feed.close()
    series = lake.load_candles("NASDAQ", "1m", ["AAPL"])
    assert series["ts"].is_unique and series["ts"].is_monotonic_increasing
    # the same series, extended by the live run past the pull (backfilled from the venue, then live)
    pd.testing.assert_frame_equal(series[series["ts"] < cut].reset_index(drop=True), pulled, check_dtype=False)
    assert series["ts"].max() >= cut
    assert lake.symbols("US", "1m") == []


def test_the_feed_answers_open_with_the_runs_extra_holidays(venues):
    """``feed_for`` gives the feed the settings' calendars (no process-wide holidays): Republic Day 2027,
    added in these settings only, is closed for this feed's NSE keys; the same moment is open by the
    recorded calendar that a feed without settings would use."""
    import datetime as dt

    from kiteconnect import KiteConnect

    from workbench.config import CalendarSettings
    from workbench.data.calendars import Calendars
    from workbench.live.sessions import open_mask
    from workbench.venues.kite.instruments import load_kite

    settings, kite_rest = venues[0], venues[1]
    kite = KiteConnect(api_key="api-key", access_token="access-token", root=kite_rest.url)
    refresh(InstrumentMaster.of(settings), "kite", loaders={"kite": lambda _: load_kite(kite=kite)})
    custom = settings.model_copy(update={"calendars": CalendarSettings(extra_holidays={"NSE": [dt.date(2027, 1, 26)]})})
    universe = {
        "exchange": "mixed",
        "timeframe": "1m",
        "symbols": [f"NSE:{s}" for s in NSE] + [f"NASDAQ:{s}" for s in US],
    }
    republic_day = pd.Timestamp("2027-01-26 11:00", tz="Asia/Kolkata")
    keys = np.array(["NSE", "NSE", "NASDAQ", "NASDAQ"], dtype=object)
    feed = feed_for(custom, universe, broker="paper")
    try:
        assert feed.calendars == Calendars.from_settings(custom)
        assert feed._calendar(keys, republic_day).tolist() == [False, False, False, False]  # NASDAQ: 00:30 ET
        assert feed._calendar(keys, republic_day + pd.Timedelta(days=1)).tolist() == [True, True, False, False]
    finally:
        feed.close()
    assert open_mask(keys, republic_day).tolist() == [True, True, False, False]  # the recorded calendar
