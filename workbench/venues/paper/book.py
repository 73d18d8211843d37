"""The paper venue's books: what a real exchange would remember for one account — cash per currency,
holdings, orders and fills — in the store's ``paper_*`` tables (``workbench.store.schema``).

Why apart from the broker: the broker (``PaperBroker``) decides how orders fill; this module only
reads and writes rows, so the venue's persistence sits with the venue and neither imports anything
from ``workbench.trading``. Methods that take ``conn`` run inside the caller's transaction (a fill
books order, cash, holding, fill row and OCO cancels atomically); the others open their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select, Update

from workbench.store.engine import upgrade
from workbench.store.schema import iso, paper_balances, paper_fills, paper_orders, utcnow

__all__ = ["OPEN_STATUSES", "HasEngine", "PaperBook"]

OPEN_STATUSES = ("SUBMITTED", "PARTIALLY_FILLED")
_EPS = 1e-9


class HasEngine(Protocol):
    """What the paper broker is given: the trading ``Store``, or anything else holding an engine."""

    engine: Engine


class PaperBook:
    """One paper account's rows. Cheap: the engine is shared with whoever made it."""

    def __init__(self, engine: Engine, account: str):
        upgrade(engine)  # one query when the schema is current (engine_for already migrated it)
        self.engine, self.account = engine, account

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction for several writes that must land together."""
        with self.engine.begin() as c:
            yield c

    # ---- balances -------------------------------------------------------------------------------
    def open_account(self, cash: Mapping[str, float]) -> None:
        """Seed the cash of currencies the account does not hold yet: starting cash applies once."""
        b = paper_balances
        with self.engine.begin() as c:
            for ccy, amount in cash.items():
                key = and_(b.c.account == self.account, b.c.asset == ccy)
                if c.execute(select(b.c.total).where(key)).first() is None:
                    c.execute(insert(b).values(account=self.account, asset=ccy, total=float(amount), kind="cash"))

    def cash(self, conn: Connection | None = None) -> dict[str, float]:
        """Cash per currency (in ``conn``'s transaction when given)."""
        b = paper_balances
        stmt = select(b.c.asset, b.c.total).where(and_(b.c.account == self.account, b.c.kind == "cash"))
        if conn is not None:
            return {a: float(v) for a, v in conn.execute(stmt).all()}
        with self.engine.connect() as c:
            return {a: float(v) for a, v in c.execute(stmt).all()}

    def holdings(self) -> dict[str, float]:
        """Non-zero holdings per symbol."""
        b = paper_balances
        with self.engine.connect() as c:
            stmt = select(b.c.asset, b.c.total).where(and_(b.c.account == self.account, b.c.kind != "cash"))
            rows = c.execute(stmt).all()
        return {a: float(q) for a, q in rows if abs(q) > _EPS}

    def holding(self, symbol: str) -> float:
        b = paper_balances
        key = and_(b.c.account == self.account, b.c.asset == symbol, b.c.kind != "cash")
        with self.engine.connect() as c:
            v = c.execute(select(b.c.total).where(key)).scalar()
        return float(v or 0.0)

    def add_balance(self, conn: Connection, asset: str, delta: float, kind: str) -> None:
        """Move a cash or holding balance by ``delta``; selling a whole holding leaves exactly zero."""
        b = paper_balances
        key = and_(b.c.account == self.account, b.c.asset == asset)
        cur = conn.execute(select(b.c.total).where(key)).first()
        if cur is None:
            conn.execute(insert(b).values(account=self.account, asset=asset, total=delta, kind=kind))
        else:
            value = float(cur[0]) + delta
            dust = _EPS + 1e-12 * abs(float(cur[0]))
            conn.execute(update(b).where(key).values(total=0.0 if abs(value) < dust else value))

    # ---- orders ---------------------------------------------------------------------------------
    def select_order(self, cid: str) -> Select[Any]:
        t = paper_orders
        return select(t).where(and_(t.c.account == self.account, t.c.client_order_id == cid))

    def update_order(self, cid: str) -> Update:
        t = paper_orders
        return update(t).where(and_(t.c.account == self.account, t.c.client_order_id == cid))

    def order(self, cid: str, conn: Connection | None = None) -> dict[str, Any] | None:
        if conn is not None:
            r = conn.execute(self.select_order(cid)).mappings().first()
            return dict(r) if r is not None else None
        with self.engine.connect() as c:
            return self.order(cid, c)

    def insert_order(self, conn: Connection, **values: Any) -> None:
        conn.execute(insert(paper_orders).values(account=self.account, **values))

    def set_status(self, cid: str, status: str, conn: Connection | None = None, **fields: Any) -> None:
        """Set an order's status (and other columns) with a fresh ``updated_at``."""
        stmt = self.update_order(cid).values(status=status, updated_at=iso(utcnow()), **fields)
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as c:
            c.execute(stmt)

    def open_orders(self, side: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
        """Orders still working (oldest first), optionally of one side or symbol."""
        t = paper_orders
        stmt = select(t).where(and_(t.c.account == self.account, t.c.status.in_(OPEN_STATUSES)))
        if side is not None:
            stmt = stmt.where(t.c.side == side)
        if symbol is not None:
            stmt = stmt.where(t.c.symbol == symbol)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(stmt.order_by(t.c.created_at)).mappings().all()]

    def cancel_oco_siblings(self, conn: Connection, oco_group: str, filled_cid: str, now: str) -> None:
        """One-cancels-other: the group's other working orders are cancelled when one fills."""
        t = paper_orders
        others = and_(
            t.c.account == self.account, t.c.oco_group == oco_group, t.c.client_order_id != filled_cid,
            t.c.status.in_(OPEN_STATUSES),
        )  # fmt: skip
        reason = f"oco: {filled_cid} filled"
        conn.execute(update(t).where(others).values(status="CANCELLED", reason=reason, updated_at=now))

    # ---- fills ----------------------------------------------------------------------------------
    def fill_count(self, conn: Connection, cid: str) -> int:
        """How many fills an order has had (the next fill's sequence number less one)."""
        return len(conn.execute(select(paper_fills.c.fill_id).where(paper_fills.c.client_order_id == cid)).all())

    def insert_fill(self, conn: Connection, **values: Any) -> None:
        conn.execute(insert(paper_fills).values(account=self.account, **values))

    def fills(self, since: pd.Timestamp | None = None, client_order_id: str | None = None) -> list[dict[str, Any]]:
        """Fill rows in time order, optionally since a time or of one order."""
        t = paper_fills
        stmt = select(t).where(t.c.account == self.account)
        if since is not None:
            stmt = stmt.where(t.c.ts >= iso(since))
        if client_order_id is not None:
            stmt = stmt.where(t.c.client_order_id == client_order_id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(stmt.order_by(t.c.ts, t.c.fill_id)).mappings().all()]
