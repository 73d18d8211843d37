"""The store's foundation: the run statuses and command names, the engine and its read helpers that
every part of ``Store`` builds on."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Self

import pandas as pd
from sqlalchemy.engine import Engine

from workbench.store.bulk import dicts
from workbench.store.engine import DEFAULT_BUSY_TIMEOUT_MS, engine_for, upgrade
from workbench.store.schema import (
    adjustments,
    cash_book,
    checks,
    commands,
    cycles,
    day_starts,
    equity,
    events,
    fee_totals,
    fills,
    order_events,
    orders,
    positions,
    runs,
    signals,
)

RUN_STATUSES = ("RUNNING", "STOPPED", "FAILED", "EMERGENCY_STOPPED")
STOP_COMMANDS = ("stop", "emergency_stop")
# Actions the loop performs and keeps running: "flatten" sells every long, "close:<symbol>" one.
ACTIONS = ("flatten", "close")
COMMANDS = STOP_COMMANDS + ACTIONS
# The order statuses that are not final (``orders.STATUSES`` less ``venues.base.FINAL_STATUSES``;
# a test keeps them equal): spelled out here, as the import of either would be circular.
_OPEN_STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED")
_COMMAND_WIDTH = 200  # commands.command is String(200) (revision 0006): PostgreSQL refuses longer text


class Booked(NamedTuple):
    """What ``Store.apply_batch`` wrote: the ``updated_at`` on the order rows, and the position rows
    as now stored (symbol -> every column)."""

    now: str
    positions: dict[str, dict[str, Any]]


def _f(x: Any) -> float | None:
    """Floats for the database: NaN/None become NULL."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


_TIME_COLUMNS = {
    "ts",
    "bar_ts",
    "started_at",
    "ended_at",
    "finished_at",
    "heartbeat_at",
    "created_at",
    "updated_at",
    "consumed_at",
}


class _Tables:
    """Table objects by name, for modules that write their own rows (the paper venue's tables are in
    ``workbench.store.schema`` and its queries in ``workbench.venues.paper.book``)."""

    runs, checks, cycles, signals, orders, order_events, fills = (
        runs,
        checks,
        cycles,
        signals,
        orders,
        order_events,
        fills,
    )
    positions, equity, day_starts, events, commands = positions, equity, day_starts, events, commands
    cash_book, adjustments, fee_totals = cash_book, adjustments, fee_totals


def _new_id(key: Sequence[Any] | None) -> int:
    """The integer id an INSERT generated (SQLite always reports it)."""
    if key is None:
        raise LookupError("the database reported no id for the new row")
    return int(key[0])


class StoreBase:
    """The engine and the read helpers every part of ``Store`` uses (each part is a subclass, so that
    each type-checks on its own; ``Store`` joins them)."""

    def __init__(self, url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.url = url
        self.engine: Engine = engine_for(url, busy_timeout_ms=busy_timeout_ms)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def create(self) -> Self:
        """The schema at the newest revision (construction already did it; kept for callers that say so)."""
        upgrade(self.engine)
        return self

    def dispose(self) -> None:
        self.engine.dispose()

    def begin(self):
        """A transaction (context manager) for callers that write several rows atomically."""
        return self.engine.begin()

    def pragma(self, name: str) -> Any:
        """Read a SQLite pragma (tests check WAL and foreign keys); None on other backends."""
        if self.engine.dialect.name != "sqlite":
            return None
        with self.engine.connect() as c:
            return c.exec_driver_sql(f"PRAGMA {name}").scalar()

    # ---- helpers --------------------------------------------------------------------------------
    def _one(self, stmt) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(stmt).mappings().first()
        return dict(row) if row is not None else None

    def _all(self, stmt) -> list[dict]:
        with self.engine.connect() as c:
            return dicts(c.execute(stmt))

    def _frame(self, stmt, columns: Iterable[str]) -> pd.DataFrame:
        rows = self._all(stmt)
        df = pd.DataFrame(rows, columns=list(columns))
        for col in df.columns:
            if col in _TIME_COLUMNS:
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        return df
