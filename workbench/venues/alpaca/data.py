"""US equity candles from Alpaca's market-data API (alpaca-py), paged by the client.

Keys: the venue's one scheme (``workbench.venues.alpaca.config``): the vault's ``alpaca/api_key`` and
``alpaca/secret``, else ``WORKBENCH_KEY_ALPACA_API_KEY`` / ``WORKBENCH_KEY_ALPACA_SECRET``. ``url`` points the client at
another host (tests run a local fake). Daily bars are labelled by session date at 00:00 UTC like
every other venue; intraday bars keep their UTC start. Alpaca allows 200 calls a minute on the free
plan: ``per_second`` throttles each call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.data.candles import empty_candles, validate_candles
from workbench.data.quotes import batches, quote_frame
from workbench.data.sources.base import Throttle
from workbench.errors import AuthenticationError, ConfigError, DataError, SourceUnavailableError, UnknownSymbolError
from workbench.instruments import split_key

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = [
    "AlpacaSource",
    "AlpacaQuotes",
    "ALPACA_TIMEFRAMES",
    "US_EXCHANGES",
    "make_source",
    "make_quotes",
    "us_listings",
]

ALPACA_TIMEFRAMES = {
    "1m": (1, "Min"),
    "5m": (5, "Min"),
    "15m": (15, "Min"),
    "30m": (30, "Min"),
    "1h": (1, "Hour"),
    "1d": (1, "Day"),
    "1w": (1, "Week"),
}
_NY = "America/New_York"


def _translate(e: Exception, what: str) -> Exception:
    status = getattr(e, "status_code", None)
    if status in (429, 500, 502, 503, 504) or type(e).__name__ in ("ConnectionError", "Timeout", "ReadTimeout"):
        return SourceUnavailableError(f"Alpaca did not answer for {what} ({e}); retry later")
    if status in (401, 403):
        return ConfigError(f"Alpaca refused the keys for {what}: {e}")
    if status in (400, 404, 422):
        return UnknownSymbolError(f"Alpaca rejected {what}: {e}")
    return DataError(f"Alpaca failed for {what}: {type(e).__name__}: {e}")


class AlpacaSource:
    """An ``OhlcvSource``/``ChunkedSource`` over ``alpaca.data.StockHistoricalDataClient`` (raw data mode)."""

    name = "alpaca"

    def __init__(
        self,
        client=None,
        exchange: str = "US",
        *,
        url: str | None = None,
        feed: str = "iex",
        per_second: float = 3.0,
        chunk_days: int = 3650,
        vault: Vault | None = None,
        exchanges: dict[str, str] | None = None,
    ):
        if client is None:
            from alpaca.data.historical import StockHistoricalDataClient

            from workbench.venues.alpaca.broker import alpaca_keys

            try:
                key, secret = alpaca_keys(None, vault)
            except AuthenticationError as e:
                raise ConfigError(f"Alpaca market data needs keys: {e}") from e
            client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
        self.client = client
        self.exchange = exchange
        self._exchanges = dict(exchanges or {})
        self.feed = feed
        self.chunk_days = chunk_days
        self._throttle = Throttle(per_second)

    def symbols(self) -> list[str]:
        return []  # Alpaca lists assets through its trading API; use the instrument master

    def exchange_of(self, symbol: str) -> str:
        """The lake exchange ``symbol``'s bars go under: its listing exchange from the instrument master
        (``NASDAQ``, ``NYSE``, …), the name live bars of ``NASDAQ:AAPL`` are stored under too, so a pull
        and a live run extend one series; ``exchange`` for a symbol the master does not list."""
        return self._exchanges.get(symbol, self.exchange)

    def iter_raw(self, symbol: str, timeframe: str, since=None, until=None) -> Iterator[pd.DataFrame]:
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        if timeframe not in ALPACA_TIMEFRAMES:
            raise DataError(f"Alpaca has no {timeframe!r} bars here; use one of {sorted(ALPACA_TIMEFRAMES)}")
        amount, unit = ALPACA_TIMEFRAMES[timeframe]
        tf = TimeFrame(amount, TimeFrameUnit(unit))
        now = pd.Timestamp.now(tz="UTC")
        start = pd.Timestamp("2016-01-01", tz="UTC") if since is None else pd.Timestamp(since)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        stop = now if until is None else pd.Timestamp(until)
        stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop
        daily = unit in ("Day", "Week")
        cursor = start
        while cursor <= stop:
            chunk_end = min(cursor + pd.Timedelta(days=self.chunk_days), stop)
            req = StockBarsRequest(
                symbol_or_symbols=symbol,
                timeframe=tf,
                start=cursor.to_pydatetime(),
                end=chunk_end.to_pydatetime(),
                feed=DataFeed(self.feed),
            )
            self._throttle.wait()
            try:
                data = self.client.get_stock_bars(req)
            except Exception as e:  # alpaca-py raises APIError / requests errors
                raise _translate(e, f"{symbol} {timeframe}") from e
            cursor = chunk_end + pd.Timedelta(seconds=1)
            bars = (data or {}).get(symbol) or []
            if not bars:
                continue
            df = pd.DataFrame(bars)
            ts = pd.to_datetime(df["t"], utc=True)
            if daily:  # Alpaca stamps daily bars at 04:00/05:00 UTC (midnight New York): keep the date
                ts = ts.dt.tz_convert(_NY).dt.tz_localize(None).dt.normalize().dt.tz_localize("UTC")
            out = pd.DataFrame(
                {
                    "ts": ts,
                    "symbol": symbol,
                    "open": df["o"],
                    "high": df["h"],
                    "low": df["l"],
                    "close": df["c"],
                    "volume": df["v"],
                }
            )
            step = pd.Timedelta(days=1) if daily else pd.Timedelta(minutes=amount * (60 if unit == "Hour" else 1))
            out = out[out["ts"] + step <= now]
            if len(out):
                yield out.reset_index(drop=True)

    def fetch(self, symbol: str, timeframe: str, since=None, until=None) -> pd.DataFrame:
        pages = list(self.iter_raw(symbol, timeframe, since, until))
        if not pages:
            return empty_candles()
        return validate_candles(pd.concat(pages, ignore_index=True), f"alpaca {symbol} {timeframe}")


class AlpacaQuotes:
    """Alpaca stock snapshots (latest trade, quote, daily bars), ``batch`` symbols a call."""

    def __init__(
        self,
        client,
        exchanges: tuple[str, ...] = ("NASDAQ", "NYSE", "AMEX", "ARCA", "BATS", "IEX", "US"),
        timeout_s: float = 5.0,
        batch: int = 1000,
        feed: str = "iex",
    ):
        self.client = client
        self.name = "alpaca"
        self.exchanges = exchanges
        self.timeout_s = timeout_s
        self.batch = batch
        self.feed = feed

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockSnapshotRequest

        by_symbol: dict[str, list[str]] = {}
        for k in keys:
            by_symbol.setdefault(split_key(k)[1], []).append(k)
        rows = []
        for batch in batches(list(by_symbol), self.batch):
            snaps = self.client.get_stock_snapshot(
                StockSnapshotRequest(symbol_or_symbols=list(batch), feed=DataFeed(self.feed))
            )
            for sym, s in (snaps or {}).items():
                if not isinstance(s, dict):
                    s = s.model_dump() if hasattr(s, "model_dump") else {}
                trade = s.get("latestTrade") or {}
                quote = s.get("latestQuote") or {}
                day = s.get("dailyBar") or {}
                prev = (s.get("prevDailyBar") or {}).get("c")
                last = trade.get("p")
                for key in by_symbol.get(sym, []):
                    rows.append(
                        {"key": key, "last": last, "bid": quote.get("bp"), "ask": quote.get("ap"), "volume": day.get("v"),
                         "change_pct": (last - prev) / prev * 100 if last is not None and prev else np.nan, "ts": trade.get("t")}
                    )  # fmt: skip
        return quote_frame(rows)


def make_source(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> AlpacaSource:
    """The registry's history factory: Alpaca bars labelled ``alpaca:<EXCHANGE>`` (default ``US``)."""
    from workbench.security.vault import vault_of

    url = getattr(config, "data_url", None) or getattr(config, "url", None)
    return AlpacaSource(exchange=(instance or "US").upper(), url=url, feed=getattr(config, "feed", "iex"),
                        per_second=getattr(config, "history_per_second", 3.0), vault=vault_of(settings, vault),
                        exchanges=None if instance else us_listings(settings))  # fmt: skip


# The instrument master's US listing exchanges (NASDAQ Trader's files name these).
US_EXCHANGES = ("NASDAQ", "NYSE", "NYSEARCA", "NYSEAMERICAN", "NYSEMKT", "BATS", "CBOE", "IEX", "ARCA", "AMEX")


def us_listings(settings: Settings) -> dict[str, str]:
    """Ticker → listing exchange of the master's US rows (empty without a master): the lake names a
    pulled Alpaca series the way the live feed names the instrument's key."""
    from workbench.instruments import InstrumentMaster

    master = InstrumentMaster.of(settings)
    if not master.exists():
        return {}
    table = master.table()
    us = table[table["exchange"].isin(US_EXCHANGES)]
    return dict(zip(us["symbol"].astype(str), us["exchange"].astype(str), strict=True))


def make_quotes(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> AlpacaQuotes:
    """The registry's quote factory: Alpaca snapshots over the history source's client."""
    src = make_source(settings, config, instance=instance, vault=vault)
    return AlpacaQuotes(src.client, feed=src.feed)
