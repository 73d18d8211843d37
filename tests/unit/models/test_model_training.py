"""Training: an honest time split (embargo, no overlap), sane metrics, the kind dispatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.features import build_features
from workbench.models.base import MODEL_KINDS, Model, make_model
from workbench.models.lgbm import LightGBMModel
from workbench.models.training import label_end, panel_hash, train


def test_label_end_points_horizon_valid_bars_ahead(rw_panel):
    ends = label_end(rw_panel, 3)
    idx = rw_panel.index
    assert ends.loc[(idx[10], "SYN-A")] == idx[13]
    assert pd.isna(ends.loc[(idx[-2], "SYN-A")])
    assert ends.loc[(idx[80], "SYN-D")] == idx[83]


def test_train_on_real_stocks_metrics_and_result(sp500_panel):
    r = train(sp500_panel, "lgbm", "v1", horizon=1, test_fraction=0.3)
    m = r.metrics
    for k in ("auc", "accuracy", "baseline_accuracy", "brier"):
        assert 0.0 <= m[k] <= 1.0, k
    assert 0.55 < m["log_loss"] < 1.0  # near ln 2 ≈ 0.693: daily direction is close to a coin flip
    assert 0.35 < m["auc"] < 0.65
    assert m["beats_baseline"] in (0.0, 1.0) and m["beats_baseline"] == float(m["accuracy"] > m["baseline_accuracy"])
    assert m["pooled_auc"] == pytest.approx(m["auc"])  # one fold: the fold mean is the pooled figure
    assert m["n_test"] == 3670 and m["n_train"] + m["n_test"] < 12590
    assert r.split["test_start"] == "2016-08-23T00:00:00+00:00" and r.split["embargo_bars"] == "1"
    # OOS probabilities: wide, test window only, one column per symbol, each a probability.
    oos = r.oos_proba
    assert list(oos.columns) == sp500_panel.symbols
    assert oos.index.min() == pd.Timestamp(r.split["test_start"]) and oos.index.max() == sp500_panel.index[-1]
    assert oos.stack().dropna().between(0, 1).all()
    assert r.strength_reference.shape == (oos.notna().sum().sum(),)
    assert (r.strength_reference >= 0).all() and (r.strength_reference <= 0.5).all()
    assert r.universe["symbols"] == sp500_panel.symbols and r.universe["timeframe"] == "1d"
    assert r.data_hash == panel_hash(sp500_panel) and len(r.data_hash) == 16
    assert r.feature_names == tuple(build_features(sp500_panel).columns)


def test_training_is_deterministic_and_hash_sensitive(rw_panel, rw_result):
    again = train(rw_panel, params={"n_estimators": 40})
    pd.testing.assert_frame_equal(again.oos_proba, rw_result.oos_proba)
    changed = rw_panel._map(lambda f: f.copy())
    changed.close.iloc[-1, 0] *= 1.01
    assert panel_hash(changed) != rw_result.data_hash


def test_unknown_kind_and_bad_inputs(rw_panel):
    with pytest.raises(
        ValueError,
        match=r"unknown model kind 'xgb'; known kinds: \['lgbm', 'lgbm_rank', 'rf', 'lstm', 'rule', 'ensemble'\]",
    ):
        train(rw_panel, kind="xgb")
    with pytest.raises(ValueError, match="test_fraction"):
        train(rw_panel, test_fraction=1.5)
    with pytest.raises(ValueError, match="load more history"):
        train(rw_panel.tail(30))


def test_lgbm_model_protocol(rw_panel):
    m = make_model("lgbm", params={"n_estimators": 20})
    assert isinstance(m, LightGBMModel) and isinstance(m, Model) and "lgbm" in MODEL_KINDS
    X = build_features(rw_panel).dropna()
    y = (X["ret_1"] > 0).astype(float)  # learnable on purpose
    m.fit(X, y)
    p = m.predict_proba(X[list(reversed(X.columns))])  # column order does not matter
    assert p.shape == (len(X),) and ((p > 0) & (p < 1)).all()
    assert np.mean((p > 0.5) == (y == 1)) > 0.95
    with pytest.raises(ValueError, match="features missing"):
        m.predict_proba(X.drop(columns="rsi_14"))
    with pytest.raises(ValueError, match="single class"):
        make_model("lgbm").fit(X, y * 0)
    with pytest.raises(ValueError, match="not fitted"):
        make_model("lgbm").predict_proba(X)
