"""Trading sessions: is an instrument's market open at a given minute?

Why its own module: the feed, the tests and the dashboard all ask the same question, and the answer
must be a pure function of (exchange, time). The calendar itself is ``workbench.data.calendars``
(one for research and live): holidays, weekends and regular hours of NSE and BSE (one calendar,
``XBOM``, 09:15–15:30 IST) and XNYS/XNAS (09:30–16:00 ET), the exchange's weekly schedule beyond
the last year whose holidays ``exchange_calendars`` records (a run never stops at New Year; Phase 1
warns when that horizon is near), and the extra holidays of the run's settings (a ``Calendars``
passed in; none given: the recorded sessions). Crypto trades
around the clock. An exchange with no calendar is treated as 24/7 only when it is a crypto venue
(a ccxt exchange id) or the synthetic market; anything else is a ``ConfigError``, never a silent "open".
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.data.calendars import ALWAYS_OPEN, CALENDARS, RECORDED, Calendars, calendar_name

__all__ = ["CALENDARS", "calendar_code", "is_open", "open_by_exchange", "open_mask"]


def calendar_code(exchange: str) -> str | None:
    """The calendar of ``exchange``; None for a crypto venue (24/7). Unknown: ``ConfigError``."""
    code = calendar_name(exchange)
    return None if code == ALWAYS_OPEN else code


def is_open(exchange: str, now: pd.Timestamp, calendars: Calendars | None = None) -> bool:
    """True when ``exchange`` is in its regular session at ``now`` (any tz-aware time), for any date, by
    ``calendars`` (a home's, ``Calendars.from_settings``; default the recorded sessions)."""
    return (calendars or RECORDED).is_open(exchange, now)


def open_by_exchange(
    exchanges: Iterable[str], now: pd.Timestamp, calendars: Calendars | None = None
) -> dict[str, bool]:
    return {e: is_open(e, now, calendars) for e in dict.fromkeys(exchanges)}


def open_mask(exchanges: np.ndarray, now: pd.Timestamp, calendars: Calendars | None = None) -> np.ndarray:
    """Per instrument (its exchange in ``exchanges``), whether its market is open at ``now``: one
    calendar lookup per distinct exchange, then a vectorised map."""
    ex = np.asarray(exchanges, dtype=object)
    if not len(ex):
        return np.zeros(0, dtype=bool)
    uniq, inv = np.unique(ex, return_inverse=True)
    return np.array([is_open(str(e), now, calendars) for e in uniq], dtype=bool)[inv]
