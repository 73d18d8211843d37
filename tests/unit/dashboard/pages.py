"""Driving the dashboard as a user does: type into the widgets, click the buttons (their handlers)."""

from __future__ import annotations

from typing import Any

from tests.kit.users import PASSWORD
from workbench.dashboard.app import Dashboard


def logged_in(settings: Any, username: str = "trader", password: str = PASSWORD, **kw: Any) -> Dashboard:
    """The page after a login through its own form (the kernel's $WORKBENCH_TOKEN is never a page login)."""
    app = Dashboard(settings, **kw)
    app.login_page.username.value, app.login_page.password.value = username, password
    app.login_page.login_button.click()
    assert app.user is not None, app.login_page.notice.text
    return app


def open_tab(app: Dashboard, name: str) -> Any:
    app.tabs.selected_index = list(app.pages).index(name)
    return app.pages[name]
