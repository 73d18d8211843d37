"""Live ticks from Zerodha Kite: the real ``KiteTicker`` websocket, REST ``quote`` batches for snapshots.

Kite allows 3 websocket connections per API key and 3,000 instruments per connection, so a universe
is split into chunks of ``per_connection`` tokens, one ``KiteTicker`` each (streaming more than 9,000
is a ``ConfigError`` at ``start``: it needs a second API key). Mode ``full`` by default: it carries the last trade
time, which stamps the tick (``quote`` mode has no time; the receive time is used then) and the best
bid/ask from the depth. The day's traded volume is cumulative; its change is the tick's size.

KiteTicker runs on Twisted's reactor, which can be started once per process: the first connection
starts it in a daemon thread, later ones are connected from the reactor thread
(``callFromThread``), and ``stop`` closes connections but never stops the reactor. Reconnection is
KiteTicker's own (exponential backoff up to ``reconnect_max_delay``); each reconnect is counted and
the outage becomes a gap in the bars.

REST: ``snapshot`` asks ``quote`` for 500 instruments a call, at most ``per_second`` calls a second
(Kite's limit is 1/s for quotes), for a consistent picture at start-up or when the stream is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ConfigError
from workbench.live.quotes import SlotMap
from workbench.live.ticks import CumulativeVolume, StreamStatus, TickBuffer, now_ns

__all__ = ["KiteTickStream", "MAX_CONNECTIONS", "MAX_PER_CONNECTION"]

MAX_CONNECTIONS = 3
MAX_PER_CONNECTION = 3000
QUOTE_BATCH = 500
_reactor_lock = threading.Lock()  # the reactor is per process: start it once


def _epoch_ns(t: Any) -> int:
    if isinstance(t, datetime):  # kiteconnect builds naive local datetimes from epoch seconds
        # microseconds as an integer first: seconds × 1e9 in a float would lose nanoseconds
        return round(t.timestamp() * 1e6) * 1000 if t.tzinfo is None else int(pd.Timestamp(t).value)
    if isinstance(t, str) and t:
        ts = pd.Timestamp(t)
        return int((ts.tz_localize("Asia/Kolkata") if ts.tzinfo is None else ts).value)
    return 0


class KiteTickStream:
    """Ticks of ``tokens`` (instrument token → key ``EXCHANGE:SYMBOL``) into ``buffer``."""

    def __init__(
        self,
        api_key: str,
        access_token: str,
        tokens: Mapping[int, str],
        buffer: TickBuffer,
        *,
        slots: SlotMap | None = None,
        root: str | None = None,
        mode: str = "full",
        per_connection: int = MAX_PER_CONNECTION,
        reconnect_max_delay: int = 5,
    ) -> None:
        if not 0 < per_connection <= MAX_PER_CONNECTION:
            raise ConfigError(f"per_connection must be 1..{MAX_PER_CONNECTION} (Kite's limit per websocket)")
        self.api_key, self.access_token, self.root, self.mode = api_key, access_token, root, mode
        self.tokens = {int(t): k for t, k in tokens.items()}
        self.slots = slots or SlotMap(self.tokens.values())
        self._slot = {t: self.slots.slot(k) for t, k in self.tokens.items()}
        self._key_slot = {k: self.slots.slot(k) for k in self.tokens.values()}
        toks = list(self.tokens)
        self.chunks = [toks[i : i + per_connection] for i in range(0, len(toks), per_connection)]
        self.buffer = buffer
        self.reconnect_max_delay = reconnect_max_delay
        self.statuses = [StreamStatus(venue=f"kite#{i}") for i in range(len(self.chunks))]
        self.volume = CumulativeVolume(len(self.slots), on_decrease="restart")  # the day's volume
        self._vol_lock = threading.Lock()
        self.tickers: list[Any] = []
        self.errors: list[str] = []

    @property
    def status(self) -> StreamStatus:
        """All connections as one: connected only when every one is; the latest message; summed counts."""
        s = StreamStatus(venue="kite")
        s.connected = bool(self.statuses) and all(x.connected for x in self.statuses)
        s.last_message_ns = max((x.last_message_ns for x in self.statuses), default=0)
        for f in ("connects", "reconnects", "messages", "errors"):
            setattr(s, f, sum(getattr(x, f) for x in self.statuses))
        s.last_error = next((x.last_error for x in self.statuses if x.last_error), "")
        s.extra = {"connections": len(self.statuses), "instruments": [len(c) for c in self.chunks]}
        return s

    # ---- websocket -------------------------------------------------------------------------------
    def start(self) -> KiteTickStream:
        """Open the websockets (REST ``snapshot``/``history`` need none, and have no instrument limit)."""
        from kiteconnect import KiteTicker
        from twisted.internet import reactor

        if len(self.chunks) > MAX_CONNECTIONS:
            raise ConfigError(
                f"{len(self.tokens)} instruments need {len(self.chunks)} Kite websockets; one API key allows "
                f"{MAX_CONNECTIONS} × {MAX_PER_CONNECTION}. Narrow the universe or add a second key."
            )
        for i, chunk in enumerate(self.chunks):
            kt = KiteTicker(
                self.api_key,
                self.access_token,
                root=self.root,
                reconnect=True,
                reconnect_max_delay=self.reconnect_max_delay,
                connect_timeout=10,
            )
            self._wire(kt, chunk, self.statuses[i])
            self.tickers.append(kt)
            with _reactor_lock:
                if reactor.running:
                    reactor.callFromThread(kt.connect, threaded=True)
                else:
                    kt.connect(threaded=True)
        return self

    def _wire(self, kt: Any, chunk: list[int], status: StreamStatus) -> None:
        mode = self.mode
        scope = np.array([self._slot[t] for t in chunk if self._slot[t] >= 0], dtype="int64")

        def on_connect(ws: Any, response: Any) -> None:
            first = status.connects == 0
            if not first:
                with self._vol_lock:
                    self.volume.forget(scope)
            status.on_connect(self.buffer)
            if first:  # KiteTicker itself resubscribes after a reconnect
                ws.subscribe(chunk)
                ws.set_mode(mode, chunk)

        def on_ticks(ws: Any, ticks: list[dict]) -> None:
            self._push(ticks, now_ns(), status=status, scope=scope)
            status.on_message()

        def on_close(ws: Any, code: Any, reason: Any) -> None:
            status.on_disconnect(f"closed: {code} {reason}" if code not in (None, 1000) else None)

        def on_error(ws: Any, code: Any, reason: Any) -> None:
            self.errors.append(f"{code}: {reason}")
            status.errors += 1
            status.last_error = f"{code}: {reason}"

        kt.on_connect, kt.on_ticks, kt.on_close, kt.on_error = on_connect, on_ticks, on_close, on_error

    def stop(self) -> None:
        """Close every connection (and their reconnects); the reactor keeps running for the next stream."""
        from twisted.internet import reactor

        for kt in self.tickers:
            if reactor.running:
                reactor.callFromThread(kt.close)
        for s in self.statuses:
            s.connected = False

    def _push(
        self,
        ticks: list[dict],
        received_ns: int,
        slot: np.ndarray | None = None,
        status: StreamStatus | None = None,
        scope: np.ndarray | None = None,
    ) -> None:
        get = self._slot.get
        n = len(ticks)
        if slot is None:
            slot = np.fromiter((get(t.get("instrument_token", -1), -1) for t in ticks), dtype="int64", count=n)
        last = np.fromiter((t.get("last_price", np.nan) for t in ticks), dtype="float64", count=n)
        total = np.fromiter((t.get("volume_traded", np.nan) for t in ticks), dtype="float64", count=n)
        ts = np.fromiter(
            (_epoch_ns(t.get("last_trade_time") or t.get("exchange_timestamp")) or received_ns for t in ticks),
            dtype="int64",
            count=n,
        )
        bid = np.fromiter(
            (((t.get("depth") or {}).get("buy") or [{}])[0].get("price") or np.nan for t in ticks),
            dtype="float64",
            count=n,
        )
        ask = np.fromiter(
            (((t.get("depth") or {}).get("sell") or [{}])[0].get("price") or np.nan for t in ticks),
            dtype="float64",
            count=n,
        )
        keep = slot >= 0
        slot, last, total, ts, bid, ask = slot[keep], last[keep], total[keep], ts[keep], bid[keep], ask[keep]
        with self._vol_lock:
            has = ~np.isnan(total)
            size = np.zeros(len(slot))
            size[has] = self.volume.sizes(slot[has], total[has])
        if status is not None and len(ts):
            status.on_ticks(self.buffer, int(ts.min()), int(ts.max()), scope)
        self.buffer.push(slot, last, size, bid, ask, ts)

    # ---- REST ------------------------------------------------------------------------------------
    def snapshot(self, kite: Any, keys: Sequence[str] | None = None, per_second: float = 1.0) -> int:
        """Quotes of ``keys`` (default: the whole universe) in batches of 500, ≤ ``per_second`` calls/s."""
        keys = list(keys if keys is not None else self.tokens.values())
        interval = 1.0 / per_second if per_second > 0 else 0.0
        pushed, next_at = 0, 0.0
        for i in range(0, len(keys), QUOTE_BATCH):
            wait = next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            next_at = time.monotonic() + interval
            data = kite.quote(keys[i : i + QUOTE_BATCH])
            received = now_ns()
            ticks = [{**q, "volume_traded": q.get("volume")} for q in data.values()]
            slot = np.fromiter((self._key_slot.get(k, -1) for k in data), dtype="int64", count=len(ticks))
            self._push(ticks, received, slot)
            pushed += int((slot >= 0).sum())
        return pushed

    def history(
        self, kite: Any, keys: Sequence[str], start: pd.Timestamp, end: pd.Timestamp, interval: str = "minute"
    ) -> pd.DataFrame:
        """Bars of ``keys`` from Kite's historical API (one call per instrument, IST wall times)."""
        by_key = {k: t for t, k in self.tokens.items()}
        lo = pd.Timestamp(start).tz_convert("Asia/Kolkata").tz_localize(None).to_pydatetime()
        hi = pd.Timestamp(end).tz_convert("Asia/Kolkata").tz_localize(None).to_pydatetime()
        frames = []
        for key in keys:
            rows = kite.historical_data(by_key[key], lo, hi, interval)
            if rows:
                df = pd.DataFrame(rows)
                df.insert(0, "key", key)
                frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["ts", "key", "open", "high", "low", "close", "volume"])
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "ts", pd.to_datetime(out.pop("date"), utc=True).astype("datetime64[ns, UTC]"))
        return out[["ts", "key", "open", "high", "low", "close", "volume"]]
