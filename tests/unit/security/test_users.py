"""Accounts and sessions on a real SQLite store: hashing, expiry, revocation, lockout, permissions, audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from workbench.errors import ConfigError, LoginFailed, NotLoggedIn, PermissionDenied
from workbench.security.users import Accounts, AuthPolicy
from workbench.store import engine_for


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


@pytest.fixture
def accounts(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    clock = Clock()
    acc = Accounts(engine, AuthPolicy(idle_timeout=timedelta(hours=1), absolute_timeout=timedelta(hours=5)), now=clock)
    admin = acc.add_user("admin", "first-admin-pw", ["admin", "trade_paper"])
    return acc, admin, clock, tmp_path / "w.db"


def test_first_user_is_admin_and_later_ones_need_an_admin(accounts):
    acc, admin, _, db = accounts
    with pytest.raises(PermissionDenied):
        acc.add_user("eve", "password-123")
    bob = acc.add_user("Bob", "password-123", actor=admin)
    assert bob.username == "bob" and bob.permissions == {"trade_paper"}
    with pytest.raises(PermissionDenied, match="admin"):
        acc.grant("bob", "trade_live", bob)  # nobody grants themselves real money
    assert acc.grant("bob", "trade_live", admin).can("trade_live")
    assert not acc.revoke("bob", "trade_live", admin).can("trade_live")
    with pytest.raises(ConfigError, match="unknown permission"):
        acc.grant("bob", "root", admin)
    with pytest.raises(ConfigError, match="at least 10"):
        acc.add_user("carl", "short", actor=admin)
    # argon2id hashes only: the password is nowhere in the database
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "password-123" not in dump and "$argon2id$" in dump


def test_session_token_hashed_idle_and_absolute_expiry(accounts):
    acc, _, clock, db = accounts
    token, s = acc.login("admin", "first-admin-pw")
    assert len(token) >= 43 and s.user.username == "admin"  # 256 bits, url-safe
    assert token not in "\n".join(sqlite3.connect(db).iterdump())
    clock.advance(minutes=50)
    assert acc.authenticate(token).user.username == "admin"  # touching keeps it alive
    clock.advance(minutes=50)
    acc.authenticate(token)
    clock.advance(minutes=61)
    with pytest.raises(NotLoggedIn, match="without use"):
        acc.authenticate(token)
    token, _ = acc.login("admin", "first-admin-pw")
    for _ in range(6):
        clock.advance(minutes=55)
        try:
            acc.authenticate(token)
        except NotLoggedIn as e:
            assert "expired" in str(e)
            break
    else:
        pytest.fail("absolute expiry not enforced")
    with pytest.raises(NotLoggedIn, match="not logged in"):
        acc.authenticate(None)


def test_logout_revocation_and_password_change_end_sessions(accounts):
    acc, admin, _, _ = accounts
    bob = acc.add_user("bob", "password-123", actor=admin)
    t1, _ = acc.login("bob", "password-123")
    t2, _ = acc.login("bob", "password-123", client="dashboard")
    assert acc.logout(t1)
    with pytest.raises(NotLoggedIn, match="revoked"):
        acc.authenticate(t1)
    acc.authenticate(t2)
    with pytest.raises(LoginFailed, match="current password"):
        acc.set_password("bob", "password-456", bob, old_password="nope-nope-nope")
    acc.set_password("bob", "password-456", bob, old_password="password-123")
    with pytest.raises(NotLoggedIn, match="revoked"):
        acc.authenticate(t2)
    with pytest.raises(LoginFailed):
        acc.login("bob", "password-123")
    t3, _ = acc.login("bob", "password-456")
    assert acc.revoke_sessions("bob", admin) == 1
    with pytest.raises(NotLoggedIn):
        acc.authenticate(t3)
    # an admin reset forces a change at next login
    acc.set_password("bob", "reset-by-admin", admin)
    assert acc.user("bob").must_change_password
    acc.disable("bob", admin)
    with pytest.raises(LoginFailed, match="disabled"):
        acc.login("bob", "reset-by-admin")


def test_lockout_with_growing_delay(accounts):
    acc, _, clock, _ = accounts
    for _ in range(5):
        with pytest.raises(LoginFailed, match="wrong username or password"):
            acc.login("admin", "wrong-wrong-wrong")
    with pytest.raises(LoginFailed, match=r"locked for another 3[01] s"):
        acc.login("admin", "first-admin-pw")  # even the right password waits
    clock.advance(seconds=31)
    with pytest.raises(LoginFailed, match="wrong"):
        acc.login("admin", "wrong-again-wrong")  # the 6th failure doubles the delay
    with pytest.raises(LoginFailed, match=r"locked for another 6[01] s"):
        acc.login("admin", "first-admin-pw")
    clock.advance(seconds=61)
    acc.login("admin", "first-admin-pw")
    with pytest.raises(LoginFailed, match="wrong username or password"):
        acc.login("nobody", "whatever-whatever")  # unknown names answer the same


def test_audit_records_logins_failures_and_grants(accounts):
    acc, admin, _, _ = accounts
    acc.add_user("bob", "password-123", actor=admin)
    with pytest.raises(LoginFailed):
        acc.login("bob", "wrong-wrong-wrong")
    acc.login("bob", "password-123")
    acc.grant("bob", "trade_live", admin)
    acc.record(admin, "live_start", True, "run 7")
    rows = [(r["username"], r["action"], r["ok"]) for r in reversed(acc.audit_log())]
    assert ("bob", "login", False) in rows and ("bob", "login", True) in rows
    assert ("admin", "grant", True) in rows and rows[-1] == ("admin", "live_start", True)
    assert all(r["ts"] for r in acc.audit_log())
