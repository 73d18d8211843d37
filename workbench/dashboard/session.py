"""The page's login session: one token, in this kernel's memory only, checked again on every action.

Why checked again: a session can expire (idle or absolute timeout), be revoked (logout elsewhere, a
password change, an admin) or its user be disabled while the page stays open. Every page asks
``current()`` before acting; when the store no longer honours the token the session is dropped, the
listeners (the shell) switch back to the login page, and the reason is kept to show there.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.config import Settings
from workbench.errors import AccessError, NotLoggedIn, PermissionDenied
from workbench.security.access import accounts_for, require_session
from workbench.security.users import Accounts, User

__all__ = ["PageSession"]


class PageSession:
    """Who is logged in on this page. ``user_getter`` is what embedded views (runs, live) are given."""

    def __init__(self, settings: Settings, accounts: Accounts | None = None):
        self.settings = settings
        self.accounts = accounts or accounts_for(settings)
        self.token: str | None = None
        self.user: User | None = None
        self.ended_reason: str | None = None  # why the last session ended without a logout
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def open(self, token: str) -> User:
        """Adopt ``token`` (a fresh login); ``AccessError`` when the store does not honour it."""
        user = require_session(self.accounts, self.settings, token=token).user
        self.token, self.user, self.ended_reason = token, user, None
        self._changed()
        return user

    def logout(self) -> None:
        if self.token:
            self.accounts.logout(self.token)
        self.token, self.user, self.ended_reason = None, None, None
        self._changed()

    def current(self, permission: str | None = None) -> User:
        """The user behind the kept token, checked in the store now; drops an ended session."""
        if not self.token:
            raise NotLoggedIn("log in first (the login page)")
        try:
            self.user = require_session(self.accounts, self.settings, token=self.token).user
        except AccessError as e:
            raise NotLoggedIn(self._ended(e)) from None
        if permission is not None and not self.user.can(permission):
            raise PermissionDenied(
                f"{self.user.username} lacks the {permission!r} permission: ask an admin (`workbench users grant`)"
            )
        return self.user

    def check(self) -> User | None:
        """Is the session still honoured? For polling: does not count as use (``touch=False``), so an
        open page left alone still reaches the idle timeout. Drops an ended session, like ``current``."""
        if not self.token:
            return None
        try:
            user = self.accounts.authenticate(self.token, touch=False).user
        except AccessError as e:
            self._ended(e)
            return None
        self.user = user
        return user

    def _ended(self, why: AccessError) -> str:
        """Forget a session the store no longer honours; the reason, worded for the page."""
        reason = str(why).replace("run `workbench login`", "log in again on this page")
        self.token, self.user, self.ended_reason = None, None, f"your session ended: {reason}"
        self._changed()
        return self.ended_reason

    def user_getter(self) -> User | None:
        """The logged-in user, or None (never raises): for views that only read."""
        try:
            return self.current()
        except AccessError:
            return None
