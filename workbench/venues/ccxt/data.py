"""Public candles from any ccxt exchange (Binance by default), paginated forward, errors translated.

Only closed bars are returned: the exchange's last candle is usually still forming, and storing it
would freeze a wrong bar in the lake (stored bars are never rewritten). ccxt errors become
workbench errors with ``raise … from e`` (freqtrade's rule), split by what the caller should do:

* ``ccxt.BadSymbol``                         → ``UnknownSymbolError`` (fix the symbol)
* ``ccxt.NetworkError`` (timeouts, 429/DDoS,
  rate limits, exchange not available)       → ``SourceUnavailableError`` (retry later; a
                                               ``TemporaryError``, so retry loops try it again)
* any other ``ccxt.BaseError``               → ``DataError`` naming the exchange and the symbol
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ccxt
import pandas as pd

from workbench.data.candles import empty_candles, validate_candles
from workbench.data.quotes import quote_frame
from workbench.errors import DataError, SourceUnavailableError, UnknownSymbolError
from workbench.instruments import split_key

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = ["CcxtSource", "CcxtQuotes", "deep_merge", "make_source", "make_quotes"]

# Candle pulls need spot markets only; loading futures/options markets too costs two more
# heavy requests per start-up (Binance exchangeInfo for fapi and dapi).
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}},
    "binanceus": {"fetchMarkets": {"types": ["spot"]}},
}


def _ms(ts) -> int:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra`` with nested dicts merged, not replaced (ccxt's config, options
    and urls are nested: overriding one endpoint must keep the others)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class CcxtSource:
    """OHLCV from a ccxt exchange; an ``OhlcvSource``.

    ``config`` is merged into the ccxt constructor dict (tests point ``urls`` at a local fake
    exchange); ``exchange`` passes a ready ccxt client instead. Rate limiting is always on.
    """

    def __init__(self, exchange_id: str = "binance", config: dict | None = None, exchange=None, page_limit: int = 1000):
        if exchange is None:
            cls = getattr(ccxt, exchange_id, None)
            if cls is None or not isinstance(cls, type):
                raise DataError(f"ccxt has no exchange {exchange_id!r}: see ccxt.exchanges for the ids")
            base = {"enableRateLimit": True, "options": _DEFAULT_OPTIONS.get(exchange_id, {})}
            exchange = cls(deep_merge(base, config or {}))
        exchange.enableRateLimit = True
        self._ex = exchange
        self.exchange = exchange.id
        self.name = f"ccxt:{exchange.id}"
        self.page_limit = page_limit

    @property
    def client(self):
        """The underlying ccxt exchange object (for callers that need more than candles)."""
        return self._ex

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except ccxt.BadSymbol as e:
            raise UnknownSymbolError(
                f"{self.exchange} has no market {what}: use the unified form like 'BTC/USDT' "
                f"(CcxtSource.symbols() lists them). ({e})"
            ) from e
        except ccxt.NetworkError as e:
            raise SourceUnavailableError(
                f"{self.exchange} did not answer for {what} ({type(e).__name__}: {e}); retry later, "
                "or use --source synthetic offline"
            ) from e
        except ccxt.BaseError as e:
            raise DataError(f"{self.exchange} refused {what}: {type(e).__name__}: {e}") from e

    def symbols(self) -> list[str]:
        with self._translate("the market list"):
            markets = self._ex.load_markets()
        return sorted(s for s, m in markets.items() if m.get("active", True) is not False)

    def reachable(self, timeout_s: float = 3.0) -> bool:
        """Does the exchange answer within ``timeout_s``? (``fetch_time``, else the market list.)"""
        saved = self._ex.timeout
        self._ex.timeout = int(timeout_s * 1000)
        try:
            if self._ex.has.get("fetchTime"):
                self._ex.fetch_time()
            else:
                self._ex.load_markets()
            return True
        except Exception:  # any failure means "not usable now"; the caller falls back
            return False
        finally:
            self._ex.timeout = saved

    def iter_raw(
        self,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Closed bars with since ≤ ts ≤ until, one page (``page_limit`` bars) at a time, unvalidated.

        Without ``since`` one page is fetched: the exchange's most recent bars. Paging stops at
        ``until``, at the present, or when a page brings nothing new; a page shorter than asked
        does not stop it (exchanges cap ``limit`` below what we ask). ccxt's own rate limiter
        (``enableRateLimit``) spaces the requests by the exchange's documented limit.
        """
        ex = self._ex
        what = f"{symbol} {timeframe}"
        with self._translate(what):
            ex.load_markets()
            if timeframe not in (ex.timeframes or {timeframe: timeframe}):
                raise DataError(f"{self.exchange} has no {timeframe!r} candles; it has {sorted(ex.timeframes)}")
        step = ex.parse_timeframe(timeframe) * 1000
        start = None if since is None else _ms(since)
        stop = None if until is None else _ms(until)
        last_seen = -1
        cursor = start
        while True:
            with self._translate(what):
                page = ex.fetch_ohlcv(symbol, timeframe, since=cursor, limit=self.page_limit)
            page = [r for r in page if r[0] > last_seen and (cursor is None or r[0] >= cursor)]
            if not page:
                break
            last_seen = page[-1][0]
            now = ex.milliseconds()
            closed = [
                r[:6]
                for r in page
                if r[0] + step <= now and (start is None or r[0] >= start) and (stop is None or r[0] <= stop)
            ]
            if closed:
                df = pd.DataFrame(closed, columns=["ts", "open", "high", "low", "close", "volume"])
                df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True)
                df.insert(1, "symbol", symbol)
                yield df
            if start is None or (stop is not None and last_seen >= stop) or last_seen + step > now:
                break
            cursor = last_seen + step

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """All closed bars with since ≤ ts ≤ until (``iter_raw`` pages joined), validated strictly."""
        pages = list(self.iter_raw(symbol, timeframe, since, until))
        if not pages:
            return empty_candles()
        return validate_candles(pd.concat(pages, ignore_index=True), f"{self.name} {symbol} {timeframe}")


class CcxtQuotes:
    """``fetch_tickers`` of one ccxt exchange: every market in one call (then filtered)."""

    def __init__(self, exchange, timeout_s: float = 5.0, all_at_once: bool = True):
        self.ex = exchange
        self.name = f"ccxt:{exchange.id}"
        self.exchanges = (exchange.id,)
        self.timeout_s = timeout_s
        self.all_at_once = all_at_once

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        symbols = [split_key(k)[1] for k in keys]
        self.ex.timeout = int(self.timeout_s * 1000)
        tickers = self.ex.fetch_tickers(None if self.all_at_once else symbols)
        rows = []
        for sym in symbols:
            t = tickers.get(sym)
            if t is None:
                continue
            rows.append(
                {"key": f"{self.ex.id}:{sym}", "last": t.get("last"), "bid": t.get("bid"), "ask": t.get("ask"),
                 "volume": t.get("baseVolume"), "change_pct": t.get("percentage"),
                 "ts": pd.Timestamp(t["timestamp"], unit="ms", tz="UTC") if t.get("timestamp") else None}
            )  # fmt: skip
        return quote_frame(rows)


def _client_config(config: Any, exchange_id: str) -> dict:
    """The ccxt constructor dict ``[venues.ccxt]`` asks for this exchange (options, urls, rate limit)."""
    if config is None:
        return {}
    out: dict[str, Any] = {"enableRateLimit": config.rate_limit}
    if config.options.get(exchange_id):
        out["options"] = config.options[exchange_id]
    if config.urls.get(exchange_id):
        out["urls"] = config.urls[exchange_id]
    return out


def make_source(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> CcxtSource:
    """The registry's history factory: public candles of ``ccxt:<instance>`` (default: the demo exchange)."""
    ex = instance or settings.demo.ccxt_exchange
    return CcxtSource(ex, config=_client_config(config, ex) or None)


def make_quotes(
    settings: Settings, config=None, *, instance: str | None = None, vault: Vault | None = None, store=None
) -> CcxtQuotes:
    """The registry's quote factory: ``fetch_tickers`` of ``ccxt:<instance>``."""
    return CcxtQuotes(make_source(settings, config, instance=instance).client)
