"""The account's book: positions, the cash book, adjustments to the broker's numbers, equity and the
day's starting equity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import and_, bindparam, insert, select

from workbench.store.among import among
from workbench.store.bulk import dicts
from workbench.store.schema import (
    adjustments,
    cash_book,
    day_starts,
    equity,
    events,
    iso,
    positions,
    utcnow,
)
from workbench.store.schema import positions as positions_t
from workbench.trading.store.base import (
    StoreBase,
    _f,
)
from workbench.trading.store.writes import (
    _set_cash,
    _upsert_position,
)

_POSITIONS_OF = select(positions_t).where(
    and_(positions_t.c.account == bindparam("acct"), among(positions_t.c.symbol, "ids"))
)


class AccountBook(StoreBase):
    """Positions, cash, adjustments and equity."""

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
