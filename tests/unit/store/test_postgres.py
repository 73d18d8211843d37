"""The same store on PostgreSQL, by URL: no SQLite pragma is sent (PostgreSQL would reject ``PRAGMA``
as a syntax error), the same migrations build the same schema, and a second start-up is a no-op.

The server is ``$WORKBENCH_TEST_POSTGRES_URL`` when set, else a database of its own on the session's
throw-away cluster (the ``pg_server`` fixture of tests/conftest.py, built by tests/kit/postgres.py and
shared with the integration tests); without either, or without the psycopg driver, the tests skip and
say why."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from workbench.security.users import Accounts
from workbench.security.vault import Vault
from workbench.store import head_revision, metadata
from workbench.trading.store import Store
from workbench.venues.ledger import OrderLedger
from workbench.venues.paper.broker import PaperBroker

pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> str:
    """``$WORKBENCH_TEST_POSTGRES_URL`` when set, else a fresh database on the session's ``pg_server``."""
    if os.environ.get("WORKBENCH_TEST_POSTGRES_URL"):
        return os.environ["WORKBENCH_TEST_POSTGRES_URL"]
    return request.getfixturevalue("pg_server").create_database("store_unit")


def test_store_ledger_vault_and_paper_book_on_postgresql(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_MASTER_KEY", raising=False)
    store = Store(pg_url)  # a SQLite pragma on this connection would be a syntax error
    assert store.pragma("journal_mode") is None
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    run_id = store.start_run("paper", "paper", account="pg")
    assert store.run(run_id)["status"] == "RUNNING"
    broker = PaperBroker(store, account=f"pg-{run_id}", starting_cash=1_000.0)
    assert broker.balances()["USD"].total == 1_000.0
    OrderLedger(pg_url, "kite", "acct").put(f"cid-{run_id}", kind="order", ref="7")
    user = (
        Accounts(store.engine).add_user(f"pg{run_id}", "pg-password-0123", actor=None)
        if not Accounts(store.engine).count()
        else None
    )
    uid = user.id if user is not None else Accounts(store.engine).list_users()[0].id
    vault = Vault.open(store.engine, tmp_path, uid)
    vault.put("kite/api_key", "pg-secret-value-123")
    assert vault.get("kite/api_key").value == "pg-secret-value-123"
    Store(pg_url).dispose()  # a second start-up: still one revision row, the run still there
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert store.run(run_id) is not None
    store.dispose()
