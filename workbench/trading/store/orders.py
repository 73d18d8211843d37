"""Orders, their status events and fills: written one by one or a venue's batch in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, select, update

from workbench.store.among import among
from workbench.store.bulk import bulk, dicts
from workbench.store.schema import (
    events,
    fee_totals,
    fills,
    iso,
    order_events,
    orders,
    utcnow,
)
from workbench.store.schema import events as events_t
from workbench.store.schema import positions as positions_t
from workbench.trading.store.base import (
    _OPEN_STATUSES,
    Booked,
    StoreBase,
    _f,
)
from workbench.trading.store.writes import (
    _account_owner,
    _add_fees,
    _fill_owners,
    _fill_row,
    _insert_fill,
    _move_cash,
    _order_owners,
    _owner_of_account,
    _run_owner,
    _upsert_position,
)

# Reads of a batch's rows by key, built once, the keys an execution parameter (``among``: one array on
# PostgreSQL, where 500 rendered and cast placeholders a query cost psycopg and the server a parse each).
_ORDERS_OF = select(orders).where(among(orders.c.client_order_id, "ids"))
_FILLS_OF = select(fills.c.fill_id).where(among(fills.c.fill_id, "ids"))
_POSITION_OWNERS_OF = select(positions_t.c.symbol, positions_t.c.user_id).where(
    and_(positions_t.c.account == bindparam("acct"), among(positions_t.c.symbol, "ids"))
)


class OrderBook(StoreBase):
    """Orders, order events, fills and fee totals."""

    # ---- orders, events, fills ------------------------------------------------------------------
    def insert_order(self, row: Mapping[str, Any]) -> None:
        now = iso(utcnow())
        values = {"created_at": now, "updated_at": now, "filled_quantity": 0.0, "fee": 0.0, **row}
        for k in ("quantity", "limit_price", "stop_price", "average_price", "stop_loss", "take_profit"):
            if k in values:
                values[k] = _f(values[k])
        if values.get("user_id") is None:  # the owner: its run's, else its account's
            values["user_id"] = func.coalesce(_run_owner(values.get("run_id")), _account_owner(values["account"]))
        with self.engine.begin() as c:
            c.execute(insert(orders).values(**values))
            c.execute(
                insert(order_events).values(
                    client_order_id=values["client_order_id"],
                    ts=now,
                    status=values["status"],
                    detail=values.get("reason"),
                )
            )

    def insert_orders(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Many NEW orders and their first events in one transaction (two executemany statements):
        the batch is recorded whole before the venue hears of any of it. Returns the rows as written
        (every column), so the caller that books the venue's answers need not read them back."""
        if not rows:
            return []
        now = iso(utcnow())
        base = dict.fromkeys(c.name for c in orders.columns) | {
            "created_at": now, "updated_at": now, "filled_quantity": 0.0, "fee": 0.0,
        }  # fmt: skip
        floats = ("quantity", "limit_price", "stop_price", "average_price", "stop_loss", "take_profit")
        values = []
        for row in rows:
            v = {**base, **row}
            for k in floats:
                x = v[k]
                if x is not None and (type(x) is not float or x != x):  # a float that is not NaN stays as it is
                    v[k] = _f(x)
            values.append(v)
        with self.engine.begin() as c:
            _fill_owners(c, values)
            bulk(c, insert(orders), values)
            bulk(
                c,
                insert(order_events),
                [
                    {"client_order_id": v["client_order_id"], "ts": now, "status": v["status"], "detail": v["reason"]}
                    for v in values
                ],
            )
        return values

    def get_orders(self, client_order_ids: Iterable[str]) -> dict[str, dict]:
        """Rows of these orders by client id (absent ids are left out), in chunks of 500 ids a query."""
        ids = list(dict.fromkeys(client_order_ids))
        out: dict[str, dict] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            with self.engine.connect() as c:
                out.update({r["client_order_id"]: r for r in dicts(c.execute(_ORDERS_OF, {"ids": part}))})
        return out

    def recorded_fills(self, fill_ids: Iterable[str]) -> set[str]:
        """Which of these fill ids are already recorded (fills are replayed on reconcile)."""
        ids = list(dict.fromkeys(fill_ids))
        out: set[str] = set()
        with self.engine.connect() as c:
            for i in range(0, len(ids), 500):
                out.update(c.execute(_FILLS_OF, {"ids": ids[i : i + 500]}).scalars())
        return out

    def apply_batch(
        self,
        account: str,
        order_updates: Sequence[Mapping[str, Any]] = (),
        order_steps: Sequence[tuple[str, str, str | None]] = (),
        new_fills: Sequence[Any] = (),
        positions: Mapping[str, Mapping[str, Any]] | None = None,
        cash: Mapping[str, float] | None = None,
        events: Sequence[tuple[str, str, str]] = (),
        run_id: int | None = None,
    ) -> Booked:
        """A batch of venue answers booked in one transaction: order rows (``order_updates``: each the
        full set of mutable columns with ``client_order_id``), their status events (``order_steps``:
        (client id, status, detail)), new fills, the positions they leave (symbol → full row of
        quantity, average_price, realized_pnl, stop_loss, take_profit), the summed cash movements and
        events (kind, message, level). A crash leaves all of it or none: reconcile replays the rest.
        Returns the time stamped on the rows (``updated_at``) and the position rows as now stored
        (every column), so a caller that keeps a copy of the book can keep it in step."""
        positions = positions or {}
        now = iso(utcnow())
        stored: dict[str, dict[str, Any]] = {}
        with self.engine.begin() as c:
            if order_updates:
                cols = ("status", "broker_order_id", "filled_quantity", "average_price", "fee", "reason")
                stmt = (
                    update(orders)
                    .where(orders.c.client_order_id == bindparam("k_cid"))
                    .values({**{k: bindparam(f"k_{k}") for k in cols}, "updated_at": now})
                )
                bulk(
                    c,
                    stmt,
                    [
                        {"k_cid": u["client_order_id"], "k_status": u["status"], "k_broker_order_id": u.get("broker_order_id"),
                         "k_filled_quantity": u.get("filled_quantity"), "k_average_price": u.get("average_price"),
                         "k_fee": u.get("fee"), "k_reason": u.get("reason")}
                        for u in order_updates
                    ],
                )  # fmt: skip
            if order_steps:
                bulk(
                    c,
                    insert(order_events),
                    [{"client_order_id": k, "ts": now, "status": st, "detail": d} for k, st, d in order_steps],
                )
            if new_fills:
                by_order = _order_owners(c, [f.client_order_id for f in new_fills])
                fallback = _owner_of_account(c, account)
                stamps: dict[Any, str] = {}
                rows = [
                    {**_fill_row(f, account, stamps), "user_id": by_order.get(f.client_order_id, fallback)}
                    for f in new_fills
                ]
                bulk(c, insert(fills), rows)  # every row is new: a recorded fill id would fail the whole batch
                _add_fees(c, account, rows)
            if positions:
                have: dict[str, int | None] = {}  # symbol -> owner of the rows that exist
                syms = list(positions)
                for i in range(0, len(syms), 500):
                    have.update(c.execute(_POSITION_OWNERS_OF, {"acct": account, "ids": syms[i : i + 500]}).all())
                pcols = ("quantity", "average_price", "realized_pnl", "stop_loss", "take_profit")
                owner = _owner_of_account(c, account) if any(k not in have for k in positions) else None
                stored = {
                    sym: {
                        "account": account,
                        "symbol": sym,
                        **{k: _f(v.get(k)) for k in pcols},
                        "updated_at": now,
                        "user_id": have.get(sym, owner),
                    }
                    for sym, v in positions.items()
                }
                old = [{f"k_{k}": r[k] for k in ("symbol", *pcols)} for sym, r in stored.items() if sym in have]
                if old:
                    stmt = (
                        update(positions_t)
                        .where(and_(positions_t.c.account == account, positions_t.c.symbol == bindparam("k_symbol")))
                        .values({**{k: bindparam(f"k_{k}") for k in pcols}, "updated_at": now})
                    )
                    bulk(c, stmt, old)
                fresh = [r for sym, r in stored.items() if sym not in have]
                if fresh:
                    bulk(c, insert(positions_t), fresh)
            if cash:
                _move_cash(c, account, cash)
            if events:
                bulk(
                    c,
                    insert(events_t),
                    [{"ts": now, "run_id": run_id, "kind": k, "message": m, "level": lv} for k, m, lv in events],
                )
        return Booked(now, stored)

    def get_order(self, client_order_id: str) -> dict | None:
        return self._one(select(orders).where(orders.c.client_order_id == client_order_id))

    def require_order(self, client_order_id: str) -> dict:
        """The row of an order the caller has just written or read (its absence is a bug)."""
        row = self.get_order(client_order_id)
        if row is None:
            raise LookupError(f"order {client_order_id} is missing from the store")
        return row

    def update_order(self, client_order_id: str, event_detail: str | None = None, **fields: Any) -> None:
        """Update an order; when the status changes an order event is appended in the same transaction."""
        now = iso(utcnow())
        fields["updated_at"] = now
        with self.engine.begin() as c:
            c.execute(update(orders).where(orders.c.client_order_id == client_order_id).values(**fields))
            if "status" in fields:
                c.execute(
                    insert(order_events).values(
                        client_order_id=client_order_id, ts=now, status=fields["status"], detail=event_detail
                    )
                )

    def advance_order(self, client_order_id: str, steps: list[str], detail: str | None = None, **fields: Any) -> None:
        """Move an order through ``steps`` (e.g. SUBMITTED, FILLED) in one transaction: the row takes
        the last status and ``fields``, and every step is appended as an event (``detail`` on the last)."""
        if not steps:
            return
        now = iso(utcnow())
        with self.engine.begin() as c:
            c.execute(
                update(orders)
                .where(orders.c.client_order_id == client_order_id)
                .values(status=steps[-1], updated_at=now, **fields)
            )
            c.execute(
                insert(order_events),
                [
                    {
                        "client_order_id": client_order_id,
                        "ts": now,
                        "status": st,
                        "detail": detail if i == len(steps) - 1 else None,
                    }
                    for i, st in enumerate(steps)
                ],
            )

    def book_fill(
        self,
        fill: Any,
        account: str,
        position: Mapping[str, Any],
        message: str,
        run_id: int | None = None,
        cash: Mapping[str, float] | None = None,
    ) -> bool:
        """Record a broker fill, the position it leaves, its cash movements (``cash``: currency → delta,
        applied to the account's cash book once it has one) and its event in one transaction; False
        (and nothing written) when the fill was already recorded — fills are replayed on reconcile."""
        with self.engine.begin() as c:
            if not _insert_fill(c, fill, account):
                return False
            _upsert_position(c, account, fill.symbol, position)
            if cash:
                _move_cash(c, account, cash)
            c.execute(
                insert(events).values(ts=iso(utcnow()), run_id=run_id, level="INFO", kind="fill", message=message)
            )
        return True

    def open_orders(self, account: str | None = None) -> list[dict]:
        # IN the open statuses, not NOT IN the final ones: SQLite then reads the few open rows through
        # the status index instead of scanning every order the account ever placed (a long run's table
        # grows by thousands of rows a cycle).
        stmt = select(orders).where(orders.c.status.in_(_OPEN_STATUSES))
        if account is not None:
            stmt = stmt.where(orders.c.account == account)
        return self._all(stmt.order_by(orders.c.created_at))

    def orders(self, run_id: int | None = None, limit: int = 100) -> pd.DataFrame:
        stmt = select(orders)
        if run_id is not None:
            stmt = stmt.where(orders.c.run_id == run_id)
        stmt = stmt.order_by(orders.c.created_at.desc(), orders.c.client_order_id).limit(limit)
        return self._frame(stmt, [c.name for c in orders.columns])

    def oco_group_counts(self, account: str, run_id: int | None = None) -> dict[str, int]:
        """Exit pairs ever placed per symbol (in a run), for every symbol at once. It reads every exit
        order of the run: the order manager asks once, when it starts, and counts in memory after."""
        stmt = (
            select(orders.c.symbol, func.count(func.distinct(orders.c.oco_group)))
            .where(and_(orders.c.account == account, orders.c.oco_group.is_not(None)))
            .group_by(orders.c.symbol)
        )
        if run_id is not None:
            stmt = stmt.where(orders.c.run_id == run_id)
        with self.engine.connect() as c:
            return {str(k): int(n) for k, n in c.execute(stmt).all()}

    def order_counts(self, run_id: int | None = None) -> dict[str, int]:
        """Orders per status (for status lines that must not load every order)."""
        stmt = select(orders.c.status, func.count()).group_by(orders.c.status)
        if run_id is not None:
            stmt = stmt.where(orders.c.run_id == run_id)
        with self.engine.connect() as c:
            return {s: int(n) for s, n in c.execute(stmt).all()}

    def order_events(self, client_order_id: str) -> pd.DataFrame:
        stmt = select(order_events).where(order_events.c.client_order_id == client_order_id).order_by(order_events.c.id)
        return self._frame(stmt, [c.name for c in order_events.columns])

    def add_fill(self, fill: Any, account: str) -> bool:
        """Record a broker fill once; False when it was already recorded (fills are replayed on reconcile)."""
        with self.engine.begin() as c:
            return _insert_fill(c, fill, account)

    def fees_by_currency(self, account: str) -> dict[str, float]:
        """Fees the account has paid, per fee currency ('' for fills that name none): the running totals
        the fills' own transactions keep (``fee_totals``), a few rows however long the history."""
        stmt = select(fee_totals.c.fee_currency, fee_totals.c.total).where(fee_totals.c.account == account)
        with self.engine.connect() as c:
            return {str(k): float(v) for k, v in c.execute(stmt).all()}

    def fills(self, account: str | None = None, client_order_id: str | None = None) -> pd.DataFrame:
        stmt = select(fills)
        if account is not None:
            stmt = stmt.where(fills.c.account == account)
        if client_order_id is not None:
            stmt = stmt.where(fills.c.client_order_id == client_order_id)
        return self._frame(stmt.order_by(fills.c.ts, fills.c.fill_id), [c.name for c in fills.columns])
