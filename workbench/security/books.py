"""A user's trading books — orders, fills, positions, commands — from Python and from `workbench books`.

Why here and not in ``workbench.trading.store``: the store answers for whatever owner it is told; this
module decides who is asking (the session) and what they may see. Everyone sees their own rows;
admins see everyone's (``everyone=True``, which is refused for non-admins rather than silently
narrowed, so a script never mistakes "mine" for "all"). Every row carries ``user_id``, so scoping
never goes through runs and a row with no owner (a pre-users release) is an admin's to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from workbench.errors import PermissionDenied
from workbench.security.users import User

if TYPE_CHECKING:  # pandas only when a book is read: `workbench --help` stays quick
    import pandas as pd

__all__ = ["BOOKS", "book", "register"]

BOOKS = ("orders", "fills", "positions", "commands")

books_app = typer.Typer(
    no_args_is_help=True, help="Your trading books: orders, fills, positions, commands (admins: --all)."
)
HomeOpt = typer.Option(None, "--home", envvar="WORKBENCH_HOME", help="workbench home (stores live under it)")
AllOpt = typer.Option(False, "--all", help="everyone's rows (admins only)")
LimitOpt = typer.Option(50, "--limit", min=1, help="newest rows to show")


def _acting(settings: Any, user: User | None) -> User:
    if user is not None:
        return user
    from workbench.security.access import accounts_for, require_session

    return require_session(accounts_for(settings), settings).user


def book(
    settings: Any,
    name: str,
    user: User | None = None,
    everyone: bool = False,
    run_id: int | None = None,
    account: str | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """One book (``orders`` | ``fills`` | ``positions`` | ``commands``) of ``user`` (default: the CLI
    session's user); ``everyone``: all users' rows, for admins."""
    from workbench.trading.store import Store

    if name not in BOOKS:
        raise ValueError(f"book must be one of {BOOKS}, not {name!r}")
    me = _acting(settings, user)
    if everyone and not me.can("admin"):
        raise PermissionDenied(f"{me.username} may see only their own {name}: --all is for admins")
    scope = None if everyone else int(me.id)
    store = Store(settings.store_url)
    try:
        if name == "orders":
            return store.orders_of(scope, run_id=run_id, account=account, limit=limit)
        if name == "fills":
            return store.fills_of(scope, account=account, limit=limit)
        if name == "positions":
            return store.owned_positions(scope, account=account)
        return store.commands_of(scope, run_id=run_id, limit=limit)
    finally:
        store.dispose()


_COLUMNS = {
    "orders": ["created_at", "run_id", "account", "symbol", "side", "type", "quantity", "status", "client_order_id"],
    "fills": ["ts", "account", "symbol", "side", "quantity", "price", "fee", "client_order_id"],
    "positions": ["account", "symbol", "quantity", "average_price", "realized_pnl", "updated_at"],
    "commands": ["ts", "run_id", "command", "consumed_at"],
}


def _show(home: Path | None, name: str, everyone: bool, limit: int, run: int | None = None) -> None:
    from workbench.config import load_settings

    frame = book(load_settings(home), name, everyone=everyone, run_id=run, limit=limit)
    if frame.empty:
        typer.echo(f"no {name}")
        return
    cols = _COLUMNS[name] + (["user_id"] if everyone else [])
    typer.echo(frame[cols].to_string(index=False))


@books_app.command("orders")
def orders_cmd(
    everyone: bool = AllOpt, limit: int = LimitOpt, run: int | None = typer.Option(None, "--run", min=1),
    home: Path | None = HomeOpt,
) -> None:  # fmt: skip
    """Your orders, newest first. Needs a session."""
    _show(home, "orders", everyone, limit, run)


@books_app.command("fills")
def fills_cmd(everyone: bool = AllOpt, limit: int = LimitOpt, home: Path | None = HomeOpt) -> None:
    """Your fills, newest first. Needs a session."""
    _show(home, "fills", everyone, limit)


@books_app.command("positions")
def positions_cmd(everyone: bool = AllOpt, home: Path | None = HomeOpt) -> None:
    """Your open positions on every account you trade. Needs a session."""
    _show(home, "positions", everyone, 0)


@books_app.command("commands")
def commands_cmd(everyone: bool = AllOpt, limit: int = LimitOpt, home: Path | None = HomeOpt) -> None:
    """The stop / emergency-stop commands of your runs. Needs a session."""
    _show(home, "commands", everyone, limit)


def register(app: typer.Typer) -> None:
    app.add_typer(books_app, name="books")
