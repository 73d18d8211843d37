"""One live run per account: a lock the OS holds for the run's lifetime, and on PostgreSQL one the
store holds too.

Why two: a double-click on Start launched two processes that both traded the same bar. The file
lock (``flock`` on ``<data_dir>/locks/<account>.lock``) is atomic, held per open file and released
by the kernel when the process dies however it dies, so a dead run never blocks its account. It only
sees this machine, so on PostgreSQL the store also takes a session-level ``pg_try_advisory_lock``
keyed by the account (released when the holding connection closes or its server session ends):
two machines sharing one store are then refused as well. SQLite's store is a file on this machine,
so the file lock covers it. As a last guard, a RUNNING row of the account whose process is alive on
this machine (a run started without the lock) refuses the start too.

The lock file holds the holder's run id, pid, host, user and start time, so a refusal can name it.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from workbench.errors import RunActiveError
from workbench.security.perms import PRIVATE_DIR, PRIVATE_FILE
from workbench.trading.store import Store, utcnow

__all__ = ["AccountLock", "acquire", "alive", "holder", "lock_path", "refusal"]


def lock_path(data_dir: Path, account: str) -> Path:
    """The account's lock file: a readable name plus a hash, so two spellings never share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", account)[:60]
    digest = hashlib.blake2b(account.encode(), digest_size=4).hexdigest()
    return Path(data_dir) / "locks" / f"run-{safe}-{digest}.lock"


def _advisory_key(account: str) -> int:
    """A stable signed 64-bit key (Python's ``hash`` changes per process)."""
    return int.from_bytes(
        hashlib.blake2b(f"workbench.run:{account}".encode(), digest_size=8).digest(), "big", signed=True
    )


def alive(pid: int | None) -> bool:
    """Whether a process of this machine with this pid is running (a zombie is not)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def holder(path: Path) -> dict[str, Any]:
    """What the lock file says about its holder ({} when it says nothing readable)."""
    try:
        return dict(json.loads(path.read_text() or "{}"))
    except (OSError, ValueError):
        return {}


@dataclass
class AccountLock:
    """Held from ``acquire`` until ``release`` (or the process's death)."""

    account: str
    path: Path
    fd: int
    conn: Any = None  # the PostgreSQL connection holding the advisory lock
    info: dict[str, Any] = field(default_factory=dict)

    def set_run(self, run_id: int) -> None:
        """Record the run id in the lock file, so a refused start can name the run to stop."""
        self.info["run_id"] = int(run_id)
        _write(self.fd, self.info)

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_key(self.account)})
                self.conn.commit()
            finally:
                self.conn.close()
                self.conn = None
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = -1


def _write(fd: int, info: dict[str, Any]) -> None:
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def acquire(data_dir: Path, store: Store, account: str) -> AccountLock:
    """The account's lock, or ``RunActiveError`` naming the run that holds it and how to stop it."""
    path = lock_path(data_dir, account)
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)  # it names the holder's pid, user and host
    os.fchmod(fd, PRIVATE_FILE)  # a file left by an earlier release (0644), or a loose umask
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunActiveError(refusal(store, account, _named_holder(path))) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": _user(),
        "started_at": str(utcnow()),
        "run_id": None,
    }
    lock = AccountLock(account, path, fd, info=info)
    try:
        _write(fd, info)
        if store.engine.dialect.name == "postgresql":
            conn = store.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_key(account)}).scalar()
            conn.commit()
            if not got:
                conn.close()
                raise RunActiveError(refusal(store, account, {}, where="on another machine sharing this store"))
            lock.conn = conn
        live = [r for r in store.running_runs(account) if r["pid"] != os.getpid() and alive(r["pid"])]
        if live:
            raise RunActiveError(refusal(store, account, {"run_id": live[0]["id"], "pid": live[0]["pid"]}))
    except BaseException:
        lock.release()
        raise
    return lock


def _named_holder(path: Path, wait_s: float = 3.0) -> dict[str, Any]:
    """The holder's record, waiting briefly for its run id: a start that lost the race by milliseconds
    sees the lock before the winner has written its run row, and the refusal should name that run."""
    end = time.monotonic() + wait_s
    info = holder(path)
    while info.get("run_id") is None and time.monotonic() < end:
        time.sleep(0.05)
        info = holder(path)
    return info


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


def refusal(store: Store, account: str, info: dict[str, Any], where: str = "") -> str:
    """The message of a refused start: which run holds the account, whose it is, since when, how to stop it."""
    run = None
    if info.get("run_id") is not None:
        run = store.run(int(info["run_id"]))
    if run is None:
        running = store.running_runs(account)
        run = running[0] if running else None
    if run is None:
        who = f"pid {info.get('pid', '?')}" + (f" on {info['host']}" if info.get("host") else "")
        return (
            f"account '{account}' already has a live run starting ({who}{', ' + where if where else ''}): "
            f"only one live run per account. See it with `workbench live status --account {account}`."
        )
    owner = (
        f"pid {run['pid']}"
        + (f" on {info['host']}" if info.get("host") else "")
        + (f" (user {info['user']})" if info.get("user") else "")
    )
    return (
        f"account '{account}' already has a live run: run {run['id']} ({owner}{', ' + where if where else ''}, "
        f"broker {run['broker']}, model {run['model_ref']}, started {run['started_at']}). Only one live run per "
        f"account: stop it first with `workbench live stop --run {run['id']}` "
        f"(or `workbench live emergency-stop --run {run['id']}`)."
    )
