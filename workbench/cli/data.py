"""``workbench data pull|ingest|list`` (candles into the parquet lake) and ``workbench lake publish``
(the lake copied to an object store for a team's Dask workers)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from workbench.cli.common import HomeOpt, _echo_table, _fail, _settings, _usage
from workbench.cli_exits import ExitCode
from workbench.errors import ConfigError, WorkbenchError

data_app = typer.Typer(no_args_is_help=True, help="Market data: pull candles into the lake, list what is stored.")
lake_app = typer.Typer(no_args_is_help=True, help="The lake in an object store, for a team's Dask workers: publish.")

_LENIENT_HELP = "CSV: quarantine bad rows (with their reasons) instead of refusing the whole file"
_STITCH_HELP = "add another vendor's bars to a symbol's stored history (recorded in the lake's stitches.jsonl)"


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
