"""What every command group shares: the ``--home``/``--scheduler``/``--workers`` options, loading the
settings, the two ways out (``_fail``: a WorkbenchError with its exit code; ``_usage``: exit 2), and the
echo helpers for tables, wrapped text, coverage and per-fold tables."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from workbench.cli_exits import invocation
from workbench.config import Settings, load_settings

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
