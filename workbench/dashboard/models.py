"""The models page: pick a registered model version (never free text) and see its evidence.

Why evidence first: a model is worth trading only if it beats simple baselines out of sample. The
page shows the walk-forward verdict in plain words ("NO edge" where that is the truth), the
out-of-sample metrics beside the momentum/reversal/majority baselines on the same folds, the last
backtest's summary, and — on request, since it trades every out-of-sample bar — the backtest's
equity curve beside buy & hold and the baseline. Promote/Demote move the champion/challenger aliases
after a confirmation; only an admin may (the champion is what every user's runs trade by default),
and each is recorded in the audit with the user.

The backtest runs in a worker thread (``jobs.BackgroundJob``): the page stays usable, shows how long
it has been running, offers Cancel, and shows an error on the page when it fails.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.dashboard.common import Notice, frame_to_html
from workbench.dashboard.jobs import BackgroundJob
from workbench.dashboard.live_charts import figure_widget, keep_state, plain_values
from workbench.dashboard.session import PageSession
from workbench.errors import WorkbenchError

__all__ = ["BACKUP", "ModelCatalog", "ModelsPage", "backtest_table", "comparison_rows"]

BACKUP = "backup"


@dataclass(frozen=True)
class Version:
    version: int
    aliases: tuple[str, ...]
    kind: str
    created: pd.Timestamp
    metrics: dict[str, float]
    run_id: str


class ModelCatalog:
    """The registry as the pages read it: versions listed once per refresh, models loaded once each."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = settings.model_name
        self._registry: Any = None
        self._loaded: dict[int, Any] = {}
        self.versions: list[Version] = []

    @property
    def registry(self) -> Any:
        """Opened on first use: a fresh home's MLflow store takes seconds to create, not needed to log in."""
        if self._registry is None:
            from workbench.models.registry import Registry

            self._registry = Registry(self.settings)
        return self._registry

    def refresh(self) -> list[Version]:
        uri = str(self.settings.tracking_uri)
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            self.versions = []  # no tracking store yet, so nothing registered: creating one takes seconds
            return self.versions
        table = self.registry.list()
        self.versions = [
            Version(
                int(r.version),
                tuple(a for a in str(r.aliases or "").split(", ") if a),
                str(r.kind or "?"),
                pd.Timestamp(r.created),
                dict(r.metrics or {}),
                str(r.run_id or ""),
            )
            for r in table.itertuples()
        ]
        return self.versions

    def load(self, version: int) -> Any:
        if version not in self._loaded:
            self._loaded[version] = self.registry.load(f"{self.name}/{version}")
        return self._loaded[version]

    def ref(self, version: int) -> str:
        return f"{self.name}/{version}"

    def options(self) -> list[tuple[str, int]]:
        """Newest first: "v3 · lgbm · champion · NO edge · 2026-05-01"."""
        out = []
        for v in sorted(self.versions, key=lambda v: -v.version):
            edge = {1.0: "edge", 0.0: "NO edge"}.get(v.metrics.get("beats_baselines", -1.0), "no verdict")
            alias = f" · {', '.join(v.aliases)}" if v.aliases else ""
            out.append((f"v{v.version} · {v.kind}{alias} · {edge} · {v.created:%Y-%m-%d %H:%M}", v.version))
        return out

    def run_choices(self) -> list[tuple[str, str]]:
        """What a live run may be started with: the aliases, each version, and the rule-based backup."""
        out = []
        for alias in ("champion", "challenger"):
            held = next((v for v in self.versions if alias in v.aliases), None)
            if held is not None:
                out.append((f"{alias} (v{held.version} · {held.kind})", alias))
        for label, version in self.options():
            out.append((label, self.ref(version)))
        out.append(("backup — rule-based, untrained, no out-of-sample record", BACKUP))
        return out


def comparison_rows(metrics: dict[str, float]) -> pd.DataFrame:
    """Out-of-sample scores of the model beside each baseline (same folds), for the keys it has."""
    from workbench.models.baselines import BASELINES
    from workbench.models.verdict import TABLE_KEYS

    keys = [k for k in TABLE_KEYS if k in metrics]
    rows = [{"": "this model", **{k: metrics[k] for k in keys}}]
    for b in BASELINES:
        if any(f"{b}_{k}" in metrics for k in keys):
            rows.append({"": f"baseline: {b}", **{k: metrics.get(f"{b}_{k}", float("nan")) for k in keys}})
    return pd.DataFrame(rows)


def _fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "—"
    return {"pct": f"{value:.2%}", "int": f"{value:,.0f}", "money": f"{value:,.2f}"}.get(unit, f"{value:.2f}")


def backtest_table(nums: dict[str, float]) -> pd.DataFrame:
    """Backtest metrics (``backtest_`` prefix removed) as rows, strategy | buy & hold | baseline model."""
    from workbench.backtest.report import METRICS

    rows = []
    for key, (label, unit) in METRICS.items():
        cols = {"strategy": nums.get(key), "buy & hold": nums.get(f"buy_hold_{key}"),
                "baseline model": nums.get(f"baseline_{key}")}  # fmt: skip
        if any(x is not None for x in cols.values()):
            rows.append({"metric": label, **{c: _fmt(x, unit) for c, x in cols.items()}})
    return pd.DataFrame(rows)


def _verdict(model: Any, metrics: dict[str, float]) -> tuple[str, bool | None]:
    from workbench.models.verdict import verdict_text

    if "n_folds" in metrics and "beats_baselines" in metrics:
        return verdict_text(model.kind, model.label, metrics), bool(metrics["beats_baselines"])
    return model.describe(), None


class ModelsPage:
    def __init__(self, settings: Settings, session: PageSession, catalog: ModelCatalog | None = None):
        self.settings = settings
        self.session = session
        self.catalog = catalog or ModelCatalog(settings)
        self.notice = Notice("wb-models-message")
        self.picker = w.Dropdown(options=[], description="Model")
        self.picker.add_class("wb-model-picker")
        self.picker.layout.width = "min(640px, 95%)"
        self.verdict = w.HTML()
        self.verdict.add_class("wb-model-verdict")
        self.metrics = w.HTML()
        self.metrics.add_class("wb-model-metrics")
        self.backtest = w.HTML()
        self.backtest.add_class("wb-model-backtest")
        self.backtest_button = w.Button(description="Run backtest", icon="line-chart")
        self.backtest_button.add_class("wb-model-run-backtest")
        self.backtest_button.on_click(self.run_backtest)
        self.backtest_cancel = w.Button(description="Cancel backtest", icon="times")
        self.backtest_cancel.add_class("wb-model-cancel-backtest")
        self.backtest_cancel.on_click(self.cancel_backtest)
        self.backtest_progress = w.HTML()
        self.backtest_progress.add_class("wb-model-backtest-progress")
        self.backtest_bar = w.HBox([self.backtest_button, self.backtest_cancel, self.backtest_progress])
        self.backtest_cancel.layout.display = "none"
        self.job: BackgroundJob[Any] | None = None  # the backtest running now, if any
        self._stop = threading.Event()  # set by Cancel: the running backtest stops at its next step
        self.chart = self._figure()
        self.chart_box = w.Box([self.chart])  # hidden until a backtest has been run: no empty axes
        self.chart_box.layout.display = "none"
        self.chart_box.add_class("wb-model-chart")
        self.alias = w.Dropdown(options=["champion", "challenger"], value="champion", description="Alias")
        self.promote_button = w.Button(description="Promote", button_style="warning", icon="arrow-up")
        self.promote_button.add_class("wb-model-promote")
        self.demote_button = w.Button(description="Demote", icon="arrow-down")
        self.demote_button.add_class("wb-model-demote")
        self.confirm_text = w.HTML()
        self.confirm_button = w.Button(description="Confirm", button_style="danger")
        self.confirm_button.add_class("wb-model-confirm")
        self.cancel_button = w.Button(description="Cancel")
        self.cancel_button.add_class("wb-model-cancel")
        self.confirm_box = w.HBox([self.confirm_text, self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self._pending: tuple[str, int, str] | None = None  # (promote|demote, version, alias) awaiting Confirm
        self.promote_button.on_click(lambda _: self._ask("promote"))
        self.demote_button.on_click(lambda _: self._ask("demote"))
        self.confirm_button.on_click(self.confirm)
        self.cancel_button.on_click(self.cancel)
        self.picker.observe(lambda _: self.show(), names="value")
        self.widget = w.VBox(
            [
                w.HTML("<h3>Models</h3>"),
                self.picker,
                self.verdict,
                w.HTML("<h4 style='margin:8px 0 2px'>Out of sample, beside the baselines (same folds)</h4>"),
                self.metrics,
                w.HTML("<h4 style='margin:8px 0 2px'>Backtest</h4>"),
                self.backtest,
                self.backtest_bar,
                self.chart_box,
                w.HBox([self.alias, self.promote_button, self.demote_button]),
                self.confirm_box,
                self.notice.widget,
            ]
        )
        self.widget.add_class("wb-models-page")

    @staticmethod
    def _figure() -> Any:
        import plotly.graph_objects as go

        # the dashboard's shared plotly bundle: plotly's own widget JavaScript can miss anywidget's
        # 2-second start-up window on a busy page and then never draw (see live_charts)
        fig = figure_widget(go.Figure(layout={"height": 320, "margin": {"l": 50, "r": 10, "t": 30, "b": 30}}))
        fig.update_layout(title="backtest equity (run it to see)", yaxis_title="equity", legend={"orientation": "h"})
        return fig

    # ---- reading ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-list the registry (a version may have been trained or promoted elsewhere)."""
        if not self.catalog.versions:
            self.verdict.value = "<i>reading the model registry…</i>"
        try:
            self.catalog.refresh()
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        keep = self.picker.value
        opts = self.catalog.options()
        self.picker.options = opts
        values = [v for _, v in opts]
        if keep in values:
            self.picker.value = keep
        elif values:
            self.picker.value = values[0]
        if not values:
            self.verdict.value = (
                "<i>No model is registered yet: train one in notebook 03 or with `workbench train`.</i>"
            )
            self.metrics.value = self.backtest.value = ""
        else:
            self.show()

    def _admin_buttons(self) -> None:
        """Promote/Demote greyed out, with the reason, for a user who may not use them (the click
        would be refused anyway: ``confirm`` checks the permission in the store again)."""
        user = self.session.user
        admin = user is not None and user.can("admin")
        for b in (self.promote_button, self.demote_button):
            b.disabled = not admin
            b.tooltip = "" if admin else "only an admin may promote or demote a model"

    def _selected(self) -> Any:
        return next((v for v in self.catalog.versions if v.version == self.picker.value), None)

    def show(self) -> None:
        self._admin_buttons()
        v = self._selected()
        if v is None:
            return
        try:
            model = self.catalog.load(v.version)
        except WorkbenchError as e:
            self.verdict.value = f"<b style='color:red'>{html.escape(str(e))}</b>"
            return
        text, edge = _verdict(model, v.metrics)
        colour = {True: "#2e7d32", False: "#c62828", None: "#555"}[edge]
        head = {
            True: "Edge out of sample",
            False: "NO EDGE: it does not beat its baselines out of sample",
            None: "No walk-forward verdict recorded",
        }[edge]
        uni = model.universe or {}
        self.verdict.value = (
            f"<div style='border-left:6px solid {colour};padding:4px 10px'><b style='color:{colour}'>{head}</b>"
            f"<br>{html.escape(text)}<br><span class='wb-hint'>{html.escape(str(model.ref))} · "
            f"{len(uni.get('symbols', []))} symbols on {html.escape(str(uni.get('exchange', '?')))} "
            f"{html.escape(str(uni.get('timeframe', '')))} · horizon {model.horizon}</span></div>"
        )
        table = comparison_rows(v.metrics)
        shown = table.assign(**{c: table[c].map(lambda x: "—" if x != x else f"{x:.4f}") for c in table.columns[1:]})
        self.metrics.value = frame_to_html(shown, "no out-of-sample metrics recorded")
        self.backtest.value = self._backtest_summary(v)

    def _backtest_summary(self, v: Version) -> str:
        """The last logged backtest: its verdict sentence and the strategy beside buy & hold and the
        baseline model, with units ("—" where a figure is undefined, e.g. a Sharpe without trades)."""
        nums = {k.removeprefix("backtest_"): x for k, x in v.metrics.items() if k.startswith("backtest_")}
        if not nums:
            return "<i>No backtest logged for this version yet: press Run backtest.</i>"
        tags = self.catalog.registry.run_tags(v.run_id) if v.run_id else {}
        return f"<div>{html.escape(tags.get('backtest_verdict', ''))}</div>" + frame_to_html(backtest_table(nums))

    # ---- actions ------------------------------------------------------------------------------
    def run_backtest(self, _: object = None) -> None:
        """Trade the version's walk-forward out-of-sample predictions (logged to its run) and plot it,
        in a worker thread: this returns at once and the chart appears when the backtest ends."""
        from workbench.backtest.evaluate import backtest_model

        v = self._selected()
        if v is None:
            self.notice.say("pick a model first", "error")
            return
        if self.job is not None and self.job.running:  # one backtest at a time: it can take minutes
            self.notice.say("a backtest is running: wait for it or cancel it", "warn")
            return
        try:
            self.session.current()
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        ref, version = self.catalog.ref(v.version), v.version
        self.backtest_button.disabled = True
        self.backtest_cancel.layout.display = None
        self.notice.say(f"backtesting v{version} on its out-of-sample bars…", "info")
        self._tick(version, 0.0)
        stop = self._stop = threading.Event()
        self.job = BackgroundJob(
            lambda: backtest_model(self.settings, ref, cancel=stop),
            on_done=lambda rep: self._backtest_done(version, rep),
            on_error=lambda e: self._backtest_failed(version, e),
            on_tick=lambda s: self._tick(version, s),
            name=f"backtest-v{version}",
        )

    def _tick(self, version: int, elapsed_s: float) -> None:
        self.backtest_progress.value = (
            f"<span class='wb-hint'><i class='fa fa-spinner fa-spin'></i> backtest of v{version} running for "
            f"{elapsed_s:.0f} s — the page stays usable</span>"
        )

    def _idle(self) -> None:
        self.backtest_button.disabled = False
        self.backtest_cancel.layout.display = "none"
        self.backtest_progress.value = ""

    def cancel_backtest(self, _: object = None) -> None:
        """Stop waiting for the running backtest: its result will not be drawn."""
        if self.job is None or not self.job.running:
            return
        self._stop.set()
        self.job.cancel()
        self._idle()
        self.notice.say(
            "backtest cancelled: it stops at the end of the step it is in (a load, a simulation or the report) "
            "and writes and logs nothing to the model's record",
            "warn",
        )

    def _backtest_failed(self, version: int, e: BaseException) -> None:
        self._idle()
        if isinstance(e, WorkbenchError):
            self.notice.say(f"backtest of v{version} failed: {e}", "error")
        else:  # a bug: still on the page, with what it was
            self.notice.say(f"backtest of v{version} failed unexpectedly: {type(e).__name__}: {e}", "error")

    def _backtest_done(self, version: int, rep: Any) -> None:
        self._idle()
        curves = {"strategy": rep.result.equity, "buy & hold": rep.buy_and_hold.equity}
        if rep.baseline is not None:
            curves["baseline model"] = rep.baseline.equity
        with self.chart.batch_update():
            self.chart.data = ()
            for name, s in curves.items():
                self.chart.add_scatter(x=plain_values(s.index), y=plain_values(s.to_numpy()), mode="lines", name=name)
            self.chart.layout.title = f"v{version}: out-of-sample backtest equity"
        keep_state(self.chart)  # the page draws from the synced state even if it missed the edits
        self.chart_box.layout.display = None
        self.notice.say(rep.verdict, "ok")
        self.refresh()

    def _ask(self, action: str) -> None:
        v = self._selected()
        if v is None:
            self.notice.say("pick a model first", "error")
            return
        alias = str(self.alias.value)
        if action == "promote":
            text = f"Make v{v.version} the {alias}? Runs started with '{alias}' will trade it."
        else:
            text = f"Take '{alias}' away from v{v.version}? Runs started with '{alias}' will find no model."
        self._pending = (action, v.version, alias)
        self.confirm_text.value = f"<b>{html.escape(text)}</b>"
        self.confirm_box.layout.display = None

    def cancel(self, _: object = None) -> None:
        self._pending = None
        self.confirm_box.layout.display = "none"
        self.notice.say("nothing changed", "info")

    def confirm(self, _: object = None) -> None:
        if self._pending is None:
            return
        action, version, alias = self._pending
        self._pending = None
        self.confirm_box.layout.display = "none"
        reg = self.catalog.registry
        try:
            user = self.session.current("admin")
            if action == "promote":
                reg.promote(version, alias=alias)
            else:
                reg.demote(version, alias=alias)
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.session.accounts.record(user, f"model_{action}", True, f"{self.catalog.ref(version)} {alias}")
        done = "is now" if action == "promote" else "is no longer"
        self.notice.say(f"v{version} {done} the {alias}", "ok")
        self.refresh()
