"""The models page over a real MLflow registry: a picker of versions (never free text), the verdict in
plain words (a random walk has NO edge), out-of-sample metrics beside the baselines, the backtest with
its equity curve, and Promote/Demote behind a confirmation, admins only, recorded with the user."""

from __future__ import annotations

import html

import ipywidgets as w
import pytest

from tests.kit.users import PASSWORD, trader
from tests.unit.dashboard.pages import logged_in, open_tab
from workbench.errors import Cancelled

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mlflow on SQLAlchemy 2.1


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home whose lake holds a random walk, with v1 (champion) and v2 (challenger) trained on it."""
    from tests.unit.features.research_kit import random_walk_panel
    from workbench.config import load_settings
    from workbench.data.lake import Lake
    from workbench.models.registry import Registry
    from workbench.models.training import train

    settings = load_settings(tmp_path_factory.mktemp("models-page-home"))
    settings.ensure_dirs()
    panel = random_walk_panel(n_bars=400, symbols=("SYN-A", "SYN-B", "SYN-C"))
    Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    result = train(panel, params={"n_estimators": 20}, validation="walk_forward", n_folds=3)
    reg = Registry(settings)
    reg.register(result)
    reg.register(result)
    trader(settings, "chief")  # the first account: admin
    trader(settings, "junior")  # trade_paper only
    return settings


def _reset(settings) -> None:
    from workbench.models.registry import Registry

    reg = Registry(settings)
    reg.promote(1, "champion")
    reg.promote(2, "challenger")


def test_the_picker_lists_versions_with_their_verdict_beside_the_baselines(home, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    _reset(home)
    app = logged_in(home, "chief", PASSWORD)
    page = open_tab(app, "Models")
    assert isinstance(page.picker, w.Dropdown)
    labels = [label for label, _ in page.picker.options]
    assert [v for _, v in page.picker.options] == [2, 1] and "challenger" in labels[0] and "champion" in labels[1]
    assert all("NO edge" in label for label in labels)
    assert "NO EDGE: it does not beat its baselines out of sample" in page.verdict.value
    assert "has NO edge out of sample" in page.verdict.value and "3 symbols" in page.verdict.value
    assert "this model" in page.metrics.value and "baseline: momentum" in page.metrics.value
    assert "baseline: reversal" in page.metrics.value and "auc" in page.metrics.value
    assert "No backtest logged" in page.backtest.value
    # the start page offers the same registry: aliases, versions, the backup; the universe's size shown
    start = app.start_page
    values = [v for _, v in start.model.options]
    assert values[:2] == ["champion", "challenger"] and f"{home.model_name}/1" in values and values[-1] == "backup"
    start.model.value = "challenger"
    assert "3 symbols" in start.universe.value and "SYN-A" in start.universe.value


def test_promote_and_demote_need_a_confirmation_an_admin_and_are_audited(home, monkeypatch):
    from workbench.models.registry import Registry

    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    _reset(home)
    reg = Registry(home)
    junior = open_tab(logged_in(home, "junior", PASSWORD), "Models")
    junior.picker.value = 2
    assert junior.promote_button.disabled and junior.demote_button.disabled  # greyed out, with the reason
    assert "only an admin" in junior.promote_button.tooltip
    junior.promote_button.click()  # a click the page let through anyway is refused in the kernel
    assert junior.confirm_box.layout.display is None and "Make v2 the champion?" in junior.confirm_text.value
    junior.confirm_button.click()
    assert "lacks the 'admin' permission" in junior.notice.text and reg.load("champion").ref.version == 1

    app = logged_in(home, "chief", PASSWORD)
    page = open_tab(app, "Models")
    page.picker.value = 2
    assert not page.promote_button.disabled and not page.demote_button.disabled
    page.promote_button.click()
    assert reg.load("champion").ref.version == 1  # nothing before the confirmation
    page.cancel_button.click()
    assert page.confirm_box.layout.display == "none" and "nothing changed" in page.notice.text
    page.confirm_button.click()  # a stale Confirm after Cancel does nothing
    assert reg.load("champion").ref.version == 1
    page.promote_button.click()
    page.confirm_button.click()
    assert reg.load("champion").ref.version == 2 and not reg.has("challenger")
    assert "v2 is now the champion" in page.notice.text and "champion" in page.picker.options[0][0]
    page.demote_button.click()
    assert "Take 'champion' away from v2?" in html.unescape(page.confirm_text.value)
    page.confirm_button.click()
    assert not reg.has("champion") and "v2 is no longer the champion" in page.notice.text
    page.demote_button.click()
    page.confirm_button.click()
    assert page.notice.kind == "error" and "is not the champion" in page.notice.text
    audit = [(r["action"], r["detail"]) for r in app.session.accounts.audit_log(20, user=app.user)]
    assert ("model_demote", f"{home.model_name}/2 champion") in audit
    assert ("model_promote", f"{home.model_name}/2 champion") in audit


def _gated(monkeypatch):
    """The real backtest, held back until the test opens the gate (to look at the page while it runs)."""
    import threading

    import workbench.backtest.evaluate as evaluate

    gate, real = threading.Event(), evaluate.backtest_model

    def held(*a, **kw):
        assert gate.wait(120), "the test never opened the gate"
        return real(*a, **kw)

    monkeypatch.setattr(evaluate, "backtest_model", held)
    return gate


def test_run_backtest_runs_in_the_background_then_draws_the_equity_and_logs_the_summary(home, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    _reset(home)
    gate = _gated(monkeypatch)
    page = open_tab(logged_in(home, "chief", PASSWORD), "Models")
    page.picker.value = 1
    assert len(page.chart.data) == 0 and page.chart_box.layout.display == "none"
    page.backtest_button.click()  # returns at once: the backtest is in a worker thread
    job = page.job
    assert job is not None and job.running and not job.future.done()
    assert page.backtest_button.disabled and page.backtest_cancel.layout.display is None
    assert "backtest of v1 running for" in page.backtest_progress.value and page.notice.kind == "info"
    page.picker.value = 2  # the page stays usable meanwhile
    assert "NO EDGE" in page.verdict.value
    page.backtest_button.click()  # (disabled in the browser; a second call is refused, the first kept)
    assert page.job is job and "a backtest is running" in page.notice.text
    page.picker.value = 1
    gate.set()
    assert job.wait(timeout=300)
    assert page.notice.kind == "ok", page.notice.text
    assert not page.backtest_button.disabled and page.backtest_cancel.layout.display == "none"
    assert page.backtest_progress.value == ""
    names = [t.name for t in page.chart.data]
    assert page.chart_box.layout.display is None
    assert names[:2] == ["strategy", "buy & hold"] and len(page.chart.data[0].y) > 50
    assert "v1: out-of-sample backtest" in page.chart.layout.title.text
    summary = page.backtest.value
    assert "No backtest logged" not in summary and "total return" in summary and "buy &amp; hold" in summary
    assert "max drawdown" in summary and "%" in summary and html.escape(page.notice.text) in summary  # the verdict


def test_a_cancelled_backtest_draws_nothing_and_a_failing_one_says_why_on_the_page(home, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    _reset(home)
    gate = _gated(monkeypatch)
    page = open_tab(logged_in(home, "chief", PASSWORD), "Models")
    page.picker.value = 2
    page.backtest_button.click()
    job = page.job
    page.backtest_cancel.click()
    assert not job.running and not page.backtest_button.disabled and page.backtest_cancel.layout.display == "none"
    assert page.notice.kind == "warn" and "backtest cancelled: it stops at the end of the step" in page.notice.text
    gate.set()
    exc = job.future.exception(timeout=300)  # the worker stops at its first step boundary
    assert isinstance(exc, Cancelled) and "nothing was logged" in str(exc), exc
    job.poll()
    assert len(page.chart.data) == 0 and page.chart_box.layout.display == "none"  # its result was dropped
    assert "cancelled" in page.notice.text
    registry = page.catalog.registry
    logged = registry.client.get_run(registry.load("2").ref.run_id).data.metrics
    assert not [k for k in logged if k.startswith("backtest_")], logged  # nothing half-saved on the model
    assert not list((home.home / "reports").glob("backtest-*-v2-*"))  # and no report written
    # a backtest that fails (here: the lake's bars are gone) says so on the page, and the page recovers
    lake = home.lake_dir
    moved = lake.with_name(lake.name + "-away")
    lake.rename(moved)
    try:
        page.backtest_button.click()
        assert page.job.wait(timeout=300)
    finally:
        moved.rename(lake)
    assert page.notice.kind == "error" and "backtest of v2 failed" in page.notice.text, page.notice.text
    assert not page.backtest_button.disabled and page.backtest_progress.value == ""


def test_the_command_line_promote_needs_a_logged_in_admin_and_is_audited(home, monkeypatch):
    """As on the page: `workbench models promote` without a session, or as a non-admin, is refused with the
    access exit code and changes nothing; an admin's promotion is recorded with the user."""
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.cli_exits import ExitCode
    from workbench.models.registry import Registry
    from workbench.security.access import accounts_for

    _reset(home)
    reg, accounts = Registry(home), accounts_for(home)
    argv = ["models", "promote", "2", "--home", str(home.home)]
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.setenv("WORKBENCH_TOKEN", "not-a-session")
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == int(ExitCode.ACCESS), out.output
    assert reg.load("champion").ref.version == 1
    junior_token, _ = accounts.login("junior", PASSWORD)
    monkeypatch.setenv("WORKBENCH_TOKEN", junior_token)
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == int(ExitCode.ACCESS) and "junior lacks the 'admin' permission" in out.output, out.output
    assert reg.load("champion").ref.version == 1
    junior = accounts.user("junior")
    assert ("model_promote", False) in [(r["action"], bool(r["ok"])) for r in accounts.audit_log(5, user=junior)]
    chief_token, _ = accounts.login("chief", PASSWORD)
    monkeypatch.setenv("WORKBENCH_TOKEN", chief_token)
    out = CliRunner().invoke(app, argv)
    assert out.exit_code == 0 and "v2 is now champion" in out.output, out.output
    assert reg.load("champion").ref.version == 2
    chief = accounts.user("chief")
    rows = [(r["action"], r["detail"], bool(r["ok"])) for r in accounts.audit_log(5, user=chief)]
    assert ("model_promote", f"{home.model_name}/2 champion", True) in rows
