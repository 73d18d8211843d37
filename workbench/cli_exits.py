"""What the ``workbench`` command says, and exits with, when something it cannot do goes wrong.

Why one table: a script around the command (cron, a supervisor) must tell "fix the settings" from
"retry later" from "the disk is full" by the exit code alone, and a person must read one paragraph
that names the file or setting and what to do, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import traceback
from contextvars import ContextVar
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from workbench.errors import (
    AccessError,
    BrokerError,
    ConfigError,
    DataError,
    ModelError,
    TemporaryError,
    WorkbenchError,
)

if TYPE_CHECKING:
    from typer._click.core import Context as ClickContext  # what TyperGroup.invoke is declared with

__all__ = ["ExitCode", "WorkbenchGroup", "explain", "invocation"]

try:  # Typer >= 0.2x ships its own click, whose usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover - older Typer on the real click
    from click import ClickException as _UsageError  # type: ignore[assignment]  # the same role, another class

# What one invocation has learnt that an error message needs ("debug", the "store_url" it opened);
# set by ``WorkbenchGroup.invoke`` for the duration of one command, like click's own context stack.
invocation: ContextVar[dict[str, Any] | None] = ContextVar("workbench_invocation", default=None)


class ExitCode(IntEnum):
    """The ``workbench`` command's exit codes (README "Exit codes" lists the same)."""

    OK = 0
    UNEXPECTED = 1  # a bug: the message asks for a run with --debug and a report
    USAGE = 2  # bad arguments or options (Typer/Click)
    CONFIG = 3  # workbench.toml, a WORKBENCH_* env var, a key the vault cannot decrypt
    DATA = 4  # market data or instrument lists unusable or missing
    MODEL = 5  # no such model, or it cannot be trained/loaded
    BROKER = 6  # the broker refused, the key is wrong, the venue is down
    STORE = 7  # the operational database (SQLite via SQLAlchemy): corrupt, read-only, full, locked
    OS = 8  # the file system: permission denied, no space left, read-only, missing file
    FAILED = 9  # the operation ran and failed (a live run ended FAILED, a retrain failed, ...)
    TEMPORARY = 10  # network, rate limit, maintenance: the same command may work later
    ACCESS = (
        11  # not logged in, session expired/revoked, wrong password, or a permission missing: log in / ask an admin
    )


class WorkbenchGroup(TyperGroup):
    """The root command group: every command runs inside its ``invoke``, which maps what escapes to a
    message and an exit code (``python -m workbench``, the console script and ``CliRunner`` alike).
    Exit requests, Ctrl-C and usage errors (exit 2) pass through to Typer, which reports them."""

    def invoke(self, ctx: ClickContext) -> Any:
        state: dict[str, Any] = {"debug": os.environ.get("WORKBENCH_DEBUG", "").lower() in ("1", "true", "yes", "on")}
        token = invocation.set(state)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _UsageError):
            raise
        except Exception as e:
            if state["debug"]:
                traceback.print_exception(e)
            code, message = explain(e, state.get("store_url"))
            typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
            raise typer.Exit(int(code)) from None
        finally:
            invocation.reset(token)


def explain(exc: BaseException, store_url: str | None = None) -> tuple[ExitCode, str]:
    """The exit code and the one-paragraph message for an error that reached the command line.
    ``store_url``: the store the command used, to name the database file in store errors."""
    if isinstance(exc, TemporaryError):
        return ExitCode.TEMPORARY, f"{exc} (a temporary problem: run the same command again later)"
    for cls, code in (
        (AccessError, ExitCode.ACCESS),
        (ConfigError, ExitCode.CONFIG),
        (DataError, ExitCode.DATA),
        (ModelError, ExitCode.MODEL),
        (BrokerError, ExitCode.BROKER),
        (WorkbenchError, ExitCode.FAILED),
    ):
        if isinstance(exc, cls):
            return code, str(exc)
    if isinstance(exc, ValidationError):
        return ExitCode.CONFIG, _validation(exc)
    db_error = _sqlite_error(exc)
    if db_error is not None:
        return ExitCode.STORE, _database(db_error, _db_path(store_url))
    if isinstance(exc, OSError):
        return ExitCode.OS, _os(exc)
    return ExitCode.UNEXPECTED, (
        f"unexpected {type(exc).__name__}: {exc}. This is a bug in workbench, not something you did: "
        "run the command again with --debug (or WORKBENCH_DEBUG=1) for the traceback and report it."
    )


def _validation(e: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or e.title} = {err.get('input')!r}: {err['msg']}"
        for err in e.errors()[:3]
    ]
    return (
        f"invalid value for {e.title}: {'; '.join(parts)}. "
        "Correct the value (in workbench.toml or the command's options) and run again."
    )


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """The sqlite3 error behind a SQLAlchemy ``DBAPIError`` (or the error itself)."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        return exc.orig
    if isinstance(exc, DBAPIError):
        return sqlite3.DatabaseError(str(exc.orig))
    return exc if isinstance(exc, sqlite3.Error) else None


def _db_path(store_url: str | None) -> str:
    if store_url and store_url.startswith("sqlite:///"):
        return store_url.removeprefix("sqlite:///").split("?", 1)[0]
    return store_url or "the workbench database"


def _database(e: sqlite3.Error, path: str) -> str:
    """Why the database failed and what to do, by SQLite's error name (its message as a fallback)."""
    name = getattr(e, "sqlite_errorname", "") or ""
    text = str(e)
    low = text.lower()
    folder = str(Path(path).parent) if path.startswith("/") else "its folder"
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in low or "malformed" in low:
        return (
            f"the database {path} is damaged or is not a SQLite file ({text}); nothing was changed. Move it aside "
            f"(`mv {path} {path}.broken`) and run `workbench init` for a new empty store, or restore it from a backup: "
            "the runs, orders, fills and keys it held are only in that file."
        )
    vague = name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")) or "unable to open" in low or "i/o error" in low
    disk = _disk_state(folder) if vague else None
    if name.startswith("SQLITE_READONLY") or "readonly" in low or "read-only" in low or disk == "read-only":
        return (
            f"the database {path} is read-only ({text}{'; its folder is on a read-only file system' if disk else ''}): "
            f"make the file and {folder} writable for this user (or remount the disk read-write, or point db_url "
            "in workbench.toml to a writable place) and run again."
        )
    if name == "SQLITE_FULL" or "disk is full" in low or disk == "full":
        return (
            f"the disk holding {path} is full ({text}); the last change was not saved. Free space on that disk "
            "(or point db_url in workbench.toml to another disk) and run again."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in low:
        return (
            f"the database {path} is locked by another process ({text}): wait until that command or live run "
            "finishes its write (or stop it) and run again."
        )
    if vague:
        return (
            f"the database {path} cannot be opened or read ({text}): check that {folder} exists and is readable and "
            "writable by this user, and that its disk is mounted, and run again."
        )
    return (
        f"the database {path} failed ({text}): check the file and its disk, then run again (--debug shows the details)."
    )


def _disk_state(folder: str) -> str | None:
    """What SQLite's vaguer errors (cannot open, I/O error) usually mean: "read-only" or "full" disk."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY or _mounted_read_only(folder):
        return "read-only"
    if st.f_bavail == 0:
        return "full"
    return None


def _mounted_read_only(folder: str, mounts: str = "/proc/mounts") -> bool:
    """Whether the mount holding ``folder`` is read-only by its options in /proc/mounts: ext4's
    emergency read-only (after an I/O error under ``errors=remount-ro``) shows as ``rw,…,emergency_ro``
    there and statvfs does not set ST_RDONLY for it."""
    try:
        table = Path(mounts).read_text()
        where = os.path.realpath(folder)
    except OSError:
        return False
    best, options = "", ""
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # the deepest (and, for a stacked mount, the last) one
            best, options = point, fields[3]
    flags = options.split(",")
    return "ro" in flags or "emergency_ro" in flags


def _os(e: OSError) -> str:
    what = e.filename if e.filename is not None else "a file"
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        return f"no space left on the disk holding {what} ({reason}): free space there and run again."
    if e.errno == errno.EROFS:
        return (
            f"{what} is on a read-only file system ({reason}): remount it read-write or set WORKBENCH_HOME "
            "(or --home) to a writable folder, and run again."
        )
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied on {what} ({reason}): give this user access (or use another --home) and run again."
    if e.errno == errno.ENOENT:
        return f"{what} does not exist ({reason}): check the path and run again."
    return f"{what}: {reason}. Check the file and its disk, then run again (--debug shows the details)."
