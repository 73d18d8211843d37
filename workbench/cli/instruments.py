"""``workbench instruments refresh|list|search``: the instrument master (issue 4)."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli.common import HomeOpt, _echo_table, _fail, _settings
from workbench.errors import NoDataError, WorkbenchError

instruments_app = typer.Typer(
    no_args_is_help=True, help="The instrument master: refresh from the venues' lists, list, search."
)


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
