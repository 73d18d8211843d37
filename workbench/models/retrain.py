"""Retraining: pull new data, retrain, judge the challenger against the champion, promote or refuse.

Why a notebook run by papermill: the retrain is a research step the quant can open and read; the
executed notebook is kept under ``data/retrain/<timestamp>.ipynb`` as the record of what was done.
The notebook is thin: it calls ``prepare_universe`` and ``retrain_and_decide`` here.

Promotion rule: the challenger (the best of the retrained kinds, by ``promote_metric`` out of
sample) and the current champion are scored on the *same* window — the challenger's last
walk-forward test window, moved later if needed so it also lies after the champion's last training
label — and the challenger becomes champion only if it is better by more than ``promote_margin``.
Promotion is the last thing a run does, so a run that fails anywhere leaves the champion untouched;
the failure and its reason go to ``data/retrain/history.jsonl``. A file lock keeps two runs (CLI or
scheduler) from ever overlapping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.errors import ConfigError, NoModelError
from workbench.notebook import bundled

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = [
    "RetrainDecision",
    "RetrainOutcome",
    "NOTEBOOK_NAME",
    "prepare_universe",
    "evaluate_on_window",
    "retrain_and_decide",
    "write_decision",
    "run_retrain",
    "cron_trigger",
    "make_scheduler",
    "run_scheduler",
    "retrain_dir",
    "lock_path",
    "history",
]

NOTEBOOK_NAME = "05_retrain.ipynb"  # shipped in the package (workbench.notebook.bundled), so an install can retrain
_MIN_WINDOW_ROWS = 30


@dataclass(frozen=True)
class RetrainDecision:
    """What the notebook decided (written as JSON for ``run_retrain``)."""

    promoted: bool
    reason: str
    metric: str
    margin: float
    challenger_version: int
    challenger_kind: str
    challenger_score: float
    champion_version: int | None
    champion_score: float | None
    window_start: str | None
    window_end: str | None
    table: dict = field(default_factory=dict)  # kind/champion → metric on the common window


@dataclass(frozen=True)
class RetrainOutcome:
    """What ``run_retrain`` reports: status is promoted, refused, failed or skipped."""

    status: str
    promoted: bool
    reason: str
    notebook: str | None
    started: str
    seconds: float
    decision: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("promoted", "refused")


def retrain_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "retrain"


def lock_path(settings: Settings) -> Path:
    return retrain_dir(settings) / "retrain.lock"


def prepare_universe(
    settings: Settings,
    exchange: str = "",
    timeframe: str = "",
    symbols: list[str] | None = None,
    source: str = "",
    start=None,
    end=None,
) -> tuple[Panel, dict, str]:
    """(panel, lineage, note): pull new bars from ``source`` if given, then read the universe from the lake.

    ``exchange=""`` means the current champion's universe, or the demo universe (pulled if the lake
    lacks it) when there is no champion.
    """
    from workbench.data.ingest import pull, source_from_spec
    from workbench.data.lake import Lake
    from workbench.models.training import panel_lineage

    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    note = ""
    if not exchange:
        from workbench.models.registry import Registry

        registry = Registry(settings)
        if registry.has("champion"):
            uni = registry.load("champion").universe
            exchange, timeframe = uni["exchange"], timeframe or uni["timeframe"]
            symbols = list(symbols or uni["symbols"])
            note = f"the champion's universe ({exchange} {timeframe}, {len(symbols)} symbols)"
    if not exchange:
        from workbench.data.demo import ensure_demo_data

        demo = ensure_demo_data(settings)
        exchange, timeframe = demo.exchange, demo.timeframe
        symbols = list(symbols or demo.symbols)
        note = demo.label
    timeframe = timeframe or settings.demo.timeframe
    if source:
        src = source_from_spec(source, settings)
        wanted = list(symbols or src.symbols())
        report = pull(lake, src, wanted, timeframe, progress=False)
        note = (note + "; " if note else "") + f"pulled {report.total_new} new bars from {source}"
        if report.errors and not report.new_rows:
            note += f" (errors: {report.errors})"
    syms = list(symbols) if symbols else None
    from workbench.data.calendars import Calendars

    panel = lake.load_panel(exchange, timeframe, syms, start, end).with_calendars(Calendars.from_settings(settings))
    return panel, panel_lineage(lake, exchange, timeframe, syms, start, end), note


def evaluate_on_window(model, panel: Panel, start, end, horizon: int, label: str | None = None) -> dict[str, float]:
    """``model``'s scores on labelled rows with start ≤ ts ≤ end (features from the panel's full history):
    the probability scores and the mean daily rank IC with its t-statistic, on the model's own label."""
    from workbench.features.labels import forward_return, training_label
    from workbench.models.evaluation import daily_ic, ic_summary, score
    from workbench.models.inference import predict_panel

    label = label or getattr(model, "label", None) or (getattr(model, "meta", None) or {}).get("label", "sign")
    proba = predict_panel(model, panel).loc[start:end]
    y = training_label(panel, label, horizon).unstack("symbol").reindex_like(proba)
    fwd = forward_return(panel, horizon).reindex_like(proba)
    ts = np.repeat(proba.index.to_numpy(), proba.shape[1])
    p, yy, ff = proba.to_numpy().ravel(), y.to_numpy(dtype=float).ravel(), fwd.to_numpy().ravel()
    ok = np.isfinite(p) & np.isfinite(yy)
    out = score(yy[ok], p[ok])
    out.update(ic_summary(daily_ic(p[ok], ff[ok], ts[ok]), horizon))
    out["n"] = float(ok.sum())
    return out


def _first_honest_ts(panel: Panel, train_end: str, horizon: int) -> pd.Timestamp | None:
    """First bar after the champion's last training label (train_end + horizon bars)."""
    pos = int(panel.index.searchsorted(pd.Timestamp(train_end), side="right")) + int(horizon)
    return panel.index[pos] if pos < len(panel.index) else None


def retrain_and_decide(
    settings: Settings,
    panel: Panel,
    kinds: list[str] | tuple[str, ...] | None = None,
    n_folds: int | None = None,
    metric: str | None = None,
    margin: float | None = None,
    lineage: dict | None = None,
    params: dict | None = None,
    horizon: int = 1,
    label: str = "sign",
) -> tuple[RetrainDecision, dict]:
    """Retrain ``kinds`` walk-forward, register the best as challenger, promote it if better by ``margin``.

    Returns the decision and the trained results (kind → TrainResult).
    """
    from workbench.models.evaluation import HIGHER_IS_BETTER, PROMOTABLE
    from workbench.models.registry import CHALLENGER, CHAMPION, Registry
    from workbench.models.training import better, compare

    cfg = settings.retrain
    kinds = tuple(kinds or cfg.kinds)
    metric = metric or cfg.promote_metric
    margin = float(cfg.promote_margin if margin is None else margin)
    if metric not in PROMOTABLE:
        raise ConfigError(
            f"promote metric {metric!r} is not one of {list(PROMOTABLE)} (pooled figures such as a "
            "rank IC over all dates at once cannot promote a model)"
        )
    results = compare(
        panel,
        kinds=kinds,
        ensemble=len(kinds) > 1,
        params=params,
        n_folds=int(n_folds or cfg.n_folds),
        lineage=lineage,
        horizon=horizon,
        label=label,
    )
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    best = max(results.values(), key=lambda r: sign * np.nan_to_num(r.metrics[metric], nan=-np.inf * sign))
    registry = Registry(settings)
    try:
        champion = registry.load(CHAMPION)
    except NoModelError:
        champion = None
    ref = registry.register(best, alias=CHALLENGER)
    start = pd.Timestamp(best.split["test_start"])
    end = panel.index[-1]
    table: dict[str, float | None] = {}
    if champion is None:
        registry.promote(ref.version, CHAMPION)
        reason = f"no champion was registered: challenger v{ref.version} ({best.kind}) becomes champion"
        decision = RetrainDecision(
            True,
            reason,
            metric,
            margin,
            ref.version,
            best.kind,
            float(best.metrics[metric]),
            None,
            None,
            None,
            None,
            {},
        )
    else:
        honest = _first_honest_ts(panel, champion.split.get("train_end", start.isoformat()), champion.horizon)
        if honest is not None and honest > start:
            start = honest
        chal = evaluate_on_window(best, panel, start, end, best.horizon, best.label)
        champ = (
            evaluate_on_window(champion, panel, start, end, best.horizon, best.label)
            if honest is not None
            else {"n": 0.0}
        )
        table = {
            f"challenger v{ref.version} ({best.kind})": chal.get(metric),
            f"champion v{champion.ref.version} ({champion.kind})": champ.get(metric),
        }
        if champ["n"] < _MIN_WINDOW_ROWS or chal["n"] < _MIN_WINDOW_ROWS:
            promoted = False
            reason = (
                f"refused: the common out-of-sample window ({start.date()} … {end.date()}) has only "
                f"{int(min(champ['n'], chal['n']))} labelled rows; pull newer data and retry"
            )
        else:
            promoted = better(metric, chal[metric], champ[metric], margin)
            verb = "promoted" if promoted else "refused"
            cmp_word = "beats" if promoted else "does not beat"
            reason = (
                f"{verb}: challenger v{ref.version} ({best.kind}) {metric} {chal[metric]:.4f} {cmp_word} champion "
                f"v{champion.ref.version} ({champion.kind}) {champ[metric]:.4f} by more than {margin:g} on "
                f"{start.date()} … {end.date()} ({int(chal['n'])} rows)"
            )
        decision = RetrainDecision(
            promoted,
            reason,
            metric,
            margin,
            ref.version,
            best.kind,
            float(chal[metric]),
            champion.ref.version,
            float(champ.get(metric, np.nan)),
            start.isoformat(),
            end.isoformat(),
            table,
        )
        # Record the comparison on the challenger's run before any alias moves.
        registry.log_report(
            ref.run_id,
            {
                "retrain_challenger_" + metric: decision.challenger_score,
                "retrain_champion_" + metric: decision.champion_score,
                "retrain_decision": reason,
            },
        )
        if promoted:
            registry.promote(ref.version, CHAMPION)
    return decision, results


def write_decision(decision: RetrainDecision, path: str | Path | None) -> None:
    if path:
        Path(path).write_text(json.dumps(asdict(decision), default=str, indent=1))


def _append_history(settings: Settings, outcome: RetrainOutcome) -> None:
    d = retrain_dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "history.jsonl", "a") as fh:
        fh.write(json.dumps(asdict(outcome), default=str) + "\n")


def history(settings: Settings) -> pd.DataFrame:
    """Every retrain run so far (status, reason, notebook), oldest first."""
    path = retrain_dir(settings) / "history.jsonl"
    if not path.exists():
        return pd.DataFrame(columns=["status", "promoted", "reason", "notebook", "started", "seconds"])
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def _error_text(e: BaseException) -> str:
    ename, evalue = getattr(e, "ename", None), getattr(e, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(e).__name__}: {e}"


def run_retrain(
    settings: Settings,
    parameters: dict[str, Any] | None = None,
    output_dir: str | Path | None = None,
    *,
    notebook: str | Path | None = None,
    kernel_name: str = "python3",
) -> RetrainOutcome:
    """Execute the shipped ``05_retrain.ipynb`` (or ``notebook``) with papermill; keep the executed copy; say what happened.

    ``parameters`` override the notebook's parameters cell (exchange, timeframe, symbols, start, end,
    source, kinds, n_folds, promote_metric, promote_margin, model_params). The run holds a file lock
    under ``data/retrain``; if another run holds it, this one is skipped (status "skipped").
    """
    import papermill as pm
    from filelock import FileLock, Timeout

    started = pd.Timestamp.now(tz="UTC")
    t0 = time.perf_counter()
    out_dir = Path(output_dir) if output_dir is not None else retrain_dir(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    retrain_dir(settings).mkdir(parents=True, exist_ok=True)
    source_nb = Path(notebook) if notebook is not None else bundled(NOTEBOOK_NAME)
    lock = FileLock(str(lock_path(settings)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        outcome = RetrainOutcome(
            "skipped",
            False,
            f"another retrain is running (lock {lock_path(settings)} is held)",
            None,
            started.isoformat(),
            time.perf_counter() - t0,
        )
        _append_history(settings, outcome)
        return outcome
    try:
        if not source_nb.exists():
            raise ConfigError(f"retrain notebook {source_nb} not found: check the path given")
        stamp = started.strftime("%Y%m%dT%H%M%S%fZ")
        out_nb = out_dir / f"{stamp}.ipynb"
        decision_path = out_dir / f"{stamp}.decision.json"
        params = {
            "home": str(settings.home),
            "mlflow_uri": settings.tracking_uri,
            "decision_path": str(decision_path),
            **(parameters or {}),
        }
        try:
            pm.execute_notebook(
                str(source_nb),
                str(out_nb),
                parameters=params,
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=False,
                cwd=str(out_dir),
                execution_timeout=int(settings.retrain.timeout_s),
            )
            decision = json.loads(decision_path.read_text())
            status = "promoted" if decision["promoted"] else "refused"
            outcome = RetrainOutcome(
                status,
                bool(decision["promoted"]),
                decision["reason"],
                str(out_nb),
                started.isoformat(),
                time.perf_counter() - t0,
                decision,
            )
        except Exception as e:  # the champion is untouched: promotion is the notebook's last step
            outcome = RetrainOutcome(
                "failed",
                False,
                f"retrain failed, champion unchanged: {_error_text(e)}",
                str(out_nb) if out_nb.exists() else None,
                started.isoformat(),
                time.perf_counter() - t0,
            )
        _append_history(settings, outcome)
        return outcome
    finally:
        lock.release()


_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expr: str):
    """A UTC ``CronTrigger`` for a standard five-field crontab line.

    APScheduler 3's ``from_crontab`` reads numeric days of week with 0 = Monday, unlike cron
    (0 = Sunday): "1-5" would run Tuesday to Saturday. Numbers are translated to names here.
    """
    import re

    from apscheduler.triggers.cron import CronTrigger

    parts = str(expr).split()
    if len(parts) != 5:
        raise ConfigError(
            f"cron expression {expr!r} is not valid (need 5 fields: minute hour day month weekday); e.g. '0 6 * * 1-5'"
        )
    minute, hour, day, month, dow = parts
    dow = re.sub(r"(?<![/\d])([0-7])(?!\d)", lambda m: _DOW[int(m.group(1))], dow)
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone="UTC")
    except ValueError as e:
        raise ConfigError(f"cron expression {expr!r} is not valid ({e}); use five fields, e.g. '0 6 * * 1-5'") from e


def make_scheduler(
    settings: Settings,
    cron: str | None = None,
    parameters: dict | None = None,
    *,
    background: bool = False,
    on_outcome: Callable[[RetrainOutcome], None] | None = None,
):
    """An APScheduler 3 scheduler with one job: ``run_retrain`` on ``cron`` (default settings.retrain.cron).

    ``max_instances=1`` and ``coalesce`` stop a slow run from stacking up; the file lock in
    ``run_retrain`` also keeps it apart from a manual ``workbench retrain``.
    """
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    expr = cron or settings.retrain.cron
    trigger = cron_trigger(expr)

    def job() -> RetrainOutcome:
        outcome = run_retrain(settings, parameters)
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    scheduler = (BackgroundScheduler if background else BlockingScheduler)(timezone="UTC")
    scheduler.add_job(
        job,
        trigger,
        id="workbench-retrain",
        name=f"workbench retrain ({expr})",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler


def run_scheduler(
    settings: Settings,
    cron: str | None = None,
    parameters: dict | None = None,
    on_outcome: Callable[[RetrainOutcome], None] | None = None,
) -> None:
    """Block, retraining on ``cron`` until interrupted (Ctrl-C)."""
    scheduler = make_scheduler(settings, cron, parameters, on_outcome=on_outcome)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
