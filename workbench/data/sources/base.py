"""The seam every market-data source implements (its one error, ``SourceUnavailableError``, is in ``errors``).

A source only fetches and validates; it never writes. ``ingest.pull`` joins a source to the lake,
so a new venue (Kite, Alpaca...) is one small class with ``name``, ``exchange`` and ``fetch``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = ["OhlcvSource", "ChunkedSource", "ScreenedSource", "Throttle"]


@runtime_checkable
class OhlcvSource(Protocol):
    """Where candles come from.

    ``name`` says how they were obtained ("ccxt:binance", "csv:kaggle_sp500", "synthetic") and is recorded with
    every stored row; ``exchange`` is where the instrument trades and names the lake partition
    ("binance", "NSE", "NASDAQ", "synthetic").
    """

    exchange: str

    @property
    def name(self) -> str: ...

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Closed bars of ``symbol`` with since ≤ ts ≤ until, validated long candles (``validate_candles``)."""
        ...

    def symbols(self) -> list[str]:
        """The symbols this source can serve (where it knows them)."""
        ...


@runtime_checkable
class ChunkedSource(Protocol):
    """A source that can hand over raw bars one API page at a time (ccxt, Kite, Alpaca).

    ``ingest.pull`` stores each page as it arrives (bad bars to quarantine), so a long pull that
    is interrupted keeps every page already fetched and resumes after the last stored bar.
    Pages are unvalidated long candles (``CANDLE_COLUMNS``, UTC ``ts``), closed bars only.
    """

    exchange: str

    @property
    def name(self) -> str: ...

    def iter_raw(
        self, symbol: str, timeframe: str, since: pd.Timestamp | None = None, until: pd.Timestamp | None = None
    ) -> Iterator[pd.DataFrame]: ...


@runtime_checkable
class ScreenedSource(Protocol):
    """A source that sets bad rows aside instead of refusing them (a lenient CSV file).

    ``ingest.pull`` stores ``fetch``'s good bars and sends ``rejected_for(symbol)`` (rows with their
    file row and reason, ``QUARANTINE_COLUMNS``) to the lake's quarantine, so nothing is dropped unseen.
    """

    exchange: str

    @property
    def name(self) -> str: ...

    def rejected_for(self, symbol: str) -> pd.DataFrame: ...


class Throttle:
    """At most ``per_second`` calls per second across threads (an API's documented rate limit)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)
