"""What the dashboard's live pages read from the store, and only what is new since the last look.

The page polls every couple of seconds while tables hold thousands of rows, so each read asks for the
rows past a cursor (an autoincrement id, or an ``updated_at`` stamp for orders, which change in place)
and the page merges them into what it already holds. Reads only: the dashboard never writes trading
state except through the runner's commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from workbench.store.schema import cycle_stages, cycles, equity, events, fills, orders, positions, runs, signals, users
from workbench.trading.runlock import alive

__all__ = ["Tail", "visible_runs", "run_positions", "cycle_timings", "stage_columns"]


def _frame(engine: Engine, stmt: Any) -> pd.DataFrame:
    with engine.connect() as c:
        res = c.execute(stmt)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def visible_runs(engine: Engine, user: Any, limit: int = 200) -> pd.DataFrame:
    """The runs ``user`` may see (their own; an admin's: everyone's), newest first, with the owner's name,
    the feed when the store records it, and ``state``: the status, or DEAD for a RUNNING row whose
    process is gone (nothing is trading for it, whatever the row says)."""
    cols = [runs.c[n] for n in ("id", "status", "broker", "environment", "account", "model_ref", "interval_s")]
    cols += [runs.c[n] for n in ("pid", "cycle", "heartbeat_at", "started_at", "ended_at", "message", "user_id")]
    cols += [runs.c[n] for n in ("universe", "universe_size")]  # revision 0006: the run's chosen universe
    if "feed" in runs.c:  # recorded by newer stores (LIVE / REPLAY)
        cols.append(runs.c["feed"])
    stmt = select(*cols, users.c.username.label("owner")).select_from(
        runs.outerjoin(users, users.c.id == runs.c.user_id)
    )
    if not user.can("admin"):
        stmt = stmt.where(runs.c.user_id == int(user.id))
    df = _frame(engine, stmt.order_by(runs.c.id.desc()).limit(limit))
    if "feed" not in df:
        df["feed"] = None
    dead = (df["status"] == "RUNNING") & ~df["pid"].map(lambda p: alive(None if pd.isna(p) else int(p))).astype(bool)
    df["state"] = df["status"].where(~dead, "DEAD")
    return df


def run_positions(engine: Engine, account: str) -> pd.DataFrame:
    """The account's open positions (small: one row per held instrument)."""
    stmt = select(positions).where(and_(positions.c.account == account, positions.c.quantity != 0))
    return _frame(engine, stmt.order_by(positions.c.symbol))


def stage_columns(frame: pd.DataFrame) -> list[str]:
    """Per-stage timing columns (seconds, named ``<stage>_s``) present in ``frame``, ``total_s`` aside."""
    return [c for c in frame.columns if c.endswith("_s") and c not in ("interval_s", "total_s")]


def cycle_timings(engine: Engine, run_id: int, last: int = 200) -> pd.DataFrame:
    """The run's last cycles (oldest first) with their wall time (``total_s``) and the per-stage seconds
    the loop recorded in ``cycle_stages`` (NaN for a cycle without that row). ``total_s`` is the stage
    row's own total when there is one, else the cycle's start-to-finish time."""
    stage_cols = [c for c in cycle_stages.columns if c.name.endswith("_s")]
    stmt = (
        select(cycles.c.cycle, cycles.c.started_at, cycles.c.finished_at, *stage_cols)
        .select_from(
            cycles.outerjoin(
                cycle_stages, and_(cycle_stages.c.run_id == cycles.c.run_id, cycle_stages.c.cycle == cycles.c.cycle)
            )
        )
        .where(cycles.c.run_id == run_id)
        .order_by(cycles.c.cycle.desc())
        .limit(last)
    )
    df = _frame(engine, stmt)
    wall = pd.Series(dtype=float)
    if len(df):
        start = pd.to_datetime(df["started_at"], utc=True, format="ISO8601")
        end = pd.to_datetime(df["finished_at"], utc=True, format="ISO8601")
        wall = (end - start).dt.total_seconds()
    df["total_s"] = pd.to_numeric(df["total_s"], errors="coerce").fillna(wall) if len(df) else wall
    return df.iloc[::-1].reset_index(drop=True)


@dataclass
class Tail:
    """The rows of one run added (or, for orders, changed) since the last ``poll``.

    ``account`` scopes fills (they carry no run id); a new run means a new Tail."""

    engine: Engine
    run_id: int
    account: str
    cursors: dict[str, Any] = field(default_factory=dict)

    def _since_id(self, name: str, table: Any, where: Any) -> pd.DataFrame:
        last = self.cursors.get(name, 0)
        df = _frame(self.engine, select(table).where(and_(where, table.c.id > last)).order_by(table.c.id))
        if len(df):
            self.cursors[name] = int(df["id"].iloc[-1])
        return df

    def signals(self) -> pd.DataFrame:
        return self._since_id("signals", signals, signals.c.run_id == self.run_id)

    def events(self) -> pd.DataFrame:
        return self._since_id("events", events, events.c.run_id == self.run_id)

    def equity(self) -> pd.DataFrame:
        return self._since_id("equity", equity, equity.c.run_id == self.run_id)

    def orders(self) -> pd.DataFrame:
        """Orders created or changed since the last poll (the caller replaces rows by client order id)."""
        last = self.cursors.get("orders", "")
        stmt = select(orders).where(and_(orders.c.run_id == self.run_id, orders.c.updated_at >= last))
        df = _frame(self.engine, stmt.order_by(orders.c.updated_at))
        if len(df):
            # ``>=``: rows stamped in the same instant as the last one seen may still arrive; the
            # caller's replace-by-id makes the repeat harmless.
            self.cursors["orders"] = str(df["updated_at"].iloc[-1])
        return df

    def fills(self, order_ids: set[str] | None = None) -> pd.DataFrame:
        """The account's fills since the last poll, kept to this run's orders when ``order_ids`` is given."""
        last = self.cursors.get("fills", "")
        stmt = select(fills).where(and_(fills.c.account == self.account, fills.c.ts >= last)).order_by(fills.c.ts)
        df = _frame(self.engine, stmt)
        if len(df):
            self.cursors["fills"] = str(df["ts"].iloc[-1])
        if order_ids is not None:
            df = df[df["client_order_id"].isin(order_ids)]
        return df
