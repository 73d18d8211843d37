"""Books belong to users: orders, fills, positions and commands carry their owner; each user trades their
own paper account (``paper:<username>``), so two users' books never mix; user A never sees B's rows
(Python API and CLI), admins see all with --all; a stop meant for "any run" of A never stops B's run;
existing rows get their owner from their run (migration 0003); a run that crashed resumes unattended
only when one user's run is waiting."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from tests.unit.trading.test_trading_runner import long_feed, start_thread, wait_for_cycle
from workbench.cli import app
from workbench.config import load_settings
from workbench.errors import PermissionDenied
from workbench.security.access import TOKEN_ENV
from workbench.security.books import book
from workbench.store.engine import alembic_config
from workbench.trading.runner import run_live
from workbench.trading.store import Store
from workbench.venues.paper.broker import PaperBroker


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    return s


def _cli(settings, token, *args):
    return CliRunner().invoke(app, [*args, "--home", str(settings.home)], env={TOKEN_ENV: token})


def _trade(settings, who, cycles=6):
    return run_live(
        settings, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=0.0, min_interval_s=0,
        cycles=cycles, session=who.token,
    )  # fmt: skip


def test_two_users_on_paper_keep_separate_books_and_see_only_their_own(home):
    boss = trader(home, "boss")  # the first account: admin
    alice, bob = trader(home, "alice"), trader(home, "bob")
    ra, rb = _trade(home, alice), _trade(home, bob)
    store = Store(home.store_url)
    assert store.run(ra)["account"] == "paper:alice" and store.run(rb)["account"] == "paper:bob"
    assert store.run(ra)["status"] == store.run(rb)["status"] == "STOPPED"
    # each user's simulated exchange account is their own: both started from the full starting cash
    for name in ("alice", "bob"):
        assert PaperBroker(store, f"paper:{name}").positions(), f"{name} bought nothing: the test proves nothing"
    # every row carries its owner
    mine = {u.user.id: u for u in (alice, bob)}
    for uid, who in mine.items():
        orders, fills = store.orders_of(uid, limit=10_000), store.fills_of(uid, limit=10_000)
        positions = store.owned_positions(uid)
        assert len(orders) and len(fills) and len(positions)
        assert (
            set(orders["account"])
            == set(fills["account"])
            == set(positions["account"])
            == {f"paper:{who.user.username}"}
        )
        assert set(orders["run_id"]) == {ra if who is alice else rb}
    everyone = store.orders_of(None, limit=10_000)
    assert set(everyone["user_id"]) == {alice.user.id, bob.user.id}  # no row without an owner
    # Python API: the session decides; --all is for admins only
    a_orders = book(home, "orders", user=alice.user, limit=10_000)
    assert set(a_orders["user_id"]) == {alice.user.id} and len(a_orders) == len(
        store.orders_of(alice.user.id, limit=10_000)
    )
    assert set(book(home, "fills", user=bob.user)["user_id"]) == {bob.user.id}
    assert set(book(home, "positions", user=bob.user)["account"]) == {"paper:bob"}
    assert book(home, "orders", user=alice.user, run_id=rb).empty  # Bob's run named: nothing of it
    with pytest.raises(PermissionDenied, match="only their own"):
        book(home, "orders", user=alice.user, everyone=True)
    assert set(book(home, "positions", user=boss.user, everyone=True)["account"]) == {"paper:alice", "paper:bob"}
    # CLI: the same, through the session token
    out = _cli(home, alice.token, "books", "positions")
    assert out.exit_code == 0 and "paper:alice" in out.output and "paper:bob" not in out.output
    out = _cli(home, bob.token, "books", "orders", "--limit", "10000")
    assert out.exit_code == 0 and "paper:bob" in out.output and "paper:alice" not in out.output
    out = _cli(home, bob.token, "books", "fills", "--all")
    assert out.exit_code != 0 and "only their own" in out.output and "paper:alice" not in out.output
    out = _cli(home, boss.token, "books", "fills", "--all", "--limit", "10000")
    assert out.exit_code == 0 and "paper:alice" in out.output and "paper:bob" in out.output
    assert _cli(home, "not-a-token", "books", "orders").exit_code != 0  # no session, no books


def test_a_stop_for_any_run_binds_only_its_senders_runs(home, monkeypatch):
    alice, bob = trader(home, "alice"), trader(home, "bob")
    monkeypatch.setenv(TOKEN_ENV, bob.token)
    store = Store(home.store_url)
    t, out = start_thread(home, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=0.1, min_interval_s=0)
    run = wait_for_cycle(store, 1)
    assert run["user_id"] == bob.user.id
    store.send_command("stop", user_id=alice.user.id)  # Alice's "stop my run", no run named
    assert store.pending_command(run["id"], consume=False) is None  # not Bob's business
    assert set(book(home, "commands", user=bob.user)["user_id"]) <= {bob.user.id}
    assert book(home, "commands", user=bob.user).empty and len(book(home, "commands", user=alice.user)) == 1
    store.send_command("stop", user_id=bob.user.id)
    t.join(timeout=10)
    assert not t.is_alive() and "error" not in out and store.run(run["id"])["status"] == "STOPPED"
    assert set(book(home, "commands", user=bob.user)["user_id"]) == {bob.user.id}


def test_without_a_session_a_crashed_run_resumes_only_when_one_user_waits(home):
    alice, bob = trader(home, "alice"), trader(home, "bob")
    store = Store(home.store_url)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for who in (alice, bob):
        store.start_run("paper", "paper", f"paper:{who.user.username}", "m", 1.0, gone.pid, user_id=who.user.id)
    rid = run_live(home, engine=MomentumEngine(gain=3.0), feed=long_feed(), interval_s=0.0, min_interval_s=0, cycles=1)
    failed = store.run(rid)
    assert failed["status"] == "FAILED" and failed["user_id"] is None
    assert "crashed runs of 2 users wait on paper" in failed["message"]
    assert "paper:alice" in failed["message"] and "paper:bob" in failed["message"]


def _owners(frame, key):
    return {k: None if v != v else int(v) for k, v in zip(frame[key], frame["user_id"], strict=True)}


def test_migration_0003_gives_existing_rows_the_owner_of_their_run(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with create_engine(url).connect() as conn:  # a home at revision 0002, with rows
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.commit()
    con = sqlite3.connect(tmp_path / "old.db")
    t = "2026-01-01T00:00:00.000000+00:00"
    con.executescript(
        f"""
        INSERT INTO runs (id, started_at, status, broker, environment, account, cycle, user_id)
            VALUES (1, '{t}', 'STOPPED', 'paper', 'paper', 'paper', 3, 7),
                   (2, '{t}', 'STOPPED', 'paper', 'paper', 'paper', 3, NULL);
        INSERT INTO orders (client_order_id, run_id, account, symbol, side, type, quantity, status, filled_quantity,
                            fee, created_at, updated_at)
            VALUES ('o1', 1, 'paper', 'S', 'buy', 'market', 1, 'FILLED', 1, 0, '{t}', '{t}'),
                   ('o2', 2, 'paper', 'S', 'buy', 'market', 1, 'FILLED', 1, 0, '{t}', '{t}');
        INSERT INTO fills (fill_id, client_order_id, account, symbol, side, quantity, price, fee, ts)
            VALUES ('f1', 'o1', 'paper', 'S', 'buy', 1, 10, 0, '{t}'), ('f2', 'o2', 'paper', 'S', 'buy', 1, 10, 0, '{t}');
        INSERT INTO positions (account, symbol, quantity, realized_pnl, updated_at) VALUES ('paper', 'S', 2, 0, '{t}');
        INSERT INTO commands (ts, run_id, command) VALUES ('{t}', 1, 'stop'), ('{t}', NULL, 'stop');
        """
    )
    con.commit()
    con.close()
    store = Store(url)  # migrates to the newest revision
    assert _owners(store.orders_of(None), "client_order_id") == {"o1": 7, "o2": None}
    assert _owners(store.fills_of(None), "fill_id") == {"f1": 7, "f2": None}
    assert list(store.owned_positions(7)["symbol"]) == ["S"]  # the latest owned run on the account
    assert list(store.commands_of(7)["run_id"]) == [1]
    assert store.commands_of(None)["user_id"].isna().sum() == 1  # no run, no sender: an admin's row
