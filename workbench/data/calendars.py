"""Trading sessions per exchange, and the gaps in stored bars measured against them.

Why a calendar: a missing Monday on NSE is a gap only if NSE was open that Monday. Sessions and
holidays come from ``exchange_calendars`` (NYSE/NASDAQ/ARCA… → XNYS/XNAS; NSE and BSE → XBOM,
which exchange_calendars keeps for Indian equities: both venues share the holiday list); crypto
venues and the synthetic market trade around the clock. Daily bars are labelled by session date at
00:00 UTC (see ``sources/csv_source``), intraday bars by their UTC start.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.errors import ConfigError

__all__ = ["CALENDARS", "calendar_name", "expected_bars", "find_gaps", "GAP_COLUMNS"]

CALENDARS = {
    "NYSE": "XNYS", "AMEX": "XNYS", "ARCA": "XNYS", "BATS": "XNYS", "IEX": "XNYS", "CHX": "XNYS", "US": "XNYS",
    "NASDAQ": "XNAS",
    "NSE": "XBOM", "BSE": "XBOM", "NFO": "XBOM", "BFO": "XBOM",
}  # fmt: skip
ALWAYS_OPEN = "24/7"
GAP_COLUMNS = ("exchange", "timeframe", "symbol", "missing", "first_missing", "last_missing")


def calendar_name(exchange: str) -> str:
    """The exchange_calendars code for a venue, or ``'24/7'`` for crypto exchanges and the synthetic market."""
    code = CALENDARS.get(exchange.upper())
    if code is not None:
        return code
    import ccxt

    if exchange in ccxt.exchanges or exchange == "synthetic":
        return ALWAYS_OPEN
    raise ConfigError(
        f"no trading calendar known for exchange {exchange!r}: add it to workbench.data.calendars.CALENDARS"
    )


@lru_cache(maxsize=16)
def _calendar(code: str):
    import exchange_calendars as xc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xc.get_calendar(code, start="2000-01-01")


def expected_bars(exchange: str, timeframe: str, start, end) -> pd.DatetimeIndex:
    """Bar timestamps (UTC) the exchange should have produced with start ≤ ts ≤ end."""
    step = timeframe_delta(timeframe)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    code = calendar_name(exchange)
    if code == ALWAYS_OPEN:
        first = start.ceil(step) if step <= pd.Timedelta(days=1) else start
        return pd.date_range(first, end, freq=step, name="ts")
    with warnings.catch_warnings():  # exchange_calendars 4.x trips pandas 3.1 deprecation warnings
        warnings.simplefilter("ignore")
        return _session_bars(_calendar(code), step, start, end)


def _session_bars(cal, step: pd.Timedelta, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    lo = max(start.tz_localize(None).normalize(), cal.first_session)
    hi = min(end.tz_localize(None).normalize(), cal.last_session)
    if lo > hi:
        return pd.DatetimeIndex([], tz="UTC", name="ts")
    if step >= pd.Timedelta(days=1):
        sessions = cal.sessions_in_range(lo, hi)
        out = pd.DatetimeIndex(sessions).tz_localize("UTC") if sessions.tz is None else sessions.tz_convert("UTC")
        if step > pd.Timedelta(days=1):  # weekly: one bar per period start (ISO weeks)
            out = out.to_series().dt.to_period("W").drop_duplicates().dt.start_time.dt.tz_localize("UTC")
            out = pd.DatetimeIndex(out)
    else:
        period = f"{int(step.total_seconds() // 60)}min"
        out = cal.trading_index(lo, hi, period, intervals=False, force=True)
        out = pd.DatetimeIndex(out).tz_convert("UTC")
    out = out[(out >= start) & (out <= end)]
    return pd.DatetimeIndex(out, name="ts")


def find_gaps(
    lake, exchange: str, timeframe: str, symbols: list[str] | None = None, start=None, end=None
) -> pd.DataFrame:
    """Per symbol: bars the calendar expects between its first and last stored bar that are not stored.

    Before the first stored bar nothing is counted (the instrument may not have been listed).
    One row per symbol with missing bars: how many, the first and the last missing timestamp.
    """
    cat = lake.catalog()
    cat = cat[(cat["exchange"] == exchange) & (cat["timeframe"] == timeframe)]
    if symbols is not None:
        cat = cat[cat["symbol"].isin(symbols)]
    rows = []
    if cat.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in GAP_COLUMNS})
    lo = (
        cat["first"].min()
        if start is None
        else max(
            pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start),
            cat["first"].min(),
        )
    )
    hi = (
        cat["last"].max()
        if end is None
        else min(
            pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tzinfo is None else pd.Timestamp(end), cat["last"].max()
        )
    )
    grid = expected_bars(exchange, timeframe, lo, hi)
    long = lake.load_candles(exchange, timeframe, list(cat["symbol"]), lo, hi)[["ts", "symbol"]]
    grid_ns = grid.asi8
    for symbol, have in long.groupby("symbol", sort=True):
        ts = have["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        window = grid_ns[(grid_ns >= ts.min()) & (grid_ns <= ts.max())]
        missing = window[~np.isin(window, ts)]
        if len(missing):
            rows.append(
                (
                    exchange,
                    timeframe,
                    symbol,
                    len(missing),
                    pd.Timestamp(missing[0], tz="UTC"),
                    pd.Timestamp(missing[-1], tz="UTC"),
                )
            )
    return (
        pd.DataFrame(rows, columns=list(GAP_COLUMNS)).astype({"missing": "int64"})
        if rows
        else pd.DataFrame({c: pd.Series(dtype="object") for c in GAP_COLUMNS})
    )
