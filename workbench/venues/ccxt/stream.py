"""Live tickers from a ccxt exchange: ``ccxt.pro`` ``watch_tickers`` over a websocket, REST ``fetch_tickers`` otherwise.

The websocket runs in a background thread with its own asyncio loop. One subscription covers the
universe: ``watch_tickers()`` without symbols is the exchange's all-market stream where it has one
(Binance ``!miniTicker@arr``: every symbol that changed, once a second, on one connection); with
``all_markets=False`` it subscribes the universe's symbols. Every ticker update is captured, not
only the latest per ``await``: ccxt.pro resolves one future per message and a slow consumer would
otherwise miss intermediate updates, so the exchange's ``tickers`` dict is replaced by a recording
one (every ccxt.pro exchange stores each parsed ticker there).

Ticks go to a ``TickBuffer`` (price = last, size = change of the cumulative base volume, ts = the
ticker's timestamp). A dropped connection surfaces as a ccxt ``NetworkError`` from ``watch_tickers``;
the loop waits with exponential backoff and subscribes again, and the outage becomes a gap in the
bars (``StreamStatus.on_connect``). REST: ``poll_rest`` is one ``fetch_tickers`` call for the whole
exchange (or for the universe's symbols when the exchange needs them), with ``enableRateLimit``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import numpy as np
import pandas as pd

from workbench.errors import ConfigError
from workbench.live.quotes import SlotMap
from workbench.live.ticks import Backoff, CumulativeVolume, StreamStatus, TickBuffer, now_ns

__all__ = ["CcxtTickerStream"]


class _Recording(dict):
    """The exchange's ``tickers`` dict, recording every ticker written into it (in order)."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.pending: list[dict] = []

    def __setitem__(self, key: str, value: dict) -> None:
        super().__setitem__(key, value)
        self.pending.append(value)


def _f(x: Any) -> float:
    return float(x) if x is not None else np.nan


class CcxtTickerStream:
    """Tickers of ``keys`` (``<exchange id>:<symbol>``) from one ccxt exchange into ``buffer``.

    ``config`` is merged into the ccxt constructor (keys, ``urls`` overrides for a local fake,
    ``options``); ``enableRateLimit`` is always on. ``rest`` is a synchronous ccxt exchange for the
    REST fallback and history (built from the same config when not given).
    """

    def __init__(
        self,
        exchange_id: str,
        keys: Sequence[str],
        buffer: TickBuffer,
        *,
        config: dict | None = None,
        slots: SlotMap | None = None,
        all_markets: bool = True,
        rest: ccxt.Exchange | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if not hasattr(ccxtpro, exchange_id):
            raise ConfigError(f"ccxt.pro has no exchange {exchange_id!r}: pick one of ccxt.pro.exchanges")
        self.exchange_id = exchange_id
        self.slots = slots or SlotMap(keys)
        self.symbols = [k.partition(":")[2] for k in keys if k.partition(":")[0] == exchange_id]
        self._slot_of = {s: self.slots.slot(f"{exchange_id}:{s}") for s in self.symbols}
        self._scope = np.array([v for v in self._slot_of.values() if v >= 0], dtype="int64")
        self.buffer = buffer
        self.config = {"enableRateLimit": True, **(config or {})}
        self.config["enableRateLimit"] = True
        self.all_markets = all_markets
        self.status = StreamStatus(venue=f"ccxt:{exchange_id}")
        self.volume = CumulativeVolume(len(self.slots), on_decrease="zero")  # a rolling 24 h total
        self.backoff = backoff or Backoff(0.5, 30.0)
        self._rest = rest
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ex: Any = None
        self._vol_lock = threading.Lock()

    # ---- websocket -------------------------------------------------------------------------------
    def start(self) -> CcxtTickerStream:
        self._loop = loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._stop = asyncio.Event()
            started.set()
            loop.run_until_complete(self._main())

        self._thread = threading.Thread(target=run, name=f"stream-{self.exchange_id}", daemon=True)
        self._thread.start()
        started.wait(5)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()

    async def _main(self) -> None:
        ex = getattr(ccxtpro, self.exchange_id)(self.config)
        ex.on_connected = self._connected(ex.on_connected)
        self._ex = ex
        try:
            await self._watch(ex)
        finally:
            try:
                await ex.close()
            except Exception:  # closing a dead connection must not hide why we stopped
                pass
            self.status.connected = False

    def _connected(self, original: Any) -> Any:
        """Wraps the exchange's ``on_connected`` (ccxt calls it on every websocket it opens): count it."""

        def on_connected(client: Any, message: Any = None) -> Any:
            if self.status.connects:  # a reconnect: the running volume jumped by what traded unseen
                with self._vol_lock:
                    self.volume.forget(self._scope)
            self.status.on_connect(self.buffer)
            return original(client, message)

        return on_connected

    async def _housekeeping(self, ex: Any) -> None:
        """Every 50 ms, hand on tickers recorded while no ``watch_tickers`` future was waiting (ccxt resolves
        only a waiting future: the last message of a burst would otherwise wait for the next one)."""
        assert self._stop is not None
        while not self._stop.is_set():
            if isinstance(ex.tickers, _Recording) and ex.tickers.pending:
                self._drain(ex.tickers)
            await asyncio.sleep(0.05)

    async def _watch(self, ex: Any) -> None:
        assert self._stop is not None
        stop_wait = asyncio.ensure_future(self._stop.wait())
        conns = asyncio.ensure_future(self._housekeeping(ex))
        while not self._stop.is_set():
            try:
                if ex.markets is None:
                    await ex.load_markets()
                if not ex.has.get("watchTickers"):
                    raise ConfigError(f"{self.exchange_id} has no websocket tickers in ccxt.pro: use poll_rest")
                if not isinstance(ex.tickers, _Recording):
                    ex.tickers = _Recording(ex.tickers or {})
                symbols = None if self.all_markets else self.symbols
                watch = asyncio.ensure_future(ex.watch_tickers(symbols))
                done, _ = await asyncio.wait({watch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if watch not in done:
                    watch.cancel()
                    break
                watch.result()
                self.backoff.reset()
                self._drain(ex.tickers)
            except ConfigError as e:
                self.status.on_disconnect(e)
                break
            except (ccxt.ArgumentsRequired, ccxt.NotSupported) as e:
                if not self.all_markets:  # nothing left to try: the exchange cannot stream these tickers
                    self.status.on_disconnect(e)
                    break
                self.all_markets = False  # no all-market stream here: subscribe the universe's symbols
            except Exception as e:
                if isinstance(ex.tickers, _Recording):
                    self._drain(ex.tickers)  # what arrived before the cut still counts
                self.status.on_disconnect(e)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.backoff.next())
                except TimeoutError:
                    pass
        stop_wait.cancel()
        conns.cancel()

    def _drain(self, rec: _Recording) -> None:
        pending, rec.pending = rec.pending, []
        if pending:
            self._push(pending, now_ns())

    def _push(self, tickers: list[dict], received_ns: int) -> None:
        get = self._slot_of.get
        rows = [
            (
                get(t.get("symbol", ""), -1),
                t.get("last"),
                t.get("bid"),
                t.get("ask"),
                t.get("baseVolume"),
                t.get("timestamp"),
            )
            for t in tickers
        ]
        rows = [r for r in rows if r[0] >= 0]
        self.status.on_message()
        if not rows:
            return
        slot = np.fromiter((r[0] for r in rows), dtype="int64", count=len(rows))
        cols = [np.fromiter((_f(r[j]) for r in rows), dtype="float64", count=len(rows)) for j in (1, 2, 3, 4, 5)]
        last, bid, ask, total, stamp = cols
        ts = np.where(np.isnan(stamp), received_ns, stamp * 1e6).astype("int64")
        with self._vol_lock:
            size = self.volume.sizes(slot, np.where(np.isnan(total), 0.0, total))
        self.status.on_ticks(self.buffer, int(ts.min()), int(ts.max()), self._scope)
        self.buffer.push(slot, last, size, bid, ask, ts)

    # ---- REST ------------------------------------------------------------------------------------
    @property
    def rest(self) -> ccxt.Exchange:
        if self._rest is None:
            self._rest = getattr(ccxt, self.exchange_id)(self.config)
        return self._rest

    def poll_rest(self, timeout_s: float = 10.0) -> int:
        """One ``fetch_tickers`` call (all markets, or the universe's symbols) into the buffer; ticks pushed."""
        ex = self.rest
        ex.timeout = int(timeout_s * 1000)
        tickers = ex.fetch_tickers(None if self.all_markets else self.symbols)
        vals = [t for s, t in tickers.items() if s in self._slot_of]
        self._push(vals, now_ns())
        return len(vals)

    def history(
        self, keys: Sequence[str], start: pd.Timestamp, end: pd.Timestamp, timeframe: str = "1m"
    ) -> pd.DataFrame:
        """Closed and forming bars of ``keys`` from ``start`` to ``end`` (``fetch_ohlcv``, paginated)."""
        ex = self.rest
        ms0, ms1 = int(pd.Timestamp(start).value // 10**6), int(pd.Timestamp(end).value // 10**6)
        step = int(ex.parse_timeframe(timeframe) * 1000)
        frames = []
        for key in keys:
            symbol = key.partition(":")[2]
            since, rows = ms0, []
            while since <= ms1:
                page = ex.fetch_ohlcv(symbol, timeframe, since=since, limit=1000)
                page = [r for r in page if r[0] <= ms1]
                if not page:
                    break
                rows += page
                since = int(page[-1][0]) + step
            if rows:
                df = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"]).drop_duplicates("ms")
                df.insert(0, "key", key)
                frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["ts", "key", "open", "high", "low", "close", "volume"])
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "ts", pd.to_datetime(out.pop("ms"), unit="ms", utc=True).astype("datetime64[ns, UTC]"))
        return out
