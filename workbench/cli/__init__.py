"""The ``workbench`` command: every stage of the flow, each honouring ``WORKBENCH_HOME``.

One module per command group (``data``, ``models``, ``research`` for train/retrain/scheduler/backtest/
sweep, ``live``, ``init`` for init, ``serve`` for dashboard/lab/mlflow, ``instruments``, ``keys``;
``common`` for the shared options and helpers); this module only assembles them, in the order
``workbench --help`` lists them.

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

import os

import typer

from workbench.cli import data, init, instruments, keys, live, models, research, serve
from workbench.cli.common import MIN_INTERVAL_S
from workbench.cli.research import _parameters as _parameters
from workbench.cli_exits import WorkbenchGroup, invocation
from workbench.security import commands as _security_commands

__all__ = ["app", "MIN_INTERVAL_S"]

app = typer.Typer(
    cls=WorkbenchGroup,
    no_args_is_help=True,
    add_completion=False,
    help="workbench: from research to live trading, one command per stage.",
)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="on an error, also print the traceback (or WORKBENCH_DEBUG=1)"),
) -> None:
    """Keep library chatter (MLflow's artifact progress bars) out of the command's own output."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    state = invocation.get()
    if state is not None and debug:
        state["debug"] = True


# Typer lists the commands in the order they are added, then the groups in theirs: this order is the help's.
app.add_typer(data.data_app, name="data")
app.add_typer(models.models_app, name="models")
app.add_typer(live.live_app, name="live")
_security_commands.register(app)  # login, logout; users, vault, risk, books
app.command()(init.init)
app.command()(research.train)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(research.retrain)
app.command()(research.scheduler)
app.command()(research.backtest)
app.command()(research.sweep)
app.command()(serve.dashboard)
app.command()(serve.lab)
app.add_typer(serve.mlflow_app, name="mlflow")
app.add_typer(data.lake_app, name="lake")
app.add_typer(instruments.instruments_app, name="instruments")
app.add_typer(keys.keys_app, name="keys")
