"""Alembic's entry point, driven from code (``workbench.store.engine``), never from an alembic.ini.

The caller hands over an open connection in ``config.attributes["connection"]`` and commits it: on
SQLite that connection already holds the write lock (BEGIN IMMEDIATE), on PostgreSQL an advisory
lock is taken here, so two processes starting at once migrate one after the other, and the second
finds nothing to do.
"""

from __future__ import annotations

from alembic import context

from workbench.store.schema import metadata

_PG_LOCK = 0x776F726B62656E63  # "workbenc": one advisory lock id for every workbench migration


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("workbench migrations run through workbench.store.engine (no connection was given)")
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()


_run()
