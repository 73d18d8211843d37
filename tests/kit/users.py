"""Users for tests: a real account in the store, a real session token, that user's real vault.

``trader(settings)`` is what a test that trades needs: an account with ``trade_paper`` (and whatever
else is asked), logged in, the token exported as ``WORKBENCH_TOKEN`` when a monkeypatch is given (so
``run_live``, the CLI and a ``workbench live run`` subprocess all act as that user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.security.access import TOKEN_ENV, accounts_for
from workbench.security.users import Accounts, User
from workbench.security.vault import Vault

__all__ = ["Trader", "trader"]

PASSWORD = "test-password-0123"


@dataclass(frozen=True)
class Trader:
    user: User
    token: str
    vault: Vault
    accounts: Accounts


def trader(
    settings: Any, username: str = "trader", permissions: tuple[str, ...] = ("trade_paper",), monkeypatch: Any = None
) -> Trader:
    """An account named ``username`` with ``permissions`` (the first account of a home is its admin),
    logged in; with ``monkeypatch``, its token becomes ``$WORKBENCH_TOKEN``."""
    accounts = accounts_for(settings)
    admin = None
    if accounts.count():
        admin = next((u for u in accounts.list_users() if u.can("admin")), None)
    perms = set(permissions) | ({"admin"} if not accounts.count() else set())
    accounts.add_user(username, PASSWORD, sorted(perms), actor=admin)
    token, session = accounts.login(username, PASSWORD)
    if monkeypatch is not None:
        monkeypatch.setenv(TOKEN_ENV, token)
    return Trader(session.user, token, Vault.for_user(settings, session.user.id), accounts)


def current_user(settings: Any) -> User:
    """The user of ``$WORKBENCH_TOKEN`` (or the home's session file)."""
    from workbench.security.access import require_session

    return require_session(accounts_for(settings), settings).user
