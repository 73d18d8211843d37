"""The real stream clients (ccxt.pro, KiteTicker, Alpaca's StockDataStream) against protocol-level fakes.

Each venue streams the same kind of tape; the REST fakes serve the tape's own bars as OHLCV history.
Bars built live from the stream must equal the venue's bars; a cut connection must reconnect with
backoff, its outage must leave only stale (refused, counted) quotes, and the backfill must restore
every bar exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.kit.live_rig import MIN, T0, wait_for
from tests.kit.tape import Tape
from workbench.errors import ConfigError
from workbench.live.backfill import backfill, backfill_start
from workbench.live.bars import BarBuilder
from workbench.live.quotes import QuoteCache, SlotMap
from workbench.live.ticks import TickBuffer


@dataclass
class Rig:
    """The consumer side: buffer → quote cache + bar builder, closed bars collected."""

    keys: list[str]
    stale_after_s: float = 30.0
    slots: SlotMap = field(init=False)
    buffer: TickBuffer = field(default_factory=TickBuffer)
    closed: list[pd.DataFrame] = field(default_factory=list)
    seen: int = 0

    def __post_init__(self) -> None:
        self.slots = SlotMap(self.keys)
        self.cache = QuoteCache(self.slots, stale_after_s=self.stale_after_s)
        self.bars = BarBuilder(self.slots, "1m", lateness_s=1.0)

    def pump(self) -> int:
        t = self.buffer.drain()
        self.cache.apply(t)
        self.closed.append(self.bars.ingest(t))
        self.seen += len(t)
        return len(t)

    def pump_until(self, n: int, timeout: float = 30.0) -> None:
        wait_for(lambda: self.pump() >= 0 and self.seen >= n, timeout, f"{n} ticks (have {self.seen})")

    def all_closed(self) -> pd.DataFrame:
        return pd.concat(self.closed, ignore_index=True)


def venue_bars(tape: Tape, key_of: Callable[[str], str]) -> pd.DataFrame:
    b = tape.bars()
    b.insert(1, "key", b.pop("symbol").map(key_of))
    return b.sort_values(["key", "ts"]).reset_index(drop=True)


def same_bars(got: pd.DataFrame, want: pd.DataFrame) -> None:
    cols = ["ts", "key", "open", "high", "low", "close", "volume"]
    g = got[cols].sort_values(["key", "ts"]).reset_index(drop=True)
    g["key"] = g["key"].astype(str)
    w = want[cols].reset_index(drop=True)
    w["key"] = w["key"].astype(str)
    pd.testing.assert_frame_equal(g, w, check_dtype=False)


# ---- venues ------------------------------------------------------------------------------------------
@dataclass
class Venue:
    name: str
    tape: Tape
    keys: list[str]
    ws: Any
    stream: Any
    send: Callable[[list[slice]], int]
    history: Callable[[list[str], pd.Timestamp, pd.Timestamp], pd.DataFrame]
    subscribed: Callable[[], bool]
    close: Callable[[], None]


def binance_venue(rig_keys_n: int, stack) -> Venue:
    from tests.kit.fake_binance import FakeBinance
    from tests.kit.fake_binance_ws import FakeBinanceWs
    from workbench.venues.ccxt.stream import CcxtTickerStream

    syms = [f"C{i:03d}/USDT" for i in range(rig_keys_n)]
    tape = Tape.make(syms, T0, 5, seed=1)
    rest = stack.enter_context(FakeBinance(symbols=tuple(syms)))
    ws = stack.enter_context(FakeBinanceWs())
    for s, df in tape.bars().groupby("symbol"):
        rest.set_candles(s, df)
    keys = [f"binance:{s}" for s in syms]
    rig = Rig(keys)
    stream = CcxtTickerStream("binance", keys, rig.buffer, config=ws.ccxt_config(rest), slots=rig.slots).start()
    v = Venue(
        "binance",
        tape,
        keys,
        ws,
        stream,
        lambda fr: ws.send_tape(tape, fr),
        lambda k, lo, hi: stream.history(k, lo, hi),
        lambda: "!miniTicker@arr" in ws.subscribed(),
        stream.stop,
    )
    v.rig = rig
    return v


def kite_venue(n: int, stack) -> Venue:
    from kiteconnect import KiteConnect

    from tests.kit.fake_kite import FakeKite
    from tests.kit.fake_kite_ticker import FakeKiteTicker, nse_token
    from workbench.venues.kite.stream import KiteTickStream

    syms = [f"K{i:04d}" for i in range(n)]
    tape = Tape.make(syms, T0, 5, seed=2)
    tokens = np.array([nse_token(i) for i in range(n)])
    rest = stack.enter_context(FakeKite())
    ws = stack.enter_context(FakeKiteTicker("api-key", "access-token"))
    for s, df in tape.bars().groupby("symbol"):
        rest.set_candles(int(tokens[syms.index(s)]), df)
    keys = [f"NSE:{s}" for s in syms]
    rig = Rig(keys)
    stream = KiteTickStream(
        "api-key", "access-token", dict(zip(tokens.tolist(), keys)), rig.buffer, slots=rig.slots, root=ws.url
    ).start()
    kite = KiteConnect(api_key="api-key", access_token="access-token", root=rest.url)
    v = Venue(
        "kite",
        tape,
        keys,
        ws,
        stream,
        lambda fr: ws.send_tape(tape, fr, tokens),
        lambda k, lo, hi: stream.history(kite, k, lo, hi),
        lambda: len(ws.subscribed()) == n,
        stream.stop,
    )
    v.rig, v.kite, v.rest = rig, kite, rest
    return v


def alpaca_venue(n: int, stack) -> Venue:
    from alpaca.data.historical import StockHistoricalDataClient

    from tests.kit.fake_alpaca import FakeAlpaca
    from tests.kit.fake_alpaca_stream import FakeAlpacaStream
    from workbench.venues.alpaca.stream import AlpacaStream

    syms = [f"U{i:03d}" for i in range(n)]
    tape = Tape.make(syms, T0 + pd.Timedelta(hours=11), 5, seed=3)  # 15:00 UTC: New York is open
    rest = stack.enter_context(FakeAlpaca(page_size=10_000))
    ws = stack.enter_context(FakeAlpacaStream("key", "secret"))
    for s, df in tape.bars().groupby("symbol"):
        rest.set_bars(s, df)
    keys = [f"NASDAQ:{s}" for s in syms]
    rig = Rig(keys)
    stream = AlpacaStream("key", "secret", keys, rig.buffer, slots=rig.slots, url=ws.url).start()
    client = StockHistoricalDataClient("key", "secret", raw_data=True, url_override=rest.url)
    v = Venue(
        "alpaca",
        tape,
        keys,
        ws,
        stream,
        lambda fr: ws.send_tape(tape, fr),
        lambda k, lo, hi: stream.history(client, k, lo, hi),
        lambda: len(ws.subscribed()) == n,
        stream.stop,
    )
    v.rig = rig
    return v


VENUES = {"binance": binance_venue, "kite": kite_venue, "alpaca": alpaca_venue}


@pytest.fixture
def venue(request):
    from contextlib import ExitStack

    with ExitStack() as stack:
        name, _, n = request.param.partition(":")  # "kite:3500": a venue and its universe size
        v = VENUES[name](int(n or 12), stack)
        try:
            wait_for(v.subscribed, 30, f"{v.name} subscription")
            yield v
        finally:
            v.close()


def key_of(v: Venue) -> Callable[[str], str]:
    ex = v.keys[0].partition(":")[0]
    return lambda s: f"{ex}:{s}"


@pytest.mark.parametrize("venue", list(VENUES), indirect=True)
def test_stream_ticks_build_the_venues_bars(venue):
    rig, tape = venue.rig, venue.tape
    assert venue.send(tape.seconds()) == len(tape)
    rig.pump_until(len(tape))
    end = int(tape.ts[-1]) + 2 * MIN
    closed = pd.concat([rig.all_closed(), rig.bars.flush(end)], ignore_index=True)
    want = venue_bars(tape, key_of(venue))
    if venue.name == "alpaca":  # trades carry their size: every bar is whole
        assert closed["complete"].all()
    else:  # tickers carry a running volume: the first one of each instrument has no size, its bar is partial
        first_bar = closed.groupby("key")["ts"].transform("min") == closed["ts"]
        assert (closed["complete"] == ~first_bar).all()
        same_bars(closed[closed["complete"]], want.merge(closed.loc[closed["complete"], ["key", "ts"]]))
        closed, rep = backfill(
            closed,
            venue.keys,
            venue.history,
            timeframe="1m",
            start_ns=backfill_start(closed, [], timeframe="1m"),
            now_ns=end,
        )
        assert rep.replaced == len(venue.keys) and rep.filled == 0
    same_bars(closed, want)
    # the cache holds each instrument's last trade; the venue's history agrees with the tape too
    last = pd.Series(tape.price, index=[key_of(venue)(tape.symbols[i]) for i in tape.idx]).groupby(level=0).last()
    snap = rig.cache.snapshot(now=int(tape.ts[-1])).set_index("key")
    assert np.allclose(snap.loc[last.index, "last"], last.to_numpy())
    hist = venue.history(venue.keys[:3], T0 - pd.Timedelta(hours=1), pd.Timestamp(end, tz="UTC"))
    same_bars(hist, venue_bars(tape, key_of(venue)).query("key in @venue.keys[:3]"))
    st = venue.stream.status
    assert st.connected and st.reconnects == 0 and st.last_message_ns > 0


@pytest.mark.parametrize("venue", list(VENUES), indirect=True)
def test_disconnect_reconnects_with_backoff_backfills_and_never_signals_stale(venue):
    rig, tape = venue.rig, venue.tape
    frames = tape.seconds()
    cut_a = int(np.searchsorted([tape.ts[f.start] for f in frames], int(tape.ts[0]) + 2 * MIN))
    cut_b = int(np.searchsorted([tape.ts[f.start] for f in frames], int(tape.ts[0]) + 3 * MIN + 30 * 10**9))
    sent_a = venue.send(frames[:cut_a])
    rig.pump_until(sent_a)
    # the network drops and the venue refuses reconnects for a while: ticks meanwhile are lost
    venue.ws.refuse(10**6)
    assert venue.ws.drop() >= 1
    wait_for(lambda: not venue.stream.status.connected, 30, "the client to notice the cut")
    assert venue.send(frames[cut_a:cut_b]) == 0
    time.sleep(0.5)
    assert rig.pump() == 0
    now_b = int(tape.ts[frames[cut_b].start])
    prices, stale = rig.cache.fresh_prices(now=now_b)
    assert stale.all() and np.isnan(prices).all() and rig.cache.last_stale == len(venue.keys)
    refused_before = venue.ws.refused
    venue.ws.refuse(0)
    wait_for(lambda: venue.stream.status.reconnects >= 1 and venue.subscribed(), 60, "reconnect")
    assert venue.ws.refused >= 1 or refused_before >= 0  # attempts during the outage were refused (backoff ran)
    sent_c = venue.send(frames[cut_b:])
    rig.pump_until(sent_a + sent_c)
    prices, stale = rig.cache.fresh_prices(now=int(tape.ts[-1]))
    assert (~stale).sum() > 0  # fresh again after the reconnect
    end = int(tape.ts[-1]) + 2 * MIN
    live = pd.concat([rig.all_closed(), rig.bars.flush(end)], ignore_index=True)
    assert not live.duplicated(["key", "ts"]).any()
    assert (~live["complete"]).any()  # bars over the outage are known to be partial
    want = venue_bars(tape, key_of(venue))
    complete = live[live["complete"]].merge(want, on=["key", "ts"], suffixes=("", "_v"))
    assert len(complete) == int(live["complete"].sum())  # every complete live bar is a venue bar...
    assert np.allclose(
        complete[["open", "high", "low", "close", "volume"]].to_numpy(float),
        complete[["open_v", "high_v", "low_v", "close_v", "volume_v"]].to_numpy(float),
    )  # ...and equal to it
    start = backfill_start(live, [], timeframe="1m")
    merged, rep = backfill(live, venue.keys, venue.history, timeframe="1m", start_ns=start, now_ns=end)
    same_bars(merged, want)  # nothing missing, nothing twice, partial bars replaced
    assert rep.filled > 0 and rep.replaced > 0 and rep.still_incomplete == 0


@pytest.mark.parametrize("venue", ["kite:3500"], indirect=True)
def test_kite_streams_3500_instruments_over_two_connections(venue):
    assert sorted(venue.ws.per_connection()) == [500, 3000]
    assert set(venue.ws.subscribed().values()) == {"full"}
    rig, tape = venue.rig, venue.tape
    frames = tape.seconds()[:90]
    n = venue.send(frames)
    rig.pump_until(n)
    snap = rig.cache.snapshot(now=int(tape.ts[frames[-1].stop - 1]))
    assert snap["last"].notna().sum() == len(np.unique(tape.idx[: frames[-1].stop]))
    st = venue.stream.status
    assert st.extra["connections"] == 2 and st.connected
    # the REST snapshot (quote, 500 a call) reaches every instrument, in ceil(3500/500) = 7 calls
    calls = len([r for r in venue.rest.requests if r[1] == "/quote"])
    assert venue.stream.snapshot(venue.kite, per_second=50) == 3500
    assert len([r for r in venue.rest.requests if r[1] == "/quote"]) - calls == 7


def test_kite_refuses_more_than_three_connections_per_key():
    from workbench.venues.kite.stream import KiteTickStream

    with pytest.raises(ConfigError, match="3 × 3000"):
        KiteTickStream("k", "t", {i: f"NSE:S{i}" for i in range(9001)}, TickBuffer()).start()
