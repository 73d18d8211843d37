"""The operational store: runs, checks, cycles, signals, orders, fills, positions, equity, the event
log and the command queue — the only thing the live process and the dashboard share.

SQLAlchemy Core on SQLite in WAL mode (readers never block the live writer; ``busy_timeout`` lets two
writers queue instead of failing), and the same statements on PostgreSQL by URL: the only
SQLite-specific SQL is the pragmas set on connect. The tables are defined in ``workbench.store.schema``
(with their migrations) and the engine comes from ``workbench.store.engine``; this package holds the queries,
one module per concern (``runs``, ``commands``, ``orders``, ``book``, ``owned``; ``writes`` for what several
share inside one transaction), joined into the one ``Store`` class.
Times are stored as UTC ISO-8601 strings of one fixed format (``iso``), so they sort as text on every
backend and read back unambiguously.
"""

from __future__ import annotations

from workbench.store.schema import iso, utcnow
from workbench.trading.store.base import (
    _OPEN_STATUSES as _OPEN_STATUSES,
)
from workbench.trading.store.base import (
    ACTIONS,
    COMMANDS,
    RUN_STATUSES,
    STOP_COMMANDS,
    Booked,
    _Tables,
)
from workbench.trading.store.book import AccountBook
from workbench.trading.store.commands import CommandQueue
from workbench.trading.store.orders import OrderBook
from workbench.trading.store.owned import OwnedReads
from workbench.trading.store.runs import RunRecords

__all__ = ["RUN_STATUSES", "COMMANDS", "STOP_COMMANDS", "ACTIONS", "Booked", "Store", "iso", "utcnow"]


class Store(RunRecords, CommandQueue, OrderBook, AccountBook, OwnedReads):
    """One database, many processes. Construction opens it through ``workbench.store.engine_for``
    (SQLite settings, schema migrated to the newest revision: one query when it already is)."""

    t = _Tables
