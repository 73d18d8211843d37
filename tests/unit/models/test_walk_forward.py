"""Walk-forward validation: purged, embargoed folds, and the out-of-sample scores beside baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from workbench.features import build_features
from workbench.models.calibration import Calibrator
from workbench.models.evaluation import expected_calibration_error, rank_ic, reliability_table, score
from workbench.models.training import label_end, train, walk_forward, walk_forward_splits


@pytest.mark.parametrize("horizon", [1, 5])
def test_no_training_label_window_overlaps_a_test_row(sp500_panel, horizon):
    X = build_features(sp500_panel).dropna()
    ends = label_end(sp500_panel, horizon).reindex(X.index)
    row_ts = X.index.get_level_values("ts")
    folds = walk_forward_splits(row_ts, ends, n_folds=4, test_fraction=0.4, embargo=horizon)
    grid = sp500_panel.index
    assert len(folds) == 4
    for f in folds:
        test_ts = row_ts[f.test]
        # Every training row's label window [ts, label_end] ends before the first test row …
        assert ends[f.train].max() < test_ts.min()
        # … so no training label window contains any test timestamp,
        lo, hi = row_ts[f.train].to_numpy(), pd.DatetimeIndex(ends[f.train]).to_numpy()
        t = np.unique(test_ts.to_numpy())
        assert not ((lo[:, None] <= t[None, :2]) & (hi[:, None] >= t[None, :2])).any()
        # and the embargo holds: at least `horizon` bars between the last training row and the test.
        assert grid.get_loc(f.test_start) - grid.get_loc(row_ts[f.train].max()) >= horizon + 1
        assert not (f.train & f.test).any()
    # Folds are consecutive, cover the last 40 % of timestamps, and train on an expanding window.
    stamps = row_ts.unique().sort_values()
    assert folds[0].test_start == stamps[int(np.floor(len(stamps) * 0.6))] and folds[-1].test_end == stamps[-1]
    for a, b in itertools.pairwise(folds):
        assert a.test_end < b.test_start and a.train.sum() < b.train.sum()


def test_longer_embargo_and_bad_embargo(rw_panel):
    X = build_features(rw_panel).dropna()
    ends = label_end(rw_panel, 1).reindex(X.index)
    row_ts = X.index.get_level_values("ts")
    f = walk_forward_splits(row_ts, ends, 2, 0.3, embargo=10)[0]
    assert rw_panel.index.get_loc(f.test_start) - rw_panel.index.get_loc(row_ts[f.train].max()) == 11
    with pytest.raises(ValueError, match="embargo"):
        train(rw_panel, horizon=5, embargo=2)
    with pytest.raises(ValueError, match="cannot hold 999 test windows"):
        walk_forward_splits(row_ts, ends, 999, 0.3, 1)


def test_walk_forward_result(rw_panel):
    r = walk_forward(rw_panel, "lgbm", n_folds=3, params={"n_estimators": 20})
    assert r.validation == "walk_forward" and len(r.folds) == 3
    # oos_proba is the concatenation of the folds, and oos_fold says which fold each row came from.
    assert r.oos_fold.index.equals(r.oos_proba.index) and r.oos_fold.tolist() == sorted(r.oos_fold.tolist())
    assert set(r.oos_fold) == {0, 1, 2}
    for _, row in r.folds.iterrows():
        part = r.oos_fold[r.oos_fold == row["fold"]].index
        assert part.min() == row["test_start"] and part.max() == row["test_end"]
    assert r.split["oos_start"] == r.folds["test_start"].iloc[0].isoformat()
    assert r.split["test_start"] == r.folds["test_start"].iloc[-1].isoformat()  # the registered model's own window
    assert r.split["train_end"] == r.folds["train_end"].iloc[-1].isoformat()
    m = r.metrics
    assert m["n_test"] == r.folds["n_test"].sum() == r.oos["label"].notna().sum()
    for k in ("auc", "accuracy", "log_loss", "brier", "ece", "rank_ic", "majority_auc", "momentum_auc", "momentum_rank_ic"):
        assert np.isfinite(m[k]), k
    assert (r.folds["majority_auc"] == 0.5).all()  # one constant per fold (pooled, the constants differ)
    assert m["beats_baselines"] == float(m["beats_majority"] and m["beats_momentum"])
    assert m["beats_majority"] == float(m["accuracy"] > m["majority_accuracy"] and m["log_loss"] < m["majority_log_loss"])
    assert ("does NOT beat" in r.verdict()) == (not r.beats_baselines)
    assert r.strength_reference.shape == (r.oos_proba.notna().sum().sum(),)


def test_metrics_on_known_numbers():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    s = score(y, p, forward_return=np.array([-0.02, -0.01, 0.01, 0.03]))
    assert s["auc"] == pytest.approx(0.75) and s["accuracy"] == pytest.approx(0.75)
    assert s["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert s["rank_ic"] == pytest.approx(0.8)
    # ECE: bins [0.1], [0.35], [0.4], [0.8] → |0.1-0|, |0.35-1|, |0.4-0|, |0.8-1| averaged.
    assert expected_calibration_error(y, p) == pytest.approx((0.1 + 0.65 + 0.4 + 0.2) / 4)
    assert reliability_table(y, p)["n"].sum() == 4
    assert np.isnan(rank_ic(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fixes_overconfident_scores(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    raw = 1 / (1 + np.exp(-3 * x))  # six times too confident
    cal = Calibrator(method).fit(raw[:10000], y[:10000])
    before = expected_calibration_error(y[10000:], raw[10000:])
    after = expected_calibration_error(y[10000:], cal.transform(raw[10000:]))
    assert before > 0.15 and after < 0.02
