"""Time features from the exchange calendar: time of day, day of week, session phase, time to the close.

Why the calendar and not the wall clock: "30 minutes to the close" means 15:30 in New York on a
normal day, 12:30 on a half day, and never on a holiday; crypto trades around the clock (its
"session" is the UTC day). Sessions come from ``workbench.data.calendars`` (``exchange_calendars``
where it records the holidays, the exchange's weekly schedule beyond, the extra holidays of the
``Calendars`` passed in removed; none passed: the recorded sessions). Only an unknown venue falls back to the 24/7 clock (``SessionClock.note`` says so) rather
than failing a feature build.

Bars are labelled by their start (intraday) or by session date at 00:00 UTC (daily and longer);
a daily bar's features describe its session: phase 0 and the session length as time to the close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.data.calendars import Calendars

__all__ = ["SessionClock", "calendar_note", "session_clock", "time_features", "TIME_COLUMNS"]

TIME_COLUMNS = ("hour_sin", "hour_cos", "day_of_week", "session_phase", "hours_to_close")
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class SessionClock:
    """Session opens/closes (UTC ns) covering ``[start, end]``; ``code`` is the calendar or ``'24/7'``."""

    code: str
    tz: str
    start: pd.Timestamp
    end: pd.Timestamp
    session_days: np.ndarray = field(repr=False)  # session dates as UTC-midnight ns
    opens: np.ndarray = field(repr=False)
    closes: np.ndarray = field(repr=False)
    note: str = ""

    def covers(self, index: pd.DatetimeIndex) -> bool:
        return len(index) == 0 or (index.min() >= self.start and index.max() <= self.end)


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds whatever the index's unit (pandas 3 defaults to microseconds)."""
    return pd.DatetimeIndex(index).as_unit("ns").asi8


def _calendar_code(exchange: str) -> tuple[str, str]:
    try:
        from workbench.data.calendars import calendar_name

        return calendar_name(exchange), ""
    except ConfigError as exc:  # an unknown venue: features still build, on a 24/7 clock
        return (
            "24/7",
            f"no calendar for exchange {exchange!r} ({type(exc).__name__}); time features use a 24/7 UTC clock",
        )


def calendar_note(exchange: str, start: Any, end: Any, calendars: Calendars | None = None) -> str:
    """What the time features of ``exchange`` over ``[start, end]`` rest on, for a feature report: the
    calendar, and where sessions follow the weekly schedule because holidays are not recorded there."""
    from workbench.data.calendars import RECORDED

    code, note = _calendar_code(exchange)
    if note:
        return note
    beyond = (
        (calendars or RECORDED).exchange(exchange).note(start, end)
        if len(pd.DatetimeIndex([start, end]).dropna()) == 2
        else ""
    )
    return f"time features: calendar {code}" + (f"; {beyond}" if beyond else "")


def session_clock(exchange: str, start: Any, end: Any, calendars: Calendars | None = None) -> SessionClock:
    """The session clock of ``exchange`` over ``[start, end]`` (padded; a year ahead for live use).

    A known exchange always gets its own clock: recorded sessions where ``exchange_calendars`` knows the
    holidays, its weekly schedule beyond (``note`` says so), less the extra holidays of ``calendars``
    (default none). A date's sessions do not depend on the range asked for, so training and live agree
    bar for bar."""
    from workbench.data.calendars import RECORDED

    start = pd.Timestamp(start).tz_convert("UTC").normalize() - pd.Timedelta(days=10)
    end = pd.Timestamp(end).tz_convert("UTC").normalize() + pd.Timedelta(days=370)
    code, note = _calendar_code(exchange)
    cal = (calendars or RECORDED).exchange("synthetic" if code == "24/7" else exchange)
    days, opens, closes = cal.sessions(start, end)
    return SessionClock(cal.code, cal.tz, start, end, days, opens, closes, note or cal.note(start, end))


def time_features(index: pd.DatetimeIndex, clock: SessionClock, timeframe: str) -> dict[str, np.ndarray]:
    """One value per timestamp (1-D arrays): hour of day (cyclic, exchange-local), day of week in
    [0, 1], session phase in [0, 1] (0 before the open), hours to the session's close."""
    from workbench.data.candles import timeframe_delta

    ts = pd.DatetimeIndex(index)
    ns = _ns(ts)
    daily = timeframe_delta(timeframe) >= pd.Timedelta(days=1)
    if daily:
        # A daily bar is its session: look the session up by date, not by the instant 00:00 UTC.
        i = np.searchsorted(clock.session_days, (ns // _DAY_NS) * _DAY_NS, side="left")
        hour = np.zeros(len(ns))
        dow = ts.day_of_week.to_numpy()
    else:
        i = np.searchsorted(clock.closes, ns, side="right")  # the session open ≤ ts < close, or the next one
        local = ts.tz_convert(clock.tz)
        hour = (local.hour + local.minute / 60.0 + local.second / 3600.0).to_numpy(dtype=float)
        dow = local.day_of_week.to_numpy()
    ok = i < len(clock.closes)
    ic = np.minimum(i, len(clock.closes) - 1)
    op, cl = clock.opens[ic].astype(float), clock.closes[ic].astype(float)
    now = op if daily else ns.astype(float)
    length = cl - op
    with np.errstate(invalid="ignore", divide="ignore"):
        phase = np.clip((now - op) / length, 0.0, 1.0)
    to_close = (cl - now) / 3.6e12
    nan = np.full(len(ns), np.nan)
    angle = 2 * np.pi * hour / 24.0
    return {
        "hour_sin": np.sin(angle),
        "hour_cos": np.cos(angle),
        "day_of_week": dow / 6.0,
        "session_phase": np.where(ok & (length > 0), phase, nan),
        "hours_to_close": np.where(ok, to_close, nan),
    }
