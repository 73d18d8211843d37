"""``workbench live run|status|stop|emergency-stop``: the live trading process and its stops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from workbench.cli.common import MIN_INTERVAL_S, HomeOpt, _fail, _remember, _settings, _usage
from workbench.cli.universe import UNIVERSE_FORMS
from workbench.cli_exits import ExitCode
from workbench.errors import ConfigError, WorkbenchError

live_app = typer.Typer(no_args_is_help=True, help="The live trading process: run, status, stop.")


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
        help=f"what to trade: {UNIVERSE_FORMS}; unknown symbols are refused (default: the model's universe)",
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
