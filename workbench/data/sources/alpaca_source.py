"""US equity candles from Alpaca's market-data API (alpaca-py), paged by the client.

Keys: ``ALPACA_API_KEY_ID`` / ``ALPACA_API_SECRET_KEY`` (Alpaca's own ``APCA_API_KEY_ID`` /
``APCA_API_SECRET_KEY`` are read too) until the key vault exists. ``url`` points the client at
another host (tests run a local fake). Daily bars are labelled by session date at 00:00 UTC like
every other venue; intraday bars keep their UTC start. Alpaca allows 200 calls a minute on the free
plan: ``per_second`` throttles each call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd

from workbench.data.candles import empty_candles, validate_candles
from workbench.data.sources.base import Throttle
from workbench.errors import ConfigError, DataError, SourceUnavailableError, UnknownSymbolError

__all__ = ["AlpacaSource", "alpaca_keys", "ALPACA_TIMEFRAMES"]

ALPACA_TIMEFRAMES = {"1m": (1, "Min"), "5m": (5, "Min"), "15m": (15, "Min"), "30m": (30, "Min"), "1h": (1, "Hour"), "1d": (1, "Day"), "1w": (1, "Week")}
_NY = "America/New_York"


def alpaca_keys(env=None) -> tuple[str, str]:
    env = os.environ if env is None else env
    key = env.get("ALPACA_API_KEY_ID") or env.get("APCA_API_KEY_ID")
    secret = env.get("ALPACA_API_SECRET_KEY") or env.get("APCA_API_SECRET_KEY")
    if not key or not secret:
        raise ConfigError("Alpaca market data needs keys: set ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY (free paper account keys work)")
    return key, secret


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

    def __init__(self, client=None, exchange: str = "US", *, url: str | None = None, feed: str = "iex", per_second: float = 3.0, chunk_days: int = 3650):
        if client is None:
            from alpaca.data.historical import StockHistoricalDataClient

            key, secret = alpaca_keys()
            client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
        self.client = client
        self.exchange = exchange
        self.feed = feed
        self.chunk_days = chunk_days
        self._throttle = Throttle(per_second)

    def symbols(self) -> list[str]:
        return []  # Alpaca lists assets through its trading API; use the instrument master

    def iter_raw(self, symbol: str, timeframe: str, since=None, until=None) -> Iterator[pd.DataFrame]:
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
            req = StockBarsRequest(symbol_or_symbols=symbol, timeframe=tf, start=cursor.to_pydatetime(), end=chunk_end.to_pydatetime(), feed=self.feed)
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
            out = pd.DataFrame({"ts": ts, "symbol": symbol, "open": df["o"], "high": df["h"], "low": df["l"], "close": df["c"], "volume": df["v"]})
            step = pd.Timedelta(days=1) if daily else pd.Timedelta(minutes=amount * (60 if unit == "Hour" else 1))
            out = out[out["ts"] + step <= now]
            if len(out):
                yield out.reset_index(drop=True)

    def fetch(self, symbol: str, timeframe: str, since=None, until=None) -> pd.DataFrame:
        pages = list(self.iter_raw(symbol, timeframe, since, until))
        if not pages:
            return empty_candles()
        return validate_candles(pd.concat(pages, ignore_index=True), f"alpaca {symbol} {timeframe}")
