"""Trading sessions: is an instrument's market open at a given minute (``exchange_calendars``)?

Why its own module: the feed, the tests and the dashboard all ask the same question, and the answer
must be a pure function of (exchange, time) — holidays, weekends and the regular hours of
NSE and BSE (one calendar, ``XBOM``: the two exchanges share hours and holidays, and
``exchange_calendars`` ships no separate ``XNSE``; 09:15–15:30 IST) and XNYS/XNAS (09:30–16:00 ET) come from the calendars, crypto trades
around the clock. An exchange with no calendar here is treated as 24/7 only when it is a crypto
venue (a ccxt exchange id); anything else unknown is a ``ConfigError``, never a silent "open".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ConfigError

__all__ = ["CALENDARS", "calendar_code", "is_open", "open_by_exchange", "open_mask"]

CALENDARS: Mapping[str, str] = {
    "NSE": "XBOM",
    "NFO": "XBOM",
    "BSE": "XBOM",
    "BFO": "XBOM",
    "NYSE": "XNYS",
    "AMEX": "XNYS",
    "ARCA": "XNYS",
    "NYSEARCA": "XNYS",
    "BATS": "XNYS",
    "US": "XNYS",
    "NASDAQ": "XNAS",
}
"""Exchange (the prefix of an instrument key) → its ``exchange_calendars`` code."""


def _crypto(exchange: str) -> bool:
    import ccxt

    return exchange.lower() in ccxt.exchanges


def calendar_code(exchange: str) -> str | None:
    """The calendar of ``exchange``; None for a crypto venue (24/7)."""
    code = CALENDARS.get(exchange.upper())
    if code is not None:
        return code
    if _crypto(exchange):
        return None
    raise ConfigError(
        f"no trading calendar for exchange {exchange!r}: known are {', '.join(sorted(CALENDARS))} and the ccxt "
        "exchanges (24/7)"
    )


@lru_cache(maxsize=32)
def _calendar(code: str, year: int) -> Any:
    """The calendar from two years before ``year`` to two after: the package's default ends about a year
    out, and a run must not stop at New Year (the weekly hours hold beyond the last holiday it lists).
    Calendars whose holidays are only known to a year (XBOM) refuse more: then the default range."""
    import exchange_calendars as xcals

    try:
        return xcals.get_calendar(code, start=f"{year - 2}-01-01", end=f"{year + 2}-12-31")
    except ValueError:
        return xcals.get_calendar(code, start=f"{year - 2}-01-01")


def is_open(exchange: str, now: pd.Timestamp) -> bool:
    """True when ``exchange`` is in its regular session at ``now`` (any tz-aware time)."""
    code = calendar_code(exchange)
    if code is None:
        return True
    minute = pd.Timestamp(now).tz_convert("UTC").floor("min")
    cal = _calendar(code, minute.year)
    if not cal.first_minute <= minute <= cal.last_minute:
        raise ConfigError(
            f"the {code} calendar knows sessions only to {cal.last_minute:%Y-%m-%d} (its holidays are not recorded "
            f"further), not {minute:%Y-%m-%d}: upgrade exchange_calendars (`pip install -U exchange_calendars`)"
        )
    return bool(cal.is_open_on_minute(minute))


def open_by_exchange(exchanges: Iterable[str], now: pd.Timestamp) -> dict[str, bool]:
    return {e: is_open(e, now) for e in dict.fromkeys(exchanges)}


def open_mask(exchanges: np.ndarray, now: pd.Timestamp) -> np.ndarray:
    """Per instrument (its exchange in ``exchanges``), whether its market is open at ``now``: one
    calendar lookup per distinct exchange, then a vectorised map."""
    ex = np.asarray(exchanges, dtype=object)
    uniq, inv = np.unique(ex, return_inverse=True)
    return np.array([is_open(str(e), now) for e in uniq], dtype=bool)[inv] if len(ex) else np.zeros(0, dtype=bool)
