"""The same store on PostgreSQL, by URL: no SQLite pragma is sent (PostgreSQL would reject ``PRAGMA``
as a syntax error), the same migrations build the same schema, and a second start-up is a no-op.

The server is ``$WORKBENCH_TEST_POSTGRES_URL`` when set, else a throwaway cluster started from the
local PostgreSQL binaries (``initdb``/``pg_ctl``, run as the ``postgres`` user when we are root) on a
Unix socket only; without either, or without the psycopg driver, the tests skip and say why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from workbench.venues.ledger import OrderLedger
from workbench.venues.paper.broker import PaperBroker
from workbench.security.users import Accounts
from workbench.security.vault import Vault
from workbench.store import head_revision, metadata
from workbench.trading.store import Store

pytest.importorskip("psycopg", reason="the psycopg driver (dev extra) is not installed")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if os.environ.get("WORKBENCH_TEST_POSTGRES_URL"):
        yield os.environ["WORKBENCH_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL: set WORKBENCH_TEST_POSTGRES_URL or install the server binaries (initdb, pg_ctl)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="wb-pg-"))  # /tmp: pytest's tmp is private to us; sockets want short paths
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start a PostgreSQL server as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data = root / "data"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data), "-A", "trust", "-U", "wb")
    options = f"-k {root} -p 55439 -c listen_addresses=''"  # a Unix socket only: nothing listens on the network
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql+psycopg://wb@/postgres?host={root}&port=55439"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


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
    user = Accounts(store.engine).add_user(f"pg{run_id}", "pg-password-0123", actor=None) if not Accounts(store.engine).count() else None
    uid = user.id if user is not None else Accounts(store.engine).list_users()[0].id
    vault = Vault.open(store.engine, tmp_path, uid)
    vault.put("kite/api_key", "pg-secret-value-123")
    assert vault.get("kite/api_key").value == "pg-secret-value-123"
    Store(pg_url).dispose()  # a second start-up: still one revision row, the run still there
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert store.run(run_id) is not None
    store.dispose()
