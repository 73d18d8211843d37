"""Market feeds: what the live loop sees each cycle — the clock, the recent panel and quotes.

The loop cannot tell a replay from a live market: both answer ``next()`` with a ``FeedTick``. The
replay steps through the lake's last bars one per cycle (the demo and the tests trade "live" on
history, offline, deterministically); its ``cursor`` is saved in the run row so a restart continues
where it stopped. The ccxt feed pulls fresh candles into the lake through the data layer and reads
the same panel, so features see identical shapes live and in research.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.data.calendars import Calendars
from workbench.data.panel import Panel
from workbench.errors import NoDataError, TemporaryBrokerError
from workbench.market import Quote
from workbench.signals import Signal
from workbench.venues.retry import RetryPolicy, retry_call

__all__ = ["FeedTick", "MarketFeed", "quotes_from_bar", "gate_signals", "ReplayFeed", "CcxtLiveFeed"]

_FEED_RETRY = RetryPolicy(attempts=3, backoff_s=0.2, max_wait_s=2.0)


@dataclass(frozen=True)
class FeedTick:
    now: pd.Timestamp  # the feed's clock: bar time in a replay, wall time live
    panel: Panel  # the last ``warmup_bars`` bars, current bar included
    quotes: dict[str, Quote]
    exhausted: bool = False  # True on the last tick a replay can give
    # live feeds only: symbol → why it must HOLD (venue down, stale quote, bars awaiting a backfill) …
    hold: dict[str, str] = field(default_factory=dict)
    # … and why it may not enter (its market is closed): exits are still managed
    no_entry: dict[str, str] = field(default_factory=dict)
    stale: int = 0  # instruments whose quote was too old to feed a signal this cycle (refused, counted)
    note: str = ""  # the feed's own account of this cycle (venues up/down, fresh/stale), logged by the loop


@runtime_checkable
class MarketFeed(Protocol):
    def next(self) -> FeedTick: ...


def quotes_from_bar(panel: Panel, row: int = -1) -> dict[str, Quote]:
    """Quotes from one bar of a panel: last = close, with the bar's open/high/low/volume; symbols
    without a close in that bar get no quote."""
    ts = panel.index[row]
    vals = {f: panel.field(f).iloc[row].to_numpy(dtype=float) for f in ("open", "high", "low", "close", "volume")}
    keep = np.flatnonzero(np.isfinite(vals["close"]) & (vals["close"] > 0))
    syms = np.asarray(panel.symbols, dtype=object)[keep].tolist()

    def column(f: str) -> list[float | None]:  # whole columns at once: no per-element numpy scalars
        a = vals[f][keep]
        out = a.astype(object)
        out[~np.isfinite(a)] = None
        return out.tolist()

    close = vals["close"][keep].tolist()
    rows = zip(syms, close, column("volume"), column("high"), column("low"), column("open"), strict=True)
    return {s: Quote(symbol=s, last=c, ts=ts, volume=v, high=h, low=lo, open=o) for s, c, v, h, lo, o in rows}


def gate_signals(signals: list[Signal], tick: FeedTick) -> tuple[list[Signal], list[str]]:
    """Turn what the feed forbids into HOLD: everything of a ``hold`` symbol, the BUYs (entries, long-only)
    of a ``no_entry`` symbol. Returns the gated signals and one line per order signal turned into HOLD."""
    if not tick.hold and not tick.no_entry:
        return signals, []
    out, why = [], []
    for s in signals:
        reason = tick.hold.get(s.symbol)
        if reason is None and s.signal == "BUY":
            reason = tick.no_entry.get(s.symbol)
        if reason is None or s.signal == "HOLD":
            out.append(s)
            continue
        out.append(replace(s, signal="HOLD", target_price=None, stop_loss=None, take_profit=None))
        why.append(f"{s.signal} {s.symbol} held: {reason}")
    return out, why


class ReplayFeed:
    """The last ``replay_bars`` bars of the lake, one per ``next()``, each with ``warmup_bars`` of history."""

    kind = "REPLAY"

    def __init__(
        self,
        lake: Any,
        exchange: str,
        timeframe: str,
        symbols: list[str] | None,
        warmup_bars: int,
        replay_bars: int,
        start_cursor: int = 0,
        calendars: Calendars | None = None,
    ):
        # the run's calendars go with the panel to the time features (None: the recorded sessions)
        self._source = lambda: lake.load_panel(exchange, timeframe, symbols).with_calendars(calendars)
        self._panel: Panel | None = None
        self.warmup_bars, self.replay_bars = int(warmup_bars), int(replay_bars)
        self.cursor = int(start_cursor)
        if self.warmup_bars < 1 or self.replay_bars < 1 or self.cursor < 0:
            raise ValueError("replay needs warmup_bars ≥ 1, replay_bars ≥ 1 and start_cursor ≥ 0")

    @classmethod
    def from_panel(cls, panel: Panel, warmup_bars: int, replay_bars: int, start_cursor: int = 0) -> ReplayFeed:
        feed = cls.__new__(cls)
        feed._source = lambda: panel
        feed._panel = None
        feed.warmup_bars, feed.replay_bars, feed.cursor = int(warmup_bars), int(replay_bars), int(start_cursor)
        return feed

    @property
    def panel(self) -> Panel:
        if self._panel is None:
            self._panel = self._source()
        return self._panel

    def _first(self) -> int:
        n = len(self.panel.index)
        return max(n - self.replay_bars, min(self.warmup_bars - 1, n - 1))

    @property
    def steps(self) -> int:
        """How many ticks the replay gives from cursor 0."""
        return len(self.panel.index) - self._first()

    @property
    def remaining(self) -> int:
        return max(self.steps - self.cursor, 0)

    def next(self) -> FeedTick:
        if self.remaining == 0:
            raise NoDataError(f"the replay is over ({self.steps} bars played): start a new run to replay again")
        i = self._first() + self.cursor
        window = self.panel.iloc(slice(max(0, i - self.warmup_bars + 1), i + 1))
        self.cursor += 1
        return FeedTick(
            now=window.index[-1], panel=window, quotes=quotes_from_bar(window), exhausted=self.remaining == 0
        )


class CcxtLiveFeed:
    """Live candles through the data layer plus ccxt tickers for quotes. Thin by design: each cycle
    ``refresh()`` appends the newest bars to the lake (``workbench.data.ingest.pull``), the panel is
    read back from the lake, and quotes come from ``client.fetch_tickers`` (else the last bar). A
    temporary failure (network, 429, 5xx) is retried as the venues retry (``retry``); the live loop
    above does not retry."""

    kind = "LIVE"

    def __init__(
        self,
        source: Any,
        lake: Any,
        exchange: str,
        timeframe: str,
        symbols: list[str],
        warmup_bars: int,
        client: Any = None,
        refresh: Callable[[], Any] | None = None,
        clock: Callable[[], pd.Timestamp] | None = None,
        retry: RetryPolicy = _FEED_RETRY,
    ):
        self.source, self.lake, self.exchange, self.timeframe = source, lake, exchange, timeframe
        self.symbols, self.warmup_bars, self.client = list(symbols), int(warmup_bars), client
        self._refresh = refresh or self._pull
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self.cursor = None
        self.retry = retry

    def _pull(self) -> Any:
        from workbench.data.ingest import pull

        return pull(self.lake, self.source, self.symbols, self.timeframe, progress=False)

    def _tickers(self, panel: Panel) -> dict[str, Quote]:
        if self.client is None:
            return quotes_from_bar(panel)
        try:
            import ccxt

            try:
                raw = self.client.fetch_tickers(self.symbols)
            except ccxt.OperationFailed as e:  # network, 5xx, Binance's "execution status unknown" codes
                raise TemporaryBrokerError(f"fetching tickers from {self.exchange} failed: {e}") from e
        except ImportError:  # pragma: no cover - ccxt is a dependency
            raw = self.client.fetch_tickers(self.symbols)
        out = {}
        for sym, t in raw.items():
            if sym not in self.symbols or not t.get("last"):
                continue
            ts = pd.Timestamp(t["timestamp"], unit="ms", tz="UTC") if t.get("timestamp") else self._clock()
            out[sym] = Quote(
                symbol=sym,
                last=float(t["last"]),
                ts=ts,
                bid=t.get("bid"),
                ask=t.get("ask"),
                volume=t.get("baseVolume"),
                high=t.get("high"),
                low=t.get("low"),
                open=t.get("open"),
            )
        return out

    def next(self) -> FeedTick:
        return retry_call(self._next, policy=self.retry, venue=f"ccxt:{self.exchange}", what="market data")

    def _next(self) -> FeedTick:
        self._refresh()
        panel = self.lake.load_panel(self.exchange, self.timeframe, self.symbols).tail(self.warmup_bars)
        return FeedTick(now=self._clock(), panel=panel, quotes=self._tickers(panel), exhausted=False)
