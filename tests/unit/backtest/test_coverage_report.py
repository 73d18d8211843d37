"""The backtest says how much of the universe it judged: a 7-symbol model whose out-of-sample
predictions are MSFT's alone reports "trades: N, all in MSFT (1 of 7 symbols)" in the CLI, the HTML
report and the MLflow run; a balanced universe raises no warning."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.unit.features.research_kit import random_walk_panel
from workbench.backtest.coverage import trade_coverage
from workbench.backtest.evaluate import backtest_model
from workbench.cli import app
from workbench.data.lake import Lake
from workbench.models.registry import Registry
from workbench.models.training import train

SEVEN = ("AAPL", "AMZN", "GOOG", "META", "NVDA", "TSLA", "MSFT")


def _home(tmp_path_factory, name: str, panel):
    from workbench.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp(name))
    settings.ensure_dirs()
    Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    result = train(panel, params={"n_estimators": 30}, validation="walk_forward", n_folds=3)
    Registry(settings).register(result)
    return settings, panel


@pytest.fixture(scope="module")
def thin_home(tmp_path_factory):
    panel = random_walk_panel(n_bars=500, symbols=SEVEN, seed=5, early_end={s: 300 for s in SEVEN[:-1]})
    return _home(tmp_path_factory, "bt-thin", panel)


def test_a_backtest_of_msft_alone_says_so_everywhere(thin_home, tmp_path):
    settings, panel = thin_home
    rep = backtest_model(settings, "champion", panel=panel, out_dir=tmp_path / "rep")
    cov = rep.coverage
    n = len(rep.result.trades)
    assert n > 0 and cov.n_trades == n
    assert cov.universe == SEVEN and cov.predicted == ("MSFT",) and cov.traded == ("MSFT",)
    assert cov.trades_text() == f"trades: {n}, all in MSFT (1 of 7 symbols)"
    line = rep.notes[0]
    assert line.startswith("Universe: 7 symbols; out-of-sample predictions for 1 of 7 (none for AAPL, AMZN")
    assert "Only 1 of 7 symbols have out-of-sample predictions" in line and "Every trade is in MSFT" in line
    page = rep.paths["html"].read_text()
    assert "all in MSFT (1 of 7 symbols)" in page and "7 symbols (1 predicted out of sample, 1 traded)" in page
    assert "Symbols: out-of-sample predictions and trades" in page
    run = Registry(settings).client.get_run(rep.run_id).data
    assert run.metrics["backtest_symbols_universe"] == 7 and run.metrics["backtest_symbols_predicted"] == 1
    assert run.metrics["backtest_symbols_traded"] == 1 and run.metrics["backtest_top_symbol_trade_share"] == 1.0
    assert "all in MSFT" in run.tags["backtest_coverage"]
    res = CliRunner().invoke(app, ["backtest", "--home", str(settings.home), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert f"trades: {n}, all in MSFT (1 of 7 symbols)" in res.output and "WARNING" in res.output


def test_a_balanced_backtest_raises_no_warning(tmp_path_factory, tmp_path):
    settings, panel = _home(tmp_path_factory, "bt-even", random_walk_panel(n_bars=400, symbols=SEVEN, seed=5))
    rep = backtest_model(settings, "champion", panel=panel, out_dir=tmp_path / "rep", log=False)
    cov = rep.coverage
    assert cov.predicted == SEVEN and len(cov.traded) >= 4 and cov.warnings == ()
    assert "WARNING" not in rep.notes[0] and "out-of-sample predictions for 7 of 7;" in rep.notes[0]
    assert cov.top_share <= 0.5


def test_trade_coverage_names_concentration():
    ts = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    proba = pd.DataFrame({"A": [0.6, 0.4, 0.7], "B": [0.5, None, 0.5], "C": [None] * 3, "D": [0.5] * 3}, index=ts)
    trades = pd.DataFrame({"symbol": ["A"] * 6 + ["B"] * 2 + ["D"]})
    cov = trade_coverage(["A", "B", "C", "D"], proba, trades)
    assert cov.predicted == ("A", "B", "D") and cov.traded == ("A", "B", "D")
    assert cov.trades_text() == "trades: 9 in 3 of 4 symbols (A 67%, B 22%, D 11%)"
    assert cov.warnings == ("A holds 67% of the trades.",)
    assert cov.table()["trades"].tolist() == [6, 2, 1, 0]
    even = trade_coverage(["A", "B", "C", "D"], proba, pd.DataFrame({"symbol": ["A", "B", "D", "A", "B", "D"]}))
    assert even.warnings == () and even.trades_text() == "trades: 6 in 3 of 4 symbols"
    none = trade_coverage(["A", "B"], proba[["A", "B"]], pd.DataFrame({"symbol": []}))
    assert none.trades_text() == "trades: 0 (0 of 2 symbols)" and none.warnings == ()
