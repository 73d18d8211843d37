"""`workbench login | logout | users … | vault rotate | risk show|set`: accounts from the command line.

Passwords are asked for with hidden prompts (or read from standard input with ``--password-stdin``
for scripts); they never appear in argv, where other users of the machine could read them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from workbench.config import Settings, load_settings
from workbench.security.access import (
    accounts_for,
    forget_token,
    require_session,
    save_token,
    saved_token,
    set_user_risk,
    user_risk_limits,
)
from workbench.security.users import PERMISSIONS, Accounts

__all__ = ["register"]

HomeOpt = typer.Option(None, "--home", envvar="WORKBENCH_HOME", help="workbench home (stores live under it)")
StdinOpt = typer.Option(False, "--password-stdin", help="read the password(s) from standard input, one per line")

_DEFAULT_PERMISSIONS = ["trade_paper"]  # what `users add` grants unless told otherwise
_PERMISSIONS_HELP = " | ".join(PERMISSIONS)
users_app = typer.Typer(no_args_is_help=True, help="Accounts and permissions (trade_paper, trade_live, admin).")
vault_app = typer.Typer(no_args_is_help=True, help="The key vault: rotate the master key.")
risk_app = typer.Typer(no_args_is_help=True, help="Your risk limits: show, set (defaults from workbench.toml).")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(users_app, name="users")
    app.add_typer(vault_app, name="vault")
    app.add_typer(risk_app, name="risk")
    from workbench.security import books

    books.register(app)


def _ctx(home: Path | None) -> tuple[Settings, Accounts]:
    settings = load_settings(home)
    return settings, accounts_for(settings)


def _password(prompt: str, stdin: bool, confirm: bool = False) -> str:
    if stdin:
        line = sys.stdin.readline()
        if not line:
            raise typer.BadParameter("expected a password on standard input")
        return line.rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def login(
    username: str = typer.Option("admin", "--user", "-u", help="account name"),
    home: Path | None = HomeOpt,
    password_stdin: bool = StdinOpt,
) -> None:
    """Log in; the session token is kept in a 0600 file under the home (or use $WORKBENCH_TOKEN)."""
    settings, accounts = _ctx(home)
    token, session = accounts.login(username, _password("password", password_stdin), client="cli")
    path = save_token(settings, token)
    typer.echo(
        f"logged in as {session.user.username} until {session.expires_at:%Y-%m-%d %H:%M} UTC (session in {path})"
    )
    if session.user.must_change_password:
        typer.echo("your password must be changed before anything else: run `workbench users passwd`")


def logout(home: Path | None = HomeOpt) -> None:
    """End this session (here and in the store)."""
    settings, accounts = _ctx(home)
    token = saved_token(settings)
    ended = accounts.logout(token) if token else False
    forget_token(settings)
    typer.echo("logged out" if ended else "no session was open")


@users_app.command("add")
def users_add(
    username: str,
    permission: list[str] = typer.Option(_DEFAULT_PERMISSIONS, "--permission", "-p", help=_PERMISSIONS_HELP),
    home: Path | None = HomeOpt,
    password_stdin: bool = StdinOpt,
) -> None:
    """Create an account (admins only); the new user must change the password at first login."""
    settings, accounts = _ctx(home)
    admin = require_session(accounts, settings, "admin").user
    u = accounts.add_user(
        username,
        _password("password", password_stdin, confirm=True),
        permission,
        actor=admin,
        must_change_password=True,
    )
    typer.echo(f"user {u.username} added with {', '.join(sorted(u.permissions)) or 'no permissions'}")


@users_app.command("passwd")
def users_passwd(
    username: str | None = typer.Argument(None, help="whose password (default: yours; others: admins only)"),
    home: Path | None = HomeOpt,
    password_stdin: bool = StdinOpt,
) -> None:
    """Change your password (every session of yours ends), or reset another user's (admins)."""
    settings, accounts = _ctx(home)
    me = accounts.authenticate(saved_token(settings)).user  # a forced change is allowed before anything else
    target = (username or me.username).lower()
    old = _password("current password", password_stdin) if target == me.username else None
    accounts.set_password(target, _password("new password", password_stdin, confirm=not password_stdin), me, old)
    if target == me.username:
        forget_token(settings)
        typer.echo("password changed; every session ended: log in again with `workbench login`")
    else:
        typer.echo(f"password of {target} reset; they must change it at their next login")


@users_app.command("list")
def users_list(home: Path | None = HomeOpt) -> None:
    """Accounts, permissions and state (admins only)."""
    settings, accounts = _ctx(home)
    require_session(accounts, settings, "admin")
    for u in accounts.list_users():
        flags = [f for f, on in (("disabled", u.disabled), ("must change password", u.must_change_password)) if on]
        typer.echo(f"{u.username:<20} {', '.join(sorted(u.permissions)) or '-':<32} {'; '.join(flags)}")


@users_app.command("grant")
def users_grant(username: str, permission: str, home: Path | None = HomeOpt) -> None:
    """Give a permission (trade_live only by an admin, recorded in the audit trail)."""
    settings, accounts = _ctx(home)
    admin = require_session(accounts, settings, "admin").user
    u = accounts.grant(username, permission, admin)
    typer.echo(f"{u.username}: {', '.join(sorted(u.permissions))}")


@users_app.command("revoke")
def users_revoke(username: str, permission: str, home: Path | None = HomeOpt) -> None:
    """Take a permission away. A live run already going keeps running until stopped; the next Start is refused."""
    settings, accounts = _ctx(home)
    admin = require_session(accounts, settings, "admin").user
    u = accounts.revoke(username, permission, admin)
    typer.echo(f"{u.username}: {', '.join(sorted(u.permissions)) or 'no permissions'}")


@users_app.command("disable")
def users_disable(
    username: str,
    enable: bool = typer.Option(False, "--enable", help="re-enable instead"),
    home: Path | None = HomeOpt,
) -> None:
    """Disable an account (its sessions end at once) or re-enable it."""
    settings, accounts = _ctx(home)
    admin = require_session(accounts, settings, "admin").user
    u = accounts.disable(username, admin, disabled=not enable)
    typer.echo(f"{u.username} {'disabled' if u.disabled else 'enabled'}")


@users_app.command("revoke-sessions")
def users_revoke_sessions(username: str, home: Path | None = HomeOpt) -> None:
    """End every session of a user (yours, or anyone's for admins)."""
    settings, accounts = _ctx(home)
    me = require_session(accounts, settings).user
    typer.echo(f"{accounts.revoke_sessions(username, me)} session(s) of {username.lower()} ended")


@users_app.command("audit")
def users_audit(limit: int = typer.Option(50, min=1), home: Path | None = HomeOpt) -> None:
    """The audit trail: logins, failures, grants, key changes, starts and stops (admins only)."""
    settings, accounts = _ctx(home)
    require_session(accounts, settings, "admin")
    for r in reversed(accounts.audit_log(limit)):
        typer.echo(
            f"{r['ts'][:19]}  {r['username'] or '-':<16} {r['action']:<16} {'ok' if r['ok'] else 'FAILED':<6} {r['detail'] or ''}"
        )


@vault_app.command("rotate")
def vault_rotate(home: Path | None = HomeOpt) -> None:
    """Re-wrap every user's data key under a new master key (admins only); no secret is re-entered."""
    from workbench.security.vault import rotate_master_key

    settings, accounts = _ctx(home)
    admin = require_session(accounts, settings, "admin").user
    n = rotate_master_key(accounts.engine, settings.home)
    accounts.record(admin, "vault_rotate", True, f"{n} data keys re-wrapped")
    typer.echo(
        f"master key rotated: {n} data key(s) re-wrapped. Back up {settings.home / 'keys' / 'master.key'} apart from data/."
    )


@risk_app.command("show")
def risk_show(home: Path | None = HomeOpt) -> None:
    """Your risk limits, with the home's defaults beside them."""
    settings, accounts = _ctx(home)
    user = require_session(accounts, settings).user
    mine = user_risk_limits(accounts.engine, user, settings.risk)
    for name, field in type(mine).model_fields.items():
        value, default = getattr(mine, name), getattr(settings.risk, name)
        note = "" if value == default else f"   (default {default})"
        typer.echo(f"{name:<22} {value!s:<8}{note}   {field.description or ''}")


@risk_app.command("set")
def risk_set(
    assignments: list[str] = typer.Argument(..., help="FIELD=VALUE, e.g. max_position_pct=0.05"),
    home: Path | None = HomeOpt,
) -> None:
    """Change your risk limits (validated; out-of-range values are refused, naming the field)."""
    settings, accounts = _ctx(home)
    user = require_session(accounts, settings).user
    changes: dict[str, object] = {}
    for a in assignments:
        name, sep, value = a.partition("=")
        if not sep:
            raise typer.BadParameter(f"{a!r}: write FIELD=VALUE, e.g. max_position_pct=0.05")
        changes[name.strip()] = value.strip()
    new = set_user_risk(accounts.engine, user, settings.risk, changes)
    accounts.record(user, "risk_set", True, ", ".join(f"{k}={getattr(new, k)}" for k in changes))
    typer.echo("; ".join(f"{k} = {getattr(new, k)}" for k in changes))
