"""Where the notebooks live: shipped inside the package, copied into each workbench home.

Why package data: ``workbench retrain`` (papermill) and ``workbench dashboard`` (Voilà) run the
notebooks, so they must be found in an installed copy, not only in a git checkout. The copies in
``$WORKBENCH_HOME/notebooks`` are the quant's to edit: they are written only when absent and never
overwritten. Each ``.ipynb`` is paired with a ``py:percent`` script by jupytext (``jupytext.toml``
beside them), so an edit made in JupyterLab lands in both files.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from workbench.errors import ConfigError

__all__ = ["CONFIG_FILE", "NOTEBOOKS", "bundled", "bundled_dir", "install_notebooks"]

# The shipped notebooks, in reading order (the dashboard is served by Voilà).
NOTEBOOKS = ("01_data_pull", "02_feature_research", "03_train_models", "04_backtest", "05_retrain", "dashboard")
CONFIG_FILE = "jupytext.toml"


def bundled_dir() -> Path:
    """The folder of notebooks inside the installed package (a checkout's ``workbench/notebooks``)."""
    where = files("workbench").joinpath("notebooks")
    if not isinstance(where, Path) or not where.is_dir():  # a zipped install has no folder papermill could run from
        raise ConfigError(
            f"the workbench package at {files('workbench')} has no notebooks folder: "
            "reinstall it from a wheel or a checkout (pip install workbench)"
        )
    return where


def bundled(name: str) -> Path:
    """One shipped notebook, e.g. ``bundled("05_retrain.ipynb")``."""
    path = bundled_dir() / name
    if not path.is_file():
        raise ConfigError(
            f"notebook {name!r} is not shipped with workbench (have: {', '.join(n + '.ipynb' for n in NOTEBOOKS)})"
        )
    return path


def install_notebooks(home: Path | str) -> list[Path]:
    """Copy the shipped notebooks (and their paired scripts) into ``home/notebooks`` where absent.

    A file already there is the user's and is left alone, edited or not; a notebook and its script
    are copied as a pair or not at all, so jupytext never pairs a shipped script with an edited
    notebook. The ``.ipynb`` is written first: jupytext refuses a notebook newer than its script.
    Returns the files written.
    """
    src, dest = bundled_dir(), Path(home).expanduser() / "notebooks"
    if dest.exists() and dest.resolve() == src.resolve():  # a checkout whose home is the repo root
        return []
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem in NOTEBOOKS:
        pair = [f"{stem}.ipynb", f"{stem}.py"]
        if any((dest / name).exists() for name in pair):
            continue
        for name in pair:
            shutil.copy(src / name, dest / name)
            written.append(dest / name)
    if not (dest / CONFIG_FILE).exists():
        shutil.copy(src / CONFIG_FILE, dest / CONFIG_FILE)
        written.append(dest / CONFIG_FILE)
    return written
