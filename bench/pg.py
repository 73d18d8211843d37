"""A throw-away PostgreSQL server: Debian's binaries, a cluster in a temp directory, on a loopback port.

One starter for the benchmarks (``python -m bench.bench_cycle --store postgres``) and the tests
(tests/kit/postgres.py re-exports it): the tests must not keep a copy that drifts, and bench must not
import tests. Why a real server, not a mock or SQLite in disguise: advisory locks, transaction
isolation, type strictness and round trips are what differ between the two backends, and only a real
server shows them. ``initdb`` refuses to run as root (tests here do), so the cluster is owned by the
``postgres`` system user and started with ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin", "start_postgres"]


def find_pg_bin() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int

    def url(self, db: str = "workbench", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            _as_owner(
                [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name]
            ),
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far: the postmaster and every
        backend it forked. Why: on a loaded machine the wall time mixes waiting with work; the client's
        CPU plus this is the work a cycle costs. A backend that has exited is no longer counted."""
        return cluster_cpu_seconds(self.data_dir)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def cluster_cpu_seconds(data_dir: Path) -> float:
    """``PostgresServer.cpu_seconds`` for the cluster in ``data_dir`` (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        master = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except OSError:
            continue
        if int(entry) == master or int(fields[1]) == master:  # fields[1] is the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def start_postgres(durable: bool = False, settings: Mapping[str, str] | None = None) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; trust auth on loopback only. ``durable=False``
    (tests) turns fsync off; the benchmarks keep the server's defaults (fsync on, synchronous
    commits), as a team's store runs, so every commit a cycle makes costs what it costs there.
    ``settings``: more server settings (``-c name=value``), e.g. to load pg_stat_statements when profiling."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries not found (Debian package `postgresql`)")
    root = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    extra = {**({} if durable else {"fsync": "off"}), **(settings or {})}
    opts = f"-p {port} -h 127.0.0.1 -k {root} -c max_connections=60" + "".join(f" -c {k}={v}" for k, v in extra.items())
    server = PostgresServer(bin_dir, data, port)
    try:
        subprocess.run(
            _as_owner(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        log = str(root / "log")
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", log, "-w", "-t", "60", "start"]),
            check=True,
            capture_output=True,
        )
    except BaseException:  # a half-made cluster: stop whatever started and leave no directory behind
        server.stop()
        raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            server.create_database("workbench")
            return server
        except subprocess.CalledProcessError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"PostgreSQL did not come up; see {root / 'log'}")
