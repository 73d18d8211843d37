"""One ``VenueData`` per data venue, over the venues' own stream clients (``workbench/venues/*/stream.py``).

The stream classes own the protocol (ccxt.pro tickers, KiteTicker packets, Alpaca's SDK stream); this
module only gives them the feed's common face — start, stop, status, a REST snapshot, OHLCV history
of the feed's timeframe — and builds them from settings and the run owner's vault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.errors import ConfigError
from workbench.live.quotes import SlotMap

if TYPE_CHECKING:
    from workbench.live.feed import VenueData
from workbench.live.router import Route
from workbench.live.ticks import StreamStatus, TickBuffer

__all__ = ["StreamData", "resample_bars", "ccxt_data", "kite_data", "alpaca_data", "open_sources"]

_KITE_INTERVALS = {"1m": "minute", "3m": "3minute", "5m": "5minute", "15m": "15minute", "30m": "30minute",
                   "1h": "60minute", "1d": "day"}  # fmt: skip


@dataclass
class StreamData:
    """A venue's stream plus its REST snapshot and history, as callables."""

    venue: str
    keys: tuple[str, ...]
    stream: Any
    snapshot: Callable[[], int]
    bars: Callable[[Sequence[str], pd.Timestamp, pd.Timestamp], pd.DataFrame]
    # Quotes from one REST snapshot at start, for a stream that only sends what changes (Binance's
    # all-market tickers): a quiet instrument has a fresh price before its first tick.
    seeds: bool = False

    def start(self) -> None:
        self.stream.start()

    def seed(self) -> int:
        """The REST snapshot into the buffer before the stream opens (the feed takes its quotes, not its
        sizes); the running volumes it set are forgotten, so the stream's first tick stays of unknown size,
        as without a seed (a REST total need not be the stream's)."""
        if not self.seeds:
            return 0
        n = self.snapshot()
        volume = getattr(self.stream, "volume", None)
        if volume is not None:
            volume.forget()
        return n

    def stop(self) -> None:
        self.stream.stop()

    def status(self) -> StreamStatus:
        st: StreamStatus = self.stream.status
        return st

    def poll(self) -> int:
        return self.snapshot()

    def history(self, keys: Sequence[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.bars(keys, start, end)


def resample_bars(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Minute bars → bars of ``timeframe`` (for venues whose history is minutes only)."""
    tf = int(timeframe_delta(timeframe).value)
    if bars.empty or tf == 60 * 10**9:
        return bars
    t = bars["ts"].astype("datetime64[ns, UTC]").astype("int64")
    b = bars.assign(ts=pd.to_datetime(t - t % tf, utc=True)).sort_values(["key", "ts"], kind="stable")
    g = b.groupby(["key", "ts"], sort=True)
    out = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                volume=("volume", "sum")).reset_index()  # fmt: skip
    return out[["ts", "key", "open", "high", "low", "close", "volume"]]


def ccxt_data(
    exchange_id: str, keys: Sequence[str], buffer: TickBuffer, slots: SlotMap, timeframe: str, config: dict | None
) -> StreamData:
    from workbench.venues.ccxt.stream import CcxtTickerStream

    s = CcxtTickerStream(exchange_id, keys, buffer, config=config, slots=slots)
    return StreamData(
        f"ccxt:{exchange_id}",
        tuple(keys),
        s,
        s.poll_rest,
        lambda k, lo, hi: s.history(k, lo, hi, timeframe),
        seeds=s.all_markets,  # one fetch_tickers call
    )


def kite_data(
    tokens: dict[int, str], buffer: TickBuffer, slots: SlotMap, timeframe: str, kite: Any, ws_root: str | None = None
) -> StreamData:
    from workbench.venues.kite.stream import KiteTickStream

    if timeframe not in _KITE_INTERVALS:
        raise ConfigError(f"Kite has no {timeframe} history: use one of {', '.join(_KITE_INTERVALS)}")
    s = KiteTickStream(kite.api_key, kite.access_token, tokens, buffer, slots=slots, root=ws_root)
    return StreamData(
        "kite",
        tuple(tokens.values()),
        s,
        lambda: s.snapshot(kite),
        lambda k, lo, hi: s.history(kite, k, lo, hi, _KITE_INTERVALS[timeframe]),
    )


def alpaca_data(
    keys: Sequence[str],
    buffer: TickBuffer,
    slots: SlotMap,
    timeframe: str,
    api_key: str,
    secret: str,
    client: Any,
    url: str | None = None,
    feed: str = "iex",
) -> StreamData:
    from workbench.venues.alpaca.stream import AlpacaStream

    s = AlpacaStream(api_key, secret, keys, buffer, slots=slots, url=url, feed=feed)
    return StreamData(
        "alpaca",
        tuple(keys),
        s,
        lambda: s.snapshot(client),
        lambda k, lo, hi: resample_bars(s.history(client, k, lo, hi), timeframe),
    )


def open_sources(
    settings: Any, routes: Sequence[Route], timeframe: str, vault: Any = None
) -> Callable[[TickBuffer, SlotMap], list[VenueData]]:
    """The factory ``LiveFeed`` calls: each route's venue built from ``[venues.*]`` and the vault's keys."""

    def build(buffer: TickBuffer, slots: SlotMap) -> list[VenueData]:
        from workbench.venues import venue_config

        out: list[VenueData] = []
        for r in routes:
            if r.venue.startswith("ccxt:"):
                from workbench.venues.ccxt.data import _client_config

                ex = r.venue.partition(":")[2]
                out.append(
                    ccxt_data(ex, r.keys, buffer, slots, timeframe, _client_config(venue_config(settings, "ccxt"), ex))
                )
            elif r.venue == "kite":
                from workbench.instruments import InstrumentMaster
                from workbench.venues.kite.data import _client

                cfg = venue_config(settings, "kite")
                master = InstrumentMaster.of(settings)
                if not master.exists():
                    raise ConfigError(
                        "Kite streams by instrument token: run `workbench instruments refresh --source kite`"
                    )
                table = master.table()
                tok = table.set_index("key")["kite_token"].reindex(list(r.keys))
                missing = tok[tok.isna()].index.tolist()
                if missing:
                    raise ConfigError(
                        f"no Kite instrument token for {', '.join(missing[:5])}: refresh the instrument master"
                    )
                kite = _client(settings, cfg, vault)
                out.append(kite_data({int(t): str(k) for k, t in tok.items()}, buffer, slots, timeframe, kite,
                                     getattr(cfg, "ws_root", None)))  # fmt: skip
            elif r.venue == "alpaca":
                from alpaca.data.historical import StockHistoricalDataClient

                from workbench.venues.alpaca.broker import alpaca_keys

                cfg = venue_config(settings, "alpaca")
                key, secret = alpaca_keys(None, vault)
                url = getattr(cfg, "data_url", None) or getattr(cfg, "url", None)
                client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
                out.append(alpaca_data(r.keys, buffer, slots, timeframe, key, secret, client,
                                       getattr(cfg, "stream_url", None), getattr(cfg, "feed", "iex")))  # fmt: skip
            else:
                raise ConfigError(f"no market-data stream for venue {r.venue!r}")
        return out

    return build


def universe_keys(universe: dict) -> tuple[list[str], list[str], str]:
    """(instrument keys, the panel's column per key, the panel's exchange label) of a model's universe.

    Symbols already written as keys (``NSE:RELIANCE``) are taken as they are; bare symbols belong to
    the universe's ``exchange``. A one-exchange universe keeps its bare symbols as columns (what the
    broker and the research panels call them); a mixed one uses the keys.
    """
    exchange = str(universe.get("exchange") or "")
    symbols = [str(s) for s in universe.get("symbols") or []]
    if not symbols:
        raise ConfigError(
            "the model's universe lists no symbols, and live data is streamed per instrument: retrain it on a "
            "named universe, or trade a replay with --replay"
        )
    is_key = ["/" not in s.partition(":")[0] and ":" in s for s in symbols]  # BTC/USDT:USDT is a bare symbol
    keys = [s if k else f"{exchange}:{s}" for s, k in zip(symbols, is_key, strict=True)]
    exchanges = {k.partition(":")[0] for k in keys}
    if len(exchanges) == 1 and not any(is_key):
        return keys, symbols, exchange
    return keys, keys, "mixed" if len(exchanges) > 1 else exchanges.pop()


def feed_for(settings: Any, universe: dict, broker: str | None = None, vault: Any = None) -> Any:
    """The live feed of a model's universe: routed to its data venues (``[live] data_venues``), warmed up
    from the lake and appending closed bars to it."""
    from workbench.data.calendars import Calendars
    from workbench.data.lake import Lake
    from workbench.live.feed import LiveFeed
    from workbench.live.router import route

    timeframe = str(universe.get("timeframe") or "")
    keys, columns, exchange = universe_keys(universe)
    routes = route(keys, settings.live.data_venues, broker)
    return LiveFeed(
        keys,
        open_sources(settings, routes, timeframe, vault),
        timeframe=timeframe,
        warmup_bars=settings.live.warmup_bars,
        stale_after_s=settings.live.stale_after_s,
        columns=columns,
        exchange=exchange,
        lake=Lake(settings.lake_dir),
        lateness_s=settings.live.bar_lateness_s,
        calendars=Calendars.from_settings(settings),
    )
