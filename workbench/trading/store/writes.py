"""Writes on an open connection, shared by the store's parts so that each runs inside the caller's
transaction: fills and their fee totals, cash, positions, and the owner of a new row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from workbench.store.among import among
from workbench.store.bulk import upsert_insert
from workbench.store.schema import (
    cash_book,
    fee_totals,
    fills,
    iso,
    orders,
    positions,
    runs,
    utcnow,
)
from workbench.trading.store.base import _f

_OWNERS_OF = select(orders.c.client_order_id, orders.c.user_id).where(
    and_(among(orders.c.client_order_id, "ids"), orders.c.user_id.is_not(None))
)


def _insert_fill(c: Any, fill: Any, account: str) -> bool:
    """Insert a fill on connection ``c`` unless its id is already recorded; True when inserted."""
    if c.execute(select(fills.c.fill_id).where(fills.c.fill_id == fill.fill_id)).first() is not None:
        return False
    owner = func.coalesce(
        select(orders.c.user_id).where(orders.c.client_order_id == fill.client_order_id).scalar_subquery(),
        _account_owner(account),
    )
    row = _fill_row(fill, account)
    c.execute(insert(fills).values(**row, user_id=owner))
    _add_fees(c, account, [row])
    return True


def _add_fees(c: Any, account: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add the fees of fill rows just inserted on connection ``c`` (same transaction: a crash keeps both
    or neither) to the account's running totals, one upsert per fee currency. Only rows actually inserted
    may come here: a fill replayed on reconcile is skipped before, so it is never counted twice."""
    add: dict[str, float] = {}
    for r in rows:
        ccy = r["fee_currency"] or ""
        add[ccy] = add.get(ccy, 0.0) + float(r["fee"])
    if not add:
        return
    t = fee_totals
    values = [{"account": account, "fee_currency": k, "total": add[k]} for k in sorted(add)]
    ins = upsert_insert(c, t)  # one atomic statement: no read-then-write window
    c.execute(
        ins.on_conflict_do_update(
            index_elements=[t.c.account, t.c.fee_currency], set_={"total": t.c.total + ins.excluded.total}
        ),
        values,
    )


def _fill_row(fill: Any, account: str, stamps: dict[Any, str] | None = None) -> dict[str, Any]:
    """A fill's row. ``stamps``: a batch's memo of ``iso`` by time (a venue's batch of fills shares a few)."""
    if stamps is None:
        ts = iso(fill.ts)
    elif (ts := stamps.get(fill.ts)) is None:
        ts = stamps[fill.ts] = iso(fill.ts)
    return {
        "fill_id": fill.fill_id,
        "client_order_id": fill.client_order_id,
        "account": account,
        "symbol": fill.symbol,
        "side": fill.side,
        "quantity": float(fill.quantity),
        "price": float(fill.price),
        "fee": float(fill.fee),
        "fee_currency": fill.fee_currency,
        "ts": ts,
    }


def _set_cash(c: Any, account: str, currency: str, total: float) -> None:
    key = and_(cash_book.c.account == account, cash_book.c.currency == currency)
    if c.execute(select(cash_book.c.currency).where(key)).first() is None:
        c.execute(
            insert(cash_book).values(account=account, currency=currency, total=float(total), updated_at=iso(utcnow()))
        )
    else:
        c.execute(update(cash_book).where(key).values(total=float(total), updated_at=iso(utcnow())))


def _move_cash(c: Any, account: str, deltas: Mapping[str, float]) -> None:
    """Apply fill cash movements to a cash book that exists (before the first sync there is none:
    the sync then takes the broker's balances as the opening book)."""
    book = dict(c.execute(select(cash_book.c.currency, cash_book.c.total).where(cash_book.c.account == account)).all())
    if not book:
        return
    now = iso(utcnow())
    for ccy, d in deltas.items():
        if ccy in book and d:  # the row exists: update it (``_set_cash`` would look for it again)
            key = and_(cash_book.c.account == account, cash_book.c.currency == ccy)
            c.execute(update(cash_book).where(key).values(total=float(book[ccy]) + float(d), updated_at=now))


def _upsert_position(c: Any, account: str, symbol: str, fields: Mapping[str, Any]) -> None:
    """Create or update one position row on connection ``c``; a new row starts flat with no P&L."""
    values = {k: (_f(v) if k != "updated_at" else v) for k, v in fields.items()}
    values["updated_at"] = iso(utcnow())
    key = and_(positions.c.account == account, positions.c.symbol == symbol)
    if c.execute(select(positions.c.symbol).where(key)).first() is None:
        row = {"quantity": 0.0, "realized_pnl": 0.0, **values, "user_id": _account_owner(account)}
        c.execute(insert(positions).values(account=account, symbol=symbol, **row))
    else:
        c.execute(update(positions).where(key).values(**values))


def _run_owner(run_id: int | None) -> Any:
    """SQL for the owner of a run (NULL without one)."""
    return select(runs.c.user_id).where(runs.c.id == run_id).scalar_subquery()


def _account_owner(account: str) -> Any:
    """SQL for the owner of an account: the owner of its latest owned run (accounts are per user —
    ``paper:<user>``, ``<broker>@<environment>:<user>`` — so this is the one user who trades it)."""
    return (
        select(runs.c.user_id)
        .where(and_(runs.c.account == account, runs.c.user_id.is_not(None)))
        .order_by(runs.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _owner_of_account(c: Any, account: str) -> int | None:
    """The account's owner (see ``_account_owner``), read once for a batch."""
    return c.execute(select(_account_owner(account))).scalar()


def _order_owners(c: Any, client_order_ids: Sequence[str]) -> dict[str, int]:
    """Owner of each of these orders (orders without one are left out), in chunks of 500 ids."""
    ids = list(dict.fromkeys(client_order_ids))
    out: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        out.update({k: int(u) for k, u in c.execute(_OWNERS_OF, {"ids": ids[i : i + 500]}).all()})
    return out


def _fill_owners(c: Any, values: list[dict[str, Any]]) -> None:
    """Give each new order row without an owner its run's owner, else its account's (one query per
    distinct run and account of the batch, not per row)."""
    todo = [v for v in values if v.get("user_id") is None]
    if not todo:
        return
    run_ids = sorted({int(v["run_id"]) for v in todo if v.get("run_id") is not None})
    by_run: dict[int, int] = {}
    if run_ids:
        q = select(runs.c.id, runs.c.user_id).where(and_(runs.c.id.in_(run_ids), runs.c.user_id.is_not(None)))
        by_run = {int(r): int(u) for r, u in c.execute(q).all()}
    by_account = {a: _owner_of_account(c, a) for a in {str(v["account"]) for v in todo}}
    for v in todo:
        run = v.get("run_id")
        v["user_id"] = by_run.get(int(run)) if run is not None and int(run) in by_run else by_account[str(v["account"])]
