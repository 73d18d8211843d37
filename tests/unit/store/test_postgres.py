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


def test_paper_live_cycles_on_postgresql_match_sqlite(pg_url, settings):
    """The whole live cycle (orders batched through ``store.bulk``, their exit pairs, stops filled on a
    crash bar, positions booked) on PostgreSQL gives what it gives on SQLite. Why: the batched paths
    compile statements per dialect, and PostgreSQL's named parameters and column widths differ; a paper
    run on a team's PostgreSQL store once failed at its first balance update and its first exit order."""
    from tests.kit.models import MomentumEngine, synthetic_panel
    from workbench.data.lake import Lake
    from workbench.trading.feeds import ReplayFeed
    from workbench.trading.loop import LiveContext, run_cycle
    from workbench.trading.orders import OrderManager

    lake = Lake(settings.lake_dir)
    lake.write(synthetic_panel(12, 60, crash_at=57, crash_gap=True).to_long(), "TEST", "1d", "synthetic")

    def trade(url: str) -> tuple[list, dict, list]:
        store = Store(url).create()
        account = f"pgcycle-{store.start_run('paper', 'paper', 'probe')}"  # one account per store and test run
        broker = PaperBroker(store, account=account, starting_cash=settings.paper.starting_cash,
                             fee_rate=settings.costs.fee_rate, slippage_bps=settings.costs.slippage_bps)  # fmt: skip
        run_id = store.start_run("paper", "paper", account, "kit", 0.0, 1)
        ctx = LiveContext(
            store=store, broker=broker, feed=ReplayFeed(lake, "TEST", "1d", None, warmup_bars=40, replay_bars=5),
            engine=MomentumEngine(lookback=20, gain=3.0), orders=OrderManager(store, broker, account, run_id=run_id),
            run_id=run_id, account=account, limits=settings.risk, costs=settings.costs,
        )  # fmt: skip
        for _ in range(5):
            run_cycle(ctx)
        orders = store.orders(run_id, limit=10_000)
        table = sorted(
            (int(r.cycle), r.symbol, r.side, r.type, r.status, round(float(r.filled_quantity), 9))
            for r in orders.itertuples()
        )
        held = broker.positions()
        book = store.positions(account).set_index("symbol")["quantity"].to_dict()
        assert held == pytest.approx(book, rel=1e-9)  # the store's positions agree with the venue's
        ev = store.events(run_id, limit=10_000)
        events = list(ev.loc[ev["level"] == "ERROR", "message"])
        store.dispose()
        return table, held, events

    on_pg = trade(pg_url)
    on_sqlite = trade(f"sqlite:///{settings.home / 'cycle.db'}")
    assert on_pg[2] == [] and on_sqlite[2] == []  # no cycle hit an error
    types = {row[3] for row in on_pg[0]}
    assert {"market", "stop_loss", "take_profit"} <= types  # entries and their exit pairs were written
    assert any(row[3] == "stop_loss" and row[4] == "FILLED" for row in on_pg[0])  # the crash bar's stops
    assert on_pg[0] == on_sqlite[0] and on_pg[1] == pytest.approx(on_sqlite[1], rel=1e-9)


def test_the_store_does_not_prepare_statements_on_postgresql(pg_url):
    """A prepared statement may keep a generic plan made while its table was small (the paper book's
    key lookups stayed sequential scans as the orders grew); the store's psycopg connections plan each
    statement for its values."""
    from workbench.store.engine import engine_for

    engine = engine_for(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.prepare_threshold is None
    finally:
        engine.dispose()
