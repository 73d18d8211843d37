"""Universe coverage of walk-forward folds: a 7-symbol model whose test folds hold only MSFT says so
before training, in its TrainResult, in the registry and in `workbench models show`; a balanced
universe raises no warning. Synthetic panels, a real lake and a real MLflow store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.unit.features.research_kit import random_walk_panel
from workbench.cli import app
from workbench.data.lake import Lake
from workbench.models.coverage import Coverage, fold_coverage
from workbench.models.registry import Registry
from workbench.models.splits import Fold
from workbench.models.training import train

SEVEN = ("AAPL", "AMZN", "GOOG", "META", "NVDA", "TSLA", "MSFT")
OTHERS = SEVEN[:-1]


def thin_panel():
    """500 daily bars; all but MSFT stop at bar 300, so the last 30% (the test span) is MSFT's alone."""
    return random_walk_panel(n_bars=500, symbols=SEVEN, seed=5, early_end={s: 300 for s in OTHERS})


@pytest.fixture(scope="module")
def thin():
    seen: list[Coverage] = []
    result = train(
        thin_panel(), params={"n_estimators": 30}, validation="walk_forward", n_folds=3, on_coverage=seen.append
    )
    return result, seen


def test_a_model_tested_only_on_msft_says_so_before_and_after_training(thin):
    result, seen = thin
    assert len(seen) == 1  # reported once, before the fit
    cov = seen[0]
    assert cov.universe == SEVEN and cov.tested == ("MSFT",) and set(cov.never_tested) == set(OTHERS)
    assert cov.folds["test_symbols"].tolist() == [1, 1, 1] and (cov.folds["top_symbol"] == "MSFT").all()
    assert (cov.folds["train_symbols"] == 7).all()  # all seven trained on, one tested
    assert cov.per_fold_text() == "0: 1/7, 1: 1/7, 2: 1/7"
    assert cov.thin and any("fold 0 tests only MSFT (1 of 7 symbols)" in w for w in cov.warnings)
    assert any(w.startswith("6 of 7 symbols are never tested") for w in cov.warnings)
    # What the symbol table says matches the out-of-sample rows the run produced.
    assert cov.symbols.loc["MSFT", "test_rows"] == len(result.oos) == cov.folds["test_rows"].sum()
    assert cov.symbols.loc["MSFT", "test_dates"] == result.oos.index.get_level_values("ts").nunique()
    assert (cov.symbols.loc[list(OTHERS), "test_rows"] == 0).all()
    assert result.coverage is not None and result.coverage.warnings == cov.warnings
    text = "\n".join(cov.lines())
    assert "7 symbols; 1 with out-of-sample test rows; never tested: AAPL, AMZN" in text and "WARNING" in text


def test_a_balanced_universe_raises_no_warning():
    panel = random_walk_panel(n_bars=400, symbols=SEVEN, seed=5)
    seen: list[Coverage] = []
    result = train(panel, params={"n_estimators": 20}, validation="walk_forward", n_folds=2, on_coverage=seen.append)
    cov = result.coverage
    assert seen[0].warnings == () and cov.warnings == () and not cov.thin
    assert cov.tested == SEVEN and cov.never_tested == ()
    assert (cov.folds["test_symbols"] == 7).all()
    assert "WARNING" not in "\n".join(cov.lines())


def test_fold_coverage_counts_rows_dates_and_concentration():
    ts = pd.date_range("2024-01-01", periods=10, freq="1D", tz="UTC")
    # A and B every day, C only on the first two days; D has no rows at all.
    pairs = [(t, s) for t in ts for s in ("A", "B")] + [(t, "C") for t in ts[:2]]
    index = pd.MultiIndex.from_tuples(pairs, names=["ts", "symbol"]).sort_values()
    row_ts = index.get_level_values("ts")
    test = np.asarray(row_ts >= ts[6])
    fold = Fold(0, np.asarray(row_ts <= ts[4]), test, ts[6], ts[9])
    cov = fold_coverage(index, ["A", "B", "C", "D"], [fold])
    assert cov.symbols["test_rows"].to_dict() == {"A": 4, "B": 4, "C": 0, "D": 0}
    assert cov.symbols["test_dates"].to_dict() == {"A": 4, "B": 4, "C": 0, "D": 0}
    assert cov.symbols["train_rows"].to_dict() == {"A": 5, "B": 5, "C": 2, "D": 0}
    assert cov.folds.loc[0, "train_symbols"] == 3 and cov.folds.loc[0, "test_symbols"] == 2
    assert cov.never_tested == ("C", "D")
    assert cov.warnings == (
        (
            "2 of 4 symbols are never tested out of sample (C, D): the out-of-sample scores and "
            "the backtest say nothing about them"
        ),
    )
    # Only labelled rows count for training; one symbol holding most test rows is called out.
    labelled = np.asarray(index.get_level_values("symbol") != "C")
    skew = np.asarray(test & ((index.get_level_values("symbol") == "A") | (row_ts == ts[9])))
    cov2 = fold_coverage(index, ["A", "B"], [Fold(0, fold.train, skew, ts[6], ts[9])], labelled)
    assert cov2.symbols["train_rows"].to_dict() == {"A": 5, "B": 5}
    assert "fold 0: A holds 80% of the test rows" in cov2.warnings
    assert "A holds 80% of all out-of-sample test rows" in cov2.warnings
    back = Coverage.from_dict(cov.to_dict())
    assert back.warnings == cov.warnings and back.per_fold_text() == cov.per_fold_text()
    assert back.never_tested == cov.never_tested


def test_train_prints_coverage_before_training_and_models_show_keeps_it(tmp_path):
    from workbench.config import load_settings

    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    panel = thin_panel()
    Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    run = CliRunner().invoke(
        app, ["train", "--exchange", "SYNTH", "--timeframe", "1d", "--folds", "2", "--home", str(settings.home)]
    )
    assert run.exit_code == 0, run.output
    out = run.output
    assert "universe coverage: 7 symbols; 1 with out-of-sample test rows; never tested: AAPL" in out
    assert out.index("universe coverage") < out.index("registered ")  # printed before training ends
    assert "WARNING: fold 0 tests only MSFT (1 of 7 symbols)" in out
    run_params = Registry(settings).client.get_run(Registry(settings).load("champion").ref.run_id).data.params
    assert run_params["coverage.symbols_tested_per_fold"] == "0: 1/7, 1: 1/7"
    assert run_params["coverage.never_tested"] == ",".join(OTHERS)
    shown = CliRunner().invoke(app, ["models", "show", "champion", "--home", str(settings.home)])
    assert shown.exit_code == 0, shown.output
    assert "1 with out-of-sample test rows" in shown.output and "WARNING: fold 1 tests only MSFT" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 120
