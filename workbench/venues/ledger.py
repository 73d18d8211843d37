"""What a real venue cannot remember for us: which venue object stands for which client order id.

Why it exists: Kite's order ``tag`` holds at most 20 alphanumerics (our ids are longer, so the tag is
a hash and cannot be turned back into the id), Kite GTT triggers carry no tag at all, and an Alpaca
OCO pair is one venue order whose stop leg gets an id Alpaca chooses. Each adapter writes here the
moment it learns the venue's reference, so that after a restart ``order_status(client_order_id)``
still finds a GTT leg or an OCO leg. Regular orders stay findable without it (by tag or by
Alpaca's ``client_order_id``); the ledger only names them back in listings.

Rows live in the operational store (``settings.store_url``, table ``broker_order_refs`` of
``workbench.store.schema``) beside the orders they describe; without a store URL they live in memory
(tests, one-off scripts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, update

from workbench.store.engine import engine_for
from workbench.store.schema import broker_order_refs as _rows

__all__ = ["OrderLedger"]

_FIELDS = [c.name for c in _rows.columns if c.name not in ("venue", "account", "client_order_id")]


class OrderLedger:
    def __init__(self, store_url: str | None, venue: str, account: str):
        self._engine = engine_for(store_url or "sqlite://")  # no store: a private in-memory database
        self.venue, self.account = venue, account

    def _key(self, cid: str | None = None) -> ColumnElement[bool]:
        k = and_(_rows.c.venue == self.venue, _rows.c.account == self.account)
        return and_(k, _rows.c.client_order_id == cid) if cid is not None else k

    def put(self, cid: str, **fields: Any) -> None:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"ledger has no fields {sorted(unknown)}")
        with self._engine.begin() as c:
            if c.execute(update(_rows).where(self._key(cid)).values(**fields)).rowcount == 0:
                c.execute(insert(_rows).values(venue=self.venue, account=self.account, client_order_id=cid, **fields))

    def get(self, cid: str) -> dict[str, Any] | None:
        with self._engine.connect() as c:
            r = c.execute(select(_rows).where(self._key(cid))).mappings().first()
        return dict(r) if r is not None else None

    def require(self, cid: str) -> dict[str, Any]:
        """The row of ``cid``, which the caller has just written or found (its absence is a bug)."""
        row = self.get(cid)
        if row is None:
            raise LookupError(f"{self.venue}: order {cid} is missing from the order ledger")
        return row

    def find(self, **where: Any) -> list[dict[str, Any]]:
        stmt = select(_rows).where(self._key())
        for k, v in where.items():
            stmt = stmt.where(_rows.c[k] == v)
        with self._engine.connect() as c:
            return [dict(r) for r in c.execute(stmt).mappings().all()]
