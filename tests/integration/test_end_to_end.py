"""The whole flow on real candles, through the public APIs and the CLI, in a temp WORKBENCH_HOME:
ingest real CSVs → features → train → register → backtest → `workbench live run` in a subprocess,
after which SQLite holds orders and positions that obey every risk rule."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.config import load_settings

# Twenty NASDAQ names from the Kaggle S&P 500 set (2013-02-08 .. 2018-02-07, daily).
SYMBOLS = [
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOGL",
    "INTC",
    "CSCO",
    "NVDA",
    "ADBE",
    "AMGN",
    "QCOM",
    "TXN",
    "COST",
    "SBUX",
    "GILD",
    "BIIB",
    "CMCSA",
    "PYPL",
    "NFLX",
    "AMAT",
    "ADP",
]


def _cli(home: Path, *args: str, check: bool = True, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    if token:
        env["WORKBENCH_TOKEN"] = token  # the session of the user acting (never argv)
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"workbench {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def e2e(shared_data, tmp_path_factory):
    """Run the flow once; the tests below inspect what it left behind."""
    from workbench.backtest import backtest_model
    from workbench.data.ingest import pull
    from workbench.data.lake import Lake
    from workbench.data.sources.csv_source import CsvSource
    from workbench.models.registry import Registry
    from workbench.models.training import train

    home = tmp_path_factory.mktemp("e2e-home")
    settings = load_settings(home)
    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    folder = shared_data / "us_equities" / "sp500_5yr_kaggle_cnuge"
    for sym in SYMBOLS:
        src = CsvSource(folder / f"{sym}_data.csv", exchange="NASDAQ", symbol=sym)
        report = pull(lake, src, [sym], "1d", progress=False)
        assert not report.errors, report.errors
    # Re-ingesting the same files adds nothing.
    again = pull(
        lake, CsvSource(folder / "AAPL_data.csv", exchange="NASDAQ", symbol="AAPL"), ["AAPL"], "1d", progress=False
    )
    assert sum(again.new_rows.values()) == 0

    panel = lake.load_panel("NASDAQ", "1d", SYMBOLS)
    result = train(panel, kind="lgbm")
    registry = Registry(settings)
    ref = registry.register(result)
    report = backtest_model(settings, ref="champion").metrics
    from tests.kit.users import trader

    token = trader(settings).token  # `live run` needs a session
    live = _cli(
        home, "live", "run", "--broker", "paper", "--model", "champion", "--cycles", "3", "--interval", "1", token=token
    )
    return {
        "home": home,
        "settings": settings,
        "panel": panel,
        "result": result,
        "ref": ref,
        "report": report,
        "live": live,
        "token": token,
    }


def _db(settings) -> sqlite3.Connection:
    path = settings.store_url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    return con


def test_model_is_champion_with_out_of_sample_metrics(e2e):
    assert e2e["ref"].alias == "champion"
    m = e2e["result"].metrics
    assert 0.0 <= m["auc"] <= 1.0 and m["n_test"] > 1000
    split = e2e["result"].split
    assert pd.Timestamp(split["train_end"]) < pd.Timestamp(split["test_start"])


def test_backtest_report_on_out_of_sample_window(e2e):
    report = e2e["report"]
    for key in ("total_return", "sharpe", "max_drawdown", "trades"):
        assert key in report and np.isfinite(float(report[key]))
    assert pd.Timestamp(report["start"]) >= pd.Timestamp(e2e["result"].split["test_start"]) - pd.Timedelta(days=1)


def test_live_run_recorded_phase1_and_three_cycles(e2e):
    with _db(e2e["settings"]) as con:
        run = con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        assert run["status"] == "STOPPED", dict(run)
        checks = con.execute("SELECT name, ok FROM checks WHERE run_id = ? ORDER BY seq", (run["id"],)).fetchall()
        assert len(checks) >= 5 and all(c["ok"] for c in checks), [dict(c) for c in checks]
        cycles = con.execute("SELECT COUNT(*) FROM cycles WHERE run_id = ?", (run["id"],)).fetchone()[0]
        assert cycles == 3


def test_live_orders_obey_every_risk_rule(e2e):
    settings = e2e["settings"]
    limits = settings.risk
    with _db(settings) as con:
        run_id = con.execute("SELECT MAX(id) FROM runs").fetchone()[0]
        orders = pd.read_sql_query("SELECT * FROM orders WHERE run_id = ?", con, params=(run_id,))
        signals = pd.read_sql_query("SELECT * FROM signals WHERE run_id = ?", con, params=(run_id,))
        equity = pd.read_sql_query("SELECT * FROM equity WHERE run_id = ? ORDER BY ts", con, params=(run_id,))
        positions = pd.read_sql_query("SELECT * FROM positions WHERE quantity != 0", con)
    assert len(signals) == 3 * len(SYMBOLS)
    buys = orders[orders["side"] == "buy"]
    assert len(buys) > 0, "the champion produced no entry in three cycles"
    start_equity = settings.paper.starting_cash
    for _, o in buys.iterrows():
        sig = signals[(signals["cycle"] == o["cycle"]) & (signals["symbol"] == o["symbol"])].iloc[0]
        assert sig["signal"] == "BUY" and sig["strength"] > limits.min_strength
        if o["status"] == "FILLED":
            # equity never exceeds start by much over 3 days; the cap is checked against the start equity
            notional = o["filled_quantity"] * o["average_price"]
            assert notional <= limits.max_position_pct * start_equity * 1.06, (o["symbol"], notional)
    assert (equity["cash"] >= -1e-9).all()
    assert len(positions) > 0
    assert set(positions["symbol"]) <= set(SYMBOLS)


def test_live_status_from_another_process(e2e):
    proc = _cli(e2e["home"], "live", "status", token=e2e["token"])
    assert '"status": "STOPPED"' in proc.stdout


def test_bad_csv_names_file_and_row(tmp_path):
    bad = tmp_path / "BAD_data.csv"
    bad.write_text(
        "date,open,high,low,close,volume,Name\n"
        "2020-01-01,10,11,9,10.5,100,BAD\n"
        "2020-01-02,10,9,11,10.5,100,BAD\n"  # high < low
    )
    proc = _cli(tmp_path / "home", "data", "pull", "--source", f"csv:{bad}@NASDAQ", check=False)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "BAD_data.csv" in err and "row 2" in err and "high" in err
