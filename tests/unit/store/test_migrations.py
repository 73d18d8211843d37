"""One schema with migrations: a database made by the release before Alembic is adopted with its rows,
the shipped migrations produce exactly ``workbench.store.schema`` (so a table change without a
migration fails here), and every connection, whoever opens it, gets WAL and busy_timeout."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, Table, text

from workbench.errors import ConfigError
from workbench.security.users import Accounts
from workbench.security.vault import Vault, adopt_legacy_secrets
from workbench.store import engine_for, head_revision, metadata, upgrade
from workbench.store.engine import MIGRATIONS_DIR, current_revision
from workbench.trading.store import Store
from workbench.venues.ledger import OrderLedger

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "previous_release.sql"
FIXTURE_KEY = "d29ya2JlbmNoLXRlc3QtZml4dHVyZS1rZXktMzJieXQ="  # the test key the fixture's secrets were encrypted with


def _previous_release_db(path: Path) -> str:
    """A workbench.db as the release before migrations left it (tables, rows, no alembic_version)."""
    con = sqlite3.connect(path)
    con.executescript(FIXTURE.read_text())
    con.close()
    return f"sqlite:///{path}"


def _rows(path: Path) -> dict[str, list[dict]]:
    """Every table's rows as dicts."""
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        query = "SELECT name FROM sqlite_master WHERE type='table' AND name != 'alembic_version'"
        names = [n for (n,) in con.execute(query)]
        return {n: [dict(r) for r in con.execute(f"SELECT * FROM {n}")] for n in names}
    finally:
        con.close()


def _kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> bool:
    """Every table holds exactly the rows of ``before``, same values (later revisions may add columns)."""
    for table, rows in before.items():
        cols = list(rows[0]) if rows else []
        if sorted(repr([r[c] for c in cols]) for r in after[table]) != sorted(repr([r[c] for c in cols]) for r in rows):
            return False
    return True


def _schema_sql(path: Path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(), key=repr)
    finally:
        con.close()


def _diff(url: str) -> list:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()


def test_previous_release_database_is_adopted_with_its_rows_and_a_second_start_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_VAULT_KEY", FIXTURE_KEY)
    db = tmp_path / "workbench.db"
    url = _previous_release_db(db)
    before = _rows(db)
    kept = ("runs", "orders", "order_events", "fills", "positions", "paper_orders", "vault_secrets")
    kept += ("broker_order_refs",)
    for name in kept:
        assert before[name], f"the fixture has no {name} rows"

    store = Store(url)  # the start-up path: stamps the old database
    con = sqlite3.connect(db)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    con.close()
    assert _kept(before, _rows(db))  # nothing lost, nothing added

    # The old rows read back through today's code.
    run = store.latest_run()
    assert run["status"] == "STOPPED" and run["model_ref"] == "lgbm@3"
    orders = store.orders(run_id=run["id"])
    assert list(orders["status"]) == ["FILLED"]
    fills = store.fills(account="paper")
    assert len(fills) == 1 and fills["price"].iloc[0] == pytest.approx(30015.0)
    assert store.get_position("paper", "BTC/USDT")["quantity"] == pytest.approx(0.1)
    ledger = OrderLedger(url, "kite", "ZX1234")
    assert ledger.find(kind="gtt")[0]["stop_price"] == pytest.approx(1500.0)

    # And what the old release wrote is what the migrations would have made: no drift to carry.
    assert _diff(url) == []
    schema_after_first = _schema_sql(db)
    store.dispose()

    Store(url).dispose()  # a second start-up changes nothing
    assert _schema_sql(db) == schema_after_first
    assert _kept(before, _rows(db))

    # The old single-key secrets move into the first admin's vault (what `workbench init` does).
    engine = engine_for(url)
    admin = Accounts(engine).add_user("admin", "admin-password-0123", ["admin", "trade_paper"])
    assert adopt_legacy_secrets(engine, tmp_path, admin.id) == len(before["vault_secrets"])
    vault = Vault.open(engine, tmp_path, admin.id)
    assert vault.get("ccxt:binance/api_key").value == "AKIAFAKEKEY0123456789"
    assert vault.get("kite/access_token").expires_at is not None
    assert _rows(db)["vault_secrets"] == []
    engine.dispose()


def test_previous_release_database_missing_the_vault_table_gets_it(tmp_path):
    """The old release made the vault's and the ledger's tables on first use only: adoption creates
    whatever is missing and keeps the rest."""
    db = tmp_path / "workbench.db"
    url = _previous_release_db(db)
    con = sqlite3.connect(db)
    con.executescript("DROP TABLE vault_secrets; DROP TABLE broker_order_refs;")
    con.close()
    engine_for(url).dispose()
    assert _diff(url) == []
    assert _rows(db)["orders"]


def test_a_table_that_does_not_match_the_previous_release_stops_with_a_message(tmp_path):
    db = tmp_path / "workbench.db"
    url = _previous_release_db(db)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE orders RENAME COLUMN reason TO why")
    con.close()
    with pytest.raises(ConfigError, match=r"table 'orders'.*missing columns: \['reason'\].*unknown columns: \['why'\]"):
        Store(url)
    con = sqlite3.connect(db)  # nothing changed: not stamped, the rows are still there
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    con.close()


def test_a_database_from_a_newer_workbench_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    engine_for(url).dispose()
    con = sqlite3.connect(tmp_path / "workbench.db")
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match=r"'9999'.*newer workbench"):
        Store(url)


def test_migrations_make_exactly_the_schema_module(tmp_path):
    """`alembic check` in a test: a new database migrated to head has no difference from the MetaData.
    Adding a column or table to workbench/store/schema.py without a migration fails here."""
    assert _diff(f"sqlite:///{tmp_path / 'new.db'}") == []


def test_the_check_sees_a_schema_change_without_a_migration(tmp_path):
    """The comparison above can fail: a table added to the MetaData alone is reported."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    extra = Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    try:
        diff = _diff(url)
    finally:
        metadata.remove(extra)
    assert [d[0] for d in diff] == ["add_table"] and diff[0][1].name == "not_migrated"


def test_start_up_migrates_a_new_database_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'workbench.db'}"  # the folder is made too
    engine = engine_for(url)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        tables = {n for (n,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert tables == set(metadata.tables) | {"alembic_version"}
    engine.dispose()


def _pragmas(conn) -> tuple:
    return tuple(conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "busy_timeout", "foreign_keys"))


def test_every_connection_gets_wal_and_busy_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    store, ledger = Store(url), OrderLedger(url, "kite", "acct")
    vault = Vault.open(store.engine, tmp_path, Accounts(store.engine).add_user("u1", "password-0123456").id)
    from workbench.venues.paper.broker import PaperBroker

    book = PaperBroker(store).book
    engines = {"store": store.engine, "ledger": ledger._engine, "vault": vault._engine, "paper": book.engine}
    for who, engine in engines.items():
        with engine.connect() as conn:
            assert _pragmas(conn) == ("wal", 10_000, 1), who
    with Store(url, busy_timeout_ms=2_500).engine.connect() as conn:
        assert _pragmas(conn) == ("wal", 2_500, 1)


def test_in_memory_store_is_one_database_for_every_connection():
    """The ledger's no-store mode: every connection of the engine sees the same migrated database."""
    ledger = OrderLedger(None, "ccxt:binance", "acct")
    ledger.put("cid-1", kind="order", ref="42")
    assert ledger.get("cid-1")["ref"] == "42"


def test_processes_starting_at_once_on_a_new_database_migrate_one_after_the_other(tmp_path):
    """The dashboard and the live process may start together: the upgrade holds SQLite's write lock,
    so each start-up succeeds and the database is migrated once."""
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    code = f"from workbench.store import engine_for; engine_for({url!r}).dispose()"
    repo = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", code]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 3, "\n".join(errors)
    con = sqlite3.connect(tmp_path / "workbench.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    con.close()


_REBUILD_RUNS = """
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", recreate="always") as batch:  # SQLite: copy, drop, rename
        batch.add_column(sa.Column("host", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.drop_column("host")
"""


def test_a_later_migration_that_rebuilds_a_referenced_table_keeps_rows_and_foreign_keys(tmp_path):
    """Future revisions will rebuild tables (SQLite cannot alter most columns in place); ``runs`` is
    referenced by checks, cycles, signals, orders and equity, so the rebuild must run with foreign
    keys off and be checked before commit, and every connection must have them on again after."""
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = head_revision()
    nxt = f"{int(head) + 1:04d}"
    (migrations / "versions" / f"{nxt}_rebuild_runs.py").write_text(_REBUILD_RUNS.format(rev=nxt, down=head))
    db = tmp_path / "workbench.db"
    url = _previous_release_db(db)
    before = _rows(db)
    engine = engine_for(url, migrate=False)
    try:
        assert upgrade(engine, migrations) == nxt
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert "host" in {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(runs)")}
    finally:
        engine.dispose()
    assert _kept(before, _rows(db))


def test_a_store_url_for_another_database_is_refused_with_a_message():
    """The store is written and tested for SQLite and PostgreSQL only (the paper venue's
    insert-unless-present, the run lock's advisory lock): another backend is a ConfigError naming the
    URL, not a store that half works (the password is not shown)."""
    with pytest.raises(ConfigError, match=r"SQLite or PostgreSQL, not 'mysql'.*\*\*\*.*db_url"):
        engine_for("mysql+pymysql://wb:secret@dbhost/workbench")
