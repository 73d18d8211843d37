"""``workbench models list|show|promote``: the registered models, their out-of-sample evidence, aliases."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli.common import HomeOpt, _echo_coverage, _echo_folds, _echo_table, _echo_wrapped, _fail, _settings
from workbench.errors import PermissionDenied, WorkbenchError

models_app = typer.Typer(no_args_is_help=True, help="Registered models: list, show, promote.")


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
