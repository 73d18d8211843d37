"""A RandomForest whose trees are built on a real 2-process LocalCluster through joblib's Dask backend:
the same evidence and the same predictions as the in-process fit with the same random_state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream

from tests.unit.features.research_kit import random_walk_panel
from workbench.models import distributed as dist
from workbench.models.dask_forest import CLUSTER_JOBS, train_rf_on_cluster
from workbench.models.training import train

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

SYMS = tuple(f"S{i:02d}" for i in range(8))
OPTS = dict(n_folds=3, test_fraction=0.3, horizon=1, label="sign", seed=3)


def test_forest_trees_on_the_cluster_equal_the_in_process_forest():
    panel = random_walk_panel(n_bars=400, symbols=SYMS)
    params = {"n_estimators": 40}
    with dist.client_for(None, workers=2) as client:
        client.wait_for_workers(2)
        workers = set(client.scheduler_info()["workers"])
        with get_task_stream(client) as stream:
            remote = train_rf_on_cluster(client, panel, params=params, **OPTS)
    # the trees were built by the workers: joblib's batches ran as Dask tasks on both of them
    ran = {t["worker"] for t in stream.data if "batch_of" in str(t.get("key", "")).lower() or "joblib" in str(t)}
    assert ran == workers, (ran, workers)
    assert remote.lineage["dask_workers"] == ", ".join(sorted(workers)) and remote.lineage["dask_threads"] == "2"
    local = train(panel, "rf", validation="walk_forward", params={**params, "n_jobs": CLUSTER_JOBS}, **OPTS)
    # the same evidence as in-process training: calibration, leak report, folds, metrics, data hash
    assert remote.params == local.params and remote.params["n_jobs"] == CLUSTER_JOBS
    assert remote.split == local.split and remote.split["calibration"] == "platt"
    assert remote.data_hash == local.data_hash and remote.leaks is not None and not remote.leaks
    assert set(remote.metrics) == set(local.metrics)
    for k, v in local.metrics.items():
        if k != "fit_seconds":
            assert np.isclose(v, remote.metrics[k], rtol=0, atol=0, equal_nan=True), k
    pd.testing.assert_frame_equal(remote.oos, local.oos, check_exact=True)
    # the registered models predict the same numbers to the last bit (same trees, same calibrator)
    X = panel_features(panel)
    assert np.array_equal(remote.model.predict_proba(X), local.model.predict_proba(X))


def panel_features(panel):
    from workbench.features.pipeline import build_features

    return build_features(panel, "v1").dropna().tail(200)


def test_cli_rf_distributed_fit_registers_the_in_process_evidence(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.config import load_settings
    from workbench.data.demo import ensure_demo_data
    from workbench.models.registry import Registry

    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    ensure_demo_data(settings, "synthetic")
    out = CliRunner().invoke(
        app,
        ["train", "--model", "rf", "--folds", "2", "--workers", "2", "--distributed-fit", "--home", str(settings.home)],
    )
    assert out.exit_code == 0, out.output
    assert "joblib's Dask backend" in " ".join(out.output.split())
    registry = Registry(settings)
    run = registry.client.get_run(registry.load("champion").ref.run_id)
    p = run.data.params
    assert p["kind"] == "rf" and p["split.calibration"] == "platt" and p["lineage.dask_threads"] == "2"
    assert "joblib" in p["lineage.fit"] and p["lineage.call"].startswith(f"Lake('{settings.lake_dir}')")
    assert {"auc", "momentum_auc", "n_folds", "beats_baselines"} <= set(run.data.metrics)
