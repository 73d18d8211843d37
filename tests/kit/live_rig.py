"""Three venues at once for live-feed tests: Binance (ccxt.pro), Kite (KiteTicker), Alpaca (SDK stream),
each a protocol-level fake streaming its own tape, with REST fakes serving that tape's bars as history.

The rig owns a simulated clock. ``advance(to_ns)`` streams every venue's tape seconds up to ``to_ns``
and waits until the feed's buffer holds them, so a cycle at ``to_ns`` sees exactly what a live
process would have received by then; ``DrivenFeed`` does that before each of the loop's ``next()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tests.kit.tape import Tape
from workbench.live.quotes import SlotMap
from workbench.live.sources import StreamData, alpaca_data, ccxt_data, kite_data
from workbench.live.ticks import TickBuffer


@contextmanager
def _null() -> Iterator[None]:
    yield


__all__ = ["MIN", "T0", "ThreeVenues", "DrivenFeed", "wait_for"]

MIN = 60 * 10**9
T0 = pd.Timestamp("2026-01-05 04:00", tz="UTC")  # Monday 09:30 IST: NSE open, New York closed, crypto 24/7
TAPE_START = T0 - pd.Timedelta(minutes=20)


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class _Venue:
    name: str
    tape: Tape
    keys: list[str]
    ws: Any
    rest: Any
    send: Callable[[list[slice]], int]
    sent_to: int = 0  # index into the tape's seconds: frames before it were streamed
    frames: list[slice] = field(default_factory=list)
    starts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))


class ThreeVenues:
    """``n_crypto`` Binance pairs, ``n_nse`` NSE stocks, ``n_us`` NASDAQ stocks; tapes from ``start`` for
    ``minutes``; the clock begins at ``live_from`` (bars before it exist only as the venues' history)."""

    def __init__(
        self,
        stack: ExitStack,
        n_crypto: int,
        n_nse: int,
        n_us: int,
        *,
        start: pd.Timestamp = TAPE_START,
        minutes: int = 30,
        live_from: pd.Timestamp = T0,
        per_minute: int = 2,
    ) -> None:
        from kiteconnect import KiteConnect

        from tests.kit.fake_alpaca import FakeAlpaca
        from tests.kit.fake_alpaca_stream import FakeAlpacaStream
        from tests.kit.fake_binance import FakeBinance
        from tests.kit.fake_binance_ws import FakeBinanceWs
        from tests.kit.fake_kite import FakeKite
        from tests.kit.fake_kite_ticker import FakeKiteTicker, nse_token

        self.now = int(pd.Timestamp(live_from).value)
        self.venues: dict[str, _Venue] = {}
        # crypto
        syms = [f"C{i:04d}/USDT" for i in range(n_crypto)]
        tape = Tape.make(syms, start, minutes, per_minute, seed=11)
        rest = stack.enter_context(FakeBinance(symbols=tuple(syms)))
        ws = stack.enter_context(FakeBinanceWs())
        for s, df in tape.bars().groupby("symbol"):
            rest.set_candles(s, df)
        self.ccxt_config = {**ws.ccxt_config(rest), "rateLimit": 1}
        self.venues["binance"] = _Venue("binance", tape, [f"binance:{s}" for s in syms], ws, rest,
                                        lambda fr, t=tape, w=ws: w.send_tape(t, fr))  # fmt: skip
        # NSE
        syms = [f"K{i:04d}" for i in range(n_nse)]
        tape = Tape.make(syms, start, minutes, per_minute, seed=12)
        self.tokens = np.array([nse_token(i) for i in range(n_nse)])
        rest = stack.enter_context(FakeKite())
        ws = stack.enter_context(FakeKiteTicker("api-key", "access-token"))
        for s, df in tape.bars().groupby("symbol"):
            rest.set_candles(int(self.tokens[syms.index(s)]), df)
        self.kite = KiteConnect(api_key="api-key", access_token="access-token", root=rest.url)
        self.venues["kite"] = _Venue("kite", tape, [f"NSE:{s}" for s in syms], ws, rest,
                                     lambda fr, t=tape, w=ws: w.send_tape(t, fr, self.tokens))  # fmt: skip
        # US
        syms = [f"U{i:04d}" for i in range(n_us)]
        tape = Tape.make(syms, start, minutes, per_minute, seed=13)
        rest = stack.enter_context(FakeAlpaca(page_size=10_000))
        ws = stack.enter_context(FakeAlpacaStream("key", "secret"))
        for s, df in tape.bars().groupby("symbol"):
            rest.set_bars(s, df)
        self.venues["alpaca"] = _Venue("alpaca", tape, [f"NASDAQ:{s}" for s in syms], ws, rest,
                                       lambda fr, t=tape, w=ws: w.send_tape(t, fr))  # fmt: skip
        for v in self.venues.values():
            v.frames = v.tape.seconds()
            v.starts = np.array([int(v.tape.ts[f.start]) for f in v.frames], dtype="int64")
            v.sent_to = int(np.searchsorted(v.starts, self.now, side="right"))  # history only before the clock
        self.feed: Any = None
        self.expected = 0
        self.feed_base = 0

    @property
    def keys(self) -> list[str]:
        return [k for v in self.venues.values() for k in v.keys]

    def clock(self) -> pd.Timestamp:
        return pd.Timestamp(self.now, tz="UTC")

    def sources(self, buffer: TickBuffer, slots: SlotMap) -> list[StreamData]:
        from alpaca.data.historical import StockHistoricalDataClient

        b, k, a = self.venues["binance"], self.venues["kite"], self.venues["alpaca"]
        client = StockHistoricalDataClient("key", "secret", raw_data=True, url_override=a.rest.url)
        client._retry = 0  # a venue that is down answers at once (the SDK would wait 3 × 3 s)
        return [
            ccxt_data("binance", b.keys, buffer, slots, "1m", self.ccxt_config),
            kite_data(dict(zip(self.tokens.tolist(), k.keys, strict=True)), buffer, slots, "1m", self.kite, k.ws.url),
            alpaca_data(a.keys, buffer, slots, "1m", "key", "secret", client, a.ws.url),
        ]

    def subscribed(self) -> bool:
        b, k, a = self.venues["binance"], self.venues["kite"], self.venues["alpaca"]
        return (
            "!miniTicker@arr" in b.ws.subscribed()
            and len(k.ws.subscribed()) == len(k.keys)
            and len(a.ws.subscribed()) == len(a.keys)
        )

    def outage(self, name: str, on: bool) -> None:
        """The network to one venue goes (its websocket cut and refused, its REST answering 503) or comes back."""
        v = self.venues[name]
        if on:
            v.rest.fail_next(503, times=10**6)
            v.ws.refuse(10**6)
            v.ws.drop()
        else:
            with v.rest._lock if hasattr(v.rest, "_faults") else _null():
                if hasattr(v.rest, "_faults"):  # FakeBinance keeps its faults apart from FakeHttp's
                    v.rest._faults.clear()
                else:
                    v.rest._failures.clear()
            v.ws.refuse(0)

    def advance(self, to_ns: int, skip: tuple[str, ...] = ()) -> int:
        """Stream every venue's tape seconds up to ``to_ns`` (those of ``skip`` are lost, as in an outage)
        and wait until the feed's buffer has what was delivered. Returns ticks delivered."""
        delivered = 0
        for name, v in self.venues.items():
            end = int(np.searchsorted(v.starts, to_ns, side="right"))
            frames = v.frames[v.sent_to : end]
            v.sent_to = end
            if frames and name not in skip:
                delivered += v.send(frames)
        self.now = int(to_ns)
        self.expected += delivered
        if self.feed is not None:
            wait_for(lambda: self.feed.buffer.received - self.feed_base >= self.expected, 60, "ticks to arrive")
        return delivered

    def attach(self, feed: Any) -> None:
        """Start ``feed`` (streams, snapshot, warm-up) and wait for every subscription."""
        self.feed = feed
        feed.start()
        wait_for(self.subscribed, 60, "every venue's subscription")
        self.feed_base = feed.buffer.received
        self.expected = 0

    def venue_bars(self) -> pd.DataFrame:
        parts = []
        for v in self.venues.values():
            b = v.tape.bars()
            ex = v.keys[0].partition(":")[0]
            b.insert(1, "key", ex + ":" + b.pop("symbol").astype(str))
            parts.append(b)
        return pd.concat(parts, ignore_index=True)


class DrivenFeed:
    """The loop's feed: before each ``next()`` the rig streams the next ``step_ns`` of every tape."""

    def __init__(self, rig: ThreeVenues, feed: Any, step_ns: int, before: Callable[[int], None] | None = None) -> None:
        self.rig, self.feed, self.step_ns = rig, feed, step_ns
        self.before = before or (lambda i: None)
        self.kind, self.cursor = feed.kind, None
        self.calls = 0
        self.ticks: list[Any] = []

    def next(self) -> Any:
        self.calls += 1
        self.before(self.calls)
        self.rig.advance(self.rig.now + self.step_ns)
        tick = self.feed.next()
        self.ticks.append(tick)
        return tick

    def close(self) -> None:
        self.feed.close()
