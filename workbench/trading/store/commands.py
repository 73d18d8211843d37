"""The command queue between the dashboard/CLI and the live process: stops and actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, insert, select, update

from workbench.errors import ConfigError
from workbench.store.schema import (
    commands,
    iso,
    runs,
    utcnow,
)
from workbench.trading.store.base import (
    _COMMAND_WIDTH,
    COMMANDS,
    STOP_COMMANDS,
    StoreBase,
    _new_id,
)
from workbench.trading.store.writes import (
    _run_owner,
)


class CommandQueue(StoreBase):
    """Queue commands; the live loop takes the pending stop and actions."""

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
