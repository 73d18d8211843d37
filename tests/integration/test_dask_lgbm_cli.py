"""`workbench train --model lgbm --distributed-fit`: one LightGBM fitted across a real 2-process
LocalCluster (LightGBM's Dask estimator), registered in a real MLflow store with the in-process
training's evidence, promoted, and traded by `workbench live run --model` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.kit.users import trader
from workbench.config import load_settings
from workbench.data.demo import demo_universe_in_lake, ensure_demo_data

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from typer.testing import CliRunner

    from workbench.cli import app

    settings = load_settings(tmp_path_factory.mktemp("home"))
    settings.ensure_dirs()
    ensure_demo_data(settings, "synthetic")
    home = ["--home", str(settings.home)]
    out = CliRunner().invoke(
        app, ["train", "--model", "lgbm", "--folds", "3", "--workers", "2", "--distributed-fit", *home]
    )
    assert out.exit_code == 0, out.output
    return settings, " ".join(out.output.split())


def test_cli_fits_on_the_cluster_and_registers_the_evidence(trained):
    from workbench.models.registry import Registry

    settings, said = trained
    assert (
        "lightgbm.DaskLGBMClassifier" in said and "2 workers" in said and "registered workbench v1 as champion" in said
    )
    registry = Registry(settings)
    loaded = registry.load("champion")
    run = registry.client.get_run(loaded.ref.run_id)
    p = run.data.params
    assert p["kind"] == "lgbm" and p["validation"] == "walk_forward" and p["split.calibration"] == "platt"
    assert p["lineage.dask_scheduler"].startswith("tcp://127.0.0.1:")
    assert len(p["lineage.dask_workers"].split(", ")) == 2
    assert p["lineage.fold_windows"].count("fold ") == 3 and p["lineage.time_shards"].count("…") >= 2
    assert p["lineage.data_range"] and p["lineage.call"].startswith(f"Lake('{settings.lake_dir}')")
    assert p["lineage.leak_check"].startswith("next-bar IC") and "shards" in p["lineage.leak_check"]
    assert p["lineage.leak_report"].startswith("no leak found")
    m = run.data.metrics
    for k in (
        "auc",
        "ic_mean",
        "momentum_auc",
        "reversal_ic_mean",
        "majority_log_loss",
        "n_folds",
        "beats_baselines",
    ):
        assert k in m, k
    assert m["n_folds"] == 3
    # Per fold, beside the baselines; per date: the out-of-sample P(up) over every test bar.
    folds = pd.read_csv(registry.client.download_artifacts(loaded.ref.run_id, "evaluation/folds.csv"))
    assert list(folds["fold"]) == [0, 1, 2] and {"auc", "momentum_auc", "ic_mean", "fit_seconds"} <= set(folds)
    oos = registry.load_oos(loaded)
    assert oos.fold.nunique() == 3 and oos.proba.notna().to_numpy().any()
    # The fold windows are in-process training's purged, embargoed walk-forward windows.
    demo = demo_universe_in_lake(settings)
    from workbench.data.lake import Lake
    from workbench.models.training import train

    panel = Lake(settings.lake_dir).load_panel(demo.exchange, demo.timeframe, list(demo.symbols))
    local = train(panel, "lgbm", validation="walk_forward", n_folds=3, params={"n_estimators": 5})
    for col in ("test_start", "test_end"):
        assert list(pd.to_datetime(folds[col], utc=True)) == list(local.folds[col]), col
    assert list(pd.to_datetime(folds["test_start"], utc=True)) == list(oos.windows()["start"])
    assert (pd.to_datetime(folds["train_end"], utc=True) < pd.to_datetime(folds["test_start"], utc=True)).all()
    # The registered model serves: P(up) in (0, 1) on the panel's features.
    from workbench.features.pipeline import build_features

    X = build_features(panel, loaded.meta["feature_set"]).dropna().tail(50)
    proba = loaded.predict_proba(X)
    assert proba.shape == (50,) and ((proba > 0) & (proba < 1)).all() and np.std(proba) > 0


def test_promoted_cluster_model_trades_in_live_run(trained):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.models.registry import Registry

    settings, _ = trained
    home = ["--home", str(settings.home)]
    out = CliRunner().invoke(
        app, ["train", "--model", "lgbm", "--folds", "2", "--distributed-fit", "--workers", "1", *home]
    )
    assert out.exit_code == 0 and "as challenger" in out.output, out.output
    token = trader(settings, "quant", ("trade_paper", "admin")).token
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home), "WORKBENCH_TOKEN": token}
    promote = subprocess.run([sys.executable, "-m", "workbench", "models", "promote", "2"], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert promote.returncode == 0, promote.stdout + promote.stderr
    assert Registry(settings).load("champion").ref.version == 2
    live = subprocess.run(
        [sys.executable, "-m", "workbench", "live", "run", "--broker", "paper", "--model", "champion",
         "--cycles", "2", "--interval", "1"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert live.returncode == 0, live.stdout + live.stderr
    from workbench.trading.store import Store

    store = Store(settings.store_url)
    run = max((store.run(i) for i in range(1, 10) if store.run(i) is not None), key=lambda r: r["id"])
    assert (
        run["status"] == "STOPPED"
        and str(run["model_ref"]).startswith("workbench/2 ")
        and len(store.cycles(run["id"])) == 2
    )


def test_distributed_fit_needs_lgbm_or_rf(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    out = CliRunner().invoke(app, ["train", "--model", "lstm", "--distributed-fit", "--home", str(tmp_path)])
    assert out.exit_code == 2 and "lgbm" in out.output and "rf" in out.output and "not lstm" in out.output
