"""The paper venue's books: what a real exchange would remember for one account — cash per currency,
holdings, orders and fills — in the store's ``paper_*`` tables (``workbench.store.schema``).

Why apart from the broker: the broker (``PaperBroker``) decides how orders fill; this module only
reads and writes rows, so the venue's persistence sits with the venue and neither imports anything
from ``workbench.trading``. Methods that take ``conn`` run inside the caller's transaction (a fill
books order, cash, holding, fill row and OCO cancels atomically); the others open their own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select, Update
from sqlalchemy.sql.elements import BindParameter

from workbench.store.among import among
from workbench.store.bulk import bulk, dicts, upsert_insert
from workbench.store.engine import upgrade
from workbench.store.schema import iso, paper_balances, paper_fills, paper_orders, utcnow

__all__ = ["FILL_COLUMNS", "OPEN_STATUSES", "BookSession", "HasEngine", "PaperBook"]

OPEN_STATUSES = ("SUBMITTED", "PARTIALLY_FILLED")
_EPS = 1e-9

# The statements a cycle runs, built once. Why: building a select costs ~0.1 ms, and ``col.in_(list)``
# coerces every listed value (~1 ms for 500 ids); ``among`` takes the list as a parameter instead (an
# expanding IN, or one array on PostgreSQL), and SQLAlchemy's statement cache compiles each shape once.
_t, _b, _f = paper_orders, paper_balances, paper_fills
_ACCT: BindParameter[Any] = bindparam("acct")
_OPEN_ROWS = select(_t).where(and_(_t.c.account == _ACCT, _t.c.status.in_(OPEN_STATUSES)))
_OPEN_BUYS = _OPEN_ROWS.where(_t.c.side == "buy")
_OPEN_OTHERS_OF = _OPEN_ROWS.where(and_(_t.c.side != "buy", among(_t.c.symbol, "ids")))
_ORDERS_OF = select(_t).where(and_(_t.c.account == _ACCT, among(_t.c.client_order_id, "ids")))
_KNOWN_OF = select(_t.c.client_order_id).where(and_(_t.c.account == _ACCT, among(_t.c.client_order_id, "ids")))
_BALANCES = select(_b.c.asset, _b.c.total, _b.c.kind).where(_b.c.account == _ACCT)
_CASH = _BALANCES.where(_b.c.kind == "cash")
_NONZERO_HOLDINGS = select(_b.c.asset, _b.c.total).where(
    and_(_b.c.account == _ACCT, _b.c.kind != "cash", or_(_b.c.total > _EPS, _b.c.total < -_EPS))
)
_HOLDINGS_OF = _BALANCES.where(and_(_b.c.kind != "cash", among(_b.c.asset, "ids")))
FILL_COLUMNS = tuple(
    _f.c[k] for k in ("fill_id", "client_order_id", "symbol", "side", "quantity", "price", "fee", "fee_currency", "ts")
)
# The session's writes name every value as a parameter, the account too: ``bulk`` gives each row's values
# to the driver, and a literal in the statement (``account == 'paper'``) is not found by its rendered
# name on a driver with named parameters (psycopg: the flush failed on PostgreSQL with a KeyError).
_CHANGED = ("status", "filled_quantity", "average_price", "fee", "reason", "updated_at")
_UPDATE_ORDERS = (
    update(_t)
    .where(and_(_t.c.account == bindparam("k_acct"), _t.c.client_order_id == bindparam("k_cid")))
    .values({k: bindparam(f"k_{k}") for k in _CHANGED})
)
_UPDATE_BALANCES = (
    update(_b)
    .where(and_(_b.c.account == bindparam("k_acct"), _b.c.asset == bindparam("k_asset")))
    .values(total=bindparam("k_total"))
)
_TS_THEN_ID = itemgetter(8, 0)
_CREATED = itemgetter("created_at")
# Fills counted per order id in every account, as ``PaperBook.fill_count`` counts them (fill ids carry
# the account in their prefix, so this only ever skips numbers; it keeps the ids what they were).
_FILL_COUNTS = (
    select(_f.c.client_order_id, func.count()).where(among(_f.c.client_order_id, "ids")).group_by(_f.c.client_order_id)
)


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
        """Seed the cash of currencies the account does not hold yet: starting cash applies once.

        Why "insert unless present" in one statement: two ``live run``s started together on one account
        both build the venue before the run lock refuses one; a read-then-insert let both read "no
        row" and the loser fail on the unique key, a store error instead of the lock's refusal."""
        b = paper_balances
        rows = [{"account": self.account, "asset": ccy, "total": float(v), "kind": "cash"} for ccy, v in cash.items()]
        with self.engine.begin() as c:  # the store runs on SQLite or PostgreSQL only (``store.engine.engine_for``)
            ins = upsert_insert(c, b).on_conflict_do_nothing(index_elements=[b.c.account, b.c.asset])
            c.execute(ins, rows)

    def cash(self, conn: Connection | None = None) -> dict[str, float]:
        """Cash per currency (in ``conn``'s transaction when given)."""
        b = paper_balances
        stmt = select(b.c.asset, b.c.total).where(and_(b.c.account == self.account, b.c.kind == "cash"))
        if conn is not None:
            return {a: float(v) for a, v in conn.execute(stmt).all()}
        with self.engine.connect() as c:
            return {a: float(v) for a, v in c.execute(stmt).all()}

    def holdings(self) -> dict[str, float]:
        """Non-zero holdings per symbol. The zero rows (every position ever closed) stay in the store:
        SQL leaves them out, so a long-running account does not read its whole history each call."""
        with self.engine.connect() as c:
            rows = c.execute(_NONZERO_HOLDINGS, {"acct": self.account}).all()
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

    def orders_by_ids(self, cids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows of these orders by client id, one query per 500 ids (absent ids are left out)."""
        with self.engine.connect() as c:
            return self.orders_in(c, cids)

    def orders_in(self, conn: Connection, cids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``orders_by_ids`` in ``conn``'s transaction."""
        out: dict[str, dict[str, Any]] = {}
        for part in _chunks(list(dict.fromkeys(cids))):
            out.update(
                {r["client_order_id"]: r for r in dicts(conn.execute(_ORDERS_OF, {"acct": self.account, "ids": part}))}
            )
        return out

    def known_ids(self, conn: Connection, cids: Sequence[str]) -> set[str]:
        """Which of these client ids the account has orders for: only the ids are read (a batch of new
        orders, the usual case, finds none), one query per 500."""
        out: set[str] = set()
        for part in _chunks(list(dict.fromkeys(cids))):
            out.update(r[0] for r in conn.execute(_KNOWN_OF, {"acct": self.account, "ids": part}))
        return out

    def fill_counts(self, conn: Connection, cids: Sequence[str]) -> dict[str, int]:
        """``fill_count`` of many orders, one query per 500 (orders without fills are left out)."""
        out: dict[str, int] = {}
        for part in _chunks(list(dict.fromkeys(cids))):
            out.update({c: int(n) for c, n in conn.execute(_FILL_COUNTS, {"ids": part})})
        return out

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
            return dicts(c.execute(stmt.order_by(t.c.created_at)))

    def open_table(self, conn: Connection) -> tuple[list[str], Sequence[Any]]:
        """Every open order (oldest first, as a session reads them) as the column names and rows (tuple-like),
        in ``conn``'s transaction: a bar looks at thousands of resting orders and turns into dicts only
        the few it needs."""
        result = conn.execute(_OPEN_ROWS.order_by(_t.c.created_at), {"acct": self.account})
        return list(result.keys()), result.all()

    def open_order_rows(self, columns: Sequence[str]) -> Sequence[Any]:
        """Orders still working (oldest first) as rows (tuple-like) of these columns: the broker builds
        its answers from them without a dict per row."""
        t = paper_orders
        stmt = select(*(t.c[k] for k in columns)).where(and_(t.c.account == _ACCT, t.c.status.in_(OPEN_STATUSES)))
        with self.engine.connect() as c:
            return c.execute(stmt.order_by(t.c.created_at), {"acct": self.account}).all()

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

    def fills(
        self,
        since: pd.Timestamp | None = None,
        client_order_id: str | None = None,
        client_order_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Fill rows in time order, optionally since a time, of one order or of several."""
        names = [c.name for c in FILL_COLUMNS]
        return [dict(zip(names, r, strict=True)) for r in self.fill_rows(since, client_order_id, client_order_ids)]

    def fill_rows(
        self,
        since: pd.Timestamp | None = None,
        client_order_id: str | None = None,
        client_order_ids: Sequence[str] | None = None,
    ) -> Sequence[Any]:
        """``fills`` as rows (tuple-like) of ``FILL_COLUMNS`` (the fields of ``Fill``, in its order): what the broker
        turns into ``Fill``s without a dict per row."""
        t = paper_fills
        stmt = select(*FILL_COLUMNS).where(t.c.account == _ACCT)
        if since is not None:
            stmt = stmt.where(t.c.ts >= iso(since))
        if client_order_id is not None:
            stmt = stmt.where(t.c.client_order_id == client_order_id)
        if client_order_ids is None:
            with self.engine.connect() as c:
                return c.execute(stmt.order_by(t.c.ts, t.c.fill_id), {"acct": self.account}).all()
        stmt = stmt.where(among(t.c.client_order_id, "ids"))
        out: list[Any] = []
        with self.engine.connect() as c:
            for part in _chunks(list(dict.fromkeys(client_order_ids))):
                out += c.execute(stmt, {"acct": self.account, "ids": part}).all()
        return sorted(out, key=_TS_THEN_ID)


def _chunks(items: list[str], n: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class BookSession:
    """A working copy of one account's balances and open orders inside one venue transaction.

    Why: a venue answering a batch (or a bar that triggers thousands of resting exits) must see
    each order's effect on cash, holdings and reservations before it looks at the next one, but
    writing those effects row by row costs ~10 statements per order. The session keeps them in
    memory and ``flush`` writes them with a handful of executemany statements, in the caller's
    transaction, so the batch lands whole or not at all."""

    def __init__(
        self,
        book: PaperBook,
        conn: Connection,
        open_side: str | None = None,
        symbols: Collection[str] | None = None,
        open_rows: Sequence[dict[str, Any]] | None = None,
        orders_of: Collection[str] | None = None,
    ):
        """``open_side`` loads only that side's open orders: a read that needs the buys alone (the cash
        they reserve) need not load the thousands of resting exit sells. Such a session is read-only.
        ``symbols`` loads the open orders of these symbols and every open buy (all the cash that is
        reserved): enough for a batch of orders in those symbols (their reserved quantities, OCO
        siblings), without the resting exits of every other position; orders outside it are still
        found by client id (``orders``). Holdings likewise: all of them without ``symbols``, else those
        of ``symbols`` (any other is read when first moved), so a batch does not read every position.
        ``open_rows``: the open orders, already read by the caller in this transaction (oldest first),
        instead of reading them here; they must hold every open buy and every open order of the
        symbols the session will touch (``PaperBook.open_table`` reads them all).
        ``orders_of``: with ``symbols``, the symbols whose other open orders are loaded, when fewer than
        ``symbols`` need them (a batch of plain buys needs no symbol's resting sells: neither what they
        hold back nor OCO siblings); default ``symbols``."""
        self.book, self.conn, self.account = book, conn, book.account
        self.now = iso(utcnow())
        acct = {"acct": self.account}
        self.cash: dict[str, float] = {}
        self.holdings: dict[str, float] = {}
        self._stored_assets: set[str] = set()
        self._all_holdings = symbols is None
        self._looked_up: set[str] = set()  # holdings read (or found absent) when not all are loaded
        if symbols is None:
            self._take_balances(conn.execute(_BALANCES, acct).all())
        else:
            self._take_balances(conn.execute(_CASH, acct).all())
            self._load_holdings(list(symbols))
        self._dirty: set[str] = set()
        if open_rows is not None:
            rows = list(open_rows)
        elif symbols is None:
            stmt = _OPEN_ROWS if open_side is None else _OPEN_ROWS.where(_t.c.side == open_side)
            rows = dicts(conn.execute(stmt.order_by(_t.c.created_at), acct))
        else:  # the buys, and the other orders of these symbols: read through the (account, status, symbol) index
            rows = dicts(conn.execute(_OPEN_BUYS, acct)) if open_side in (None, "buy") else []
            if open_side in (None, "sell"):
                for part in _chunks(sorted(set(symbols if orders_of is None else orders_of))):
                    rows += dicts(conn.execute(_OPEN_OTHERS_OF, {**acct, "ids": part}))
            rows.sort(key=_CREATED)  # oldest first, as without ``symbols``
        self.open: dict[str, dict[str, Any]] = {r["client_order_id"]: r for r in rows}
        self.by_symbol: dict[str, dict[str, dict[str, Any]]] = {}
        for r in rows:
            self.by_symbol.setdefault(r["symbol"], {})[r["client_order_id"]] = r
        self.new: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self._fill_counts: dict[str, int] = {}

    def _take_balances(self, rows: Sequence[Any]) -> None:
        for asset, total, kind in rows:
            (self.cash if kind == "cash" else self.holdings)[asset] = float(total)
            self._stored_assets.add(asset)

    def _load_holdings(self, assets: list[str]) -> None:
        """Read these holdings (when the session did not load them all), 500 names a query."""
        todo = [a for a in dict.fromkeys(assets) if a not in self._looked_up]
        for part in _chunks(todo):
            self._take_balances(self.conn.execute(_HOLDINGS_OF, {"acct": self.account, "ids": part}).all())
        self._looked_up.update(todo)

    # ---- reads ----------------------------------------------------------------------------------
    def orders(self, cids: list[str], probe: bool = False) -> dict[str, dict[str, Any]]:
        """Rows of these orders as this session sees them (its own writes included). ``probe``: the ids
        are mostly new (a batch being placed), so the store is first asked only which it knows."""
        out = {c: r for c in cids if (r := self.new.get(c) or self.changed.get(c) or self.open.get(c)) is not None}
        missing = [c for c in dict.fromkeys(cids) if c not in out]
        if probe and missing:
            known = self.book.known_ids(self.conn, missing)
            missing = [c for c in missing if c in known]
        if missing:
            out.update(self.book.orders_in(self.conn, missing))
        return out

    def open_of(self, symbol: str) -> list[dict[str, Any]]:
        return list(self.by_symbol.get(symbol, {}).values())

    def fill_count(self, cid: str) -> int:
        if cid not in self._fill_counts:
            row = self.new.get(cid)
            self._fill_counts[cid] = 0 if row is not None else self.book.fill_count(self.conn, cid)
        return self._fill_counts[cid]

    def prefetch_fill_counts(self, cids: Collection[str]) -> None:
        """Read the fill counts of these orders in one query per 500, before a bar fills many of them
        (a crash bar triggers every stop: one count query per order would cost a round trip each)."""
        todo = [c for c in cids if c not in self._fill_counts and c not in self.new]
        if todo:
            counts = self.book.fill_counts(self.conn, todo)
            self._fill_counts.update({c: counts.get(c, 0) for c in todo})

    # ---- writes (in memory until ``flush``) -----------------------------------------------------
    def add_order(self, row: dict[str, Any]) -> None:
        row.setdefault("account", self.account)  # the row is written as it is: no copy per row at ``flush``
        self.new[row["client_order_id"]] = row
        self._index(row)

    def update(self, row: dict[str, Any], **fields: Any) -> None:
        row.update(fields)
        cid = row["client_order_id"]
        if cid not in self.new:
            self.changed[cid] = row
        self._index(row)

    def _index(self, row: dict[str, Any]) -> None:
        cid, sym = row["client_order_id"], row["symbol"]
        if row["status"] in OPEN_STATUSES:
            self.open[cid] = row
            self.by_symbol.setdefault(sym, {})[cid] = row
        else:
            self.open.pop(cid, None)
            self.by_symbol.get(sym, {}).pop(cid, None)

    def move(self, asset: str, delta: float, kind: str) -> None:
        """Move a cash or holding balance by ``delta``; selling a whole holding leaves exactly zero."""
        if kind != "cash" and not self._all_holdings and asset not in self._looked_up:
            self._load_holdings([asset])  # outside the symbols the session was opened for
        bal = self.cash if kind == "cash" else self.holdings
        cur = bal.get(asset)
        if cur is None:
            bal[asset] = delta
        else:
            value = cur + delta
            bal[asset] = 0.0 if abs(value) < _EPS + 1e-12 * abs(cur) else value
        self._dirty.add(asset)

    def add_fill(self, **values: Any) -> str:
        cid = values["client_order_id"]
        n = self.fill_count(cid) + 1
        self._fill_counts[cid] = n
        values["fill_id"] = f"{values.pop('fill_prefix')}-{n}"
        self.fills.append({"account": self.account, **values})
        return str(values["fill_id"])

    def flush(self) -> None:
        """Write what the session changed: a few executemany statements in the caller's transaction."""
        c, b, t, acct = self.conn, paper_balances, paper_orders, self.account
        if self.new:
            bulk(c, insert(t), list(self.new.values()))
        if self.changed:
            rows = [{"k_acct": acct, "k_cid": r["client_order_id"], **{f"k_{k}": r.get(k) for k in _CHANGED}}
                    for r in self.changed.values()]  # fmt: skip
            bulk(c, _UPDATE_ORDERS, rows)
        old = [a for a in self._dirty if a in self._stored_assets]
        fresh = [a for a in self._dirty if a not in self._stored_assets]

        def value(a: str) -> float:
            return self.cash[a] if a in self.cash else self.holdings[a]

        if old:
            bulk(c, _UPDATE_BALANCES, [{"k_acct": acct, "k_asset": a, "k_total": value(a)} for a in old])
        if fresh:
            kind = {a: "cash" if a in self.cash else "holding" for a in fresh}
            bulk(c, insert(b), [{"account": acct, "asset": a, "total": value(a), "kind": kind[a]} for a in fresh])
        if self.fills:
            bulk(c, insert(paper_fills), self.fills)
        self._stored_assets |= self._dirty
        self._dirty.clear()
        self.new.clear()
        self.changed.clear()
        self.fills.clear()
