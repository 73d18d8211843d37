"""The producer side of live data: a thread-safe tick buffer, cumulative-volume deltas, stream status.

Stream clients run in their own threads (an asyncio loop, Twisted's reactor, the Alpaca SDK's loop);
the consumer (the live loop) owns the quote cache and the bar builder. Producers therefore only
*append* to a ``TickBuffer`` (one lock, O(1) per frame) and the consumer ``drain``s it into plain
numpy arrays once per cycle, so state is mutated by one thread and each batch is applied vectorised.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ticks", "TickBuffer", "CumulativeVolume", "StreamStatus", "Backoff", "now_ns"]


def now_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True)
class Ticks:
    """A batch of ticks, one row per (slot, ts): trade price and size, best bid/ask (NaN = not in this tick).

    ``size`` is traded quantity since the previous tick of the same slot (0 for a quote-only tick, NaN
    when unknown: the first ticker of an instrument, whose volume before it was not seen).
    ``gaps`` are (from_ns, to_ns, slots or None) outages a producer saw, in venue time: from its last
    tick before a disconnect to its first tick after the reconnect, for the slots it serves.
    """

    slot: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    ts: np.ndarray
    gaps: tuple[tuple[int, int, np.ndarray | None], ...] = ()

    def __len__(self) -> int:
        return len(self.slot)

    @staticmethod
    def empty() -> Ticks:
        f = np.empty(0, dtype="float64")
        return Ticks(np.empty(0, dtype="int64"), f, f, f, f, np.empty(0, dtype="int64"))


def _col(x, n: int, dtype: str) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    return np.full(n, a, dtype=dtype) if a.ndim == 0 else a


class TickBuffer:
    """Append ticks from any thread (whole frames as arrays, or single ticks), drain them in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._one: list[tuple[int, float, float, float, float, int]] = []
        self._gaps: list[tuple[int, int, np.ndarray | None]] = []
        self.received = 0

    def push(self, slot, price, size, bid, ask, ts) -> None:
        """One frame of ticks; scalars broadcast (e.g. one receive time for the whole frame)."""
        s = np.asarray(slot, dtype="int64")
        n = len(s)
        if n == 0:
            return
        chunk = (
            s,
            _col(price, n, "float64"),
            _col(size, n, "float64"),
            _col(bid, n, "float64"),
            _col(ask, n, "float64"),
            _col(ts, n, "int64"),
        )
        with self._lock:
            if self._one:
                self._flush_one()
            self._chunks.append(chunk)
            self.received += n

    def push_one(self, slot: int, price: float, size: float, bid: float, ask: float, ts: int) -> None:
        """One tick (SDKs that call back per message); kept as a tuple until the next drain."""
        with self._lock:
            self._one.append((slot, price, size, bid, ask, ts))
            self.received += 1

    def gap(self, from_ns: int, to_ns: int, slots: np.ndarray | None = None) -> None:
        """The producer of ``slots`` saw nothing between these times: bars overlapping them are incomplete."""
        with self._lock:
            self._gaps.append((int(from_ns), int(to_ns), slots))

    def _flush_one(self) -> None:
        """Single ticks become one chunk, keeping arrival order relative to frames (caller holds the lock)."""
        cols = list(zip(*self._one, strict=True))
        self._one = []
        self._chunks.append(
            (
                np.array(cols[0], dtype="int64"),
                *(np.array(c, dtype="float64") for c in cols[1:5]),
                np.array(cols[5], dtype="int64"),
            )
        )

    def drain(self) -> Ticks:
        with self._lock:
            if self._one:
                self._flush_one()
            chunks, gaps = self._chunks, self._gaps
            self._chunks, self._gaps = [], []
        if not chunks:
            e = Ticks.empty()
            return Ticks(e.slot, e.price, e.size, e.bid, e.ask, e.ts, gaps=tuple(gaps))
        if len(chunks) == 1:
            cols = chunks[0]
        else:
            cols = tuple(np.concatenate([c[i] for c in chunks]) for i in range(6))
        slot, price, size, bid, ask, ts = cols
        return Ticks(slot, price, size, bid, ask, ts, gaps=tuple(gaps))


class CumulativeVolume:
    """Turns a venue's cumulative volume (Kite's day volume, a ticker's 24 h volume) into traded size per tick.

    Why: ticker feeds carry no trade size, only a running total; the difference between two ticks of
    one instrument is what traded in between, so bars built from tickers get exact volume (Kite) or
    the volume of the rolling window's movement (Binance 24 h tickers). A total that goes *down*
    (the day rolled over, or the rolling window shed more than traded) counts as ``on_decrease``:
    ``"zero"`` (rolling windows) or ``"restart"`` (a new day: the new total is what traded).
    """

    def __init__(self, n_slots: int, on_decrease: str = "zero"):
        if on_decrease not in ("zero", "restart"):
            raise ValueError("on_decrease must be 'zero' or 'restart'")
        self.total = np.full(n_slots, np.nan)
        self.restart = on_decrease == "restart"

    def forget(self, slots: np.ndarray | None = None) -> None:
        """After an outage the running total jumped by what traded unseen: the next tick's size is unknown."""
        if slots is None:
            self.total[:] = np.nan
        else:
            self.total[np.asarray(slots, dtype="int64")] = np.nan

    def sizes(self, slot: np.ndarray, total: np.ndarray) -> np.ndarray:
        """Traded size per tick, in arrival order. The first tick ever seen for a slot has no total before
        it: its size is unknown (NaN), and the bar it lands in is incomplete."""
        slot = np.asarray(slot, dtype="int64")
        total = np.asarray(total, dtype="float64")
        order = np.argsort(slot, kind="stable")
        s, t = slot[order], total[order]
        prev = np.empty_like(t)
        if len(s):
            first = np.r_[True, s[1:] != s[:-1]]
            prev[first] = self.total[s[first]]
            prev[~first] = t[np.flatnonzero(~first) - 1]
            last = np.r_[s[1:] != s[:-1], True]
            self.total[s[last]] = t[last]
        d = t - prev
        d = np.where(np.isnan(prev), np.nan, np.where(d < 0, t if self.restart else 0.0, d))
        out = np.empty_like(d)
        out[order] = d
        return out


@dataclass
class StreamStatus:
    """What a dashboard shows for one stream: is it up, when did it last hear something, how often it fell."""

    venue: str
    mode: str = "stream"  # "stream" (websocket) or "rest" (polling fallback)
    connected: bool = False
    last_message_ns: int = 0
    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    errors: int = 0
    last_error: str = ""
    down_since_ns: int = 0
    last_tick_ns: int = 0  # venue time of the newest tick delivered
    gap_pending: bool = False  # reconnected; the gap closes at the first tick after it
    extra: dict = field(default_factory=dict)

    def on_message(self, ts_ns: int | None = None) -> None:
        self.messages += 1
        self.last_message_ns = ts_ns or now_ns()

    def on_connect(self, buffer: TickBuffer | None = None) -> None:
        """A (re)connection; after the first, the outage becomes a gap in the bars (see ``on_ticks``)."""
        if self.connects > 0:
            self.reconnects += 1
            self.gap_pending = self.last_tick_ns > 0
        self.connects += 1
        self.connected = True
        self.down_since_ns = 0

    def on_ticks(self, buffer: TickBuffer, first_ns: int, last_ns: int, slots: np.ndarray | None = None) -> None:
        """Ticks from ``first_ns`` to ``last_ns`` (venue time) are being pushed for ``slots``.

        After a reconnect the outage, in venue time, runs from the last tick before it to the first after
        it: that is the gap handed to the bar builder (for this producer's slots only).
        """
        if self.gap_pending:
            buffer.gap(self.last_tick_ns, first_ns, slots)
            self.gap_pending = False
        self.last_tick_ns = max(self.last_tick_ns, int(last_ns))

    def on_disconnect(self, error: BaseException | str | None = None) -> None:
        if self.connected or not self.down_since_ns:
            self.down_since_ns = self.last_message_ns or now_ns()
        self.connected = False
        if error is not None:
            self.errors += 1
            self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"


class Backoff:
    """Exponential backoff with equal jitter: ``base·2^k`` capped at ``cap``, then drawn in [d/2, d]."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None):
        self.base_s, self.cap_s = base_s, cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        d = min(self.cap_s, self.base_s * 2**self.attempt)
        self.attempt += 1
        return d / 2 + self._rng.random() * d / 2

    def reset(self) -> None:
        self.attempt = 0
