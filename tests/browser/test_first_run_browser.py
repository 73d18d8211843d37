"""A new home's first run in a real browser: the admin account created on the page, a user with a
one-time password forced to choose their own, testnet keys added and tested against a local fake venue
(masked, TESTNET, when last verified), the demo model picked with its verdict and baselines, a paper
Start and its first cycle on the page. Screenshots at 1280 px (800 px for the narrow forms)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import Served, shot, tab
from tests.kit.fake_binance import FakeBinance
from workbench.config import Settings, load_settings
from workbench.trading.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN_PW = "first-admin-pass-1234"
ONE_TIME = "one-time-pass-5678"
BOB_PW = "bobs-own-pass-9012"


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(symbols=("BTC/USDT",)) as f:
        f.set_balance("USDT", 10_000.0)
        yield f


def _toml_table(prefix: str, table: dict[str, str]) -> str:
    return f"[{prefix}]\n" + "".join(f'{k} = "{v}"\n' for k, v in table.items())


@pytest.fixture()
def home(tmp_path: Path, fake: FakeBinance) -> Settings:
    """A home with demo data and one trained, registered demo model, but no account yet; its ccxt binance
    talks to the local fake venue (testnet)."""
    from workbench.data.demo import load_demo_panel
    from workbench.models.registry import Registry
    from workbench.models.training import train

    root = tmp_path / "home"
    root.mkdir()
    urls = fake.ccxt_config()["urls"]
    (root / "workbench.toml").write_text(
        '[demo]\nsource = "synthetic"\nbars = 300\n\n[risk]\nmin_strength = 0.02\n\n[signals]\nhold_below = 0.02\n\n'
        "[broker]\ntimeout_s = 5.0\n\n"
        + _toml_table("venues.ccxt.urls.binance.api", urls["api"])
        + "\n"
        + _toml_table("venues.ccxt.urls.binance.test", urls["test"])
    )
    settings = load_settings(root)
    settings.ensure_dirs()
    _universe, panel = load_demo_panel(settings)
    Registry(settings).register(train(panel, params={"n_estimators": 20}, validation="walk_forward", n_folds=3))
    return settings


def test_first_run_admin_one_time_password_keys_model_and_first_cycle(page, served: Served, fake: FakeBinance):
    from workbench.security.access import accounts_for

    page.goto(served.url)
    # First run: no account yet, so the page offers to create the admin.
    first = page.locator(".wb-first-run")
    first.get_by_label("Name").fill("alice")
    first.get_by_label("Password").fill(ADMIN_PW)
    first.get_by_label("Repeat").fill(ADMIN_PW)
    shot(page, served, "first-run", 800)
    page.get_by_role("button", name="Create admin").click()
    page.get_by_text("logged in as alice").first.wait_for()
    accounts = accounts_for(served.settings)
    alice = accounts.user("alice")
    assert alice.can("admin") and not alice.must_change_password
    page.get_by_role("button", name="Log out").click()
    page.get_by_text("logged out").wait_for()
    # The admin adds bob with a one-time password (as `workbench users add` does): bob must change it.
    accounts.add_user("bob", ONE_TIME, ["trade_paper"], must_change_password=True, actor=alice)
    page.locator(".wb-username input").fill("bob")
    page.locator(".wb-password input").fill(ONE_TIME)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("choose your own password now").wait_for()
    assert page.get_by_text("logged in as bob").count() == 0  # not in the app yet
    page.locator(".wb-new-password input").fill(BOB_PW)
    page.locator(".wb-new-password2 input").fill(BOB_PW)
    shot(page, served, "forced-password-change", 800)
    page.get_by_role("button", name="Set new password").click()
    page.get_by_text("logged in as bob").first.wait_for()
    assert not accounts.user("bob").must_change_password
    # Keys: testnet keys for binance, tested against the fake venue, then shown masked and verified.
    tab(page, "Keys")
    broker = page.locator(".wb-keys-broker select")
    broker.select_option(label=next(o for o in broker.locator("option").all_inner_texts() if "binance" in o.lower()))
    page.get_by_text("ccxt:binance trades its TESTNET").wait_for()
    page.locator(".wb-key-api-key input").fill(fake.api_key)
    page.locator(".wb-key-secret input").fill(fake.secret)
    page.get_by_role("button", name="Save keys").click()
    page.get_by_text("stored 2 key(s) for ccxt:binance").wait_for()
    page.get_by_role("button", name="Test keys").click()
    page.locator(".wb-keys-message", has_text="10,000.00 USDT").wait_for(timeout=90_000)
    table = page.locator(".wb-keys-table")
    table.get_by_text("never", exact=True).first.wait_for(state="detached")  # the table follows the notice
    text = table.inner_text()
    assert fake.api_key not in text and fake.secret not in text and "never" not in text  # masked; verified
    assert time.strftime("%Y-%m-%d", time.gmtime()) in text  # when it was last verified
    shot(page, served, "keys-tested", 1280)
    # Models: the demo model, its verdict in words and its metrics beside the baselines.
    tab(page, "Models")
    picker = page.locator(".wb-model-picker select")
    picker.locator("option", has_text="v1 ·").first.wait_for(state="attached")  # filled as the tab opens
    label = next(o for o in picker.locator("option").all_inner_texts() if o.replace("\xa0", " ").startswith("v1 ·"))
    picker.select_option(label=label)
    verdict = page.locator(".wb-model-verdict")
    verdict.locator("text=/edge/i").first.wait_for()
    metrics = page.locator(".wb-model-metrics")
    metrics.locator("text=baseline: momentum").wait_for()
    assert "this model" in metrics.inner_text()
    shot(page, served, "models", 1280)
    # Start (paper) with that model; the first cycle reaches the page.
    tab(page, "Start")
    model = page.locator(".wb-start-model select")
    model.locator("option", has_text="v1 ·").first.wait_for(state="attached")
    model.select_option(
        label=next(o for o in model.locator("option").all_inner_texts() if o.replace("\xa0", " ").startswith("v1 ·"))
    )
    page.get_by_label("Every (s)").fill("10")
    page.get_by_role("button", name="Start AI Trading").click()
    page.get_by_role("cell", name="PASS", exact=True).first.wait_for(timeout=120_000)
    store = Store(served.settings.store_url)
    end = time.monotonic() + 180
    while (store.latest_run() or {}).get("cycle", 0) < 1:
        assert time.monotonic() < end, "no first cycle within 180 s"
        time.sleep(0.5)
    run = store.latest_run()
    assert run["model_ref"].split()[0].endswith("/1") and run["environment"] == "paper"
    tab(page, "Live")
    page.locator(".wb-signals-caption", has_text="instruments").wait_for()
    page.locator(".wb-live", has_text=f"run {run['id']} ·").wait_for()
    shot(page, served, "first-cycle", 1280)
    assert served.outside == [], served.outside
