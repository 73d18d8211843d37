"""Commands that start a server in the foreground: ``dashboard`` (Voilà), ``lab`` (JupyterLab) and
``mlflow serve`` (a tracking server + registry for a team)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from workbench.cli.common import HomeOpt, _fail, _settings
from workbench.cli.init import _install_notebooks
from workbench.errors import WorkbenchError


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


def lab(home: Path | None = HomeOpt) -> None:
    """Open JupyterLab on the home's notebooks (copied there first if absent; edits are kept in .ipynb and .py)."""
    settings = _settings(home)
    try:
        where = _install_notebooks(settings)
    except (WorkbenchError, OSError) as e:
        _fail(e)
    cmd = [sys.executable, "-m", "jupyterlab", str(where)]
    raise typer.Exit(subprocess.call(cmd, env={**os.environ, "WORKBENCH_HOME": str(settings.home)}))


mlflow_app = typer.Typer(no_args_is_help=True, help="MLflow as a team service: serve a tracking server + registry.")


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
