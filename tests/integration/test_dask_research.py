"""Research on a real dask.distributed cluster: LocalCluster worker processes, and a scheduler + worker
started as separate processes on loopback, connected to by address. Small synthetic data in a real lake."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.models import distributed as dist
from workbench.models.training import compare

pytestmark = pytest.mark.slow

SYMS = ("SYN-A", "SYN-B", "SYN-C", "SYN-D", "SYN-E")
OPTS = dict(n_folds=3, test_fraction=0.3, horizon=1, label="sign")
PARAMS = {"lgbm": {"n_estimators": 30}, "rf": {"n_estimators": 20}}


@pytest.fixture(scope="module")
def lake_home(tmp_path_factory):
    settings = load_settings(tmp_path_factory.mktemp("home"))
    settings.ensure_dirs()
    panel = random_walk_panel(n_bars=400, symbols=SYMS)
    Lake(settings.lake_dir).write(panel.to_long(), "SYNTH", "1d", "test")
    return settings, Lake(settings.lake_dir).load_panel("SYNTH", "1d", list(SYMS))


@pytest.fixture(scope="module")
def cluster_client():
    with dist.client_for(None, workers=2) as client:
        yield client


def _source(settings) -> dist.LakeSource:
    return dist.LakeSource(str(settings.lake_dir), "SYNTH", "1d", SYMS)


def test_distributed_walk_forward_equals_in_process(lake_home, cluster_client):
    """Bit-identical to an in-process run on the same thread count: each fit on a worker runs on one
    thread (n_jobs=1 in its params), so the in-process comparison runs on one too."""
    settings, panel = lake_home
    one_thread = {k: {**p, "n_jobs": 1} for k, p in PARAMS.items()}
    local = compare(panel, kinds=("lgbm", "rf"), ensemble=False, params=one_thread, **OPTS)
    (remote,) = dist.map_folds(cluster_client, _source(settings), ("lgbm", "rf"), params=PARAMS, **OPTS)
    workers = set(cluster_client.scheduler_info()["workers"])
    assert len(workers) == 2
    for kind in ("lgbm", "rf"):
        a, b = local[kind], remote[kind]
        pd.testing.assert_frame_equal(a.oos, b.oos)
        pd.testing.assert_frame_equal(a.oos_proba, b.oos_proba)
        for k, v in a.metrics.items():
            if k != "fit_seconds":
                assert np.isclose(v, b.metrics[k], equal_nan=True, rtol=0, atol=0), k
        assert a.split == b.split and a.data_hash == b.data_hash
        assert b.params["n_jobs"] == 1 and b.lineage["fit_threads"] == "1"  # the fit's threads, registered
        # the registered (last-fold) model came back and predicts as the in-process one does
        X = a.oos.index
        assert len(X) and b.model is not None
        ran = b.lineage["dask_tasks"]
        assert ran.count("fold ") == 3 and all(w.split("@")[1] in workers for w in ran.split("; "))
        assert b.lineage["dask_scheduler"] == cluster_client.scheduler.address
        assert "read_parquet" in b.lineage["query"]


def test_tasks_carry_paths_not_panels(lake_home):
    settings, panel = lake_home
    tasks = dist.fold_tasks(_source(settings), ("lgbm", "rf"), params=PARAMS, **OPTS)
    assert len(tasks) == 6
    panel_bytes = len(pickle.dumps(panel))
    for t in tasks:
        assert isinstance(t.source.root, str) and t.source.root == str(settings.lake_dir)
        assert not any(isinstance(v, (pd.DataFrame, pd.Series, np.ndarray)) for v in vars(t).values())
        assert len(pickle.dumps(t)) < 2_000 < panel_bytes  # a path and a symbol list, not ~60 kB of bars


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_explicit_scheduler_address_is_used(lake_home):
    settings, _ = lake_home
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
            "--no-show",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--name",
                "loopback-worker",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with dist.client_for(settings, scheduler=address) as client:
            client.wait_for_workers(1, timeout=60)
            (res,) = dist.map_folds(client, _source(settings), ("lgbm",), params=PARAMS, **OPTS)
            assert client.scheduler.address == address
            assert res["lgbm"].lineage["dask_scheduler"] == address
            info = client.scheduler_info()["workers"]
            assert [w["name"] for w in info.values()] == ["loopback-worker"]
            assert all(part.split("@")[1] in info for part in res["lgbm"].lineage["dask_tasks"].split("; "))
    finally:
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_unreachable_scheduler_is_a_config_error(lake_home):
    from workbench.errors import ConfigError

    settings, _ = lake_home
    with (
        pytest.raises(ConfigError, match="cannot reach the Dask scheduler"),
        dist.client_for(settings, scheduler=f"tcp://127.0.0.1:{_free_port()}"),
    ):
        pass


def test_sweep_of_20_backtests_lands_20_rows_in_mlflow(lake_home, cluster_client):
    from mlflow import MlflowClient

    from workbench.backtest.sweep import grid, run_sweep
    from workbench.models.registry import Registry
    from workbench.models.training import train

    settings, panel = lake_home
    Registry(settings).register(train(panel, "lgbm", params=PARAMS["lgbm"], validation="walk_forward", n_folds=3))
    configs = grid(
        ["champion"], {"max_position_pct": [0.05, 0.1, 0.2, 0.3, 0.5], "min_strength": [0.0, 0.05, 0.1, 0.2]}
    )
    assert len(configs) == 20
    table = run_sweep(cluster_client, settings, configs, experiment="sweep-test")
    assert len(table) == 20 and table["config"].nunique() == 20
    sharpe = table["sharpe"].to_numpy()
    assert (np.diff(sharpe[np.isfinite(sharpe)]) <= 0).all()  # best first
    assert table["total_return"].nunique() > 1  # the risk limits changed what was traded
    assert set(table["worker"]) <= set(cluster_client.scheduler_info()["workers"])
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp = client.get_experiment_by_name("sweep-test")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert len(runs) == 20
    by_id = {r.info.run_id: r for r in runs}
    for row in table.to_dict("records"):
        run = by_id[row["mlflow_run"]]
        assert float(run.data.params["risk.max_position_pct"]) == row["risk.max_position_pct"]
        assert float(run.data.params["risk.min_strength"]) == row["risk.min_strength"]
        if np.isfinite(row["sharpe"]):
            assert run.data.metrics["sharpe"] == pytest.approx(row["sharpe"])
        assert run.data.tags["dask.worker"] == row["worker"]
        assert run.data.params["model"] == row["model"]


def test_cli_train_on_workers_and_sweep(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.models.registry import Registry

    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    Lake(settings.lake_dir).write(random_walk_panel(n_bars=300, symbols=SYMS).to_long(), "SYNTH", "1d", "test")
    home = ["--home", str(settings.home)]
    out = CliRunner().invoke(
        app, ["train", "--exchange", "SYNTH", "--timeframe", "1d", "--folds", "2", "--workers", "2", *home]
    )
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "fitting the folds on Dask: scheduler tcp://127.0.0.1:" in said and "2 workers" in said
    assert "registered workbench v1" in said
    run = Registry(settings).client.get_run(Registry(settings).load("champion").ref.run_id)
    assert run.data.params["lineage.dask_tasks"].count("fold ") == 2
    out = CliRunner().invoke(
        app,
        [
            "sweep",
            "--max-position",
            "0.1,0.3",
            "--min-strength",
            "0.0",
            "--workers",
            "2",
            "--experiment",
            "cli-sweep",
            *home,
        ],
    )
    assert out.exit_code == 0, out.output
    assert "2 backtests on Dask" in out.output and "2 rows logged to MLflow experiment 'cli-sweep'" in out.output
    bad = CliRunner().invoke(app, ["sweep", "--max-position", "2.0", "--workers", "1", *home])
    assert bad.exit_code == 2 and "max_position_pct" in bad.output
