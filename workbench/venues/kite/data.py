"""Candles from Zerodha Kite Connect ``historical_data``, chunked to the API's per-call date ranges.

Kite serves at most N days per call depending on the interval (minute: 60, 3–10 minute: 100,
15/30 minute: 200, hour: 400, day: 2000) and 3 historical calls a second; ``iter_raw`` walks the
range in such chunks, throttled, one page per chunk. Daily bars are labelled by session date at
00:00 UTC (Kite stamps them 00:00 IST), intraday bars keep their instant in UTC.
Symbols are the master's ``tradingsymbol`` on one exchange; the instrument token comes from the
instrument master (``tokens``), as Kite needs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.data.candles import empty_candles, validate_candles
from workbench.data.quotes import batches, quote_frame
from workbench.data.sources.base import Throttle
from workbench.errors import DataError, SourceUnavailableError, UnknownSymbolError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = ["KiteSource", "KiteQuotes", "KITE_INTERVALS", "KITE_MAX_DAYS", "make_source", "make_quotes"]

KITE_INTERVALS = {
    "1m": "minute",
    "3m": "3minute",
    "5m": "5minute",
    "10m": "10minute",
    "15m": "15minute",
    "30m": "30minute",
    "1h": "60minute",
    "1d": "day",
}
KITE_MAX_DAYS = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}
_IST = "Asia/Kolkata"
_DEFAULT_START = pd.Timestamp("2015-01-01", tz="UTC")


def _translate(e: Exception, what: str) -> Exception:
    from kiteconnect import exceptions as kx

    if isinstance(e, (kx.NetworkException,)) or type(e).__name__ in ("ConnectionError", "Timeout", "ReadTimeout"):
        return SourceUnavailableError(f"Kite did not answer for {what} ({e}); retry later")
    if isinstance(e, kx.TokenException):
        return DataError(f"Kite refused the session for {what}: {e}. Log in again and store a fresh access token")
    if isinstance(e, kx.InputException):
        return UnknownSymbolError(f"Kite rejected {what}: {e}")
    return DataError(f"Kite failed for {what}: {type(e).__name__}: {e}")


class KiteSource:
    """An ``OhlcvSource`` and ``ChunkedSource`` over a ``kiteconnect.KiteConnect`` client."""

    name = "kite"

    def __init__(self, kite, exchange: str = "NSE", tokens: Mapping[str, int] | None = None, per_second: float = 3.0):
        self.kite = kite
        self.exchange = exchange
        self.tokens = dict(tokens or {})
        self._throttle = Throttle(per_second)

    @classmethod
    def from_master(cls, kite, master, exchange: str = "NSE", **kw) -> KiteSource:
        t = master.table()
        t = t[(t["exchange"] == exchange) & t["kite_token"].notna()]
        return cls(kite, exchange, dict(zip(t["symbol"], t["kite_token"].astype("int64"), strict=True)), **kw)

    def symbols(self) -> list[str]:
        return sorted(self.tokens)

    def _token(self, symbol: str) -> int:
        try:
            return int(self.tokens[symbol])
        except KeyError:
            raise UnknownSymbolError(
                f"no Kite instrument token for {self.exchange}:{symbol}: refresh the instrument master with "
                "`workbench instruments refresh --source kite`"
            ) from None

    def iter_raw(self, symbol: str, timeframe: str, since=None, until=None) -> Iterator[pd.DataFrame]:
        if timeframe not in KITE_INTERVALS:
            raise DataError(f"Kite has no {timeframe!r} candles; it has {sorted(KITE_INTERVALS)}")
        interval = KITE_INTERVALS[timeframe]
        token = self._token(symbol)
        daily = interval == "day"
        now = pd.Timestamp.now(tz="UTC")
        start = _DEFAULT_START if since is None else pd.Timestamp(since)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        stop = now if until is None else pd.Timestamp(until)
        stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop
        # Kite takes local (IST) wall times; daily labels are dates, so ask by date.
        lo = start.tz_localize(None) if daily else start.tz_convert(_IST).tz_localize(None)
        hi = stop.tz_localize(None) if daily else stop.tz_convert(_IST).tz_localize(None)
        span = pd.Timedelta(days=KITE_MAX_DAYS[interval])
        cursor = lo
        while cursor <= hi:
            chunk_end = min(cursor + span - pd.Timedelta(seconds=1), hi)
            self._throttle.wait()
            try:
                rows = self.kite.historical_data(token, cursor.to_pydatetime(), chunk_end.to_pydatetime(), interval)
            except Exception as e:  # kiteconnect raises its own tree and requests' errors
                raise _translate(e, f"{self.exchange}:{symbol} {timeframe}") from e
            cursor = chunk_end + pd.Timedelta(seconds=1)
            if not rows:
                continue
            df = pd.DataFrame(rows)
            ts = pd.to_datetime(df["date"], utc=False)
            if daily:
                local = ts.dt.tz_convert(_IST) if getattr(ts.dt, "tz", None) is not None else ts
                ts = local.dt.tz_localize(None).dt.normalize().dt.tz_localize("UTC")
            else:
                ts = ts.dt.tz_localize(_IST) if ts.dt.tz is None else ts
                ts = ts.dt.tz_convert("UTC")
            out = pd.DataFrame(
                {"ts": ts, "symbol": symbol, **{c: df[c] for c in ("open", "high", "low", "close", "volume")}}
            )
            step = pd.Timedelta(days=1) if daily else pd.Timedelta(minutes=int(interval.replace("minute", "") or 1))
            lower = start.floor("D") if daily else start
            out = out[(out["ts"] + step <= now) & (out["ts"] >= lower)]
            if len(out):
                yield out.reset_index(drop=True)

    def fetch(self, symbol: str, timeframe: str, since=None, until=None) -> pd.DataFrame:
        pages = list(self.iter_raw(symbol, timeframe, since, until))
        if not pages:
            return empty_candles()
        return validate_candles(pd.concat(pages, ignore_index=True), f"kite {self.exchange}:{symbol} {timeframe}")


class KiteQuotes:
    """Kite ``quote`` (full quote with depth), 500 instruments a call, at most ``per_second`` calls."""

    max_batch = 500

    def __init__(
        self,
        kite,
        exchanges: tuple[str, ...] = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS"),
        timeout_s: float = 5.0,
        per_second: float = 1.0,
    ):
        self.kite = kite
        self.name = "kite"
        self.exchanges = exchanges
        self.timeout_s = timeout_s
        self._throttle = Throttle(per_second)

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        self.kite.timeout = self.timeout_s
        rows = []
        for batch in batches(list(keys), self.max_batch):
            self._throttle.wait()
            data = self.kite.quote(list(batch))
            for key, q in data.items():
                depth = q.get("depth") or {}
                buy, sell = depth.get("buy") or [{}], depth.get("sell") or [{}]
                prev = (q.get("ohlc") or {}).get("close")
                last = q.get("last_price")
                bid, ask = buy[0].get("price"), sell[0].get("price")
                rows.append(
                    {"key": key, "last": last, "bid": bid or np.nan, "ask": ask or np.nan, "volume": q.get("volume"),
                     "change_pct": (last - prev) / prev * 100 if last is not None and prev else np.nan,
                     "ts": pd.Timestamp(q.get("last_trade_time") or q.get("timestamp")).tz_localize("Asia/Kolkata") if (q.get("last_trade_time") or q.get("timestamp")) else None}
                )  # fmt: skip
        return quote_frame(rows)


def _client(settings: Settings, config, vault: Vault | None):
    from kiteconnect import KiteConnect

    from workbench.security.vault import vault_of
    from workbench.venues.kite.broker import kite_session

    key, token, _ = kite_session(settings, vault_of(settings, vault))
    return KiteConnect(
        api_key=key, access_token=token, root=getattr(config, "root", None), timeout=settings.broker.timeout_s
    )


def make_source(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> KiteSource:
    """The registry's history factory: Kite candles of one exchange (``kite:<EXCHANGE>``, default
    ``[venues.kite] exchange``), instrument tokens from the instrument master."""
    from workbench.errors import ConfigError
    from workbench.instruments import InstrumentMaster

    master = InstrumentMaster.of(settings)
    if not master.exists():
        raise ConfigError("kite needs instrument tokens: run `workbench instruments refresh --source kite` first")
    exchange = (instance or getattr(config, "exchange", None) or "NSE").upper()
    per_second = getattr(config, "history_per_second", 3.0)
    return KiteSource.from_master(_client(settings, config, vault), master, exchange, per_second=per_second)


def make_quotes(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> KiteQuotes:
    """The registry's quote factory: Kite ``quote`` for every Kite exchange."""
    return KiteQuotes(_client(settings, config, vault), per_second=getattr(config, "quotes_per_second", 1.0))
