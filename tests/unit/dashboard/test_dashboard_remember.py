"""The login survives a reload: the page hands its session token to the browser tab (the synced
``value`` of ``RememberedSession``, a hidden password box), a reload's new kernel adopts the token the tab offers back only if
the store still honours it, and a logout, an expired session or a refused token clear it from the tab.

The browser's half (sessionStorage) runs in tests/browser/test_reload_login.py; here the kernel's half
is driven as the widget's comm drives it (``set_state``, what a browser message does)."""

from __future__ import annotations

from datetime import timedelta

from tests.kit.users import PASSWORD
from tests.unit.dashboard.pages import logged_in
from workbench.dashboard.app import Dashboard


def _reload(settings, kept: str) -> Dashboard:
    """A new kernel's page, to which the tab offers what it kept (nothing when empty)."""
    app = Dashboard(settings)
    assert app.user is None and app.remember.token == ""
    if kept:
        app.remember.set_state({"value": kept})  # the head script typing the kept token into the box
    return app


def test_a_reload_keeps_the_login_and_a_logout_forgets_it(settings):
    app = logged_in(settings)
    kept = app.remember.token
    assert kept == app.session.token and kept  # what the tab stores
    state = app.remember.get_state()
    assert PASSWORD not in str(state) and state["value"] == kept  # never the password
    assert f"wb-scope-{app.remember.scope}" in state["_dom_classes"]  # one storage key per home
    again = _reload(settings, kept)
    assert again.user is not None and again.user.username == "trader"
    assert again.tabs.layout.display is None and again.login_page.widget.layout.display == "none"
    assert again.remember.token == kept  # the tab keeps it
    again.login_page.logout_button.click()
    assert again.remember.token == ""  # the tab forgets it
    third = _reload(settings, kept)
    assert third.user is None and third.remember.token == "" and third.tabs.layout.display == "none"
    assert "session from before the reload ended" in third.login_page.notice.text


def test_an_expired_or_forged_token_is_refused_and_cleared(settings):
    app = logged_in(settings)
    kept = app.remember.token
    forged = _reload(settings, "not-a-token")
    assert forged.user is None and forged.remember.token == ""
    accounts = forged.session.accounts
    later = accounts._now() + accounts.policy.idle_timeout + timedelta(seconds=1)
    accounts._now = lambda: later
    expired = Dashboard(settings)
    expired.session.accounts._now = lambda: later
    expired.remember.set_state({"value": kept})
    assert expired.user is None and expired.remember.token == ""
    assert "without use" in expired.login_page.notice.text


def test_a_session_ending_on_the_page_clears_the_tab_and_the_kernel_keeps_its_own_login(settings):
    app = logged_in(settings)
    other = logged_in(settings)  # another tab's login: its own token
    app.remember.set_state({"value": other.session.token})  # this tab offers a different token
    assert app.remember.token == app.session.token != other.session.token  # the kernel's session wins
    accounts = app.session.accounts
    later = accounts._now() + accounts.policy.idle_timeout + timedelta(seconds=1)
    accounts._now = lambda: later
    app.refresh()  # the poll finds the session expired
    assert app.user is None and app.remember.token == ""
