"""`workbench train` with research options, and `workbench models show NAME@V` printing the per-fold
table readably — on a synthetic universe written to a real lake and a real MLflow store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.unit.features.research_kit import signal_panel
from workbench.cli import app
from workbench.data.lake import Lake


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from workbench.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp("cli-home"))
    settings.ensure_dirs()
    panel = signal_panel(n_bars=330, n_symbols=12, seed=3)
    Lake(settings.lake_dir).write(panel.to_long(), "SYNTH", "1d", "test")
    return settings.home


def _run(home, *args):
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def test_train_takes_research_options_and_models_show_prints_folds(home):
    out = _run(
        home,
        "train",
        "--exchange",
        "SYNTH",
        "--timeframe",
        "1d",
        "--label",
        "xs_median",
        "--horizon",
        "5",
        "--folds",
        "2",
        "--test-span",
        "0.4",
    )
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())  # long sentences are wrapped at 118 columns
    assert "label xs_median, horizon 5, features v1, embargo 5, 2 walk-forward folds over the last 0.4" in said
    assert "registered workbench v1" in said and "NO edge" in said
    shown = _run(home, "models", "show", "workbench@1")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "label xs_median, horizon 5, embargo 5 bars, 2 folds" in text
    assert "per fold: daily rank IC" in text and "mom IC" in text and "rev IC" in text and "(mean of folds)" in text
    assert "NO edge" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    rows = [line for line in text.splitlines() if line.startswith(("0 ", "1 ", "mean "))]
    assert len(rows) == 6  # two folds and the mean, in each of the two blocks


def test_bad_research_options_are_refused_with_a_message(home):
    out = _run(home, "train", "--exchange", "SYNTH", "--horizon", "5", "--embargo", "2")
    assert out.exit_code == 2 and "embargo (2 bars) must be at least the label horizon (5 bars)" in " ".join(
        out.output.split()
    )
    out = _run(home, "train", "--exchange", "SYNTH", "--label", "up")
    assert out.exit_code == 2 and "unknown label 'up'" in out.output
    out = _run(home, "models", "show", "workbench@9")
    assert out.exit_code == 5 and "no model registered" in out.output
