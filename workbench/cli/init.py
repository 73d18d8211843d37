"""``workbench init``: the stores, the first admin, the home's notebooks, the numba kernels; with
``--demo`` demo data and a champion model."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import get_args

import typer

from workbench.cli.common import HomeOpt, _fail, _settings
from workbench.cli.research import _train_and_register
from workbench.config import DemoSettings, Settings
from workbench.errors import WorkbenchError

_DEMO_SOURCES = get_args(DemoSettings.model_fields["source"].annotation)
DemoSource = Enum("DemoSource", {k: k for k in _DEMO_SOURCES}, type=str)  # type: ignore[misc]


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


def _install_notebooks(settings: Settings) -> Path:
    """The home's own copies of the notebooks (the user's to edit; an edited copy is never replaced)."""
    from workbench.notebook import install_notebooks

    written = install_notebooks(settings.home)
    where = settings.home / "notebooks"
    typer.echo(f"  notebooks: {where}" + (f" ({len(written)} files copied)" if written else ""))
    return where
