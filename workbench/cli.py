"""The ``workbench`` command: every stage of the flow, each honouring ``WORKBENCH_HOME``.

Heavy libraries (mlflow, vectorbt, lightgbm) are imported inside the commands that need them so that
``workbench --help`` and ``workbench live status`` answer at once.

Nothing a user can cause ends in a traceback: the app's group (``cli_exits.WorkbenchGroup``) turns every error that
leaves a command into one paragraph on stderr naming the file or setting and what to do, and exits
with the code of its class (``workbench.cli_exits.ExitCode``; ``--debug`` or ``WORKBENCH_DEBUG=1``
also prints the traceback):

    0 done                     5 models                   9 the operation ran and failed
    1 unexpected (a bug)       6 broker, keys, venue     10 temporary: run it again later
    2 bad arguments            7 database (workbench.db)
    3 settings (workbench.toml, WORKBENCH_* env vars, the vault key)
    4 market data              8 file system (permissions, disk full, read-only, missing file)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, get_args

import typer

from workbench.cli_exits import ExitCode, WorkbenchGroup, invocation
from workbench.config import DemoSettings, Settings, load_settings
from workbench.errors import ConfigError, NoDataError, PermissionDenied, WorkbenchError
from workbench.models.kinds import TRAINABLE_KINDS
from workbench.security import commands as _security_commands

__all__ = ["app"]

ModelKind = Enum("ModelKind", {k: k for k in TRAINABLE_KINDS}, type=str)  # type: ignore[misc]
_DEMO_SOURCES = get_args(DemoSettings.model_fields["source"].annotation)
DemoSource = Enum("DemoSource", {k: k for k in _DEMO_SOURCES}, type=str)  # type: ignore[misc]

app = typer.Typer(
    cls=WorkbenchGroup,
    no_args_is_help=True,
    add_completion=False,
    help="workbench: from research to live trading, one command per stage.",
)
data_app = typer.Typer(no_args_is_help=True, help="Market data: pull candles into the lake, list what is stored.")
models_app = typer.Typer(no_args_is_help=True, help="Registered models: list, show, promote.")
live_app = typer.Typer(no_args_is_help=True, help="The live trading process: run, status, stop.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(live_app, name="live")
_security_commands.register(app)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="on an error, also print the traceback (or WORKBENCH_DEBUG=1)"),
) -> None:
    """Keep library chatter (MLflow's artifact progress bars) out of the command's own output."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    state = invocation.get()
    if state is not None and debug:
        state["debug"] = True


MIN_INTERVAL_S = 1.0  # = workbench.trading.runner.MIN_INTERVAL_S (not imported: `--help` stays fast); a test checks
HomeOpt = typer.Option(None, "--home", envvar="WORKBENCH_HOME", help="workbench home (stores live under it)")
SchedulerOpt = typer.Option(
    None,
    "--scheduler",
    help="Dask scheduler address (tcp://host:8786): run on that cluster (default: the research.scheduler setting)",
)
WorkersOpt = typer.Option(
    None,
    "--workers",
    min=1,
    help="run on a local Dask cluster of N worker processes (default: the research.workers setting)",
)


def _settings(home: Path | None) -> Settings:
    from workbench.warmup import use_numba_cache

    s = load_settings(home)
    _remember(s)
    s.ensure_dirs()
    use_numba_cache(s.numba_cache_dir)  # before any kernel module is imported
    return s


def _remember(settings: Settings) -> None:
    """Note the store this invocation uses, so a database error can name its file."""
    state = invocation.get()
    if state is not None:
        state["store_url"] = settings.store_url


def _fail(e: Exception) -> NoReturn:
    """Hand ``e`` to ``WorkbenchGroup.invoke``: one paragraph on stderr, the exit code of its class."""
    raise e


def _usage(message: str) -> NoReturn:
    """A bad argument or option: one line on stderr, exit 2 (Typer's own usage errors draw a box)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _echo_table(df) -> None:
    import pandas as pd

    with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160):
        typer.echo(df.to_string(index=False) if len(df) else "(none)")


def _universe(settings: Settings, exchange: str | None, timeframe: str | None, symbols: list[str] | None):
    """The universe a command works on: what the user named, else the demo data set in the lake."""
    from workbench.data.demo import demo_universe_in_lake
    from workbench.data.lake import Lake

    if exchange is None:
        demo = demo_universe_in_lake(settings)
        if demo is None:
            raise NoDataError("no data in the lake yet: run `workbench data pull` or `workbench init --demo` first")
        exchange, timeframe = demo.exchange, timeframe or demo.timeframe
        symbols = symbols or list(demo.symbols)
    timeframe = timeframe or "1d"
    symbols = symbols or Lake(settings.lake_dir).symbols(exchange, timeframe)
    return exchange, timeframe, symbols


@app.command()
def init(
    home: Path | None = HomeOpt,
    demo: bool = typer.Option(False, "--demo", help="also pull demo data and train a champion if none exists"),
    source: DemoSource | None = typer.Option(None, help="demo data source (default: settings.demo.source)"),
) -> None:
    """Create the stores (lake, SQLite, MLflow) and, on a fresh home, the first admin (its generated
    password is printed once and must be changed at first login); with --demo, get demo data and a
    champion model."""
    try:
        settings = _settings(home)
        from workbench.trading.store import Store

        Store(settings.store_url).create()
        typer.echo(f"workbench home: {settings.home}")
        typer.echo(f"  lake:   {settings.lake_dir}\n  store:  {settings.store_url}\n  mlflow: {settings.tracking_uri}")
        _install_notebooks(settings)
        _first_admin(settings)
        from workbench.warmup import compile_kernels

        secs = compile_kernels()
        typer.echo(
            f"  numba kernels ready in {secs:.1f} s (cache: {os.environ.get('NUMBA_CACHE_DIR') or 'beside the sources'})"
        )
        if not demo:
            return
        from workbench.data.demo import ensure_demo_data
        from workbench.models.registry import Registry

        universe = ensure_demo_data(settings, source=source.value if source is not None else None, progress=True)
        shown = ", ".join(universe.symbols[:8]) + (
            f" … ({len(universe.symbols)} in all)" if len(universe.symbols) > 8 else ""
        )
        typer.echo(f"demo data: {universe.label} — {universe.exchange} {universe.timeframe} {shown}")
        registry = Registry(settings)
        if registry.has("champion"):
            typer.echo(f"champion model: {registry.load('champion').ref}")
            return
        typer.echo("no champion model yet: training LightGBM on the demo data ...")
        _train_and_register(settings, universe.exchange, universe.timeframe, list(universe.symbols), "lgbm")
    except WorkbenchError as e:
        _fail(e)


def _first_admin(settings: Settings) -> None:
    """On a home without users: the admin account, its one-time password on the terminal (nowhere
    else: not in a file, not in the store), and the secrets of the single-key vault of earlier releases
    moved into its vault. On a home with users: nothing."""
    from workbench.security.access import accounts_for, ensure_first_admin
    from workbench.security.keys import master_key_path
    from workbench.security.vault import adopt_legacy_secrets

    accounts = accounts_for(settings)
    password = ensure_first_admin(accounts)
    if password is None:
        return
    admin = accounts.user("admin")
    moved = adopt_legacy_secrets(accounts.engine, settings.home, admin.id)
    if moved:
        accounts.record(
            admin, "key_set", True, f"{moved} secret(s) adopted from the single-key vault of an earlier release"
        )
    line = "=" * 78
    typer.echo(
        f"{line}\nfirst admin created: user 'admin', one-time password:\n\n    {password}\n\n"
        "It is shown only this once. Log in with it (dashboard, or `workbench login`) and choose your own\n"
        f"password at once. Secrets are encrypted with a master key kept in {master_key_path(settings.home)}\n"
        f"(or $WORKBENCH_MASTER_KEY): back it up apart from data/.\n{line}"
    )
    if moved:
        typer.echo(f"{moved} stored key(s) from an earlier release moved into admin's vault")


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


_LENIENT_HELP = "CSV: quarantine bad rows (with their reasons) instead of refusing the whole file"
_STITCH_HELP = "add another vendor's bars to a symbol's stored history (recorded in the lake's stitches.jsonl)"


def _echo_wrapped(text: str) -> None:
    import textwrap

    typer.echo(textwrap.fill(text, width=118, subsequent_indent="  ", break_on_hyphens=False))


def _echo_coverage(coverage) -> None:
    """Universe coverage of the walk-forward folds (``models.coverage.Coverage``)."""
    for line in coverage.lines():
        _echo_wrapped(line)


def _echo_folds(folds) -> None:
    """The per-fold table in two blocks that fit 120 columns: cross-sectional, then probability scores."""
    import pandas as pd

    from workbench.models.evidence import fold_table

    table = fold_table(folds)
    if table.empty:
        typer.echo("(no per-fold table recorded for this model)")
        return
    blocks = (
        (
            "per fold: daily rank IC (mean, t, ICIR) vs baselines, long-short return per bar window, turnover",
            ["IC", "IC t", "ICIR", "mom IC", "rev IC", "L-S ret", "turnover"],
        ),
        (
            "per fold: probability scores (AUC, log loss, ECE with equal-count bins) vs baselines",
            ["AUC", "mom AUC", "rev AUC", "logloss", "maj LL", "ECE(q)"],
        ),
    )
    with pd.option_context("display.width", 120, "display.max_columns", 12, "display.float_format", "{:.4f}".format):
        for title, cols in blocks:
            cols = [c for c in cols if c in table.columns]
            if cols:
                typer.echo(title)
                typer.echo(table[["test window", *cols]].to_string())


@data_app.command("pull")
def data_pull(
    source: str = typer.Option(
        "synthetic", help="ccxt:<exchange> | kite[:EXCHANGE] | alpaca[:EXCHANGE] | csv:<path>[@EXCHANGE] | synthetic"
    ),
    symbols: list[str] | None = typer.Option(None, "--symbols", "-s", help="symbols to pull (repeat)"),
    timeframe: str = typer.Option("1d"),
    since: str | None = typer.Option(None, help="first bar (ISO date); default: resume from the last stored bar"),
    lenient: bool = typer.Option(False, "--lenient", help=_LENIENT_HELP),
    allow_stitch: bool = typer.Option(False, "--allow-stitch", help=_STITCH_HELP),
    home: Path | None = HomeOpt,
) -> None:
    """Pull candles from a source into the parquet lake (idempotent; resumes where it stopped)."""
    import pandas as pd

    from workbench.data.ingest import pull, source_from_spec
    from workbench.data.lake import Lake

    try:
        settings = _settings(home)
        src = source_from_spec(source, settings, lenient=lenient)
        if not symbols and source.strip().lower().startswith("ccxt"):
            # An exchange lists thousands of markets: pull the demo pairs unless told otherwise.
            symbols = list(settings.demo.ccxt_symbols)
            typer.echo(f"no --symbols given: pulling the demo pairs {', '.join(symbols)}")
        syms = list(symbols or src.symbols())
        start = pd.Timestamp(since, tz="UTC") if since else None
        report = pull(Lake(settings.lake_dir), src, syms, timeframe, since=start, allow_stitch=allow_stitch)
        for sym, n in report.new_rows.items():
            typer.echo(f"{report.exchange} {timeframe} {sym}: +{n} bars")
        for sym, n in report.quarantined.items():
            typer.echo(f"{sym}: {n} bad rows quarantined with their reasons (workbench.data.lake.Lake.quarantined())")
        for sym, note in report.stitched.items():
            typer.echo(f"{sym}: stitched {note} (recorded)")
        for sym, err in report.errors.items():
            typer.secho(f"{sym}: {err}", fg=typer.colors.RED, err=True)
        if report.errors and not report.new_rows:
            raise typer.Exit(int(ExitCode.DATA))
    except WorkbenchError as e:
        _fail(e)


@data_app.command("ingest")
def data_ingest(
    folder: Path = typer.Argument(..., help="a folder of CSV files (one or more symbols each)"),
    exchange: str = typer.Option(..., "--exchange", "-e", help="where the bars trade, e.g. NYSE, NASDAQ, NSE"),
    timeframe: str | None = typer.Option(None, help="default: each file's own bar length"),
    lenient: bool = typer.Option(False, "--lenient", help=_LENIENT_HELP),
    allow_stitch: bool = typer.Option(False, "--allow-stitch", help=_STITCH_HELP),
    workers: int | None = typer.Option(None, min=1, help="parallel reader processes (default: the CPUs available)"),
    home: Path | None = HomeOpt,
) -> None:
    """Import a folder of CSV files into the lake in one go, read in parallel, with a progress bar."""
    from workbench.data.ingest import ingest_folder
    from workbench.data.lake import Lake

    try:
        settings = _settings(home)
        report = ingest_folder(
            Lake(settings.lake_dir),
            folder,
            exchange,
            timeframe=timeframe,
            lenient=lenient,
            allow_stitch=allow_stitch,
            workers=workers,
        )
    except WorkbenchError as e:
        _fail(e)
    typer.echo(report.summary())
    if report.errors and not report.new_rows:
        raise typer.Exit(code=2)


@data_app.command("list")
def data_list(home: Path | None = HomeOpt) -> None:
    """What the lake holds: exchange, timeframe, symbol, rows, first and last bar."""
    from workbench.data.lake import Lake

    _echo_table(Lake(_settings(home).lake_dir).catalog())


@app.command()
def train(
    model: ModelKind = typer.Option(ModelKind["lgbm"], "--model", help="model kind"),
    exchange: str | None = typer.Option(None, help="default: the demo data set"),
    timeframe: str | None = typer.Option(None),
    symbols: list[str] | None = typer.Option(None, "--symbols", "-s"),
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
    try:
        settings = _settings(home)
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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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


@app.command()
def scheduler(
    cron: str | None = typer.Option(None, help="crontab expression (default: settings.retrain.cron)"),
    home: Path | None = HomeOpt,
) -> None:
    """Retrain on a schedule (never two runs at once); Ctrl-C to stop."""
    from workbench.models.retrain import run_scheduler

    settings = _settings(home)
    typer.echo(f"retraining on '{cron or settings.retrain.cron}' (home {settings.home}); Ctrl-C to stop")
    run_scheduler(settings, cron=cron, on_outcome=lambda o: typer.echo(f"{o.started}: retrain {o.status}: {o.reason}"))


@models_app.command("list")
def models_list(home: Path | None = HomeOpt) -> None:
    """Registered model versions with their aliases and out-of-sample metrics."""
    from workbench.models.registry import Registry

    _echo_table(Registry(_settings(home)).list())


@models_app.command("show")
def models_show(
    ref: str = typer.Argument("champion", help="NAME@VERSION, a version number or an alias (champion)"),
    home: Path | None = HomeOpt,
) -> None:
    """A registered model's out-of-sample evidence: settings, the per-fold table and the verdict."""
    from workbench.models.registry import Registry
    from workbench.models.training import verdict_text

    try:
        loaded, folds = Registry(_settings(home)).evaluation(ref)
    except WorkbenchError as e:
        _fail(e)
        return
    sp = loaded.split
    _echo_wrapped(loaded.describe())
    typer.echo(
        f"label {loaded.label}, horizon {loaded.horizon}, embargo {sp.get('embargo_bars', '?')} bars, "
        f"{sp.get('n_folds', '?')} folds from {sp.get('oos_start', '?')[:10]}, "
        f"{len(loaded.universe.get('symbols', []))} symbols"
    )
    if loaded.coverage:
        from workbench.models.coverage import Coverage

        _echo_coverage(Coverage.from_dict(loaded.coverage))
    else:
        typer.echo("(no universe coverage recorded for this model: registered before it was; retrain to see it)")
    _echo_folds(folds)
    if "beats_baselines" in loaded.metrics:
        _echo_wrapped(verdict_text(loaded.kind, loaded.label, loaded.metrics))


@models_app.command("promote")
def models_promote(
    version: int = typer.Argument(..., help="model version to promote"),
    alias: str = typer.Option("champion"),
    home: Path | None = HomeOpt,
) -> None:
    """Give a model version an alias (champion by default). Needs a logged-in admin, as on the page:
    the champion is what every user's runs trade by default. Recorded in the audit with the user."""
    from workbench.models.registry import Registry
    from workbench.security.access import accounts_for, require_session

    try:
        settings = _settings(home)
        accounts = accounts_for(settings)
        user = require_session(accounts, settings).user
        if not user.can("admin"):
            accounts.record(user, "model_promote", False, f"v{version} {alias}: lacks the 'admin' permission")
            raise PermissionDenied(
                f"{user.username} lacks the 'admin' permission: ask an admin (`workbench users grant`)"
            )
        reg = Registry(settings)
        ref = reg.promote(version, alias=alias)
        accounts.record(user, "model_promote", True, f"{ref.name}/{ref.version} {alias}")
        typer.echo(f"{ref.name} v{ref.version} is now {alias}")
    except WorkbenchError as e:
        _fail(e)


@app.command()
def backtest(
    model: str = typer.Option("champion", "--model", help="champion | challenger | NAME@VERSION | NAME/VERSION"),
    universe: str | None = typer.Option(
        None, "--universe", help="comma-separated symbols, a subset of the model's (default: all)"
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
        rep = backtest_model(_settings(home), ref=model, start=start, end=end, universe=universe, out_dir=out)
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


def _venue_names() -> str:
    from workbench.venues import venue_choices

    return venue_choices()


def _broker_choice(value: str | None) -> str | None:
    """``--broker`` checked against the venue registry before anything runs: an unknown name is one
    line naming the registered venues (exit 2), not a failed run."""
    if value is None:
        return None
    from workbench.venues import resolve

    try:
        venue, inst = resolve(value)
        return venue.label(inst)
    except WorkbenchError as e:  # a bad argument: one line naming the registered venues, exit 2
        _usage(str(e))


@live_app.command("run")
def live_run(
    broker: str | None = typer.Option(
        None,
        callback=_broker_choice,
        help=f"{_venue_names()} (default: broker.default, i.e. paper); real brokers "
        "use their testnet unless broker.testnet is off, and live trading needs the trade_live permission",
    ),
    model: str = typer.Option(
        "champion",
        help="a registered alias (champion, challenger), NAME@ALIAS or NAME/VERSION; `backup` for the "
        "untrained rule-based model (`workbench models list` shows what is registered)",
    ),
    interval: float | None = typer.Option(
        None, min=MIN_INTERVAL_S, help=f"seconds between cycles, at least {MIN_INTERVAL_S:g} (default 30)"
    ),
    cycles: int | None = typer.Option(None, min=1, help="stop after N ≥ 1 cycles (default: run until stopped)"),
    replay: bool | None = typer.Option(
        None,
        "--replay/--live",
        help="--replay: trade a replay of the lake's last bars (labelled REPLAY); --live: live market data "
        "(default: live.feed, which is live)",
    ),
    universe: str | None = typer.Option(
        None,
        "--universe",
        help="what to trade: demo (the lake's demo universe), exchange:EX[:ASSET_CLASS] (the instrument master's "
        "tradable instruments), file:PATH (one symbol per line) or a comma list; unknown symbols are refused "
        "(default: the model's universe)",
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Run the live trading loop in this process: Phase 1 checks, then a cycle every interval, on live
    market data of the model's universe (every broker, paper included) unless --replay is given (or live.feed says replay).

    Needs a session (`workbench login`, or WORKBENCH_TOKEN): the run is that user's, with their keys,
    permission and risk limits. A crashed run on the same broker resumes under its owner without one.
    One live run per account: a second start on an account that is trading is refused, naming the run."""
    from workbench.trading.runner import run_live
    from workbench.trading.store import Store

    try:
        settings = _settings(home)
        chosen = None
        if universe is not None:
            from workbench.trading.universes import universe_for

            chosen = universe_for(settings, universe)  # ConfigError (exit 3) naming unknown symbols, before a run
            typer.echo(
                f"universe {chosen.name}: {chosen.size} instrument(s) on {chosen.exchange or 'the model exchange'}"
            )
        run_id = run_live(
            settings, broker=broker, model=model, interval_s=interval, cycles=cycles, replay=replay, universe=chosen
        )
        store = Store(settings.store_url)
        run = store.run(run_id) or {}  # this invocation's run, not the latest of all
        feed = f" [{run['feed']}]" if run.get("feed") else ""
        typer.echo(f"run {run_id} ended: {run.get('status')} — {run.get('message') or ''}{feed}")
        if run.get("status") == "FAILED":
            checks = store.checks(run_id)
            auth = checks[checks["name"] == "authentication"] if len(checks) else checks
            refused = len(auth) and not bool(auth["ok"].iloc[0])
            raise typer.Exit(int(ExitCode.ACCESS if refused else ExitCode.FAILED))
    except WorkbenchError as e:
        _fail(e)


RunOpt = typer.Option(None, "--run", min=1, help="the run's id (`workbench live status` lists the running ones)")
AccountOpt = typer.Option(None, "--account", help="the account's running run (paper:USER, or BROKER@ENVIRONMENT:USER)")


@live_app.command("status")
def live_status_cmd(run: int | None = RunOpt, account: str | None = AccountOpt, home: Path | None = HomeOpt) -> None:
    """One of your live runs (admins: anyone's) — by --run, the --account's, else the latest: status, cycle,
    heartbeat, equity; and under "running" every run still marked RUNNING, with whether its process is
    alive. Needs a session."""
    from workbench.trading.runner import status

    try:
        typer.echo(json.dumps(status(_settings(home), run_id=run, account=account), indent=2, default=str))
    except WorkbenchError as e:
        _fail(e)


def _stop_outcome(out: Any) -> None:
    """Print what a stop did; a dead run is an error (exit 9): nothing will obey the command."""
    if out.dead:
        typer.secho(out.message, fg=typer.colors.RED, err=True)
        raise typer.Exit(int(ExitCode.FAILED))
    typer.echo(out.message)


@live_app.command("stop")
def live_stop(run: int | None = RunOpt, account: str | None = AccountOpt, home: Path | None = HomeOpt) -> None:
    """Ask your live run (admins: anyone's) to stop after its current cycle: the one of --run or --account,
    or the only one running. Needs a session."""
    from workbench.trading.runner import stop_run

    try:
        _stop_outcome(stop_run(_settings(home), emergency=False, run_id=run, account=account))
    except WorkbenchError as e:
        _fail(e)


@live_app.command("emergency-stop")
def live_emergency_stop(
    run: int | None = RunOpt, account: str | None = AccountOpt, home: Path | None = HomeOpt
) -> None:
    """Cancel every open order now (and flatten positions when risk.flatten_on_emergency is set).
    Acts on your running run (admins: the latest anyone's); needs a session.

    Works while workbench.toml is broken: the stop then goes to the store named by WORKBENCH_DB_URL,
    the file's db_url (if the file still parses) or the home's default, and says so."""
    from workbench.config import EMERGENCY_NOTE, store_only_settings
    from workbench.trading.runner import stop_run

    try:
        settings, broken = _settings(home), None
    except ConfigError as e:
        settings, broken = store_only_settings(home), e
        _remember(settings)
        settings.ensure_dirs()
        typer.secho(
            f"warning: {str(e).removesuffix(' ' + EMERGENCY_NOTE)}\nThe emergency stop is sent anyway, to the store "
            f"{settings.store_url} (found without the broken settings; the live process obeys it whatever its own).",
            fg=typer.colors.YELLOW,
            err=True,
        )
    out = stop_run(settings, emergency=True, run_id=run, account=account)
    if out.sent or out.dead or broken is None:
        _stop_outcome(out)
    else:
        raise ConfigError(
            f"no live run is active in the store {settings.store_url}. If the broken workbench.toml sets db_url, "
            "the live run's store is elsewhere: set WORKBENCH_DB_URL to it (or fix the file) and run "
            "`workbench live emergency-stop` again."
        )


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name}: comma-separated numbers, got {text!r}") from None


@app.command()
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
        help="comma-separated symbols, a subset of the models' (repeat for several universes; default: the model's)",
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
    unis: list[tuple[str, ...] | None] | None = (
        [tuple(s.strip() for s in u.split(",") if s.strip()) for u in universes] if universes else None
    )
    configs = grid(refs, {k: v for k, v in risk.items() if v}, unis)
    try:
        settings = _settings(home)
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


@app.command()
def dashboard(
    port: int = typer.Option(8866),
    home: Path | None = HomeOpt,
) -> None:
    """Serve the dashboard (the shipped dashboard.ipynb) with Voilà on http://localhost:PORT (loopback
    only, no asset from the internet, a closed page's kernel shut down: workbench/dashboard/serving.py)."""
    from workbench.dashboard.serving import voila_command
    from workbench.notebook import bundled

    settings = _settings(home)
    try:
        cmd, extra = voila_command(bundled("dashboard.ipynb"), port, settings.data_dir / "dashboard")
    except (WorkbenchError, OSError) as e:
        _fail(e)
    env = {**os.environ, **extra, "WORKBENCH_HOME": str(settings.home)}
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (extra["JUPYTER_PATH"], os.environ.get("JUPYTER_PATH")) if p)
    typer.echo(f"dashboard on http://localhost:{port} (home {settings.home}); Ctrl-C to stop")
    raise typer.Exit(subprocess.call(cmd, env=env))


def _install_notebooks(settings: Settings) -> Path:
    """The home's own copies of the notebooks (the user's to edit; an edited copy is never replaced)."""
    from workbench.notebook import install_notebooks

    written = install_notebooks(settings.home)
    where = settings.home / "notebooks"
    typer.echo(f"  notebooks: {where}" + (f" ({len(written)} files copied)" if written else ""))
    return where


@app.command()
def lab(home: Path | None = HomeOpt) -> None:
    """Open JupyterLab on the home's notebooks (copied there first if absent; edits are kept in .ipynb and .py)."""
    settings = _settings(home)
    try:
        where = _install_notebooks(settings)
    except (WorkbenchError, OSError) as e:
        _fail(e)
    cmd = [sys.executable, "-m", "jupyterlab", str(where)]
    raise typer.Exit(subprocess.call(cmd, env={**os.environ, "WORKBENCH_HOME": str(settings.home)}))


# ---- instruments (issue 4: the instrument master) ----------------------------------------------
mlflow_app = typer.Typer(no_args_is_help=True, help="MLflow as a team service: serve a tracking server + registry.")
app.add_typer(mlflow_app, name="mlflow")


@mlflow_app.command("serve")
def mlflow_serve(
    backend_store_uri: str | None = typer.Option(
        None,
        "--backend-store-uri",
        envvar="WORKBENCH_MLFLOW_BACKEND",
        help="runs + registry database, e.g. postgresql+psycopg://user@db/mlflow (default: this home's SQLite file)",
    ),
    artifacts_destination: str | None = typer.Option(
        None,
        "--artifacts-destination",
        help="artifact store: a directory or s3://… (default: this home's mlruns/artifacts)",
    ),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for a team's network)"),
    port: int = typer.Option(5000, min=1, max=65535),
    workers: int = typer.Option(1, min=1),
    home: Path | None = HomeOpt,
) -> None:
    """Run an MLflow tracking server; point every workbench at it with mlflow_uri = "http://HOST:PORT"."""
    from workbench.models.mlflow_server import server_plan

    plan = server_plan(_settings(home), backend_store_uri, artifacts_destination, host, port, workers)
    typer.echo(f"MLflow server: backend {plan.backend}, artifacts {plan.artifacts}")
    typer.echo(f'point workbenches at it: mlflow_uri = "{plan.url}" in workbench.toml (or WORKBENCH_MLFLOW_URI)')
    sys.stdout.flush()
    # MLflow's server-side job runner (for GenAI evaluation jobs: the workbench starts none) adds 8 processes,
    # and with them a SIGTERM takes ~25 s to stop the server instead of ~1 s. Off unless the user turns it on.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # exec, not a child process: a service manager's SIGTERM then reaches MLflow itself, instead of a parent
    # whose death would leave the server (and its workers) running
    os.execv(plan.argv[0], plan.argv)


lake_app = typer.Typer(no_args_is_help=True, help="The lake in an object store, for a team's Dask workers: publish.")
app.add_typer(lake_app, name="lake")


@lake_app.command("publish")
def lake_publish(
    url: str = typer.Argument(..., help="where to copy the lake: s3://bucket/prefix (any fsspec URL)"),
    lake: Path | None = typer.Option(None, "--lake", help="the local lake to publish (default: this home's)"),
    home: Path | None = HomeOpt,
) -> None:
    """Copy a local lake to an object store (replacing what is there), with a progress bar; the workers
    then read it from [research] lake_url. Credentials: AWS_* variables or ~/.aws (AWS_ENDPOINT_URL for MinIO)."""
    from tqdm import tqdm

    from workbench.data.lake_url import check_publish_url, publish

    try:
        check_publish_url(url)
    except ConfigError as e:
        _usage(str(e))
    root = lake if lake is not None else _settings(home).lake_dir
    with tqdm(desc=f"publish to {url}", unit="file", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        n = publish(root, url, progress)
    typer.echo(f"published {n} files of {root} to {url}")
    typer.echo(f'point the workers at it: [research] lake_url = "{url}" in workbench.toml')


instruments_app = typer.Typer(
    no_args_is_help=True, help="The instrument master: refresh from the venues' lists, list, search."
)
app.add_typer(instruments_app, name="instruments")


@instruments_app.command("refresh")
def instruments_refresh(
    source: str = typer.Option("all", help="nasdaq | nse | bse | kite | ccxt:<id> | all"),
    from_file: Path | None = typer.Option(
        None, "--from-file", help="a saved list, or a folder of them (default: download)"
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Reload instrument lists into the master (atomic: a broken list leaves the master unchanged)."""
    from workbench.instruments import InstrumentMaster, refresh

    try:
        report = refresh(InstrumentMaster.of(_settings(home)), source, from_file)
        typer.echo(report.summary())
    except WorkbenchError as e:
        _fail(e)


@instruments_app.command("list")
def instruments_list(
    exchange: str | None = typer.Option(None, help="only this exchange; without it: counts per exchange"),
    limit: int = typer.Option(50),
    home: Path | None = HomeOpt,
) -> None:
    """Counts per exchange, or the instruments of one exchange."""
    from workbench.instruments import InstrumentMaster

    master = InstrumentMaster.of(_settings(home))
    if not master.exists():
        _fail(NoDataError("the instrument master is empty: run `workbench instruments refresh` first"))
    if exchange is None:
        _echo_table(master.counts().reset_index())
    else:
        _echo_table(
            master.search("", exchange=exchange, limit=limit)[
                ["key", "name", "asset_class", "isin", "lot_size", "tick_size"]
            ]
        )


@instruments_app.command("search")
def instruments_search(
    text: str = typer.Argument(..., help="part of a symbol or name"),
    exchange: str | None = typer.Option(None),
    limit: int = typer.Option(20),
    home: Path | None = HomeOpt,
) -> None:
    """Find instruments by symbol or name (exact symbol matches first)."""
    from workbench.instruments import InstrumentMaster

    hits = InstrumentMaster.of(_settings(home)).search(text, exchange=exchange, limit=limit)
    _echo_table(hits[["key", "name", "asset_class", "currency", "isin", "source"]])


# ---- keys (real brokers: encrypted API keys in the vault) ----------------------------------------
keys_app = typer.Typer(
    no_args_is_help=True, help="Broker API keys, encrypted in the vault: set, list, delete, Kite login."
)
app.add_typer(keys_app, name="keys")


def _vault(settings: Settings):
    """The logged-in user's vault and a way to audit: keys are always some user's (a session is required)."""
    from workbench.security.access import accounts_for, require_session
    from workbench.security.vault import Vault

    accounts = accounts_for(settings)
    user = require_session(accounts, settings).user
    vault = Vault.open(accounts.engine, settings.home, user.id)
    return vault, lambda action, detail: accounts.record(user, action, True, detail)


@keys_app.command("set")
def keys_set(
    name: str = typer.Argument(..., help="a registered venue that takes keys, e.g. ccxt:<exchange id>, kite, alpaca"),
    home: Path | None = HomeOpt,
) -> None:
    """Store a broker's API keys (typed hidden, never echoed or logged), e.g. `workbench keys set ccxt:binance`."""
    from workbench.trading.runner import broker_name, key_fields

    try:
        settings = _settings(home)
        broker = broker_name(settings, name)
        fields = key_fields(broker)
        vault, audit = _vault(settings)
        for f in fields:
            value = typer.prompt(f"{broker} {f}", hide_input=True).strip()
            if not value:
                raise ConfigError(f"{broker} {f} is empty: nothing stored")
            vault.put(f"{broker}/{f}", value)
        audit("key_set", ", ".join(f"{broker}/{f}" for f in fields))
        typer.echo(f"stored {', '.join(f'{broker}/{f}' for f in fields)} (encrypted)")
        from workbench.venues import resolve

        venue, inst = resolve(broker)
        if venue.trading_keys is not None and set(venue.required_keys(inst)) - {f"{broker}/{f}" for f in fields}:
            typer.echo(f"next: {venue.hint(inst)}")
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("list")
def keys_list(home: Path | None = HomeOpt) -> None:
    """Your stored key names with their values redacted."""
    from workbench.security.vault import redact

    try:
        vault, _ = _vault(_settings(home))
        names = vault.names()
        if not names:
            typer.echo("(no keys stored: `workbench keys set ccxt:binance`, `workbench keys set kite`, ...)")
        for n in names:
            secret = vault.get(n)
            exp = (
                f"  expires {secret.expires_at.isoformat()}"
                if secret is not None and secret.expires_at is not None
                else ""
            )
            typer.echo(f"{n}  {redact(secret.value if secret is not None else None)}{exp}")
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("delete")
def keys_delete(
    name: str = typer.Argument(..., help="a broker (deletes all its keys) or one key name, e.g. ccxt:binance/secret"),
    home: Path | None = HomeOpt,
) -> None:
    """Delete a broker's keys (or one key) from your vault."""
    try:
        vault, audit = _vault(_settings(home))
        names = [name] if "/" in name else vault.names(f"{name.strip().lower()}/")
        gone = [n for n in names if vault.delete(n)]
        if not gone:
            _fail(ConfigError(f"no stored key matches {name!r}: see `workbench keys list`"))
        audit("key_delete", ", ".join(gone))
        typer.echo(f"deleted {', '.join(gone)}")
    except WorkbenchError as e:
        _fail(e)


@keys_app.command("kite-login")
def keys_kite_login(
    request_token: str | None = typer.Option(
        None, "--request-token", help="skip the prompt (the token from the redirect URL)"
    ),
    home: Path | None = HomeOpt,
) -> None:
    """Zerodha's daily login: open the URL, log in, paste the request_token from the redirect URL."""
    try:
        settings = _settings(home)
        from workbench.venues.kite.broker import complete_kite_login, kite_login_url

        vault, audit = _vault(settings)
        typer.echo(
            f"open this URL, log in, then copy request_token=... from the page it redirects to:\n{kite_login_url(settings, vault)}"
        )
        token = request_token or typer.prompt("request_token", hide_input=True).strip()
        complete_kite_login(settings, token, vault=vault)
        audit("key_set", "kite/access_token")
        typer.echo("kite access token stored (encrypted); Kite expires it daily: log in again each trading day")
    except ImportError as e:
        _fail(ConfigError(f"the Kite adapter is not available in this installation: {e}"))
    except WorkbenchError as e:
        _fail(e)
