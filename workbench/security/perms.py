"""Private files: a workbench home's stores are readable by their owner only — directories 0700, files
0600 — whatever the umask of the shell that started it.

Why: the SQLite store holds password hashes, wrapped data keys, encrypted secrets, orders and fills;
the lake, logs and MLflow runs hold research and trading history; ``.session`` is a bearer token and
``keys/`` the master key. On a shared machine a 0644 default would hand all of it to every local
user. A private directory stops traversal, so what is inside ``data/``, ``mlruns/`` and ``keys/``
is protected by the directory alone (the lake's many parquet files are never walked); the database
files are made 0600 as well, before SQLite first opens them, because SQLite gives its ``-wal`` and
``-shm`` files the mode of the database file.

An existing home made by an earlier release (0755 directories, 0644 files) is tightened on start,
with a warning naming what changed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "secure_home", "private_file", "loose"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")
log = logging.getLogger("workbench.security")


def loose(path: Path) -> bool:
    """Whether group or others have any access to ``path``."""
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def _tighten(path: Path, mode: int, changed: list[str]) -> None:
    if path.exists() and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) != mode:
        was = stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, mode)
        if was & 0o077:
            changed.append(f"{path} {was:o}→{mode:o}")


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it is missing (so whatever opens it later inherits a private
    file), else make it 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    os.chmod(path, PRIVATE_FILE)
    return path


def _sqlite_file(url: str | None) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other backends and in-memory databases)."""
    if not url or not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def secure_home(
    home: Path, dirs: Iterable[Path], sqlite_urls: Iterable[str | None], files: Iterable[Path] = ()
) -> list[str]:
    """Make ``dirs`` (created if missing) 0700, the SQLite databases of ``sqlite_urls`` (created empty
    if missing) and their sidecars 0600, and ``files`` that exist 0600. Returns what was loosened
    before and is tightened now (also logged as a warning), empty for a home already private."""
    changed: list[str] = []
    for d in dirs:
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        _tighten(d, PRIVATE_DIR, changed)
    for url in sqlite_urls:
        db = _sqlite_file(url)
        if db is None:
            continue
        if not db.exists():
            private_file(db)
        for suffix in _SQLITE_SIDECARS:
            _tighten(db.with_name(db.name + suffix), PRIVATE_FILE, changed)
    for f in files:
        _tighten(Path(f), PRIVATE_FILE, changed)
    for d in (Path(home) / "keys",):  # the master key's directory, when there is one
        _tighten(d, PRIVATE_DIR, changed)
    if changed:
        log.warning(
            "workbench home %s was readable by other users of this machine; made private (owner only): %s",
            home,
            "; ".join(changed),
        )
    return changed
