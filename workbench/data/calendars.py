"""Trading sessions per exchange, for any date, and the gaps in stored bars measured against them.

Why one module: the gap finder, the time features and the live loop's "is the market open?" must
agree on what a session is, and they must keep working past the last year whose holidays the
installed ``exchange_calendars`` records (XBOM, i.e. NSE/BSE, stops at 2026-12-31 in 4.13.2; no
newer release exists). Up to that horizon the sessions are the package's (holidays, half days,
special Saturday sessions); beyond it, and before its first recorded year, they follow the
exchange's regular weekly schedule (its weekdays, its regular hours in its own time zone) and are
marked "holidays not recorded after <date>". Holidays the user adds in the settings
(``[calendars] extra_holidays``) are removed from both. Rule-based calendars (XNYS, XNAS) are
built from their rules to a fixed year (``RULES_END``), so a date's sessions never depend on the
day they were asked for: the same bars give the same features in training and live.

NYSE/NASDAQ/ARCA… map to XNYS/XNAS; NSE and BSE (and their F&O segments) to XBOM, which
``exchange_calendars`` keeps for Indian equities (both venues share the holiday list); crypto venues
and the synthetic market trade around the clock. Daily bars are labelled by session date at 00:00
UTC (see ``sources/csv_source``), intraday bars by their UTC start.

The user's extra holidays are a value, not process state: ``Calendars.from_settings(settings)`` is one
home's calendars, passed to whoever asks (``is_open``, ``find_gaps``, the time features through the
``Panel``, Phase 1, the live feed). Two homes' settings in one process each get their own answers; a
caller with no settings gets ``RECORDED``, the sessions the package records.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.errors import ConfigError

__all__ = [
    "ALWAYS_OPEN",
    "CALENDARS",
    "GAP_COLUMNS",
    "RECORDED",
    "RULES_END",
    "Calendars",
    "ExchangeCalendar",
    "Sessions",
    "calendar_name",
    "exchange_calendar",
    "expected_bars",
    "find_gaps",
    "horizon_warnings",
    "is_open",
    "parse_extra_holidays",
]

CALENDARS: Mapping[str, str] = {
    "NYSE": "XNYS", "AMEX": "XNYS", "ARCA": "XNYS", "NYSEARCA": "XNYS", "BATS": "XNYS", "IEX": "XNYS",
    "CHX": "XNYS", "US": "XNYS",
    "NASDAQ": "XNAS",
    "NSE": "XBOM", "BSE": "XBOM", "NFO": "XBOM", "BFO": "XBOM",
}  # fmt: skip
"""Exchange (the prefix of an instrument key, a lake's exchange) → its ``exchange_calendars`` code."""
ALWAYS_OPEN = "24/7"
GAP_COLUMNS = ("exchange", "timeframe", "symbol", "missing", "first_missing", "last_missing")
RULES_START = pd.Timestamp("1990-01-01")
RULES_END = pd.Timestamp("2040-12-31")  # rule-based calendars are built to here, whatever today is
_DAY_NS = 86_400 * 10**9


class Sessions(NamedTuple):
    """Sessions in date order, as epoch nanoseconds: the session date at 00:00 UTC, its open and close."""

    days: np.ndarray
    opens: np.ndarray
    closes: np.ndarray


def calendar_name(exchange: str) -> str:
    """The exchange_calendars code for a venue, or ``'24/7'`` for crypto exchanges and the synthetic market."""
    code = CALENDARS.get(exchange.upper())
    if code is not None:
        return code
    import ccxt

    if exchange.lower() in ccxt.exchanges or exchange == "synthetic":
        return ALWAYS_OPEN
    raise ConfigError(
        f"no trading calendar known for exchange {exchange!r}: known are {', '.join(sorted(CALENDARS))}, the ccxt "
        "exchanges and 'synthetic' (24/7); add it to workbench.data.calendars.CALENDARS"
    )


# ---- the user's extra holidays ------------------------------------------------------------------


def parse_extra_holidays(
    raw: Mapping[str, Any], where: str = "calendars.extra_holidays"
) -> dict[str, tuple[dt.date, ...]]:
    """``{exchange: [dates]}`` checked: each exchange must have a calendar (not 24/7) and each date be a
    date (``YYYY-MM-DD`` or a TOML date). A bad entry raises ``ConfigError`` naming the key and value."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f'{where} must be a table of exchange = [dates], e.g. {{NSE = ["2027-01-26"]}}, not {raw!r}')
    out: dict[str, tuple[dt.date, ...]] = {}
    for key, values in raw.items():
        name = str(key).upper()
        if name not in CALENDARS:
            raise ConfigError(
                f"{where}.{key}: no exchange calendar to add holidays to (known: {', '.join(sorted(CALENDARS))}; "
                "crypto venues trade 24/7)"
            )
        if isinstance(values, (str, dt.date)) or not isinstance(values, Iterable):
            values = [values]
        days = []
        for v in values:
            if isinstance(v, dt.datetime):
                v = v.date()
            if isinstance(v, dt.date):
                days.append(v)
                continue
            try:
                days.append(dt.date.fromisoformat(str(v).strip()))
            except ValueError:
                raise ConfigError(f'{where}.{key}: {v!r} is not a date: write it as "YYYY-MM-DD"') from None
        out[name] = tuple(sorted(set(days)))
    return out


# ---- the calendar ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _recorded(code: str) -> dict[str, Any]:
    """What exchange_calendars records for ``code``: its schedule over the years it knows holidays for
    (a precomputed list's years, or ``RULES_START``..``RULES_END`` for a rule-based calendar), its weekly
    mask, regular hours and time zone."""
    import exchange_calendars as xc

    with warnings.catch_warnings():  # exchange_calendars 4.x trips pandas 3 deprecation warnings
        warnings.simplefilter("ignore")
        cls = type(xc.get_calendar(code))  # the package's default range, only to reach the class
        lo, hi = cls.bound_min(), cls.bound_max()
        start = max(RULES_START, lo) if lo is not None else RULES_START
        end = hi if hi is not None else RULES_END
        cal = xc.get_calendar(code, start=str(start.date()), end=str(end.date()))
        sched = cal.schedule
    days = pd.DatetimeIndex(sched.index)
    days = days.tz_localize("UTC") if days.tz is None else days.tz_convert("UTC")
    return {
        "tz": str(cal.tz),
        "weekmask": str(cal.weekmask),
        "open": cal.open_times[-1][1],
        "close": cal.close_times[-1][1],
        "first": pd.Timestamp(start),
        "horizon": pd.Timestamp(end),
        "by_rule": hi is None,
        "days": _ns(days),
        "opens": _ns(pd.DatetimeIndex(sched["open"])),
        "closes": _ns(pd.DatetimeIndex(sched["close"])),
    }


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds whatever the index's unit (pandas 3 defaults to microseconds)."""
    return np.asarray(pd.DatetimeIndex(index).as_unit("ns").asi8, dtype=np.int64)


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, eq=False)
class ExchangeCalendar:
    """The sessions of one exchange for any date: recorded to ``horizon``, its weekly schedule beyond
    (and before ``first``), minus the ``extra`` holidays of a home's settings. ``code == '24/7'``: every UTC day."""

    exchange: str
    code: str
    tz: str = "UTC"
    first: pd.Timestamp | None = None  # first day whose holidays are recorded
    horizon: pd.Timestamp | None = None  # last day whose holidays are recorded (None: 24/7, nothing to record)
    by_rule: bool = False
    extra: frozenset[dt.date] = frozenset()
    weekmask: str = "1111111"
    open_time: dt.time = dt.time(0)
    close_time: dt.time = dt.time(0)
    _rec: Sessions = field(
        default=Sessions(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)), repr=False
    )

    @property
    def always_open(self) -> bool:
        return self.code == ALWAYS_OPEN

    def schedule_text(self) -> str:
        days = [d for d, on in zip(_WEEKDAYS, self.weekmask, strict=True) if on == "1"]
        span = f"{days[0]}–{days[-1]}" if len(days) > 1 and self.weekmask.strip("0").count("0") == 0 else ",".join(days)
        return f"{span} {self.open_time:%H:%M}–{self.close_time:%H:%M} {self.tz}"

    def note(self, start: Any, end: Any) -> str:
        """Empty when ``[start, end]`` lies in the recorded years; else what the sessions there rest on."""
        if self.always_open or self.horizon is None or self.first is None:
            return ""
        lo, hi = _utc(start).tz_localize(None).normalize(), _utc(end).tz_localize(None).normalize()
        parts = []
        if hi > self.horizon:
            parts.append(f"after {self.horizon:%Y-%m-%d}")
        if lo < self.first:
            parts.append(f"before {self.first:%Y-%m-%d}")
        if not parts:
            return ""
        extra = f" less {len(self.extra)} holiday(s) from the settings" if self.extra else ""
        return (
            f"{self.exchange} ({self.code}) holidays not recorded {' or '.join(parts)}: sessions there follow the "
            f"weekly schedule ({self.schedule_text()}){extra}"
        )

    def sessions(self, start: Any, end: Any) -> Sessions:
        """The sessions whose date lies in ``[start, end]`` (dates of the UTC timestamps)."""
        lo, hi = _utc(start).tz_localize(None).normalize(), _utc(end).tz_localize(None).normalize()
        if lo > hi:
            return _empty()
        if self.always_open:
            days = _ns(pd.date_range(lo, hi, freq="1D", tz="UTC"))
            return Sessions(days, days, days + _DAY_NS)
        assert self.first is not None and self.horizon is not None
        parts = []
        if lo < self.first:
            parts.append(self._weekly(lo, min(hi, self.first - pd.Timedelta(days=1))))
        if hi >= self.first and lo <= self.horizon:
            d = self._rec.days
            a = np.searchsorted(d, _ns(pd.DatetimeIndex([max(lo, self.first)], tz="UTC"))[0], side="left")
            b = np.searchsorted(d, _ns(pd.DatetimeIndex([min(hi, self.horizon)], tz="UTC"))[0], side="right")
            parts.append(Sessions(d[a:b], self._rec.opens[a:b], self._rec.closes[a:b]))
        if hi > self.horizon:
            parts.append(self._weekly(max(lo, self.horizon + pd.Timedelta(days=1)), hi))
        return Sessions(*(np.concatenate([p[k] for p in parts]) for k in range(3)))

    def _weekly(self, lo: pd.Timestamp, hi: pd.Timestamp) -> Sessions:
        """The regular weekly schedule over naive dates ``lo..hi``, less the extra holidays."""
        if lo > hi:
            return _empty()
        days = pd.bdate_range(lo, hi, freq="C", weekmask=self.weekmask)
        if self.extra:
            days = days[~days.isin(pd.DatetimeIndex(sorted(self.extra)))]
        days = pd.DatetimeIndex(days).as_unit("ns")

        def at(t: dt.time) -> np.ndarray:
            local = days + pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)
            return _ns(local.tz_localize(self.tz, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC"))

        return Sessions(_ns(days.tz_localize("UTC")), at(self.open_time), at(self.close_time))

    def is_open(self, now: Any) -> bool:
        """In a session at ``now`` (sessions are [open, close), to the minute)."""
        if self.always_open:
            return True
        t = _utc(now).floor("min")
        s = self.sessions(t - pd.Timedelta(days=2), t + pd.Timedelta(days=1))
        ns = t.as_unit("ns").value
        return bool(np.any((s.opens <= ns) & (ns < s.closes)))

    def expected_bars(self, timeframe: str, start: Any, end: Any) -> pd.DatetimeIndex:
        """Bar timestamps (UTC) the exchange should produce with start ≤ ts ≤ end: one per session for
        daily bars (its date at 00:00 UTC), one per ISO week with a session for longer ones, and for
        intraday bars every bar start from the open while it is before the close."""
        step = timeframe_delta(timeframe)
        start, end = _utc(start), _utc(end)
        if self.always_open:
            first = start.ceil(step) if step <= pd.Timedelta(days=1) else start
            return pd.date_range(first, end, freq=step, name="ts")
        s = self.sessions(start, end)
        if step >= pd.Timedelta(days=1):
            out = pd.DatetimeIndex(s.days, tz="UTC")
            if step > pd.Timedelta(days=1):  # weekly: one bar per period start (ISO weeks)
                weeks = out.tz_localize(None).to_period("W").drop_duplicates().start_time
                out = pd.DatetimeIndex(weeks).tz_localize("UTC")
        else:
            k = max(int(np.ceil((s.closes - s.opens).max() / step.value)), 0) if len(s.opens) else 0
            grid = s.opens[:, None] + np.arange(k, dtype=np.int64)[None, :] * step.value
            out = pd.DatetimeIndex(grid[grid < s.closes[:, None]], tz="UTC")
        out = out[(out >= start) & (out <= end)]
        return pd.DatetimeIndex(out, name="ts")


def _empty() -> Sessions:
    z = np.zeros(0, dtype=np.int64)
    return Sessions(z, z, z)


@lru_cache(maxsize=64)
def _build(exchange: str, extra: frozenset[dt.date]) -> ExchangeCalendar:
    code = calendar_name(exchange)
    if code == ALWAYS_OPEN:
        return ExchangeCalendar(exchange, code)
    r = _recorded(code)
    days, opens, closes = r["days"], r["opens"], r["closes"]
    if extra:
        keep = ~np.isin(days, _ns(pd.DatetimeIndex(sorted(extra), tz="UTC")))
        days, opens, closes = days[keep], opens[keep], closes[keep]
    return ExchangeCalendar(
        exchange, code, r["tz"], r["first"], r["horizon"], r["by_rule"], extra, r["weekmask"], r["open"], r["close"],
        Sessions(days, opens, closes),
    )  # fmt: skip


def exchange_calendar(exchange: str, extra: Iterable[dt.date] | None = None) -> ExchangeCalendar:
    """The calendar of ``exchange`` less the ``extra`` holidays (none: the recorded sessions). An unknown
    exchange is a ``ConfigError``."""
    name = exchange.upper() if exchange.upper() in CALENDARS else exchange
    return _build(name, frozenset(extra) if extra is not None else frozenset())


@dataclass(frozen=True)
class Calendars:
    """The exchange calendars of one home: the recorded sessions less that home's extra holidays.

    Why a value passed around and not process state: two homes' settings loaded in one notebook (or a
    test) must each see their own holidays. Hashable and picklable, so it travels with a ``Panel`` to
    the feature builders and to cluster workers."""

    extra: tuple[tuple[str, frozenset[dt.date]], ...] = ()  # (EXCHANGE, dates) sorted by exchange

    @classmethod
    def with_holidays(cls, extra: Mapping[str, Iterable[dt.date]] | None) -> Calendars:
        """``extra``: exchange → dates, already parsed (``parse_extra_holidays``)."""
        return cls(tuple(sorted((str(k).upper(), frozenset(v)) for k, v in (extra or {}).items() if v)))

    @classmethod
    def from_settings(cls, settings: Any) -> Calendars:
        """The calendars of ``settings`` (its ``[calendars] extra_holidays``)."""
        return cls.with_holidays(settings.calendars.extra_holidays)

    def holidays(self, exchange: str) -> frozenset[dt.date]:
        """The extra holidays of ``exchange`` (none when the settings add none)."""
        return dict(self.extra).get(exchange.upper(), frozenset())

    def exchange(self, exchange: str) -> ExchangeCalendar:
        """The calendar of ``exchange`` with these holidays. An unknown exchange is a ``ConfigError``."""
        return exchange_calendar(exchange, self.holidays(exchange))

    def is_open(self, exchange: str, now: Any) -> bool:
        return self.exchange(exchange).is_open(now)

    def expected_bars(self, exchange: str, timeframe: str, start: Any, end: Any) -> pd.DatetimeIndex:
        return self.exchange(exchange).expected_bars(timeframe, start, end)


RECORDED = Calendars()
"""The calendars with no extra holidays: for callers that have no settings."""


def is_open(exchange: str, now: Any, calendars: Calendars | None = None) -> bool:
    """True when ``exchange`` is in a session at ``now`` (any tz-aware time; naive is UTC), by ``calendars``
    (default: the recorded sessions)."""
    return (calendars or RECORDED).is_open(exchange, now)


def expected_bars(
    exchange: str, timeframe: str, start: Any, end: Any, calendars: Calendars | None = None
) -> pd.DatetimeIndex:
    """Bar timestamps (UTC) the exchange should have produced with start ≤ ts ≤ end."""
    return (calendars or RECORDED).expected_bars(exchange, timeframe, start, end)


def horizon_warnings(
    exchanges: Iterable[str], today: Any = None, within_days: int = 30, calendars: Calendars | None = None
) -> list[str]:
    """One warning per calendar of ``exchanges`` whose recorded holidays end within ``within_days`` of
    ``today`` (default: now) or already ended: a run goes on past it on the weekly schedule, but an
    unrecorded holiday is a day the venue refuses orders. ``calendars``: the home's, whose extra holidays
    the warning counts (default: none)."""
    now = _utc(today if today is not None else pd.Timestamp.now(tz="UTC")).tz_localize(None).normalize()
    by_code: dict[str, list[str]] = {}
    for e in dict.fromkeys(str(x) for x in exchanges):
        code = calendar_name(e)
        if code != ALWAYS_OPEN:
            by_code.setdefault(code, []).append(e.upper())
    out = []
    for names in by_code.values():
        cals = [(calendars or RECORDED).exchange(n) for n in names]
        horizon = cals[0].horizon
        assert horizon is not None
        if horizon - now > pd.Timedelta(days=within_days):
            continue
        added = "; ".join(f"{c.exchange}: {len(c.extra)} extra holiday(s) set" for c in cals if c.extra)
        out.append(
            f"{'/'.join(names)} holidays are recorded only to {horizon:%Y-%m-%d}"
            f"{' (passed: sessions now follow the weekly schedule)' if now > horizon else ''}: on an unrecorded "
            "holiday the venue will refuse orders; upgrade exchange_calendars when a newer release has them, or add "
            f'them in the settings ([calendars] extra_holidays = {{{names[0]} = ["YYYY-MM-DD"]}})'
            f"{f' ({added})' if added else ''}"
        )
    return out


def find_gaps(
    lake: Any,
    exchange: str,
    timeframe: str,
    symbols: list[str] | None = None,
    start: Any = None,
    end: Any = None,
    calendars: Calendars | None = None,
) -> pd.DataFrame:
    """Per symbol: bars the calendar expects between its first and last stored bar that are not stored.

    Before the first stored bar nothing is counted (the instrument may not have been listed). One row
    per symbol with missing bars: how many, the first and the last missing timestamp. Beyond the years
    whose holidays are recorded the calendar's weekly schedule is expected (less the user's extra
    holidays): ``DataFrame.attrs["note"]`` says so when the range reaches there. ``calendars``: the
    home's (``Calendars.from_settings``); default the recorded sessions, no extra holidays.
    """
    cat = lake.catalog()
    cat = cat[(cat["exchange"] == exchange) & (cat["timeframe"] == timeframe)]
    if symbols is not None:
        cat = cat[cat["symbol"].isin(symbols)]
    rows = []
    if cat.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in GAP_COLUMNS})
    lo = cat["first"].min() if start is None else max(_utc(start), cat["first"].min())
    hi = cat["last"].max() if end is None else min(_utc(end), cat["last"].max())
    cal = (calendars or RECORDED).exchange(exchange)
    grid = cal.expected_bars(timeframe, lo, hi)
    long = lake.load_candles(exchange, timeframe, list(cat["symbol"]), lo, hi)[["ts", "symbol"]]
    grid_ns = _ns(grid)
    for symbol, have in long.groupby("symbol", sort=True):
        ts = have["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        window = grid_ns[(grid_ns >= ts.min()) & (grid_ns <= ts.max())]
        missing = window[~np.isin(window, ts)]
        if len(missing):
            first, last = pd.Timestamp(missing[0], tz="UTC"), pd.Timestamp(missing[-1], tz="UTC")
            rows.append((exchange, timeframe, symbol, len(missing), first, last))
    out = (
        pd.DataFrame(rows, columns=list(GAP_COLUMNS)).astype({"missing": "int64"})
        if rows
        else pd.DataFrame({c: pd.Series(dtype="object") for c in GAP_COLUMNS})
    )
    note = cal.note(lo, hi)
    if note:
        out.attrs["note"] = note
    return out
