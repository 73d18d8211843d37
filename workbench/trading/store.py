"""The operational store: runs, checks, cycles, signals, orders, fills, positions, equity, the event
log and the command queue — the only thing the live process and the dashboard share.

SQLAlchemy Core on SQLite in WAL mode (readers never block the live writer; ``busy_timeout`` lets two
writers queue instead of failing), and the same statements on PostgreSQL by URL: the only
SQLite-specific SQL is the pragmas set on connect. The tables are defined in ``workbench.store.schema``
(with their migrations) and the engine comes from ``workbench.store.engine``; this module holds the queries.
Times are stored as UTC ISO-8601 strings of one fixed format (``iso``), so they sort as text on every
backend and read back unambiguously.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Engine

from workbench.errors import ConfigError
from workbench.store.among import among
from workbench.store.bulk import bulk, dicts, upsert_insert
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
    iso,
    order_events,
    orders,
    positions,
    runs,
    signals,
    utcnow,
)
from workbench.store.schema import events as events_t
from workbench.store.schema import positions as positions_t

__all__ = ["RUN_STATUSES", "COMMANDS", "STOP_COMMANDS", "ACTIONS", "Booked", "Store", "iso", "utcnow"]

RUN_STATUSES = ("RUNNING", "STOPPED", "FAILED", "EMERGENCY_STOPPED")
STOP_COMMANDS = ("stop", "emergency_stop")
# Actions the loop performs and keeps running: "flatten" sells every long, "close:<symbol>" one.
ACTIONS = ("flatten", "close")
COMMANDS = STOP_COMMANDS + ACTIONS
# The order statuses that are not final (``orders.STATUSES`` less ``venues.base.FINAL_STATUSES``;
# a test keeps them equal): spelled out here, as the import of either would be circular.
_OPEN_STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED")
# Reads of a batch's rows by key, built once, the keys an execution parameter (``among``: one array on
# PostgreSQL, where 500 rendered and cast placeholders a query cost psycopg and the server a parse each).
_ORDERS_OF = select(orders).where(among(orders.c.client_order_id, "ids"))
_OWNERS_OF = select(orders.c.client_order_id, orders.c.user_id).where(
    and_(among(orders.c.client_order_id, "ids"), orders.c.user_id.is_not(None))
)
_FILLS_OF = select(fills.c.fill_id).where(among(fills.c.fill_id, "ids"))
_POSITIONS_OF = select(positions_t).where(
    and_(positions_t.c.account == bindparam("acct"), among(positions_t.c.symbol, "ids"))
)
_POSITION_OWNERS_OF = select(positions_t.c.symbol, positions_t.c.user_id).where(
    and_(positions_t.c.account == bindparam("acct"), among(positions_t.c.symbol, "ids"))
)
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


class Store:
    """One database, many processes. Construction opens it through ``workbench.store.engine_for``
    (SQLite settings, schema migrated to the newest revision: one query when it already is)."""

    t = _Tables

    def __init__(self, url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.url = url
        self.engine: Engine = engine_for(url, busy_timeout_ms=busy_timeout_ms)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def create(self) -> Store:
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

    # ---- runs -----------------------------------------------------------------------------------
    def start_run(
        self,
        broker: str,
        environment: str,
        account: str | None = None,
        model_ref: str | None = None,
        interval_s: float | None = None,
        pid: int | None = None,
        cursor: int | None = None,
        user_id: int | None = None,
        feed: str | None = None,
    ) -> int:
        """A new RUNNING run; ``user_id`` is its owner (who started it; a crashed run resumes as them);
        ``feed`` is "LIVE" or "REPLAY" (what its signals were computed on)."""
        now = iso(utcnow())
        with self.engine.begin() as c:
            res = c.execute(
                insert(runs).values(
                    started_at=now,
                    status="RUNNING",
                    broker=broker,
                    environment=environment,
                    account=account,
                    model_ref=model_ref,
                    interval_s=_f(interval_s),
                    pid=pid,
                    heartbeat_at=now,
                    cycle=0,
                    cursor=cursor,
                    user_id=user_id,
                    feed=feed,
                )
            )
            return _new_id(res.inserted_primary_key)

    def update_run(self, run_id: int, **fields: Any) -> None:
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {fields['status']!r}")
        for k in ("ended_at", "heartbeat_at"):
            if k in fields:
                fields[k] = iso(fields[k])
        with self.engine.begin() as c:
            c.execute(update(runs).where(runs.c.id == run_id).values(**fields))

    def finish_run(self, run_id: int, status: str, message: str | None = None) -> None:
        self.update_run(run_id, status=status, ended_at=utcnow(), message=message)

    def heartbeat(
        self, run_id: int, cycle: int | None = None, cursor: int | None = None, message: str | None = None
    ) -> None:
        fields: dict[str, Any] = {"heartbeat_at": utcnow()}
        if cycle is not None:
            fields["cycle"] = cycle
        if cursor is not None:
            fields["cursor"] = cursor
        if message is not None:
            fields["message"] = message
        self.update_run(run_id, **fields)

    def latest_run(self, user_id: int | None = None, account: str | None = None) -> dict | None:
        """The newest run; with ``user_id``, the newest that user owns; with ``account``, the newest on it."""
        stmt = select(runs)
        if user_id is not None:
            stmt = stmt.where(runs.c.user_id == user_id)
        if account is not None:
            stmt = stmt.where(runs.c.account == account)
        return self._one(stmt.order_by(runs.c.id.desc()).limit(1))

    def run(self, run_id: int) -> dict | None:
        return self._one(select(runs).where(runs.c.id == run_id))

    def running_runs(self, account: str | None = None) -> list[dict]:
        """Rows still marked RUNNING (alive or not: the caller checks the pid), newest first."""
        stmt = select(runs).where(runs.c.status == "RUNNING")
        if account is not None:
            stmt = stmt.where(runs.c.account == account)
        return self._all(stmt.order_by(runs.c.id.desc()))

    def previous_run(self, before_id: int, broker: str | None = None, with_cursor: bool = False) -> dict | None:
        stmt = select(runs).where(runs.c.id < before_id)
        if broker is not None:
            stmt = stmt.where(runs.c.broker == broker)
        if with_cursor:
            stmt = stmt.where(runs.c.cursor.is_not(None))
        return self._one(stmt.order_by(runs.c.id.desc()).limit(1))

    # ---- checks and cycles ----------------------------------------------------------------------
    def add_check(
        self, run_id: int, seq: int, name: str, ok: bool, message: str, duration_s: float | None = None
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(checks).values(
                    run_id=run_id,
                    seq=seq,
                    name=name,
                    ok=bool(ok),
                    message=message,
                    ts=iso(utcnow()),
                    duration_s=duration_s,
                )
            )

    def clear_checks(self, run_id: int) -> None:
        """Forget a run's Phase 1 results (a resumed run checks again and records afresh)."""
        from sqlalchemy import delete

        with self.engine.begin() as c:
            c.execute(delete(checks).where(checks.c.run_id == run_id))

    def checks(self, run_id: int) -> pd.DataFrame:
        stmt = select(checks).where(checks.c.run_id == run_id).order_by(checks.c.seq)
        return self._frame(stmt, [c.name for c in checks.columns])

    def add_cycle(
        self,
        run_id: int,
        cycle: int,
        started_at: Any,
        finished_at: Any,
        bar_ts: Any,
        n_signals: int,
        n_orders: int,
        equity: float | None,
        message: str | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(cycles).values(
                    run_id=run_id,
                    cycle=cycle,
                    started_at=iso(started_at),
                    finished_at=iso(finished_at),
                    bar_ts=iso(bar_ts),
                    n_signals=int(n_signals),
                    n_orders=int(n_orders),
                    equity=_f(equity),
                    message=message,
                )
            )

    def cycles(self, run_id: int) -> pd.DataFrame:
        stmt = select(cycles).where(cycles.c.run_id == run_id).order_by(cycles.c.cycle)
        return self._frame(stmt, [c.name for c in cycles.columns])

    # ---- signals --------------------------------------------------------------------------------
    def add_signals(self, run_id: int, cycle: int, bar_ts: Any, sigs: Iterable[Any]) -> int:
        stamps: dict[Any, str | None] = {}  # one text form per distinct time (5,000 signals share one)
        last: list[Any] = [object(), None]  # the same Timestamp object again: no hashing (~40 µs a Timestamp)

        def stamp(ts: Any) -> str | None:
            if ts is last[0]:
                return last[1]
            if ts not in stamps:
                stamps[ts] = iso(ts)
            last[0], last[1] = ts, stamps[ts]
            return last[1]

        rows = [
            {
                "run_id": run_id,
                "cycle": cycle,
                "bar_ts": stamp(bar_ts if s.ts is None else s.ts),
                "symbol": s.symbol,
                "signal": s.signal,
                "strength": _f(s.strength),
                "confidence": _f(s.confidence),
                "target_price": _f(s.target_price),
                "stop_loss": _f(s.stop_loss),
                "take_profit": _f(s.take_profit),
                "price": _f(s.price),
            }
            for s in sigs
        ]
        if rows:
            with self.engine.begin() as c:
                bulk(c, insert(signals), rows)
        return len(rows)

    def signals(self, run_id: int, last_cycles: int | None = 1) -> pd.DataFrame:
        stmt = select(signals).where(signals.c.run_id == run_id)
        if last_cycles is not None:
            top = select(func.max(signals.c.cycle)).where(signals.c.run_id == run_id).scalar_subquery()
            stmt = stmt.where(signals.c.cycle > top - int(last_cycles))
        stmt = stmt.order_by(signals.c.cycle, signals.c.symbol)
        cols = [c.name for c in signals.columns if c.name != "id"]
        return self._frame(stmt, [c.name for c in signals.columns])[cols]

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

    # ---- positions ------------------------------------------------------------------------------
    def get_position(self, account: str, symbol: str) -> dict | None:
        return self._one(select(positions).where(and_(positions.c.account == account, positions.c.symbol == symbol)))

    def position_book(self, account: str) -> dict[str, dict]:
        rows = self._all(select(positions).where(positions.c.account == account))
        return {r["symbol"]: r for r in rows}

    def positions_of(self, account: str, symbols: Iterable[str]) -> dict[str, dict]:
        """The book rows of these symbols only (a batch of fills reads what it touches, not the book)."""
        syms = list(dict.fromkeys(symbols))
        out: dict[str, dict] = {}
        for i in range(0, len(syms), 500):
            with self.engine.connect() as c:
                rows = dicts(c.execute(_POSITIONS_OF, {"acct": account, "ids": syms[i : i + 500]}))
            out.update({r["symbol"]: r for r in rows})
        return out

    def upsert_position(self, account: str, symbol: str, **fields: Any) -> None:
        with self.engine.begin() as c:
            _upsert_position(c, account, symbol, fields)

    def positions(self, account: str, include_closed: bool = False) -> pd.DataFrame:
        stmt = select(positions).where(positions.c.account == account)
        if not include_closed:
            stmt = stmt.where(positions.c.quantity != 0)
        return self._frame(stmt.order_by(positions.c.symbol), [c.name for c in positions.columns])

    # ---- cash book and adjustments ------------------------------------------------------------
    def cash_book(self, account: str) -> dict[str, float]:
        """The account's cash per currency by our own records; empty until the first sync."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(cash_book.c.currency, cash_book.c.total).where(cash_book.c.account == account)
            ).all()
        return {str(k): float(v) for k, v in rows}

    def adjust(self, account: str, rows: Iterable[Mapping[str, Any]], run_id: int | None = None) -> int:
        """Bring the local book to the broker's numbers, one explicit record per difference, in one
        transaction with the event that says so. Each row: kind ("position" | "cash"), key (symbol or
        currency), local, broker, reason, level (event level) and message (the event text)."""
        now = iso(utcnow())
        rows = list(rows)
        with self.engine.begin() as c:
            for r in rows:
                local, brk = float(r["local"]), float(r["broker"])
                c.execute(insert(adjustments).values(
                    ts=now, run_id=run_id, account=account, kind=r["kind"], key=r["key"], local=local, broker=brk,
                    delta=brk - local, reason=r.get("reason"),
                ))  # fmt: skip
                if r["kind"] == "position":
                    fields: dict[str, Any] = {"quantity": brk}
                    if abs(brk) < 1e-12:
                        fields.update(quantity=0.0, average_price=None, stop_loss=None, take_profit=None)
                    _upsert_position(c, account, r["key"], fields)
                elif r["kind"] == "cash":
                    _set_cash(c, account, r["key"], brk)
                else:
                    raise ValueError(f"adjustment kind must be 'position' or 'cash', not {r['kind']!r}")
                c.execute(
                    insert(events).values(
                        ts=now,
                        run_id=run_id,
                        level=r.get("level", "WARNING"),
                        kind=r.get("event", "reconcile"),
                        message=r["message"],
                    )
                )
        return len(rows)

    def adjustments(self, account: str | None = None, run_id: int | None = None) -> pd.DataFrame:
        stmt = select(adjustments)
        if account is not None:
            stmt = stmt.where(adjustments.c.account == account)
        if run_id is not None:
            stmt = stmt.where(adjustments.c.run_id == run_id)
        return self._frame(stmt.order_by(adjustments.c.id), [c.name for c in adjustments.columns])

    # ---- equity ---------------------------------------------------------------------------------
    def add_equity(
        self,
        run_id: int | None,
        account: str,
        bar_ts: Any,
        cash: float,
        positions_value: float,
        equity_value: float,
        day_start_equity: float | None,
        ts: Any = None,
        cycle: int | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(equity).values(
                    run_id=run_id,
                    cycle=cycle,
                    account=account,
                    ts=iso(ts if ts is not None else utcnow()),
                    bar_ts=iso(bar_ts),
                    cash=_f(cash),
                    positions_value=_f(positions_value),
                    equity=_f(equity_value),
                    day_start_equity=_f(day_start_equity),
                )
            )

    def equity_curve(self, run_id: int) -> pd.DataFrame:
        stmt = select(equity).where(equity.c.run_id == run_id).order_by(equity.c.id)
        cols = ["ts", "bar_ts", "cash", "positions_value", "equity", "day_start_equity"]
        return self._frame(stmt, [c.name for c in equity.columns])[cols]

    def last_equity_before(self, account: str, bar_ts: Any) -> float | None:
        """The account's last recorded equity on the feed clock strictly before ``bar_ts``."""
        stmt = (
            select(equity.c.equity)
            .where(and_(equity.c.account == account, equity.c.bar_ts < iso(bar_ts)))
            .order_by(equity.c.bar_ts.desc(), equity.c.id.desc())
            .limit(1)
        )
        row = self._one(stmt)
        return None if row is None else row["equity"]

    def day_start(self, account: str, day: str) -> float | None:
        row = self._one(select(day_starts).where(and_(day_starts.c.account == account, day_starts.c.day == day)))
        return None if row is None else float(row["equity"])

    def set_day_start(self, account: str, day: str, value: float) -> float:
        """Record the day's starting equity once; returns the value that holds (the first one written)."""
        with self.engine.begin() as c:
            key = and_(day_starts.c.account == account, day_starts.c.day == day)
            row = c.execute(select(day_starts.c.equity).where(key)).first()
            if row is not None:
                return float(row[0])
            c.execute(insert(day_starts).values(account=account, day=day, equity=float(value)))
        return float(value)

    # ---- event log ------------------------------------------------------------------------------
    def log_event(self, kind: str, message: str, level: str = "INFO", run_id: int | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(events).values(ts=iso(utcnow()), run_id=run_id, level=level, kind=kind, message=message))

    def log_events(self, rows: Iterable[tuple[str, str, str]], run_id: int | None = None) -> int:
        """Many (kind, message, level) events in one transaction: a cycle that rejects 5,000 signals
        writes one batch, not 5,000 commits."""
        now = iso(utcnow())
        values = [{"ts": now, "run_id": run_id, "kind": k, "message": m, "level": lv} for k, m, lv in rows]
        if values:
            with self.engine.begin() as c:
                bulk(c, insert(events), values)
        return len(values)

    # ---- crash recovery -------------------------------------------------------------------------
    def discard_unfinished_cycle(self, run_id: int, last_complete: int) -> int:
        """Remove the signal and equity rows a crashed cycle wrote before it could finish (cycles after
        ``last_complete``), so the re-run of that cycle does not count them twice. Orders and fills are
        never removed: they are facts about the venue, reconciled instead."""
        from sqlalchemy import delete

        with self.engine.begin() as c:
            n = c.execute(
                delete(signals).where(and_(signals.c.run_id == run_id, signals.c.cycle > last_complete))
            ).rowcount
            n += c.execute(
                delete(equity).where(and_(equity.c.run_id == run_id, equity.c.cycle > last_complete))
            ).rowcount
            c.execute(delete(cycles).where(and_(cycles.c.run_id == run_id, cycles.c.cycle > last_complete)))
        return int(n)

    def events(self, run_id: int | None = None, limit: int = 200, kind: str | None = None) -> pd.DataFrame:
        stmt = select(events)
        if run_id is not None:
            stmt = stmt.where(events.c.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(events.c.kind == kind)
        return self._frame(stmt.order_by(events.c.id.desc()).limit(limit), [c.name for c in events.columns])

    # ---- commands -------------------------------------------------------------------------------
    def send_command(self, command: str, run_id: int | None = None, user_id: int | None = None) -> int:
        """Queue a command. Its owner is the run's owner; a command for no run in particular is owned by
        its sender ``user_id`` and binds only that user's runs (None: every run, for internal callers)."""
        name, _, arg = command.partition(":")
        if name not in COMMANDS or (name == "close") != bool(arg):
            raise ValueError(f"command must be one of {COMMANDS} ('close:<symbol>'), not {command!r}")
        if len(command) > _COMMAND_WIDTH:
            raise ConfigError(
                f"cannot queue {command!r}: the command column holds {_COMMAND_WIDTH} characters, so this symbol "
                "cannot be closed alone; use 'flatten' (every position) or emergency stop with flattening"
            )
        owner: Any = user_id if run_id is None else func.coalesce(_run_owner(run_id), user_id)
        with self.engine.begin() as c:
            res = c.execute(insert(commands).values(ts=iso(utcnow()), run_id=run_id, command=command, user_id=owner))
            return _new_id(res.inserted_primary_key)

    def pending_command(self, run_id: int, consume: bool = True) -> str | None:
        """The most urgent unconsumed command for this run (or for any run): emergency_stop beats stop.
        All pending ones are marked consumed, since obeying the strongest obeys them all."""
        from sqlalchemy import or_

        with self.engine.begin() as c:
            row = c.execute(select(runs.c.started_at, runs.c.user_id).where(runs.c.id == run_id)).first()
            started, owner = (row[0], row[1]) if row is not None else (None, None)
            # A command for no run in particular counts only if sent after this run started (a stale
            # one must not stop the next run) and by this run's owner (or by no user: internal).
            sender = (
                commands.c.user_id.is_(None)
                if owner is None
                else or_(commands.c.user_id.is_(None), commands.c.user_id == owner)
            )
            anyrun = and_(commands.c.run_id.is_(None), commands.c.ts >= (started or ""), sender)
            target = or_(commands.c.run_id == run_id, anyrun)
            rows = c.execute(
                select(commands.c.id, commands.c.command).where(
                    and_(target, commands.c.consumed_at.is_(None), commands.c.command.in_(STOP_COMMANDS))
                )
            ).all()
            if not rows:
                return None
            if consume:
                c.execute(
                    update(commands).where(commands.c.id.in_([r[0] for r in rows])).values(consumed_at=iso(utcnow()))
                )
        names = {r[1] for r in rows}
        return "emergency_stop" if "emergency_stop" in names else "stop"

    # ---- cycle stages (timings, schedule, venue health) ------------------------------------------
    def add_cycle_stages(self, run_id: int, cycle: int, started_at: Any, row: Mapping[str, Any]) -> None:
        """One cycle's stage timings and venue states (``cycle_stages`` columns); a re-run of a crashed
        cycle replaces its row."""
        from sqlalchemy import delete

        from workbench.store.schema import cycle_stages

        cols = {c.name for c in cycle_stages.columns} - {"run_id", "cycle", "started_at"}
        values = {k: v for k, v in row.items() if k in cols}
        with self.engine.begin() as c:
            c.execute(delete(cycle_stages).where(and_(cycle_stages.c.run_id == run_id, cycle_stages.c.cycle == cycle)))
            c.execute(insert(cycle_stages).values(run_id=run_id, cycle=cycle, started_at=iso(started_at), **values))

    def cycle_stages(self, run_id: int, last: int | None = None) -> pd.DataFrame:
        """Per-cycle stage timings of a run, oldest first (``last``: only the newest that many), for
        ``live status`` and the dashboard's timing chart."""
        from workbench.store.schema import cycle_stages

        stmt = select(cycle_stages).where(cycle_stages.c.run_id == run_id).order_by(cycle_stages.c.cycle.desc())
        if last is not None:
            stmt = stmt.limit(int(last))
        df = self._frame(stmt, [c.name for c in cycle_stages.columns])
        return df.iloc[::-1].reset_index(drop=True)

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

    def pending_actions(self, run_id: int) -> list[str]:
        """The run's unconsumed actions (flatten, close:<symbol>) in the order sent, marked consumed:
        each is done once. Only commands naming this run count: closing is never broadcast."""
        with self.engine.begin() as c:
            rows = c.execute(
                select(commands.c.id, commands.c.command)
                .where(
                    and_(
                        commands.c.run_id == run_id,
                        commands.c.consumed_at.is_(None),
                        commands.c.command.not_in(STOP_COMMANDS),
                    )
                )
                .order_by(commands.c.id)
            ).all()
            if rows:
                c.execute(
                    update(commands).where(commands.c.id.in_([r[0] for r in rows])).values(consumed_at=iso(utcnow()))
                )
        return [str(r[1]) for r in rows]


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


def _owned(stmt: Any, table: Any, user_id: int | None) -> Any:
    """``stmt`` limited to ``user_id``'s rows; None (an admin's view) leaves it whole."""
    return stmt if user_id is None else stmt.where(table.c.user_id == int(user_id))


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
