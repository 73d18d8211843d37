"""The page's login box: nothing is shown or started before a login; the first admin's one-time
password must be replaced on the page; the token stays in the kernel and reaches the live process
in its environment, never its argv; a user sees and stops only their own runs."""

from __future__ import annotations

import os
from pathlib import Path

from tests.kit.users import PASSWORD, trader
from workbench.dashboard.app import Dashboard
from workbench.security.access import accounts_for, ensure_first_admin
from workbench.trading.store import Store


def test_logged_out_page_shows_nothing_and_starts_nothing(settings, monkeypatch):
    store = Store(settings.store_url).create()
    store.start_run(broker="paper", environment="paper", pid=None, user_id=1)
    app = Dashboard(settings)  # the kernel's $WORKBENCH_TOKEN is not a page login
    assert app.user is None and "Log in" in app.views.status.value and "run 1" not in app.views.status.value
    assert app.start_button.disabled and app.stop_button.disabled and app.emergency_button.disabled
    app.start()
    assert "log in first" in app.views.message.value and app._process is None
    app.stop()
    assert store.pending_command(1, consume=False) is None


def test_first_admin_logs_in_with_the_one_time_password_and_must_choose_a_new_one(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    from workbench.config import load_settings

    s = load_settings(tmp_path / "home")
    s.ensure_dirs()
    one_time = ensure_first_admin(accounts_for(s))
    app = Dashboard(s)
    app.username.value, app.password.value = "admin", "wrong-password-123"
    app.login()
    assert app.user is None and "wrong username or password" in app.views.message.value
    app.password.value = one_time
    app.login()
    assert app.user is None and app._token is None and "choose your own password" in app.views.message.value
    assert app.change_form.layout.display is None and app.login_form.layout.display == "none"
    app.new_password.value, app.new_password2.value = "my-own-password-1", "my-own-password-2"
    app.change_password()
    assert app.user is None and "differ" in app.views.message.value
    app.new_password.value = app.new_password2.value = "my-own-password-1"
    app.change_password()
    assert app.user is not None and app.user.username == "admin" and not app.user.must_change_password
    assert app.password.value == "" and app.new_password.value == ""  # nothing typed stays in a widget
    assert not app.start_button.disabled and "Start AI Trading" in app.views.status.value
    assert not (s.home / ".session").exists()  # the page's token is in memory only
    accounts_for(s).login("admin", "my-own-password-1")  # the new password works
    app.logout()
    assert app.user is None and app.start_button.disabled


def test_start_hands_the_token_to_the_live_process_in_its_environment_not_argv(settings, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)  # only the page's login counts
    app = Dashboard(settings)
    app.username.value, app.password.value = "trader", PASSWORD
    app.login()
    assert app.user is not None and app.user.username == "trader"
    app.interval.value = 3600
    app.start()
    proc = app._process
    try:
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace").split("\0")
        assert app._token not in argv
        assert f"WORKBENCH_TOKEN={app._token}" in environ
        proc.wait(timeout=120)  # this home has no model: Phase 1 passes authentication, then stops at 'models'
        store = Store(settings.store_url)
        run = store.latest_run()
        assert run is not None and run["user_id"] == app.user.id  # the run is the page user's
        checks = store.checks(run["id"]).set_index("name")
        assert checks.loc["authentication", "ok"] and "user trader" in checks.loc["authentication", "message"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_user_sees_and_stops_only_their_own_runs(settings, monkeypatch):
    store = Store(settings.store_url).create()
    bob = trader(settings, "bob")
    theirs = store.start_run(broker="paper", environment="paper", pid=os.getpid(), user_id=1)  # the fixture's trader
    app = Dashboard(settings, token=bob.token)
    assert "No live run yet" in app.views.status.value and f"run {theirs}" not in app.views.status.value
    app.emergency_stop()
    assert "no live run is active" in app.views.message.value and store.pending_command(theirs, consume=False) is None
    mine = store.start_run(broker="paper", environment="paper", pid=os.getpid(), user_id=bob.user.id)
    app.refresh()
    assert f"run {mine}" in app.views.status.value
    app.stop()
    assert store.pending_command(mine, consume=False) == "stop" and store.pending_command(theirs, consume=False) is None
    bob.accounts.revoke_sessions("bob", bob.user)  # the kept token stops working at once
    app.stop()
    assert "revoked" in app.views.message.value and app.user is None and app.stop_button.disabled
