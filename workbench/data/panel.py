"""The panel: OHLCV of many instruments on one UTC time grid, each field a (time × symbol) frame.

Features, models, signals and backtests all take a ``Panel``, so research and live code see the
same shape. Missing bars stay NaN: nothing is forward-filled silently.

A panel carries the ``Calendars`` its time features use (``with_calendars``): the holidays are those
of the home that loaded it, not of the process, and they travel with the data to every feature build
(training, the leak checks' truncated panels, cluster workers, the live loop). None: the recorded
sessions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from workbench.data.calendars import Calendars

__all__ = ["FIELDS", "Panel"]

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Panel:
    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    exchange: str
    timeframe: str
    calendars: Calendars | None = None  # None: the recorded sessions, no extra holidays

    def __post_init__(self) -> None:
        idx, cols = self.close.index, self.close.columns
        for name in FIELDS:
            frame = getattr(self, name)
            if not (frame.index.equals(idx) and frame.columns.equals(cols)):
                raise ValueError(f"panel field {name!r} is not aligned with 'close'")
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
            raise ValueError("panel index must be a tz-aware (UTC) DatetimeIndex")

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.close.index  # type: ignore[return-value]

    @property
    def symbols(self) -> list[str]:
        return list(self.close.columns)

    def field(self, name: str) -> pd.DataFrame:
        if name not in FIELDS:
            raise KeyError(f"unknown panel field {name!r}; one of {FIELDS}")
        return getattr(self, name)

    def _map(self, fn) -> Panel:
        return Panel(
            **{f: fn(getattr(self, f)) for f in FIELDS},
            exchange=self.exchange,
            timeframe=self.timeframe,
            calendars=self.calendars,
        )

    def with_calendars(self, calendars: Calendars | None) -> Panel:
        """The same bars, their time features by ``calendars`` (a home's, ``Calendars.from_settings``)."""
        return dataclasses.replace(self, calendars=calendars)

    def upto(self, ts) -> Panel:
        """Bars with timestamp ≤ ts: what was known at ts."""
        return self._map(lambda f: f.loc[:ts])

    def tail(self, n: int) -> Panel:
        return self._map(lambda f: f.iloc[-n:])

    def iloc(self, rows: slice) -> Panel:
        return self._map(lambda f: f.iloc[rows])

    def select(self, symbols: list[str]) -> Panel:
        return self._map(lambda f: f[list(symbols)])

    def to_long(self) -> pd.DataFrame:
        """Long candles: one row per (ts, symbol) that has a close."""
        parts = {f: getattr(self, f).stack() for f in FIELDS}
        out = pd.DataFrame(parts)
        out.index.names = ["ts", "symbol"]
        return out.dropna(subset=["close"]).reset_index()

    @classmethod
    def from_long(cls, candles: pd.DataFrame, exchange: str, timeframe: str) -> Panel:
        """From long candles with columns ts, symbol, open, high, low, close, volume."""
        wide = candles.pivot_table(index="ts", columns="symbol", values=list(FIELDS), aggfunc="last", dropna=False)
        wide = wide.sort_index()
        symbols = sorted(candles["symbol"].unique())
        fields: dict[str, pd.DataFrame] = {}
        present = set(wide.columns.get_level_values(0))
        for f in FIELDS:
            if f in present:  # a top-level key of the (field, symbol) columns: a frame
                frame = pd.DataFrame(wide[f]).reindex(columns=symbols)
            else:
                frame = pd.DataFrame(index=wide.index, columns=symbols, dtype=float)
            frame = frame.astype(float)
            frame.columns.name = "symbol"
            frame.index = pd.DatetimeIndex(frame.index, name="ts")
            fields[f] = frame
        return cls(**fields, exchange=exchange, timeframe=timeframe, calendars=None)
