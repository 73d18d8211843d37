"""Live trades (and optionally quotes) of US equities from Alpaca's market-data stream, through the SDK.

The real ``alpaca.data.live.StockDataStream`` runs in a background thread (its own asyncio loop,
msgpack frames, authentication, subscription, and reconnection with exponential backoff and jitter
— all the SDK's). It calls back once per message; each callback appends one tick to the
``TickBuffer`` (trades: price and size; quotes: bid/ask, no size), stamped with the venue's time.
``raw_data=True`` skips the SDK's pydantic models on this hot path.

Connection events are observed by overriding the stream's ``_start_ws`` and ``close`` (the SDK has
no callbacks for them) so that the status counts reconnects and an outage becomes a gap in the bars.
REST: ``snapshot`` reads snapshots in batches (latest trade and quote); ``history`` reads minute bars.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from alpaca.data.models import Quote, Trade

from workbench.live.quotes import SlotMap
from workbench.live.ticks import StreamStatus, TickBuffer, now_ns

__all__ = ["AlpacaStream"]

_NAN = float("nan")


def _ns(t: Any) -> int:
    if hasattr(t, "to_unix_nano"):  # msgpack.Timestamp (raw data)
        return int(t.to_unix_nano())
    if t is None:
        return now_ns()
    return int(pd.Timestamp(t).value)


class _ObservedStream(StockDataStream):
    """The SDK's stream, telling a ``StreamStatus`` when it (re)connects and closes."""

    def __init__(self, *a: Any, status: StreamStatus, buffer: TickBuffer, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._wb_status, self._wb_buffer = status, buffer

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self._wb_status.on_connect(self._wb_buffer)

    async def close(self) -> None:
        if self._ws is not None:
            self._wb_status.on_disconnect()
        await super().close()


class AlpacaStream:
    """Trades of ``keys`` (``EXCHANGE:SYMBOL``, e.g. ``NASDAQ:AAPL``) into ``buffer``."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        keys: Sequence[str],
        buffer: TickBuffer,
        *,
        slots: SlotMap | None = None,
        url: str | None = None,
        feed: str = "iex",
        quotes: bool = False,
    ) -> None:
        self.api_key, self.secret_key, self.url = api_key, secret_key, url
        self.feed = DataFeed(feed)
        self.keys = list(keys)
        self.slots = slots or SlotMap(self.keys)
        self._slot = {k.partition(":")[2]: self.slots.slot(k) for k in self.keys}
        self._scope = np.array([v for v in self._slot.values() if v >= 0], dtype="int64")
        self.buffer = buffer
        self.quotes = quotes
        self.status = StreamStatus(venue="alpaca")
        self._stream: _ObservedStream | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> AlpacaStream:
        s = _ObservedStream(
            self.api_key,
            self.secret_key,
            raw_data=True,
            feed=self.feed,
            url_override=self.url,
            status=self.status,
            buffer=self.buffer,
        )
        s._reconnect_min_backoff = 0.5
        symbols = list(self._slot)
        s.subscribe_trades(self._on_trade, *symbols)
        if self.quotes:
            s.subscribe_quotes(self._on_quote, *symbols)
        self._stream = s
        self._thread = threading.Thread(target=s.run, name="stream-alpaca", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        s = self._stream
        if s is None or self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while s._loop is None and time.monotonic() < deadline:  # not running yet: nothing to stop
            time.sleep(0.01)
        if s._loop is not None and s._loop.is_running():
            try:
                s.stop()
                # the SDK polls its stop flag between 5 s receive timeouts; closing the socket ends it now
                asyncio.run_coroutine_threadsafe(s.close(), s._loop).result(timeout=5)
            except Exception as e:  # a loop already closing; the thread ends by itself
                self.status.last_error = f"stop: {type(e).__name__}: {e}"
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.status.connected = False

    async def _on_trade(self, m: Trade | dict) -> None:
        assert isinstance(m, dict)  # the stream runs with raw_data=True
        t = _ns(m.get("t"))
        self.status.on_ticks(self.buffer, t, t, self._scope)
        self.buffer.push_one(self._slot.get(m.get("S", ""), -1), float(m["p"]), float(m.get("s") or 0.0), _NAN, _NAN, t)
        self.status.on_message()

    async def _on_quote(self, m: Quote | dict) -> None:
        assert isinstance(m, dict)  # the stream runs with raw_data=True
        t = _ns(m.get("t"))
        self.status.on_ticks(self.buffer, t, t, self._scope)
        self.buffer.push_one(
            self._slot.get(m.get("S", ""), -1), _NAN, 0.0, float(m.get("bp") or _NAN), float(m.get("ap") or _NAN), t
        )
        self.status.on_message()

    # ---- REST ------------------------------------------------------------------------------------
    def snapshot(self, client: Any, keys: Sequence[str] | None = None, batch: int = 1000) -> int:
        """Latest trade and quote of ``keys`` from snapshots, ``batch`` symbols a call; ticks pushed (size 0)."""
        from alpaca.data.requests import StockSnapshotRequest

        symbols = [k.partition(":")[2] for k in (keys if keys is not None else self.keys)]
        pushed = 0
        for i in range(0, len(symbols), batch):
            snaps = client.get_stock_snapshot(
                StockSnapshotRequest(symbol_or_symbols=symbols[i : i + batch], feed=self.feed)
            )
            rows = []
            for sym, s in (snaps or {}).items():
                if not isinstance(s, dict):
                    s = s.model_dump() if hasattr(s, "model_dump") else {}
                tr, q = s.get("latestTrade") or {}, s.get("latestQuote") or {}
                rows.append(
                    (self._slot.get(sym, -1), tr.get("p", _NAN), q.get("bp", _NAN), q.get("ap", _NAN), _ns(tr.get("t")))
                )
            rows = [r for r in rows if r[0] >= 0]
            if rows:
                a = np.array([r[:4] for r in rows], dtype="float64")
                self.buffer.push(a[:, 0].astype("int64"), a[:, 1], 0.0, a[:, 2], a[:, 3], [r[4] for r in rows])
                pushed += len(rows)
        return pushed

    def history(self, client: Any, keys: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Minute bars of ``keys`` (one paginated multi-symbol request)."""
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        by_sym = {k.partition(":")[2]: k for k in keys}
        req = StockBarsRequest(
            symbol_or_symbols=list(by_sym),
            timeframe=TimeFrame.Minute,
            start=pd.Timestamp(start).to_pydatetime(),
            end=pd.Timestamp(end).to_pydatetime(),
            feed=self.feed,
        )
        raw = client.get_stock_bars(req)
        data = raw if isinstance(raw, dict) else raw.data
        rows = []
        for sym, bars in data.items():
            for b in bars:
                b = b if isinstance(b, dict) else b.model_dump()
                t = b.get("t", b.get("timestamp"))
                rows.append(
                    (
                        pd.Timestamp(t) if t is not None else pd.NaT,
                        by_sym.get(sym, sym),
                        b.get("o", b.get("open")),
                        b.get("h", b.get("high")),
                        b.get("l", b.get("low")),
                        b.get("c", b.get("close")),
                        b.get("v", b.get("volume")),
                    )
                )
        out = pd.DataFrame(rows, columns=["ts", "key", "open", "high", "low", "close", "volume"])
        out["ts"] = pd.to_datetime(out["ts"], utc=True).astype("datetime64[ns, UTC]")
        return out
