"""A run's own record: the run row and its heartbeat, Phase 1 checks, cycles and their stage timings,
signals, the event log, and the clean-up of a crashed cycle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, insert, select, update

from workbench.store.bulk import bulk
from workbench.store.schema import (
    checks,
    cycles,
    equity,
    events,
    iso,
    runs,
    signals,
    utcnow,
)
from workbench.trading.store.base import (
    RUN_STATUSES,
    StoreBase,
    _f,
    _new_id,
)


class RunRecords(StoreBase):
    """Runs, checks, cycles, cycle stages, signals and events."""

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
