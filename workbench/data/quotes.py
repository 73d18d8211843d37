"""Live quotes for thousands of instruments per loop cycle, one slow venue never stalling the rest.

Each venue is a ``QuoteSource`` (in its package's ``data`` module: ``workbench.venues.<name>.data``) that answers for a batch of its instruments in as few calls as the
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

import pandas as pd

from workbench.instruments import split_key

__all__ = ["QUOTE_COLUMNS", "QuoteSource", "quote_frame", "batches", "fetch_quotes"]

QUOTE_COLUMNS = ("key", "last", "bid", "ask", "volume", "change_pct", "ts", "source", "stale", "error")


def quote_frame(rows: list[dict]) -> pd.DataFrame:
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


def batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _route(keys: Sequence[str], sources: Sequence[QuoteSource]) -> tuple[dict[int, list[str]], list[str]]:
    owner: dict[str, int] = {}
    for i, src in enumerate(sources):
        for ex in src.exchanges:
            owner.setdefault(ex, i)
    routed: dict[int, list[str]] = {}
    orphans: list[str] = []
    for k in keys:
        at = owner.get(split_key(k)[0])
        if at is None:
            orphans.append(k)
        else:
            routed.setdefault(at, []).append(k)
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
        keys = (
            list(instruments["key"])
            if "key" in instruments
            else [f"{e}:{s}" for e, s in zip(instruments["exchange"], instruments["symbol"], strict=True)]
        )
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
                answered = set(df["key"])
                for k in routed[i]:
                    if k not in answered:
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
    got = pd.concat(frames, ignore_index=True) if frames else quote_frame([]).assign(source=pd.Series(dtype="str"))
    got = got.drop_duplicates("key", keep="first").set_index("key")
    out = got.reindex(keys)
    out.index.name = "key"
    out["source"] = out["source"].fillna(pd.Series(names)).astype("str")
    out["error"] = pd.Series(errors, dtype="str").reindex(out.index)
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    age = (now - out["ts"]).dt.total_seconds()
    out["stale"] = out["last"].isna() | out["ts"].isna() | (age > stale_after_s)
    return out.reset_index()[list(QUOTE_COLUMNS)]
