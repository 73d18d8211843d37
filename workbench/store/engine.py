"""The one way to open the operational store: every engine (the trading ``Store``, the paper venue's
book, the order ledger, the vault) comes from ``engine_for``.

Why one factory: each connection must get the same SQLite settings (WAL so readers never block the
live writer, ``busy_timeout`` so two writers queue instead of failing, foreign keys on), and the
schema must be at the code's revision before anything reads it. On PostgreSQL (by URL) none of the
SQLite pragmas run; the same migrations do.

Start-up cost is one query when the database is current: the migration machinery runs only when
``alembic_version`` differs from the newest revision shipped in ``migrations/versions``. Database
errors (a corrupt file, a read-only directory, a full disk) are raised as SQLAlchemy raises them, for
the CLI to turn into a message.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from workbench.errors import ConfigError

__all__ = [
    "MIGRATIONS_DIR",
    "SUPPORTED_BACKENDS",
    "alembic_config",
    "current_revision",
    "engine_for",
    "head_revision",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
DEFAULT_BUSY_TIMEOUT_MS = 10_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")  # what the migrations and the insert-unless-present writes are tested on
# PostgreSQL: plan every statement for its own parameters. Why: psycopg prepares a statement run 5 times,
# and the server may then keep one generic plan for it, made while the table was small: the paper book's
# ``client_order_id = ANY(:ids)`` stayed a sequential scan as the table grew, 34 ms a query at 33,000
# orders instead of an index lookup of well under 1 ms. Not prepared, a statement is planned for its
# values each time (~0.1 ms; a cycle runs about a hundred). Not ``plan_cache_mode=force_custom_plan``:
# that also re-plans the foreign-key checks PostgreSQL runs for every inserted row (measured: more server
# CPU, not less).
_PG_CONNECT_ARGS: dict[str, Any] = {"prepare_threshold": None}


def engine_for(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, migrate: bool = True) -> Engine:
    """An engine on ``url`` with the store's connection settings, its schema upgraded to the newest
    revision (``migrate=False`` only for tools that inspect a database as it is)."""
    u = make_url(url)
    if u.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"the operational store runs on SQLite or PostgreSQL, not {u.get_backend_name()!r} ({u.render_as_string()}):"
            " set db_url (or WORKBENCH_DB_URL) to a sqlite:/// or postgresql+psycopg:// URL"
        )
    kw: dict[str, Any] = {}
    if u.get_backend_name() == "sqlite":
        if u.database in (None, "", ":memory:"):  # one in-memory database shared by every connection
            kw = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    elif u.get_backend_name() == "postgresql" and u.get_driver_name() == "psycopg":
        kw = {"connect_args": dict(_PG_CONNECT_ARGS)}
    engine = create_engine(u, **kw)
    if engine.dialect.name == "sqlite":
        _sqlite_settings(engine, int(busy_timeout_ms))
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_settings(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")  # first: switching to WAL may itself wait
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def alembic_config(location: Path = MIGRATIONS_DIR) -> Config:
    """Alembic's configuration, in code: the migrations shipped inside this package (tests may point
    ``location`` at a copy with an extra revision)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return cfg


@functools.cache
def _scripts(location: Path) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(location))


def head_revision(location: Path = MIGRATIONS_DIR) -> str:
    """The newest revision this code ships."""
    head = _scripts(location).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {location}: the installed package is incomplete")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is stamped with; None for a new database or one made before migrations."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, location: Path = MIGRATIONS_DIR) -> str:
    """Bring the database to ``head_revision()`` (a no-op costing one query when it is there already);
    returns the revision it is at. A database stamped by a newer workbench is refused, not touched."""
    head = head_revision(location)
    with engine.connect() as conn:
        rev = current_revision(conn)
    if rev == head:
        return head
    _known(rev, location)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite's procedure for schema changes: foreign keys off while a table is rebuilt (a batch
            # migration drops and re-creates it), checked before commit. Then the write lock for the whole
            # upgrade: a second process starting now waits (busy_timeout) and finds the schema current.
            # SQLite's DDL is transactional, so a failure leaves nothing half-done.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            cfg = alembic_config(location)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
            if broken:
                raise RuntimeError(
                    f"the schema migration to {head} breaks foreign keys ({broken[:5]}): nothing was changed"
                )
            conn.commit()
        finally:
            if sqlite:
                conn.rollback()  # a no-op after the commit; the pragma below needs no open transaction
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    return head


def _known(rev: str | None, location: Path) -> None:
    if rev is None:
        return
    try:
        _scripts(location).get_revision(rev)
    except CommandError as e:  # "Can't locate revision identified by ...
        raise ConfigError(
            f"the workbench database is at schema revision {rev!r}, which this workbench does not know "
            f"(its newest is {head_revision(location)!r}): it was written by a newer workbench. Upgrade workbench, "
            "or point store_url at another database."
        ) from e
