"""An installed workbench (a wheel, not a checkout) carries its notebooks: `workbench init` copies them
into the home and `workbench retrain` runs the shipped retrain notebook with papermill."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.notebook import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of a copy of the sources: the checkout itself stays untouched (no build/)."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "workbench", src / "workbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    site = tmp / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        cwd=tmp,
    )
    return site


def _run(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    # Only the installed copy is importable as `workbench` (no checkout on PYTHONPATH; cwd is elsewhere).
    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_the_wheel_ships_every_notebook_pair(installed, tmp_path):
    out = _run(
        installed,
        tmp_path,
        "-c",
        "import workbench, workbench.notebook as n; print(workbench.__file__); print(n.bundled('05_retrain.ipynb'))",
    )
    assert out.returncode == 0, out.stderr
    pkg, retrain_nb = out.stdout.split()
    assert Path(pkg).is_relative_to(installed) and Path(retrain_nb).is_relative_to(installed)
    shipped = {p.name for p in (installed / "workbench" / "notebooks").iterdir()}
    assert {f"{s}.{e}" for s in NOTEBOOKS for e in ("ipynb", "py")} | {"jupytext.toml"} <= shipped


@pytest.mark.slow
def test_init_and_retrain_from_an_installed_copy(installed, tmp_path):
    home = tmp_path / "home"
    env = {
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_DEMO__SOURCE": "synthetic",
        "WORKBENCH_DEMO__BARS": "400",
        "WORKBENCH_RESEARCH_DATA_DIR": "",
    }
    cli = "from workbench.cli import app; app()"
    init = _run(installed, tmp_path, "-c", cli, "init", **env)
    assert init.returncode == 0, init.stderr
    assert (home / "notebooks" / "05_retrain.ipynb").is_file() and (home / "notebooks" / "03_train_models.py").is_file()

    out = _run(
        installed,
        tmp_path,
        "-c",
        cli,
        "retrain",
        "-p",
        "n_folds",
        "2",
        "-p",
        "model_params",
        "{'lgbm': {'n_estimators': 25}}",
        **env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "retrain promoted: no champion was registered" in out.stdout, out.stdout
    executed = Path(out.stdout.split("executed notebook:")[1].strip())
    assert executed.is_relative_to(home / "data") and executed.is_file()
