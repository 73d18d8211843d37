"""Tests that fail on a leak: a planted look-ahead is refused, permuted labels score as noise, a
random walk has no edge, and an honest planted signal is found (so the tests have power)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.features.research_kit import signal_panel
from workbench.features import build_features, pipeline
from workbench.features.labels import forward_return
from workbench.models.base import complete_rows
from workbench.models.leakage import LeakError, leak_check
from workbench.models.training import compare, train

FAST = {"n_estimators": 40}


@pytest.fixture(scope="module")
def noise_panel():
    return signal_panel(n_bars=420, n_symbols=100, strength=0.0, seed=5)


@pytest.fixture(scope="module")
def planted_panel():
    """160 names × 560 days, 60 % of the dates tested: ~50k test rows, so 4 standard errors of a null
    AUC are ≈ 0.01 and of a null mean daily IC ≈ 0.018."""
    return signal_panel(n_bars=560, n_symbols=160, strength=0.06, seed=6)


def _leaky_v1(multiple: float):
    """v1 with ``multiple`` × the next bar's return added to ret_1: the audit's mutated copy."""
    honest = pipeline._BUILDERS["v1"]

    def build(panel):
        out = honest(panel)
        nxt = forward_return(panel, 1).to_numpy()
        out["ret_1"] = out["ret_1"] + multiple * nxt
        return out

    return build


def test_planted_leak_in_the_matrix_is_flagged(noise_panel):
    X = build_features(noise_panel)
    X = X[complete_rows(X)]
    assert not leak_check(noise_panel, X, build=lambda p: build_features(p))  # honest features pass
    nxt = forward_return(noise_panel, 1).stack().reindex(X.index).fillna(0.0).to_numpy()
    leaky = X.copy()
    leaky["ret_20"] = leaky["ret_20"] + 0.3 * nxt  # hidden inside a slower feature
    report = leak_check(noise_panel, leaky, build=lambda p: build_features(p))
    assert "ret_20" in report.truncation and report.leaky == ["ret_20"]
    leaky_1 = X.copy()
    leaky_1["ret_1"] = leaky_1["ret_1"] + 0.3 * nxt
    report = leak_check(noise_panel, leaky_1)  # without a rebuild: the next-bar IC alone catches it
    assert list(report.ic) == ["ret_1"] and report.ic["ret_1"] > 0.2


def test_training_refuses_a_feature_that_reads_the_next_bar(noise_panel, monkeypatch):
    monkeypatch.setitem(pipeline._BUILDERS, "v1", _leaky_v1(0.3))
    with pytest.raises(LeakError, match="ret_1"):
        train(noise_panel, "lgbm", label="sign", params=FAST)
    # Let through, the leak makes a fake edge: that is what the check stands between.
    r = train(noise_panel, "lgbm", label="sign", params=FAST, leak_check="off", validation="walk_forward")
    assert r.metrics["auc"] > 0.6


def test_permuted_labels_score_as_noise(planted_panel):
    opts = dict(horizon=1, label="xs_median", validation="walk_forward", n_folds=3, test_fraction=0.6, params=FAST)
    real = train(planted_panel, "lgbm", **opts)
    null = train(planted_panel, "lgbm", shuffle_labels=1, **opts)
    n_test, n_dates = null.metrics["n_test"], null.folds["n_test"].sum() / 160
    auc_se = np.sqrt(1 / (3 * n_test))  # null variance of an AUC with balanced classes
    ic_se = 1 / np.sqrt(159 * n_dates)  # a daily Spearman over 160 names, averaged over the dates
    assert abs(null.metrics["auc"] - 0.5) < 4 * auc_se < 0.011
    assert abs(null.metrics["ic_mean"]) < 4 * ic_se < 0.02
    assert not null.beats_baselines and "NO edge" in null.verdict()
    # Power: the same fixture unpermuted carries a real 1-bar reversal, and the model finds it.
    assert real.metrics["ic_mean"] > 8 * ic_se and real.metrics["ic_t"] > 4
    assert real.metrics["folds_beating"] >= 2 and real.beats_baselines


@pytest.mark.parametrize("label,horizon", [("xs_median", 5), ("sign", 1)])
def test_random_walk_has_no_edge(noise_panel, label, horizon):
    results = compare(
        noise_panel,
        kinds=("lgbm", "rf"),
        horizon=horizon,
        label=label,
        n_folds=3,
        params={"lgbm": FAST, "rf": {"n_estimators": 30}},
    )
    for name, r in results.items():
        assert not r.beats_baselines, (name, r.verdict())
        assert "NO edge" in r.verdict()
        n_dates = r.folds["n_test"].sum() / 100
        assert abs(r.metrics["ic_mean"]) < 4 / np.sqrt(99 * n_dates / horizon), name  # 4 SE, overlap counted
        assert abs(r.metrics["auc"] - 0.5) < 4 * np.sqrt(horizon / (3 * r.metrics["n_test"])), name


def test_ranking_objective_finds_the_planted_signal(planted_panel):
    r = train(
        planted_panel,
        "lgbm_rank",
        horizon=1,
        label="xs_median",
        validation="walk_forward",
        n_folds=3,
        test_fraction=0.6,
        params=FAST,
    )
    assert r.metrics["ic_t"] > 4 and r.metrics["ic_mean"] > r.metrics["reversal_ic_mean"]
    p = r.oos["proba"]
    assert p.between(0, 1).all() and p.nunique() > 100  # calibrated scores, one per row
