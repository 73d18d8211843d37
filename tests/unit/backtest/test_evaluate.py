"""A registered walk-forward model backtested on its out-of-sample predictions only: orders carry
their fold, the report lands on disk and in the model's MLflow run, and the CLI says who won."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.unit.features.research_kit import random_walk_panel
from workbench.backtest import BacktestReport, backtest_model
from workbench.backtest.report import BASELINE, BUY_AND_HOLD, METRICS, STRATEGY
from workbench.cli import app
from workbench.data.lake import Lake
from workbench.data.panel import Panel
from workbench.errors import ModelError, NoDataError, NoModelError, UnknownSymbolError
from workbench.models.registry import Registry
from workbench.models.training import train

SYMBOLS = ("SYN-A", "SYN-B", "SYN-C", "SYN-D")


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A home whose lake holds the panel and whose champion was trained walk-forward (3 folds) on it."""
    from workbench.config import load_settings

    settings = load_settings(tmp_path_factory.mktemp("bt-eval-home"))
    settings.ensure_dirs()
    panel = random_walk_panel(n_bars=500, symbols=SYMBOLS, late_start={"SYN-D": 80})
    Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    result = train(panel, params={"n_estimators": 40}, validation="walk_forward", n_folds=3)
    ref = Registry(settings).register(result)
    return settings, panel, result, ref


@pytest.fixture(scope="module")
def report(trained_home, tmp_path_factory) -> BacktestReport:
    settings, panel, _, _ = trained_home
    return backtest_model(settings, "champion", panel=panel, out_dir=tmp_path_factory.mktemp("bt-out") / "rep")


def test_oos_predictions_are_stored_with_the_model(trained_home):
    settings, _, result, _ = trained_home
    oos = Registry(settings).load_oos("champion")
    pd.testing.assert_frame_equal(oos.proba, result.oos_proba, check_freq=False)
    pd.testing.assert_series_equal(oos.fold, result.oos_fold, check_freq=False, check_names=False)
    momentum = result.oos["momentum"].unstack("symbol").reindex(index=oos.proba.index, columns=oos.proba.columns)
    np.testing.assert_allclose(oos.baseline.to_numpy(), momentum.to_numpy())
    w = oos.windows()
    assert w["fold"].tolist() == [0, 1, 2] and w["bars"].sum() == len(result.oos_proba)
    assert w["start"].iloc[0] == pd.Timestamp(result.split["oos_start"])
    assert w["start"].iloc[2] == pd.Timestamp(result.split["test_start"])


def test_only_out_of_sample_bars_are_traded_and_orders_carry_their_fold(trained_home, report):
    _, _, result, _ = trained_home
    orders, fold = report.result.orders, result.oos_fold
    first_oos = fold.index.min()
    assert len(orders) > 0 and report.metrics["trades"] > 0
    assert (pd.DatetimeIndex(orders["ts"]) >= first_oos).all()
    assert report.result.equity.index[0] == first_oos and report.result.equity.index[-1] == fold.index.max()
    # An entry's window is the fold of its bar; an exit's is the fold of the entry it closes.
    entries = orders[orders["reason"] == "entry"]
    assert (entries["window"] == [f"fold {fold[t]}" for t in entries["ts"]]).all()
    trades = report.result.trades
    assert (trades["window"] == [f"fold {fold[t]}" for t in trades["entry_ts"]]).all()
    assert set(orders["window"]) <= {"fold 0", "fold 1", "fold 2"}
    assert report.windows["fold"].tolist() == [0, 1, 2]
    assert report.windows["bars"].sum() == len(report.result.equity)
    # Per window: the windows' returns compound to the whole; trades and P&L add up to the totals.
    w = report.windows
    for col, r in (("strategy", report.result), ("buy & hold", report.buy_and_hold)):
        assert np.prod(1 + w[f"{col} return"]) - 1 == pytest.approx(r.equity.iloc[-1] / r.init_cash - 1, rel=1e-9)
    assert w["trades"].sum() == len(trades)
    closed = trades[trades["exit_ts"].notna()]
    assert w["P&L"].sum() == pytest.approx(closed["pnl"].sum(), rel=1e-12)


def test_report_compares_with_buy_and_hold_and_baseline(trained_home, report):
    table = report.table
    assert list(table.columns) == [STRATEGY, BUY_AND_HOLD, BASELINE] and list(table.index) == list(METRICS)
    assert table.at["total_return", STRATEGY] == pytest.approx(report.metrics["total_return"])
    assert table.at["total_return", STRATEGY] == pytest.approx(report.result.equity.iloc[-1] / 100_000 - 1)
    # Buy & hold holds the whole OOS stretch in every symbol: fully invested, one entry each.
    assert table.at["trades", BUY_AND_HOLD] == len(SYMBOLS) and table.at["exposure", BUY_AND_HOLD] > 0.99
    assert table.at["fees", STRATEGY] > 0 and table.at["fees", BASELINE] > 0
    assert report.baseline is not None and len(report.baseline.orders) > 0
    assert not report.baseline.orders.equals(report.result.orders)
    assert report.beats == {
        BUY_AND_HOLD: table.at["total_return", STRATEGY] > table.at["total_return", BUY_AND_HOLD],
        BASELINE: table.at["total_return", STRATEGY] > table.at["total_return", BASELINE],
    }
    assert report.verdict.startswith("After fees and slippage the strategy returned")


def test_report_files_and_mlflow_run(trained_home, report):
    settings, _, _, ref = trained_home
    page = report.paths["html"].read_text()
    assert "total return" in page and page.count("data:image/png;base64,") == 4 and "fold 2" in page
    for key in ("equity", "drawdown", "trade_pnl", "fills"):
        assert report.paths[key].read_bytes()[:4] == b"\x89PNG"
    client = Registry(settings).client
    run = client.get_run(ref.run_id)
    m = run.data.metrics
    assert m["backtest_total_return"] == pytest.approx(report.metrics["total_return"])
    assert m["backtest_sharpe"] == pytest.approx(report.metrics["sharpe"])
    assert m["backtest_buy_hold_total_return"] == pytest.approx(report.table.at["total_return", BUY_AND_HOLD])
    assert m["backtest_baseline_total_return"] == pytest.approx(report.table.at["total_return", BASELINE])
    assert m["backtest_trades"] == report.metrics["trades"]
    assert run.data.tags["backtest_verdict"] == report.verdict
    folder = report.paths["html"].parent.name
    logged = {f.path for f in client.list_artifacts(ref.run_id, f"reports/{folder}")}
    assert {f"reports/{folder}/{n}" for n in ("report.html", "equity.png", "drawdown.png", "comparison.csv")} <= logged


def test_fills_beyond_the_bars_volume_share_are_called_optimistic(trained_home, tmp_path):
    """The engine fills whole orders; on thin bars the paper broker would not. The report says so."""
    settings, panel, _, ref = trained_home

    def with_volume(volume):
        return Panel(
            open=panel.open,
            high=panel.high,
            low=panel.low,
            close=panel.close,
            volume=volume,
            exchange=panel.exchange,
            timeframe=panel.timeframe,
        )

    ample = backtest_model(settings, panel=with_volume(panel.volume * 1000), out_dir=tmp_path / "a", log=False)
    assert not any("volume" in n for n in ample.notes)
    thin = with_volume(panel.volume * 0 + 1.0)
    rep = backtest_model(settings, panel=thin, out_dir=tmp_path / "b")
    (note,) = [n for n in rep.notes if "volume" in n]
    n = len(rep.result.orders.groupby(["ts", "symbol"]))  # every bar traded takes far more than 10% of 1 share
    assert (
        note.startswith(f"{n} times the strategy traded more than 10% of a bar's volume in one symbol")
        and "optimistic" in note
    )
    assert html.escape(note) in rep.paths["html"].read_text()
    assert Registry(settings).client.get_run(ref.run_id).data.metrics["backtest_volume_breaches"] == n


def test_universe_and_window_are_narrowed_and_errors_say_what_exists(trained_home, tmp_path):
    settings, panel, result, _ = trained_home
    f1 = result.oos_fold[result.oos_fold == 1].index
    rep = backtest_model(
        settings,
        panel=panel,
        universe="SYN-A,SYN-C",
        start=f1[0].date().isoformat(),
        end=f1[-1].date().isoformat(),
        out_dir=tmp_path / "narrow",
        log=False,
    )
    assert rep.windows["fold"].tolist() == [1] and rep.result.equity.index[0] == f1[0]
    assert set(rep.result.orders["symbol"]) <= {"SYN-A", "SYN-C"} and set(rep.result.orders["window"]) <= {"fold 1"}
    assert rep.table.at["trades", BUY_AND_HOLD] == 2
    with pytest.raises(NoDataError, match=r"walk-forward windows are fold 0 2021-12-26 \.\. 2022-02-10; fold 1"):
        backtest_model(settings, panel=panel, start="2021-01-01", end="2021-06-30", log=False)
    with pytest.raises(UnknownSymbolError, match="not in the model's universe"):
        backtest_model(settings, panel=panel, universe="SYN-A,NOPE", log=False)
    with pytest.raises(NoModelError, match="workbench train"):
        backtest_model(settings, ref="workbench@99", panel=panel, log=False)


def test_model_registered_without_oos_predictions_is_refused(settings):
    panel = random_walk_panel(n_bars=300, symbols=SYMBOLS[:2])
    result = train(panel, params={"n_estimators": 10})
    result.oos_proba = pd.DataFrame()  # as a model registered before the predictions were stored
    Registry(settings).register(result)
    with pytest.raises(ModelError, match=r"without its out-of-sample predictions.*workbench train"):
        backtest_model(settings, panel=panel, log=False)


def test_cli_prints_the_table_and_the_verdict(trained_home, tmp_path):
    settings, _, _, ref = trained_home
    out = tmp_path / "cli-report"
    res = CliRunner().invoke(
        app, ["backtest", "--home", str(settings.home), "--model", f"{ref.name}@{ref.version}", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    text = res.output
    assert re.search(r"strategy\s+buy & hold\s+baseline model", text)
    assert re.search(r"total return\s+-?\d+\.\d\d%\s+-?\d+\.\d\d%\s+-?\d+\.\d\d%", text)
    assert "After fees and slippage the strategy returned" in text and "buy & hold" in text
    assert re.search(r"per walk-forward window:\n\s*fold\s+start\s+end\s+bars\s+strategy return", text)
    assert re.search(r"\n\s*0\s+\d{4}-\d\d-\d\d\s+\d{4}-\d\d-\d\d\s+\d+\s+-?\d+\.\d\d%", text)
    assert f"report: {out / 'report.html'}" in text and (out / "equity.png").exists()
    bad = CliRunner().invoke(app, ["backtest", "--home", str(settings.home), "--start", "2030-01-01"])
    assert bad.exit_code == 4 and "walk-forward windows are fold 0" in bad.output  # 4: market data (NoDataError)
