"""The login page: nothing is shown or started before a login; a fresh home's first admin is created
on the page; a one-time password must be replaced; an expired or revoked session sends the page back
to the login form saying why; a user sees and stops only their own runs."""

from __future__ import annotations

import os
from datetime import timedelta

from tests.kit.users import PASSWORD, trader
from tests.unit.dashboard.pages import logged_in
from workbench.config import load_settings
from workbench.dashboard.app import Dashboard
from workbench.security.access import accounts_for, ensure_first_admin
from workbench.trading.store import Store


def test_logged_out_page_shows_only_the_login_and_starts_nothing(settings):
    store = Store(settings.store_url).create()
    store.start_run(broker="paper", environment="paper", pid=None, user_id=1)
    app = Dashboard(settings)  # the kernel's $WORKBENCH_TOKEN is not a page login
    assert app.user is None and app.tabs.layout.display == "none" and app.login_page.widget.layout.display is None
    assert app.login_page.login_form.layout.display is None and app.login_page.first_run.layout.display == "none"
    start = app.start_page
    assert start.start_button.disabled and start.stop_button.disabled and start.emergency_button.disabled
    start.start()
    assert "log in first" in start.notice.text and start._process is None
    start.stop()
    assert store.pending_command(1, consume=False) is None and "run 1" not in start.status.value


def test_a_fresh_home_creates_its_first_admin_on_the_page(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    app = Dashboard(s)
    lp = app.login_page
    assert lp.first_run.layout.display is None and lp.login_form.layout.display == "none"
    lp.admin_name.value = "boss"
    lp.admin_password.value, lp.admin_password2.value = "a-long-password-1", "a-long-password-2"
    lp.create_button.click()
    assert app.user is None and "differ" in lp.notice.text and lp.admin_password.value == ""
    lp.admin_password.value = lp.admin_password2.value = "short"
    lp.create_button.click()
    assert app.user is None and "at least 10 characters" in lp.notice.text and accounts_for(s).count() == 0
    lp.admin_password.value = lp.admin_password2.value = "a-long-password-1"
    lp.create_button.click()
    assert (
        app.user is not None and app.user.username == "boss" and app.user.can("admin") and app.user.can("trade_paper")
    )
    assert app.tabs.layout.display is None and lp.first_run.layout.display == "none"
    assert "logged in as <b>boss</b>" in lp.who.value
    # a second browser on the same home is offered the login form, never a second "first" admin
    other = Dashboard(s)
    assert other.login_page.first_run.layout.display == "none"
    other.login_page.create_admin()  # a stale form submitted anyway
    assert accounts_for(s).count() == 1 and "exists already" in other.login_page.notice.text


def test_the_one_time_password_of_workbench_init_must_be_replaced_on_the_page(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    one_time = ensure_first_admin(accounts_for(s))
    app = Dashboard(s)
    lp = app.login_page
    lp.username.value, lp.password.value = "admin", "wrong-password-123"
    lp.login_button.click()
    assert app.user is None and "wrong username or password" in lp.notice.text
    lp.password.value = one_time
    lp.login_button.click()
    assert app.user is None and app.session.token is None and "choose your own password" in lp.notice.text
    assert lp.change_form.layout.display is None and lp.login_form.layout.display == "none"
    assert app.tabs.layout.display == "none"
    lp.new_password.value, lp.new_password2.value = "my-own-password-1", "my-own-password-2"
    lp.change_button.click()
    assert app.user is None and "differ" in lp.notice.text
    lp.new_password.value = lp.new_password2.value = "my-own-password-1"
    lp.change_button.click()
    assert app.user is not None and app.user.username == "admin" and not app.user.must_change_password
    assert lp.password.value == "" and lp.new_password.value == ""  # nothing typed stays in a widget
    assert not app.start_page.start_button.disabled and "Start AI Trading" in app.start_page.status.value
    assert not (s.home / ".session").exists()  # the page's token is in memory only
    accounts_for(s).login("admin", "my-own-password-1")  # the new password works
    lp.logout_button.click()
    assert app.user is None and app.start_page.start_button.disabled and app.tabs.layout.display == "none"
    assert "logged out" in lp.notice.text


def test_an_expired_session_returns_to_the_login_page_with_the_reason(settings):
    app = logged_in(settings)
    assert app.tabs.layout.display is None
    # the store's clock moves past the idle timeout: polling does not count as use
    accounts = app.session.accounts
    later = accounts._now() + accounts.policy.idle_timeout + timedelta(seconds=1)
    accounts._now = lambda: later
    app.refresh()
    assert app.user is None and app.tabs.layout.display == "none" and app.login_page.widget.layout.display is None
    assert "session ended" in app.login_page.notice.text and "without use" in app.login_page.notice.text
    assert "log in again on this page" in app.login_page.notice.text
    assert app.start_page.start_button.disabled


def test_polling_does_not_keep_a_session_alive_but_actions_do(settings):
    app = logged_in(settings)
    accounts = app.session.accounts
    t0 = accounts._now()
    step = accounts.policy.idle_timeout * 0.6
    accounts._now = lambda: t0 + step
    app.refresh()  # a poll: not use
    app.start_page.stop()  # an action: use (nothing to stop, but the session was checked and touched)
    assert app.user is not None and "no live run is active" in app.start_page.notice.text
    accounts._now = lambda: t0 + 2 * step  # idle since the action only 0.6 × timeout
    app.refresh()
    assert app.user is not None
    accounts._now = lambda: t0 + 3.2 * step  # idle 1.2 × timeout since the action
    app.refresh()
    assert app.user is None


def test_a_user_sees_and_stops_only_their_own_runs(settings, monkeypatch):
    store = Store(settings.store_url).create()
    trader(settings, "bob")
    theirs = store.start_run(broker="paper", environment="paper", pid=os.getpid(), user_id=1)  # the fixture's trader
    app = logged_in(settings, "bob", PASSWORD)
    start = app.start_page
    assert "No live run yet" in start.status.value and f"run {theirs}" not in start.status.value
    start.emergency_button.click()
    assert "no live run is active" in start.notice.text and store.pending_command(theirs, consume=False) is None
    mine = store.start_run(broker="paper", environment="paper", pid=os.getpid(), user_id=app.user.id)
    app.refresh()
    assert f"run {mine}" in start.status.value
    start.stop_button.click()
    assert store.pending_command(mine, consume=False) == "stop" and store.pending_command(theirs, consume=False) is None
    app.session.accounts.revoke_sessions("bob", app.user)  # the kept token stops working at once
    start.stop_button.click()
    assert "revoked" in start.notice.text and app.user is None and start.stop_button.disabled
    assert app.tabs.layout.display == "none" and "revoked" in app.login_page.notice.text
