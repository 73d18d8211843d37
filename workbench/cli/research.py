"""Research commands: ``train`` (walk-forward, registered in MLflow), ``retrain`` (papermill) and its
``scheduler``, ``backtest`` of a registered model's out-of-sample predictions, and the Dask ``sweep``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from workbench.cli.common import (
    HomeOpt,
    SchedulerOpt,
    WorkersOpt,
    _echo_coverage,
    _echo_folds,
    _echo_wrapped,
    _fail,
    _settings,
    _usage,
)
from workbench.cli.universe import UNIVERSE_FORMS, _model_subset, _train_universe, _universe
from workbench.cli_exits import ExitCode
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.models.kinds import TRAINABLE_KINDS

ModelKind = Enum("ModelKind", {k: k for k in TRAINABLE_KINDS}, type=str)  # type: ignore[misc]


def _train_and_register(
    settings: Settings,
    exchange: str,
    timeframe: str,
    symbols: list[str],
    kind: str,
    cluster: tuple[str | None, int | None] | None = None,
    distributed_fit: bool = False,
    **options,
):
    """Walk-forward train, log to MLflow and register; prints the per-fold table and the honest verdict.

    ``options`` go to ``training.train`` (label, horizon, feature_set, embargo, n_folds, test_fraction).
    ``cluster`` (scheduler address, local workers): fit the folds on Dask (``models.distributed``), the
    workers reading the lake at ``[research] lake_url`` (else this home's). ``distributed_fit``: one
    LightGBM fitted across the cluster (``models.dask_register``), for data one machine cannot hold."""
    from workbench.data.calendars import Calendars
    from workbench.data.lake import Lake
    from workbench.models.registry import Registry
    from workbench.models.training import panel_lineage
    from workbench.models.training import train as train_model

    lake = Lake(settings.lake_dir)
    calendars = Calendars.from_settings(settings)  # the time features honour this home's extra holidays
    options.setdefault("n_folds", settings.retrain.n_folds)
    lake_root = settings.research.lake_url or str(settings.lake_dir)
    if distributed_fit and kind == "rf":
        from workbench.models import dask_forest, distributed

        panel = lake.load_panel(exchange, timeframe, symbols).with_calendars(calendars)
        with distributed.client_for(settings, scheduler=cluster[0] if cluster else None,
                                    workers=cluster[1] if cluster else None) as client:  # fmt: skip
            _echo_wrapped(
                f"fitting the forests' trees on the Dask cluster (joblib's Dask backend): scheduler "
                f"{client.scheduler.address}, {len(client.scheduler_info()['workers'])} workers"
            )
            result = dask_forest.train_rf_on_cluster(
                client, panel, lineage=panel_lineage(lake, exchange, timeframe, symbols, None, None), **options
            )
    elif distributed_fit:
        from workbench.models import dask_register, distributed

        source = distributed.LakeSource(lake_root, exchange, timeframe, tuple(symbols), calendars=calendars)
        with distributed.client_for(settings, scheduler=cluster[0] if cluster else None,
                                    workers=cluster[1] if cluster else None) as client:  # fmt: skip
            _echo_wrapped(
                f"fitting one LightGBM across the Dask cluster (lightgbm.DaskLGBMClassifier): scheduler "
                f"{client.scheduler.address}, {len(client.scheduler_info()['workers'])} workers, lake {lake_root}"
            )
            result = dask_register.fit_on_cluster(client, source, **options)
    elif cluster is not None and kind != "ensemble":
        from workbench.models import distributed

        source = distributed.LakeSource(lake_root, exchange, timeframe, tuple(symbols), calendars=calendars)
        with distributed.client_for(settings, scheduler=cluster[0], workers=cluster[1]) as client:
            _echo_wrapped(
                f"fitting the folds on Dask: scheduler {client.scheduler.address}, "
                f"{len(client.scheduler_info()['workers'])} workers"
            )
            (by_kind,) = distributed.map_folds(client, source, (kind,), **options)
        result = by_kind[kind]
    else:
        if cluster is not None:
            typer.echo("note: an ensemble is trained in-process (its members share one feature build)")
        panel = lake.load_panel(exchange, timeframe, symbols).with_calendars(calendars)
        result = train_model(
            panel,
            kind=kind,
            validation="walk_forward",
            lineage=panel_lineage(lake, exchange, timeframe, symbols, None, None),
            on_coverage=_echo_coverage,  # before any fit: a thin universe is visible before minutes of training
            **options,
        )
    ref = Registry(settings).register(result)
    m = result.metrics
    typer.echo(
        f"registered {ref.name} v{ref.version} as {ref.alias}: {int(m['n_test'])} test rows in "
        f"{int(m.get('n_folds', 1))} walk-forward folds"
    )
    _echo_folds(result.folds)
    _echo_wrapped(result.verdict())
    return ref


def train(
    model: ModelKind = typer.Option(ModelKind["lgbm"], "--model", help="model kind"),
    exchange: str | None = typer.Option(None, help="default: the demo data set"),
    timeframe: str | None = typer.Option(None),
    symbols: list[str] | None = typer.Option(None, "--symbols", "-s"),
    universe: str | None = typer.Option(
        None,
        "--universe",
        help=f"what to train on: {UNIVERSE_FORMS}; unknown symbols are refused (instead of --symbols; "
        "default: --exchange's symbols, else the demo data set)",
    ),
    label: str = typer.Option(
        "sign",
        help="sign | xs_median | xs_top | cost | barrier (xs_*: beat the other "
        "symbols, judged by the daily rank IC; needs ≥ 5 symbols)",
    ),
    horizon: int = typer.Option(1, min=1, help="label horizon in bars"),
    feature_set: str = typer.Option("v1", "--feature-set", help="v1 | v2"),
    embargo: int | None = typer.Option(
        None, min=0, help="bars between training and test (default: the horizon; never less)"
    ),
    folds: int | None = typer.Option(None, "--folds", min=1, help="walk-forward folds (default: settings.retrain)"),
    test_span: str = typer.Option(
        "0.3",
        "--test-span",
        help="test stretch cut into the folds: a fraction of the "
        "bars (0.3) or a span back from the last bar (3y, 18m, 250d)",
    ),
    scheduler: str | None = SchedulerOpt,
    workers: int | None = WorkersOpt,
    distributed_fit: bool = typer.Option(
        False,
        "--distributed-fit",
        help="lgbm: fit ONE model across the Dask cluster (LightGBM's Dask estimator; each worker reads "
        "its time shard of the lake) instead of one fold per worker; rf: build each forest's trees on the "
        "cluster (joblib's Dask backend); calibrated and scored as in-process",
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Train a model out of sample, log it to MLflow and register it (champion if none, else challenger).

    With --scheduler, --workers or a [research] scheduler setting, the folds are fitted on Dask workers
    that read the lake themselves (or the [research] lake_url, e.g. s3://bucket/prefix); the numbers are
    the same as in-process. With --distributed-fit one LightGBM is fitted across the cluster."""
    kind = str(getattr(model, "value", model))  # the option may be an Enum
    if distributed_fit and kind not in ("lgbm", "rf"):
        _usage(f"--distributed-fit fits lgbm (LightGBM's Dask estimator) or rf (trees on the cluster), not {kind}")
    if universe is not None and symbols:
        _usage("--universe and --symbols both name the symbols: give one")
    try:
        settings = _settings(home)
        if universe is not None:
            ex, tf, syms = _train_universe(settings, universe, exchange, timeframe)
        else:
            ex, tf, syms = _universe(settings, exchange, timeframe, symbols)
        n_folds = int(folds or settings.retrain.n_folds)
        emb = horizon if embargo is None else embargo
        _echo_wrapped(
            f"training {kind} on {ex} {tf}, {len(syms)} symbols: label {label}, horizon {horizon}, features "
            f"{feature_set}, embargo {emb}, {n_folds} walk-forward folds over the last {test_span} of the bars"
        )
        cluster = (scheduler, workers) if (scheduler or workers or settings.research.scheduler) else None
        _train_and_register(
            settings,
            ex,
            tf,
            syms,
            kind,
            cluster=cluster,
            distributed_fit=distributed_fit,
            label=label,
            horizon=horizon,
            feature_set=feature_set,
            embargo=emb,
            n_folds=n_folds,
            test_fraction=test_span,
        )
    except WorkbenchError as e:
        _fail(e)
    except ValueError as e:  # an option the data cannot honour (too few bars for the folds, embargo < horizon)
        _usage(str(e))


def _literal(text: str):
    """A -p value as JSON/Python literal when it parses (numbers, lists), else the plain string."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parameters(args: list[str]) -> dict:
    """papermill's ``-p NAME VALUE`` pairs (repeatable) from the command's extra arguments."""
    params, rest = {}, list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter") or len(rest) < 2:
            raise typer.BadParameter(f"expected '-p NAME VALUE' pairs, got {' '.join([flag, *rest])!r}")
        name, value = rest.pop(0), rest.pop(0)
        params[name] = _literal(value)
    return params


def retrain(ctx: typer.Context, home: Path | None = HomeOpt) -> None:
    """Retrain with papermill (notebooks/05_retrain.ipynb): a challenger is promoted only if it wins out of sample.

    Parameters for the notebook's parameters cell: -p NAME VALUE (repeat), e.g. -p kinds "['lgbm','rf']".
    """
    from workbench.models.retrain import run_retrain

    params = _parameters(ctx.args)
    outcome = run_retrain(_settings(home), params)
    typer.echo(f"retrain {outcome.status}: {outcome.reason}\nexecuted notebook: {outcome.notebook}")
    if outcome.status == "failed":
        raise typer.Exit(int(ExitCode.FAILED))


def scheduler(
    cron: str | None = typer.Option(None, help="crontab expression (default: settings.retrain.cron)"),
    home: Path | None = HomeOpt,
) -> None:
    """Retrain on a schedule (never two runs at once); Ctrl-C to stop."""
    from workbench.models.retrain import run_scheduler

    settings = _settings(home)
    typer.echo(f"retraining on '{cron or settings.retrain.cron}' (home {settings.home}); Ctrl-C to stop")
    run_scheduler(settings, cron=cron, on_outcome=lambda o: typer.echo(f"{o.started}: retrain {o.status}: {o.reason}"))


def backtest(
    model: str = typer.Option("champion", "--model", help="champion | challenger | NAME@VERSION | NAME/VERSION"),
    universe: str | None = typer.Option(
        None,
        "--universe",
        help=f"what to trade: {UNIVERSE_FORMS}; every symbol must be one the model has out-of-sample "
        "predictions for (default: the model's universe)",
    ),
    start: str | None = typer.Option(None, help="first day to trade (default: the first out-of-sample prediction)"),
    end: str | None = typer.Option(None, help="last day to trade (default: the last out-of-sample prediction)"),
    out: Path | None = typer.Option(
        None, "--out", help="report folder (default: $WORKBENCH_HOME/reports/backtest-<model>-<time>/)"
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Trade a registered model's walk-forward out-of-sample predictions; compare with buy & hold and the baseline.

    Prints the comparison table, writes report.html (self-contained) and PNG plots, and logs both to
    the model's MLflow run.
    """
    import pandas as pd

    from workbench.backtest import backtest_model, format_windows

    try:
        settings = _settings(home)
        chosen = None if universe is None else list(_model_subset(settings, universe))
        rep = backtest_model(settings, ref=model, start=start, end=end, universe=chosen, out_dir=out)
    except WorkbenchError as e:
        _fail(e)
    m = rep.metrics
    typer.echo(
        f"model {rep.model}: {m['start'][:10]} .. {m['end'][:10]}, {m['bars']} bars, out-of-sample windows "
        + ", ".join(f"fold {w.fold} ({w.bars} bars)" for w in rep.windows.itertuples())
    )
    with pd.option_context("display.max_rows", 100, "display.width", 160):
        typer.echo(rep.formatted().to_string())
        typer.echo("per walk-forward window:")
        typer.echo(format_windows(rep.windows).to_string(index=False))
    for note in rep.notes:
        typer.echo(f"note: {note}")
    typer.echo(rep.verdict)
    typer.echo(f"report: {rep.paths['html']}")
    typer.echo(f"plots:  {', '.join(str(p) for k, p in rep.paths.items() if str(p).endswith('.png'))}")


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name}: comma-separated numbers, got {text!r}") from None


def sweep(
    models: str = typer.Option(
        "champion", "--models", help="comma-separated model refs: champion, challenger, NAME/VERSION"
    ),
    max_position: str = typer.Option(
        "0.05,0.1,0.2,0.3,0.5", "--max-position", help="comma-separated risk.max_position_pct values"
    ),
    min_strength: str = typer.Option(
        "0.0,0.3,0.5,0.7", "--min-strength", help="comma-separated risk.min_strength values"
    ),
    universes: list[str] | None = typer.Option(
        None,
        "--universe",
        help=f"what to trade: {UNIVERSE_FORMS}; every symbol must be one the models have out-of-sample "
        "predictions for; repeat for several universes (default: the model's)",
    ),
    experiment: str = typer.Option("sweep", "--experiment", help="MLflow experiment the rows are logged to"),
    scheduler: str | None = SchedulerOpt,
    workers: int | None = WorkersOpt,
    home: Path | None = HomeOpt,
) -> None:
    """Backtest every combination of models × risk limits × universes on Dask; a table best Sharpe first.

    Each backtest trades a model's walk-forward out-of-sample predictions, as `workbench backtest` does;
    each row is logged to MLflow (experiment `sweep`) with the worker that ran it."""
    import pandas as pd

    from workbench.backtest.sweep import grid, run_sweep
    from workbench.models import distributed

    refs = [m.strip() for m in models.split(",") if m.strip()]
    risk = {
        "max_position_pct": _floats(max_position, "--max-position"),
        "min_strength": _floats(min_strength, "--min-strength"),
    }
    try:
        settings = _settings(home)
        unis: list[tuple[str, ...] | None] | None = (
            [_model_subset(settings, u) for u in universes] if universes else None
        )
        configs = grid(refs, {k: v for k, v in risk.items() if v}, unis)
        with distributed.client_for(settings, scheduler=scheduler, workers=workers) as client:
            _echo_wrapped(
                f"{len(configs)} backtests on Dask: scheduler {client.scheduler.address}, "
                f"{len(client.scheduler_info()['workers'])} workers"
            )
            table = run_sweep(client, settings, configs, experiment=experiment)
    except WorkbenchError as e:
        _fail(e)
    except ValueError as e:  # a risk value out of range
        _usage(str(e))
    cols = [
        c
        for c in ("config", "sharpe", "total_return", "max_drawdown", "trades", "beats_buy_hold", "worker")
        if c in table.columns
    ]
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.precision", 4):
        typer.echo(table[cols].to_string(index=False))
    typer.echo(f"{len(table)} rows logged to MLflow experiment {experiment!r} ({settings.tracking_uri})")
