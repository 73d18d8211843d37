"""The login page: sign in, create the first admin of a fresh home, change a one-time password, log out.

Why a first-admin form here: a new user's first contact may be the page, not `workbench init`. Only a
home with no account at all offers it (``Accounts.add_user`` checks that again inside its transaction,
so two browsers racing create one admin). A password set by `workbench init` or by an admin must be
replaced before anything else, on this page. Nothing typed stays in a widget after a click.
"""

from __future__ import annotations

import html

import ipywidgets as w

from workbench.dashboard.common import Notice
from workbench.dashboard.session import PageSession
from workbench.errors import AccessError, ConfigError

__all__ = ["LoginPage"]


class LoginPage:
    """``widget``: the forms; ``bar``: who is logged in and the Log out button (shown in the header)."""

    def __init__(self, session: PageSession):
        self.session = session
        self.notice = Notice("wb-login-message")
        # first run: no account exists yet
        self.admin_name = w.Text(value="admin", description="Name")
        self.admin_password = w.Password(description="Password")
        self.admin_password2 = w.Password(description="Repeat")
        self.create_button = w.Button(description="Create admin", button_style="primary")
        self.create_button.add_class("wb-create-admin")
        self.create_button.on_click(self.create_admin)
        self.first_run = w.VBox(
            [
                w.HTML(
                    "<h3>First run: create the admin account</h3><div class='wb-hint'>This home has no account "
                    "yet. The admin manages users and grants the trade_live permission.</div>"
                ),
                self.admin_name,
                self.admin_password,
                self.admin_password2,
                self.create_button,
            ]
        )
        self.first_run.add_class("wb-first-run")
        # sign in
        self.username = w.Text(value="admin", description="User")
        self.username.add_class("wb-username")
        self.password = w.Password(description="Password")
        self.password.add_class("wb-password")
        self.login_button = w.Button(description="Log in", button_style="primary", icon="sign-in")
        self.login_button.add_class("wb-login")
        self.login_button.on_click(self.login)
        self.login_form = w.VBox([w.HTML("<h3>Log in</h3>"), self.username, self.password, self.login_button])
        self.login_form.add_class("wb-login-form")
        # forced change of a one-time password
        self.new_password = w.Password(description="New")
        self.new_password.add_class("wb-new-password")
        self.new_password2 = w.Password(description="Repeat")
        self.new_password2.add_class("wb-new-password2")
        self.change_button = w.Button(description="Set new password", button_style="primary")
        self.change_button.add_class("wb-change-password")
        self.change_button.on_click(self.change_password)
        self.change_form = w.VBox(
            [w.HTML("<h3>Choose your own password</h3>"), self.new_password, self.new_password2, self.change_button]
        )
        self.change_form.add_class("wb-change-form")
        self._pending_password: str | None = None  # the one-time password, needed once more for the change
        self.widget = w.VBox([self.first_run, self.login_form, self.change_form, self.notice.widget])
        self.widget.add_class("wb-login-page")
        # the header's session bar
        self.who = w.HTML()
        self.who.add_class("wb-who")
        self.logout_button = w.Button(description="Log out", icon="sign-out")
        self.logout_button.add_class("wb-logout")
        self.logout_button.on_click(self.logout)
        self.bar = w.HBox([self.who, self.logout_button])
        session.on_change(self.show)
        self.show()

    # ---- actions ------------------------------------------------------------------------------
    def create_admin(self, _: object = None) -> None:
        """The first account of the home: admin and trade_paper, with the password typed here."""
        pw, again = self.admin_password.value, self.admin_password2.value
        self.admin_password.value = self.admin_password2.value = ""
        if pw != again:
            self.notice.say("the two passwords differ", "error")
            return
        accounts = self.session.accounts
        try:
            if accounts.count():
                raise ConfigError("an account exists already: log in instead (an admin adds further users)")
            user = accounts.add_user(self.admin_name.value, pw, ["admin", "trade_paper"])
            token, _s = accounts.login(user.username, pw, client="dashboard")
            self.session.open(token)
        except (AccessError, ConfigError) as e:
            self.notice.say(str(e), "error")
            self.show()
            return
        self.username.value = user.username
        self.notice.say(f"admin {user.username} created; logged in", "ok")

    def login(self, _: object = None) -> None:
        """Check the password; a one-time password leads to the change form, not into the app."""
        password, self.password.value = self.password.value, ""
        accounts = self.session.accounts
        try:
            token, s = accounts.login(self.username.value, password, client="dashboard")
            if s.user.must_change_password:
                accounts.logout(token)
                self._pending_password = password
                self.notice.say(
                    "choose your own password now (at least "
                    f"{accounts.policy.min_password_length} characters); the one-time one stops working",
                    "warn",
                )
                self.show()
                return
            self.session.open(token)
        except (AccessError, ConfigError) as e:
            self.notice.say(str(e), "error")
            return
        self.notice.say(f"logged in as {s.user.username}", "ok")

    def change_password(self, _: object = None) -> None:
        new, again = self.new_password.value, self.new_password2.value
        self.new_password.value = self.new_password2.value = ""
        if self._pending_password is None:
            self.notice.say("log in first", "error")
            return
        if new != again:
            self.notice.say("the two new passwords differ", "error")
            return
        accounts = self.session.accounts
        try:
            user = accounts.user(self.username.value)
            accounts.set_password(user.username, new, user, self._pending_password)
            token, _s = accounts.login(user.username, new, client="dashboard")
            self._pending_password = None
            self.session.open(token)
        except (AccessError, ConfigError) as e:
            self.notice.say(str(e), "error")
            return
        self.notice.say(f"password changed; logged in as {user.username}", "ok")

    def logout(self, _: object = None) -> None:
        self.session.logout()
        self.notice.say("logged out", "info")

    # ---- view ---------------------------------------------------------------------------------
    def show(self) -> None:
        """Which form is visible follows the session (and whether the home has any account)."""
        s = self.session
        logged_in = s.user is not None
        pending = self._pending_password is not None and not logged_in
        first = not logged_in and not pending and s.accounts.count() == 0
        self.first_run.layout.display = None if first else "none"
        self.login_form.layout.display = None if not (logged_in or pending or first) else "none"
        self.change_form.layout.display = None if pending else "none"
        self.bar.layout.display = None if logged_in else "none"
        if logged_in and s.user is not None:
            perms = ", ".join(sorted(s.user.permissions)) or "no permissions"
            self.who.value = f"logged in as <b>{html.escape(s.user.username)}</b> ({html.escape(perms)})"
        elif s.ended_reason:
            self.notice.say(s.ended_reason, "error")
