"""The account commands as a user types them: first admin, forced change, users, grants, risk, logout."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.config import load_settings
from workbench.security.access import accounts_for, ensure_first_admin, token_path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.delenv("WORKBENCH_MASTER_KEY", raising=False)
    return tmp_path


def run(args: list[str], stdin: str = "") -> tuple[int, str]:
    r = CliRunner().invoke(app, args, input=stdin)
    return r.exit_code, r.output + (str(r.exception) if r.exception and not isinstance(r.exception, SystemExit) else "")


def test_first_admin_login_forced_change_users_grants_and_risk(home):
    settings = load_settings(home)
    first = ensure_first_admin(accounts_for(settings))
    assert first and ensure_first_admin(accounts_for(settings)) is None  # shown once, never again
    code, out = run(["login", "--password-stdin"], first + "\n")
    assert code == 0 and "must be changed" in out
    assert stat.S_IMODE(os.stat(token_path(settings)).st_mode) == 0o600
    code, out = run(["users", "list"])
    assert code != 0 and "change it first" in out  # nothing else until the password is changed
    code, out = run(["users", "passwd", "--password-stdin"], f"{first}\nmy-own-password-1\n")
    assert code == 0 and "log in again" in out and not token_path(settings).exists()
    assert run(["login", "--password-stdin"], "my-own-password-1\n")[0] == 0

    code, out = run(["users", "add", "bob", "--password-stdin"], "bob-password-1\n")
    assert code == 0 and "bob added with trade_paper" in out
    assert "trade_live" in run(["users", "grant", "bob", "trade_live"])[1]
    code, out = run(["users", "list"])
    assert "admin" in out and "bob" in out and "must change password" in out

    code, out = run(["risk", "set", "max_position_pct=0.05", "min_strength=0.8"])
    assert code == 0 and "max_position_pct = 0.05" in out
    code, out = run(["risk", "show"])
    assert "0.05" in out and "(default 0.1)" in out
    code, out = run(["risk", "set", "max_position_pct=3"])
    assert code != 0 and "max_position_pct" in out
    code, out = run(["risk", "set", "max_positon_pct=0.2"])
    assert code != 0 and "unknown risk setting max_positon_pct" in out

    code, out = run(["users", "audit"])
    assert "grant" in out and "risk_set" in out and "login" in out
    assert run(["logout"])[1].strip() == "logged out"
    code, out = run(["risk", "show"])
    assert code != 0 and "workbench login" in out


def test_bob_cannot_administer(home):
    settings = load_settings(home)
    acc = accounts_for(settings)
    admin = acc.add_user("admin", "admin-password", ["admin", "trade_paper"])
    acc.add_user("bob", "bob-password-1", actor=admin)
    assert run(["login", "-u", "bob", "--password-stdin"], "bob-password-1\n")[0] == 0
    for args in (["users", "list"], ["users", "grant", "bob", "trade_live"], ["vault", "rotate"]):
        code, out = run(args)
        assert code != 0 and "admin" in out, args
    code, out = run(["login", "-u", "bob", "--password-stdin"], "wrong-password\n")
    assert code != 0 and "wrong username or password" in out
