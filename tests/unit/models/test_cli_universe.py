"""`--universe` means one thing for `train`, `backtest` and `sweep` (as for `live run`): a spec resolved by
`workbench.trading.universes` — here `file:PATH` — or a comma list, which keeps its meaning of earlier
releases; a spec that cannot be resolved is a usage error (exit 2) naming what is wrong, before any work.
A real lake and a real MLflow store; the sweep runs on a real one-worker Dask cluster."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.unit.features.research_kit import random_walk_panel
from workbench.cli import app
from workbench.cli_exits import ExitCode
from workbench.data.lake import Lake
from workbench.models.registry import Registry

SYMS = ("SYN-A", "SYN-B", "SYN-C", "SYN-D", "SYN-E")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A lake of five symbols on SYNTH and a champion trained on three of them, chosen by a universe file."""
    from workbench.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp("universe-home"))
    settings.ensure_dirs()
    Lake(settings.lake_dir).write(random_walk_panel(n_bars=300, symbols=SYMS).to_long(), "SYNTH", "1d", "test")
    picks = settings.home / "picks.txt"
    picks.write_text("# three of the five\nSYN-A\nSYN-C\n\nSYN-E\n", encoding="utf-8")
    out = _run(settings.home, "train", "--universe", f"file:{picks}", "--folds", "2")
    assert out.exit_code == 0, out.output
    return settings


def _run(home, *args):
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def _said(out) -> str:
    return " ".join(out.output.split())  # long sentences are wrapped at 118 columns


def test_train_takes_a_universe_file_or_a_comma_list(home):
    registry = Registry(home)
    assert registry.load("workbench@1").universe["symbols"] == ["SYN-A", "SYN-C", "SYN-E"]
    assert registry.load("workbench@1").universe["exchange"] == "SYNTH"
    out = _run(home.home, "train", "--universe", "SYN-B, SYN-D", "--folds", "2")
    assert out.exit_code == 0, out.output
    assert "training lgbm on SYNTH 1d, 2 symbols" in _said(out)
    assert registry.load("workbench@2").universe["symbols"] == ["SYN-B", "SYN-D"]


def test_train_refuses_a_bad_universe_with_the_usage_exit(home):
    out = _run(home.home, "train", "--universe", "SYN-A,NOPE")
    assert out.exit_code == int(ExitCode.USAGE), out.output
    assert "--universe 'SYN-A,NOPE': unknown symbol on SYNTH: NOPE (1 of 2)" in _said(out)
    assert "Traceback" not in out.output
    out = _run(home.home, "train", "--universe", "SYN-A,SYN-B", "--symbols", "SYN-C")
    assert out.exit_code == int(ExitCode.USAGE) and "--universe and --symbols both name the symbols" in out.output
    out = _run(home.home, "train", "--universe", "SYN-A,SYN-B", "--exchange", "OTHER")
    assert out.exit_code == int(ExitCode.USAGE) and "disagree" in out.output


def test_backtest_takes_a_universe_file_or_a_comma_list(home, tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("SYN-A\nSYN-E\n", encoding="utf-8")
    out = _run(
        home.home, "backtest", "--model", "workbench@1", "--universe", f"file:{two}", "--out", str(tmp_path / "f")
    )
    assert out.exit_code == 0, out.output
    assert "note: Universe: 2 symbols;" in out.output
    out = _run(home.home, "backtest", "--model", "workbench@1", "--universe", "SYN-C", "--out", str(tmp_path / "c"))
    assert out.exit_code == 0, out.output
    assert "note: Universe: 1 symbols;" in out.output
    # a comma list keeps its meaning: a subset of the model's symbols (SYN-B is in the lake, not in the model)
    out = _run(home.home, "backtest", "--model", "workbench@1", "--universe", "SYN-A,SYN-B")
    assert out.exit_code == int(ExitCode.DATA) and "not in the model's universe" in out.output


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("file:/no/such/picks.txt", "--universe 'file:/no/such/picks.txt': universe file /no/such/picks.txt could not"),
        ("exchange:NOPE", "no instruments of exchange 'NOPE' in the instrument master"),
        ("demo", "no demo universe in the lake yet"),
        (" , ", "--universe ',' names no symbols"),
    ],
)
def test_backtest_and_sweep_refuse_a_bad_spec_with_the_usage_exit(home, spec, says):
    for command in (["backtest", "--model", "workbench@1"], ["sweep", "--models", "workbench@1", "--workers", "1"]):
        out = _run(home.home, *command, "--universe", spec)
        assert out.exit_code == int(ExitCode.USAGE), out.output
        assert says in _said(out) and "Traceback" not in out.output
        assert "backtests on Dask" not in out.output  # refused before a cluster started


@pytest.mark.slow
def test_sweep_takes_a_universe_file_and_a_comma_list(home, tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("SYN-A\nSYN-E\n", encoding="utf-8")
    out = _run(
        home.home,
        "sweep",
        "--models",
        "workbench@1",
        "--max-position",
        "0.2",
        "--min-strength",
        "0.0",
        "--universe",
        f"file:{two}",
        "--universe",
        "SYN-A,SYN-C,SYN-E",
        "--workers",
        "1",
        "--experiment",
        "universe-sweep",
    )
    assert out.exit_code == 0, out.output
    assert "2 backtests on Dask" in out.output
    assert "on 2 symbols" in out.output and "on 3 symbols" in out.output
