"""Walk-forward validation: purged, embargoed folds, and the out-of-sample scores beside baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.features import build_features
from workbench.models.calibration import Calibrator
from workbench.models.evaluation import expected_calibration_error, reliability_table, score
from workbench.models.splits import calibration_split, span_fraction
from workbench.models.training import label_end, train, walk_forward, walk_forward_splits

# Bundled synthetic data (generated, seeded): the purge/embargo tests never skip.
_SYNTH = random_walk_panel(n_bars=700, symbols=tuple(f"SYN-{i}" for i in range(6)), late_start={"SYN-5": 90})


@pytest.mark.parametrize("horizon", [1, 5, 10])
def test_no_training_label_window_overlaps_a_test_row(horizon):
    panel = _SYNTH
    X = build_features(panel).dropna()
    ends = label_end(panel, horizon).reindex(X.index)
    row_ts = X.index.get_level_values("ts")
    folds = walk_forward_splits(row_ts, ends, n_folds=4, test_fraction=0.4, embargo=horizon)
    grid = panel.index
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


@pytest.mark.parametrize("horizon", [1, 5, 10])
def test_calibration_rows_lie_apart_from_the_fit_rows(horizon):
    """At every horizon the calibrator's rows come after every label the base model fitted on, with
    the embargo between them, and all lie inside the training window."""
    panel = _SYNTH
    X = build_features(panel).dropna()
    ends = label_end(panel, horizon).reindex(X.index)
    row_ts = X.index.get_level_values("ts")
    fold = walk_forward_splits(row_ts, ends, n_folds=2, test_fraction=0.3, embargo=horizon)[-1]
    train_mask = fold.train & ends.notna().to_numpy()
    fit, cal = calibration_split(row_ts, ends, train_mask, 0.2, horizon)
    assert fit.any() and cal.any() and not (fit & cal).any() and not ((fit | cal) & ~train_mask).any()
    first_cal = row_ts[cal].min()
    assert ends[fit].max() < first_cal  # no fitted label reaches into the calibration rows
    assert panel.index.get_loc(first_cal) - panel.index.get_loc(row_ts[fit].max()) >= horizon + 1
    assert ends[cal].max() < fold.test_start
    with pytest.raises(ValueError, match="too short to hold out a calibration set"):
        calibration_split(
            row_ts, ends, train_mask & (row_ts < row_ts[train_mask].min() + pd.Timedelta(days=3)), 0.2, horizon
        )


def test_test_span_as_a_calendar_span():
    stamps = pd.date_range("2013-02-08", "2018-02-07", freq="B", tz="UTC")
    assert span_fraction("3y", stamps) == pytest.approx(0.6, abs=0.01)
    assert span_fraction("0.25", stamps) == 0.25 and span_fraction(0.25, stamps) == 0.25
    with pytest.raises(ValueError, match="choose a shorter span"):
        span_fraction("9y", stamps)
    with pytest.raises(ValueError, match=r"use a fraction such as 0\.3 or a span such as 3y"):
        span_fraction("three years", stamps)


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
    for k in (
        "auc",
        "accuracy",
        "log_loss",
        "brier",
        "ece",
        "ece_quantile",
        "majority_auc",
        "momentum_auc",
        "reversal_auc",
        "pooled_auc",
        "pooled_majority_auc",
    ):
        assert np.isfinite(m[k]), k
    assert (r.folds["majority_auc"] == 0.5).all()  # one constant per fold (pooled, the constants differ)
    assert m["majority_auc"] == 0.5  # the summary is the mean over folds, never the pooled figure
    assert m["auc"] == pytest.approx(r.folds["auc"].mean())
    assert m["beats_majority"] == float(
        m["accuracy"] > m["majority_accuracy"] and m["log_loss"] < m["majority_log_loss"]
    )
    assert set(r.fold_reliability["fold"]) == {0, 1, 2}
    assert set(r.fold_reliability["binning"]) == {"quantile", "uniform"}
    assert ("does NOT beat" in r.verdict()) == (not r.beats_baselines)
    assert r.strength_reference.shape == (r.oos_proba.notna().sum().sum(),)


def test_metrics_on_known_numbers():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    s = score(y, p)
    assert s["auc"] == pytest.approx(0.75) and s["accuracy"] == pytest.approx(0.75)
    assert s["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert score(y, p, rank_score=-p)["auc"] == pytest.approx(0.25)  # a baseline's raw signal is what ranks
    # ECE: bins [0.1], [0.35], [0.4], [0.8] → |0.1-0|, |0.35-1|, |0.4-0|, |0.8-1| averaged.
    assert expected_calibration_error(y, p) == pytest.approx((0.1 + 0.65 + 0.4 + 0.2) / 4)
    assert reliability_table(y, p)["n"].sum() == 4


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
