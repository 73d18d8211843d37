"""Candles from the CSV/JSON files people actually have: vendor downloads and exchange website exports.

Each layout is recognised by its header, never by the file name, and read as is (raw data is
immutable). Time rules, chosen once here so every layout agrees:

* A **daily** bar is labelled by its session date at 00:00 UTC, whatever zone the file states
  (Upstox writes ``2020-10-01 00:00:00+05:30``; converting that to UTC would move the bar to the
  previous day). Daily panels of NSE, NYSE and crypto therefore share one date grid.
* An **intraday** bar keeps its instant: aware timestamps are converted to UTC, naive ones are
  first read in ``tz`` (FirstRate US files are US/Eastern, NSE ticks are IST).
* A file is daily when every timestamp falls on local midnight.
* The generic layout expects ISO dates (``2024-03-01``, ``2024-03-01 09:15[:00][+05:30]``); other
  spellings go through pandas' flexible parser, which reads ``01-02-2024`` month-first.

A file is checked strictly by default: the first bad row stops the import, named. ``lenient=True``
keeps the good rows and hands the bad ones, with their file row and reason, to the lake's quarantine
(``rejected``), so one broken bar in five years does not cost the other 1,258.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.candles import CANDLE_COLUMNS, empty_quarantine, screen_candles, timeframe_of, validate_candles
from workbench.errors import BadCandlesError, DataError, UnknownSymbolError

__all__ = [
    "EXCHANGE_TZ",
    "CsvLayout",
    "LAYOUTS",
    "detect_layout",
    "symbol_from_filename",
    "CsvSource",
    "read_freqtrade_json",
]

# Where naive intraday timestamps of an exchange are written (local exchange time).
EXCHANGE_TZ = {
    "NYSE": "America/New_York",
    "NASDAQ": "America/New_York",
    "AMEX": "America/New_York",
    "ARCA": "America/New_York",
    "US": "America/New_York",
    "NSE": "Asia/Kolkata",
    "BSE": "Asia/Kolkata",
}


@dataclass(frozen=True)
class CsvLayout:
    """One known file layout: which columns hold what, and how dates are written."""

    name: str
    ts: str
    ohlcv: tuple[str, str, str, str, str]
    symbol: str | None = None
    date_format: str | None = None  # None: a full timestamp, daily/intraday decided from the values
    exchange: str | None = None  # the venue the layout implies, if any
    merge_same_day: bool = False  # same-date rows are one session in two segments (see _merge_same_day)

    def matches(self, columns: list[str]) -> bool:
        need = {self.ts, *self.ohlcv} | ({self.symbol} if self.symbol else set())
        return need <= set(columns)


LAYOUTS: tuple[CsvLayout, ...] = (
    CsvLayout(
        "bse",
        "Date",
        ("Open Price", "High Price", "Low Price", "Close Price", "No.of Shares"),
        date_format="%d-%B-%Y",
        exchange="BSE",
        merge_same_day=True,
    ),
    CsvLayout(
        "nse_website",
        "DATE",
        ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"),
        symbol="SYMBOL",
        date_format="ISO8601",
        exchange="NSE",
    ),
    # US vendor files do not say NYSE or NASDAQ: the importer must be told (csv:<path>@EXCHANGE).
    CsvLayout("kaggle_sp500", "date", ("open", "high", "low", "close", "volume"), symbol="Name", date_format="ISO8601"),
    CsvLayout("alphavantage", "timestamp", ("open", "high", "low", "close", "volume"), date_format="ISO8601"),
    CsvLayout("upstox", "timestamp", ("open", "high", "low", "close", "volume"), exchange="NSE"),
    # ``DataFrame.to_csv()`` of a pandas/yfinance frame: the index is the first, often unnamed, column.
    # ``Adj Close`` is ignored: the lake keeps the traded (raw) prices.
    CsvLayout("pandas_export", "Unnamed: 0", ("Open", "High", "Low", "Close", "Volume")),
    CsvLayout("pandas_export", "Date", ("Open", "High", "Low", "Close", "Volume")),
    CsvLayout("pandas_export", "Datetime", ("Open", "High", "Low", "Close", "Volume")),
    CsvLayout("generic", "ts", ("open", "high", "low", "close", "volume")),
    CsvLayout("generic", "date", ("open", "high", "low", "close", "volume")),
    CsvLayout("generic", "timestamp", ("open", "high", "low", "close", "volume")),
    CsvLayout("generic", "datetime", ("open", "high", "low", "close", "volume")),
)

_GENERIC_SYMBOL = ("symbol", "Symbol", "SYMBOL", "ticker", "Ticker")


def detect_layout(columns: list[str]) -> CsvLayout:
    """The first layout whose columns the header has; the specific layouts are tried first.

    Extra distinguishing columns decide between layouts that share the OHLCV names:
    ``adjusted_close`` → AlphaVantage (raw OHLC, ascending dates), ``oi`` → Upstox.
    """
    cols = [c.strip() for c in columns]
    for layout in LAYOUTS:
        if not layout.matches(cols):
            continue
        if layout.name == "alphavantage" and "adjusted_close" not in cols:
            continue
        if layout.name == "upstox" and "oi" not in cols:
            continue
        if layout.name == "generic":
            sym = next((c for c in _GENERIC_SYMBOL if c in cols), None)
            return CsvLayout("generic", layout.ts, layout.ohlcv, symbol=sym)
        return layout
    raise ValueError(cols)


_ALPHAVANTAGE_NAME = re.compile(r"^DA-(?P<sym>.+?)-T-\d{4}-\d{2}-\d{2}$")


def symbol_from_filename(path: Path | str) -> str:
    """``TCS_2020-10-01_to_...`` → TCS, ``BAJAJ-AUTO_...`` → BAJAJ-AUTO, ``ITC-1965-2026`` → ITC.

    The stem is cut at the first ``_``; only when there is none, at the first ``-``. The
    AlphaVantage bundle name ``DA-<SYM>-T-<date>`` is recognised on its own.
    """
    stem = Path(path).stem
    m = _ALPHAVANTAGE_NAME.match(stem)
    if m:
        return m.group("sym")
    cut = "_" if "_" in stem else "-"
    return stem.split(cut, 1)[0] or stem


_OFFSET = r"\s*(?:[+-]\d{2}:?\d{2}|Z)$"
# An offset only counts after a clock time, so a date like 01-01-2024 is not read as "-20:24".
_AWARE = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?" + _OFFSET


def _to_datetime(text: pd.Series, fmt: str | None) -> pd.Series:
    """Fast ISO parse; cells it cannot read are retried with pandas' flexible parser."""
    parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
    retry = parsed.isna() & text.ne("") & text.ne("nan")
    if fmt is None and retry.any():
        parsed = parsed.copy()
        parsed[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce")
    return parsed


def _parse_ts(raw: pd.Series, layout: CsvLayout, tz: str, origin: str, lenient: bool = False) -> pd.Series:
    """Timestamps → tz-aware UTC by the module's rules; unparseable cells name their row.

    ``lenient``: a cell that cannot be read becomes NaT (the screen quarantines its row) instead of
    stopping the file."""
    text = raw.astype("str").str.strip()
    utc = None

    def refuse(mask: pd.Series, reason: str) -> None:
        if mask.any() and not lenient:
            i = int(np.flatnonzero(mask.to_numpy())[0])
            raise BadCandlesError(origin, i + 1, reason.format(raw.iloc[i]))

    if layout.date_format is not None:
        wall = _to_datetime(text, layout.date_format)
    else:
        aware = text.str.contains(_AWARE, regex=True)
        if aware.any():
            refuse(~aware, "timestamp {!r} has no UTC offset while others do")
            utc = pd.to_datetime(text.where(aware), utc=True, format="ISO8601", errors="coerce")
            text = text.str.replace(_OFFSET, "", regex=True).str.strip().where(aware, "")
        wall = _to_datetime(text, None)
    bad = wall.isna() if utc is None else (wall.isna() | utc.isna())
    refuse(bad, "unparseable timestamp {!r}")
    wall = wall.where(~bad)
    known = wall.dropna()
    if (known == known.dt.normalize()).all():  # daily: the session date at 00:00 UTC
        return wall.dt.normalize().dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    if utc is not None:
        return utc.where(~bad).astype("datetime64[ns, UTC]")
    local = wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    refuse(local.isna() & ~bad, "timestamp {!r} does not exist or is ambiguous in " + tz + " (DST change)")
    return local.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _oldest_first(long: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Each symbol's rows oldest first, by the direction most of its steps run (NSE/BSE exports are
    newest first); the screen then calls a row against that direction out of order."""
    step = long.groupby("symbol", sort=False)["ts"].diff().dt.total_seconds().fillna(0.0).to_numpy()
    direction = pd.Series(np.sign(step)).groupby(long["symbol"].to_numpy()).transform("sum").to_numpy()
    pos = np.arange(len(long))
    codes, _ = pd.factorize(long["symbol"])
    order = np.lexsort((np.where(direction < 0, -pos, pos), codes))
    return long.iloc[order].reset_index(drop=True), rows[order]


def _merge_same_day(long: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One bar per date: high = max, low = min, volume = sum, open/close from the busiest row.

    BSE's scrip history repeats 36 ITC dates in 1998–2001, when a stock traded in both the
    account-period and the rolling-settlement segments; both rows are real trades of one session.
    The busiest row carries the session's representative open and close. Each merged bar keeps
    the file row of its first occurrence, for error messages.
    """
    work = long.reset_index(drop=True)
    vol = pd.to_numeric(work["volume"], errors="coerce").fillna(-1.0)
    key = [work["symbol"], work["ts"]]
    busiest = vol.groupby(key, sort=False).idxmax()
    first = work.index.to_series().groupby(key, sort=False).min()
    merged = work.loc[busiest.to_numpy(), ["ts", "symbol", "open", "close"]].reset_index(drop=True)
    nums = work[["high", "low", "volume"]].apply(pd.to_numeric, errors="coerce").groupby(key, sort=False)
    agg = nums.agg({"high": "max", "low": "min", "volume": "sum"}).reset_index(drop=True)
    merged[["high", "low", "volume"]] = agg[["high", "low", "volume"]].to_numpy()
    return merged[list(CANDLE_COLUMNS)], first.to_numpy() + 1


class CsvSource:
    """One CSV file of candles, recognised by its header; an ``OhlcvSource``.

    ``exchange`` names the lake partition (the file cannot tell NYSE from NASDAQ); ``tz`` is the
    zone of naive intraday timestamps. The file is read and validated once, on first use.
    ``name`` is ``csv:<layout>`` (``csv:kaggle_sp500``, ``csv:alphavantage``...): the vendor is
    recorded with every stored bar, so a second vendor's bars on a symbol's history can be noticed.
    ``lenient`` quarantines bad rows (``rejected``) instead of refusing the file.
    """

    def __init__(
        self, path: Path | str, exchange: str, symbol: str | None = None, tz: str = "UTC", *, lenient: bool = False
    ):
        self.path = Path(path)
        self.exchange = exchange
        self._symbol = symbol
        self.tz = tz
        self.lenient = lenient

    @property
    def name(self) -> str:
        return f"csv:{self.layout.name}"

    @cached_property
    def layout(self) -> CsvLayout:
        if not self.path.exists():
            raise DataError(f"CSV file {self.path} not found: check the path")
        header = pd.read_csv(self.path, nrows=0).columns.tolist()
        try:
            return detect_layout(header)
        except ValueError:
            raise BadCandlesError(
                str(self.path),
                None,
                f"unrecognised columns {[c.strip() for c in header]}; expected a known layout "
                "(kaggle 'date,open,high,low,close,volume,Name', AlphaVantage 'timestamp,...,adjusted_close', "
                "Upstox 'timestamp,...,oi', NSE 'DATE,SERIES,OPEN,...,SYMBOL', BSE 'Date,Open Price,...,No.of Shares') "
                "or a generic 'ts|date|timestamp|datetime,open,high,low,close,volume[,symbol]'",
            ) from None

    @cached_property
    def candles(self) -> pd.DataFrame:
        """Every good bar in the file, validated (UTC, ascending per symbol)."""
        return self._screened[0]

    @cached_property
    def rejected(self) -> pd.DataFrame:
        """The rows a lenient read set aside (``QUARANTINE_COLUMNS``: file row, reason); empty when strict."""
        return self._screened[1]

    def rejected_for(self, symbol: str) -> pd.DataFrame:
        bad = self.rejected
        return bad[bad["symbol"] == symbol].reset_index(drop=True)

    @cached_property
    def _screened(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        layout, origin = self.layout, str(self.path)
        raw = pd.read_csv(self.path, skipinitialspace=True)
        raw.columns = [c.strip() for c in raw.columns]
        o, h, lo, c, v = layout.ohlcv
        if layout.symbol is not None:
            sym = raw[layout.symbol]
        else:
            sym = pd.Series(self._symbol or symbol_from_filename(self.path), index=raw.index)
        long = pd.DataFrame(
            {
                "ts": _parse_ts(raw[layout.ts], layout, self.tz, origin, self.lenient),
                "symbol": sym,
                "open": raw[o],
                "high": raw[h],
                "low": raw[lo],
                "close": raw[c],
                "volume": raw[v],
            },
            columns=list(CANDLE_COLUMNS),
        )
        rows = np.arange(1, len(long) + 1)
        if layout.merge_same_day and long.duplicated(["symbol", "ts"]).any():
            long, rows = _merge_same_day(long)
        if not self.lenient:
            return validate_candles(long, origin, rows=rows), empty_quarantine()
        long, rows = _oldest_first(long, rows)
        good, bad = screen_candles(long, origin)
        bad["row"] = rows[bad["row"].to_numpy() - 1].astype("int64")  # the file's row, not the screen's
        return good, bad

    @cached_property
    def timeframe(self) -> str | None:
        """The bar length the file holds: the most common step between bars (gaps are allowed)."""
        steps = self.candles.groupby("symbol")["ts"].diff().dropna()
        if steps.empty:
            return None
        return timeframe_of(steps.mode().iloc[0])

    def symbols(self) -> list[str]:
        return sorted(self.candles["symbol"].unique().tolist())

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        if symbol not in self.symbols():
            raise UnknownSymbolError(f"{self.path} has no symbol {symbol!r}; it holds {self.symbols()[:10]}")
        if self.timeframe is not None and self.timeframe != timeframe:
            raise DataError(
                f"{self.path} holds {self.timeframe} bars, not {timeframe}: pull it with --timeframe {self.timeframe}"
            )
        df = self.candles
        keep = df["symbol"] == symbol
        if since is not None:
            keep &= df["ts"] >= _utc(since)
        if until is not None:
            keep &= df["ts"] <= _utc(until)
        return df[keep].reset_index(drop=True)


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def read_freqtrade_json(path: Path | str, symbol: str | None = None) -> pd.DataFrame:
    """A freqtrade/ccxt JSON candle file (``[[ts_ms, o, h, l, c, v], ...]``) → validated long candles.

    The symbol defaults to the pair in freqtrade's file name: ``BTC_USDT-1d.json`` → ``BTC/USDT``,
    ``BTC_USDT_USDT-1h-futures.json`` → ``BTC/USDT:USDT``.
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
        arr = np.asarray(rows, dtype="float64")
    except (OSError, ValueError) as e:
        raise BadCandlesError(str(path), None, f"not a freqtrade JSON candle array ({e})") from e
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise BadCandlesError(
            str(path), None, f"expected rows of [ts_ms, open, high, low, close, volume], got shape {arr.shape}"
        )
    if symbol is None:
        parts = path.stem.split("-", 1)[0].split("_")
        symbol = "/".join(parts[:2]) + (f":{parts[2]}" if len(parts) > 2 else "")
    df = pd.DataFrame(arr[:, 1:6], columns=["open", "high", "low", "close", "volume"])
    df.insert(0, "symbol", symbol)
    df.insert(0, "ts", pd.to_datetime(arr[:, 0].astype("int64"), unit="ms", utc=True))
    return validate_candles(df, str(path))
