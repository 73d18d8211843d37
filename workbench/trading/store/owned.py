"""Reads of the books scoped by owner (``user_id`` None: everyone's, for admins): what the dashboard's
and ``workbench books``' pages show a user."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select

from workbench.store.schema import (
    commands,
    fills,
    orders,
    positions,
)
from workbench.trading.store.base import (
    _OPEN_STATUSES,
    StoreBase,
)


class OwnedReads(StoreBase):
    """A user's orders, fills, positions and commands."""

    # ---- owned books: every query scoped by owner (``user_id`` None: everyone's, for admins) ------------
    def orders_of(
        self,
        user_id: int | None,
        run_id: int | None = None,
        account: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> pd.DataFrame:
        """A user's orders, newest first."""
        stmt = _owned(select(orders), orders, user_id)
        if run_id is not None:
            stmt = stmt.where(orders.c.run_id == run_id)
        if account is not None:
            stmt = stmt.where(orders.c.account == account)
        if open_only:
            stmt = stmt.where(orders.c.status.in_(_OPEN_STATUSES))
        stmt = stmt.order_by(orders.c.created_at.desc(), orders.c.client_order_id).limit(limit)
        return self._frame(stmt, [c.name for c in orders.columns])

    def fills_of(self, user_id: int | None, account: str | None = None, limit: int = 100) -> pd.DataFrame:
        """A user's fills, newest first."""
        stmt = _owned(select(fills), fills, user_id)
        if account is not None:
            stmt = stmt.where(fills.c.account == account)
        stmt = stmt.order_by(fills.c.ts.desc(), fills.c.fill_id).limit(limit)
        return self._frame(stmt, [c.name for c in fills.columns])

    def owned_positions(
        self, user_id: int | None, account: str | None = None, include_closed: bool = False
    ) -> pd.DataFrame:
        """A user's positions on every account they trade (or one)."""
        stmt = _owned(select(positions), positions, user_id)
        if account is not None:
            stmt = stmt.where(positions.c.account == account)
        if not include_closed:
            stmt = stmt.where(positions.c.quantity != 0)
        return self._frame(stmt.order_by(positions.c.account, positions.c.symbol), [c.name for c in positions.columns])

    def commands_of(self, user_id: int | None, run_id: int | None = None, limit: int = 100) -> pd.DataFrame:
        """The stop and emergency-stop commands a user's runs were sent (or the user sent), newest first."""
        stmt = _owned(select(commands), commands, user_id)
        if run_id is not None:
            stmt = stmt.where(commands.c.run_id == run_id)
        return self._frame(stmt.order_by(commands.c.id.desc()).limit(limit), [c.name for c in commands.columns])


def _owned(stmt: Any, table: Any, user_id: int | None) -> Any:
    """``stmt`` limited to ``user_id``'s rows; None (an admin's view) leaves it whole."""
    return stmt if user_id is None else stmt.where(table.c.user_id == int(user_id))
