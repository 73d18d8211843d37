"""One LightGBM model fitted across a real LocalCluster (two worker processes) with LightGBM's own Dask
estimator, on time shards each worker reads from a real lake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.data.lake import Lake
from workbench.models import dask_lgbm as dl
from workbench.models import distributed as dist
from workbench.models.training import panel_hash, train

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

# kiteconnect imports twisted, whose styles module replaces how methods pickle for the whole process:
# the cluster fit must work in such a process too (dask's classmethod reductions failed to unpickle).
pytest.importorskip("twisted.persisted.styles")

SYMS = tuple(f"S{i:02d}" for i in range(12))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    panel = random_walk_panel(n_bars=600, symbols=SYMS)
    Lake(root).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    return dl.LakeSource(str(root), panel.exchange, panel.timeframe), Lake(root).load_panel(
        panel.exchange, panel.timeframe
    )


def test_time_shards_cover_every_timestamp_once():
    assert dl.time_shards(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert dl.time_shards(2, 5) == [(0, 1), (1, 2)]
    with pytest.raises(ValueError, match="no timestamps"):
        dl.time_shards(0, 2)


def test_shards_rebuild_the_full_history_rows(source):
    """Time shards with warm history give the rows (features, labels, baselines) one full pass gives:
    exactly the same rows, values equal to 1e-10 (EMA-type features converge with the extra history)."""
    src, _ = source
    stamps = dl.lake_timestamps(src)
    tasks = dl._shard_tasks(src, stamps, 4, 400, feature_set="v1", horizon=1, label="sign")
    shards = pd.concat([dl.shard_rows(t) for t in tasks], ignore_index=True)
    whole = dl.shard_rows(dl.ShardTask(src, stamps[0], stamps[-1], stamps[0], stamps[-1]))
    assert len(shards) == len(whole) and not shards.duplicated(["ts", "symbol"]).any()
    m = whole.merge(shards, on=["ts", "symbol"], suffixes=("", "_s"), validate="one_to_one")
    for c in whole.columns.drop(["ts", "symbol"]):
        a, b = m[c].to_numpy(dtype=float), m[f"{c}_s"].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), c
        assert np.nanmax(np.abs(a - b)) < 1e-10, c


def test_a_shard_without_history_would_differ(source):
    """The warm history matters (so the test above can fail): no history → features are missing or off."""
    src, _ = source
    stamps = dl.lake_timestamps(src)
    cold = dl._shard_tasks(src, stamps, 4, 0, feature_set="v1", horizon=1, label="sign")
    whole = dl.shard_rows(dl.ShardTask(src, stamps[0], stamps[-1], stamps[0], stamps[-1]))
    assert len(pd.concat([dl.shard_rows(t) for t in cold])) < len(whole)


def test_walk_forward_on_the_cluster_matches_in_process_windows_and_never_looks_ahead(source):
    src, panel = source
    with dist.client_for(None, workers=2) as client:
        fit = dl.fit_lgbm_on_cluster(client, src, n_folds=3, test_fraction=0.3, params={"n_estimators": 20})
    assert len(fit.workers) == 2 and fit.n_rows > 0
    local = train(
        panel, kind="lgbm", validation="walk_forward", n_folds=3, test_fraction=0.3, params={"n_estimators": 20}
    )
    assert list(fit.folds["test_start"]) == list(local.folds["test_start"])
    assert list(fit.folds["test_end"]) == list(local.folds["test_end"])
    # Out of sample: every scored row lies in its fold's test window, and each fold trained on fewer rows.
    ts = fit.oos.index.get_level_values("ts")
    for _, row in fit.folds.iterrows():
        in_fold = np.asarray(fit.oos["fold"] == row["fold"])
        assert (ts[in_fold] >= row["test_start"]).all() and (ts[in_fold] <= row["test_end"]).all()
        assert row["n_test"] == in_fold.sum()
    assert fit.folds["n_train"].is_monotonic_increasing
    # Purged and embargoed: no training label reaches into its test window.
    assert (fit.folds["train_label_end"] < fit.folds["test_start"]).all()
    assert (fit.folds["train_last"] < fit.folds["test_start"]).all()
    assert fit.folds[["auc", "momentum_auc", "reversal_auc", "ic_mean"]].notna().all().all()
    # A random walk holds no edge: the verdict must not claim one on every fold.
    assert 0.4 < float(fit.folds["auc"].mean()) < 0.6
    assert fit.model.n_features_in_ == len(fit.feature_names)  # the final model serves the same features
    # the same data hash scheme as in-process training: same panel, same hash (each worker hashed its blocks)
    assert fit.data_hash == local.data_hash == panel_hash(panel)
    # calibrated as in-process (Platt on a held-out slice), baselines calibrated beside their raw signals
    assert fit.calibration == "platt" and fit.calibrator is not None and fit.calibrator._fn is not None
    assert not np.allclose(fit.oos["momentum"], fit.oos["momentum_score"])
    # the leak checks ran per shard on the workers, combined: honest features, the in-process figures
    assert fit.leaks is not None and not fit.leaks and "exact combination" in fit.leak_method
    assert np.allclose(fit.leaks.next_bar_ic.sort_index(), local.leaks.next_bar_ic.sort_index(), rtol=0, atol=1e-9)
