"""Live quotes for thousands of instruments per loop cycle, one slow venue never stalling the rest.

Each venue is a ``QuoteSource`` that answers for a batch of its instruments in as few calls as the
API allows (ccxt ``fetch_tickers``: one call for the whole exchange; Kite ``quote``: 500 keys a
call; Alpaca snapshots: ``batch`` symbols a call). ``fetch_quotes`` routes instruments to sources
by exchange, runs the sources in parallel threads and waits for each at most its own
``timeout_s``: an instrument whose source timed out or failed still gets a row, with NaN prices,
``stale=True`` and the error. A quote older than ``stale_after_s`` is flagged stale too.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.instruments import split_key

__all__ = ["QUOTE_COLUMNS", "QuoteSource", "CcxtQuotes", "KiteQuotes", "AlpacaQuotes", "fetch_quotes"]

QUOTE_COLUMNS = ("key", "last", "bid", "ask", "volume", "change_pct", "ts", "source", "stale", "error")


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["key", "last", "bid", "ask", "volume", "change_pct", "ts"])
    for c in ("last", "bid", "ask", "volume", "change_pct"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["ts"] = pd.to_datetime(df["ts"], utc=True, errors="coerce").astype("datetime64[ns, UTC]")
    return df


@runtime_checkable
class QuoteSource(Protocol):
    """One venue's quotes. ``exchanges``: the master's exchange names it answers for."""

    name: str
    exchanges: tuple[str, ...]
    timeout_s: float

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        """Rows (key, last, bid, ask, volume, change_pct, ts) for the keys it could quote."""
        ...


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
        return _frame(rows)


class KiteQuotes:
    """Kite ``quote`` (full quote with depth), 500 instruments a call, at most ``per_second`` calls."""

    max_batch = 500

    def __init__(self, kite, exchanges: tuple[str, ...] = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS"), timeout_s: float = 5.0, per_second: float = 1.0):
        from workbench.data.sources.base import Throttle

        self.kite = kite
        self.name = "kite"
        self.exchanges = exchanges
        self.timeout_s = timeout_s
        self._throttle = Throttle(per_second)

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        self.kite.timeout = self.timeout_s
        rows = []
        for batch in _batches(list(keys), self.max_batch):
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
        return _frame(rows)


class AlpacaQuotes:
    """Alpaca stock snapshots (latest trade, quote, daily bars), ``batch`` symbols a call."""

    def __init__(self, client, exchanges: tuple[str, ...] = ("NASDAQ", "NYSE", "AMEX", "ARCA", "BATS", "IEX", "US"), timeout_s: float = 5.0, batch: int = 1000, feed: str = "iex"):
        self.client = client
        self.name = "alpaca"
        self.exchanges = exchanges
        self.timeout_s = timeout_s
        self.batch = batch
        self.feed = feed

    def quotes(self, keys: Sequence[str]) -> pd.DataFrame:
        from alpaca.data.requests import StockSnapshotRequest

        by_symbol: dict[str, list[str]] = {}
        for k in keys:
            by_symbol.setdefault(split_key(k)[1], []).append(k)
        rows = []
        for batch in _batches(list(by_symbol), self.batch):
            snaps = self.client.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=list(batch), feed=self.feed))
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
        return _frame(rows)


def _route(keys: Sequence[str], sources: Sequence[QuoteSource]) -> tuple[dict[int, list[str]], list[str]]:
    owner = {}
    for i, src in enumerate(sources):
        for ex in src.exchanges:
            owner.setdefault(ex, i)
    routed: dict[int, list[str]] = {}
    orphans = []
    for k in keys:
        i = owner.get(split_key(k)[0])
        if i is None:
            orphans.append(k)
        else:
            routed.setdefault(i, []).append(k)
    return routed, orphans


def fetch_quotes(
    instruments,
    sources: Sequence[QuoteSource] | Mapping[str, QuoteSource],
    *,
    stale_after_s: float = 120.0,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Quotes for instrument keys (or master rows), one row each, in the order given (``QUOTE_COLUMNS``).

    Sources run in parallel; each is waited for at most its ``timeout_s`` (measured from the start
    of the call), so the whole call takes about the slowest *allowed* timeout, never longer.
    """
    if isinstance(instruments, pd.DataFrame):
        keys = list(instruments["key"]) if "key" in instruments else [f"{e}:{s}" for e, s in zip(instruments["exchange"], instruments["symbol"])]
    else:
        keys = list(instruments)
    keys = list(dict.fromkeys(keys))
    srcs = list(sources.values()) if isinstance(sources, Mapping) else list(sources)
    routed, orphans = _route(keys, srcs)
    errors: dict[str, str] = {k: "no quote source for this exchange" for k in orphans}
    frames, names = [], {}
    pool = cf.ThreadPoolExecutor(max_workers=max(1, len(routed)), thread_name_prefix="quotes")
    started = time.monotonic()
    try:
        futures = {pool.submit(srcs[i].quotes, ks): i for i, ks in routed.items()}
        for fut, i in futures.items():
            src = srcs[i]
            remaining = max(0.0, src.timeout_s - (time.monotonic() - started))
            try:
                df = fut.result(timeout=remaining)
                frames.append(df.assign(source=src.name))
                got = set(df["key"])
                for k in routed[i]:
                    if k not in got:
                        errors[k] = f"{src.name} returned no quote"
                    names[k] = src.name
            except cf.TimeoutError:
                for k in routed[i]:
                    errors[k], names[k] = f"{src.name} timed out after {src.timeout_s:g}s", src.name
            except Exception as e:  # one venue failing must not lose the others' quotes
                for k in routed[i]:
                    errors[k], names[k] = f"{src.name} failed: {type(e).__name__}: {e}", src.name
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    got = pd.concat(frames, ignore_index=True) if frames else _frame([]).assign(source=pd.Series(dtype="str"))
    got = got.drop_duplicates("key", keep="first").set_index("key")
    out = got.reindex(keys)
    out.index.name = "key"
    out["source"] = out["source"].fillna(pd.Series(names)).astype("str")
    out["error"] = pd.Series(errors, dtype="str").reindex(out.index)
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    age = (now - out["ts"]).dt.total_seconds()
    out["stale"] = out["last"].isna() | out["ts"].isna() | (age > stale_after_s)
    return out.reset_index()[list(QUOTE_COLUMNS)]
