"""In a real browser: a login survives a reload (the tab's sessionStorage hands the session token to the
new kernel), and after Log out a reload shows the login form again. The tab stores the token only —
never the password."""

from __future__ import annotations

from tests.browser.conftest import Served, login, shot
from tests.kit.users import PASSWORD
from workbench.dashboard.remember import STORAGE_PREFIX

_KEPT = f"""() => Object.keys(window.sessionStorage)
    .filter(k => k.startsWith({STORAGE_PREFIX!r})).map(k => window.sessionStorage.getItem(k))"""


def test_login_survives_a_reload_and_logout_forgets_it(page, served: Served):
    login(page, served.url)
    page.wait_for_function(f"({_KEPT})().length === 1", timeout=30_000)
    kept = page.evaluate(_KEPT)
    assert PASSWORD not in str(kept)
    page.reload()
    page.get_by_text("logged in as alice").first.wait_for(timeout=120_000)  # no form filled
    assert not page.locator(".wb-login-form").first.is_visible()
    shot(page, served, "after-reload-logged-in")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_function(f"({_KEPT})().length === 0", timeout=30_000)
    page.reload()
    page.locator(".wb-password input").first.wait_for(timeout=120_000)
    page.wait_for_timeout(3000)  # time for a (wrong) restore to arrive: none may
    assert page.locator(".wb-login-form").first.is_visible()
    assert not page.get_by_text("logged in as alice").first.is_visible()
    shot(page, served, "after-logout-reload")
