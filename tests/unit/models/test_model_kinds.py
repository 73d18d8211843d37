"""Each model kind trains on real stocks, round-trips through MLflow and predicts the same numbers."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from workbench.features import build_features
from workbench.models.calibration import CalibratedModel
from workbench.models.inference import predict_panel
from workbench.models.lstm import sequence_windows
from workbench.models.registry import Registry
from workbench.models.training import compare, comparison_table

SMALL = {"lgbm": {"n_estimators": 30}, "rf": {"n_estimators": 30}, "lstm": {"units": 4, "epochs": 3, "lookback": 5}}


@pytest.fixture(scope="module")
def small_real(sp500_panel):
    return sp500_panel.select(["AAPL", "XOM", "JPM", "KO"]).tail(500)


@pytest.fixture(scope="module")
def kinds_results(small_real):
    return compare(small_real, kinds=("lgbm", "rf", "lstm"), params=SMALL, n_folds=2)


def test_importing_workbench_never_imports_tensorflow():
    code = (
        "import sys, workbench, workbench.models, workbench.models.training, workbench.models.registry, "
        "workbench.models.inference, workbench.models.retrain, workbench.models.lstm\n"
        "assert not any(m == 'tensorflow' or m.startswith(('tensorflow.', 'keras')) for m in sys.modules), 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["lgbm", "rf", "lstm", "ensemble"])
def test_kind_trains_saves_loads_and_predicts_the_same(kind, kinds_results, small_real, registry_settings):
    r = kinds_results[kind]
    assert r.kind == kind and r.validation == "walk_forward" and r.metrics["n_folds"] == 2
    assert 0.3 < r.metrics["auc"] < 0.7 and 0.6 < r.metrics["log_loss"] < 0.8
    registry = Registry(registry_settings)
    ref = registry.register(r, alias=f"test-{kind}")
    loaded = registry.load(ref.alias)
    assert loaded.kind == kind and loaded.meta["feature_set_version"] == 1
    mine, theirs = predict_panel(r, small_real), predict_panel(loaded, small_real)
    pd.testing.assert_frame_equal(theirs, mine)
    assert mine.stack().dropna().size > 1500
    # The standard MLflow pyfunc (signature-checked input) gives the same numbers too.
    X = build_features(small_real).dropna()
    pyfunc = mlflow.pyfunc.load_model(registry.client.get_model_version(registry.name, str(ref.version)).source)
    np.testing.assert_array_equal(pyfunc.predict(X), r.predict_proba(X))
    assert [i.name for i in pyfunc.metadata.get_input_schema().inputs] == list(r.feature_names)
    # The last fold's model is what is registered: on its window, it reproduces the OOS probabilities.
    last = r.oos_fold[r.oos_fold == r.oos_fold.max()].index
    pd.testing.assert_frame_equal(mine.loc[last], r.oos_proba.loc[last], check_freq=False, check_names=False)


def test_registered_model_is_calibrated(kinds_results, small_real):
    r = kinds_results["rf"]
    assert isinstance(r.model, CalibratedModel) and r.model.calibrator.method == "platt"
    X = build_features(small_real).dropna()
    raw, cal = r.model.raw_proba(X), r.predict_proba(X)
    assert not np.allclose(raw, cal)  # the calibrator does something …
    # … and Platt is monotonic: it keeps (or, with a negative slope, reverses) the order.
    assert abs(pd.Series(raw).corr(pd.Series(cal), method="spearman")) == pytest.approx(1.0)
    assert r.metrics["ece"] < 0.1 and r.reliability["n"].sum() == r.metrics["n_test"]


def test_comparison_table_has_models_and_baselines(kinds_results):
    t = comparison_table(kinds_results)
    assert list(t.index) == [
        "lgbm",
        "rf",
        "lstm",
        "ensemble",
        "baseline: majority",
        "baseline: momentum",
        "baseline: reversal",
    ]
    assert {"auc", "accuracy", "log_loss", "brier", "ece", "ic_mean", "ic_t", "fit_seconds"} <= set(t.columns)
    assert (kinds_results["lgbm"].folds["majority_auc"] == 0.5).all()  # a constant per fold
    ens = kinds_results["ensemble"]
    mean = np.mean([kinds_results[k].oos["proba"].to_numpy() for k in ("lgbm", "rf", "lstm")], axis=0)
    np.testing.assert_allclose(ens.oos["proba"].to_numpy(), mean)
    assert ens.metrics["fit_seconds"] == pytest.approx(
        sum(kinds_results[k].metrics["fit_seconds"] for k in ("lgbm", "rf", "lstm"))
    )


def test_sequence_windows_per_instrument_with_edge_padding():
    ts = np.array([1, 1, 2, 2, 3])
    sym = np.array(["A", "B", "A", "B", "A"])
    vals = np.array([[10.0], [20.0], [11.0], [21.0], [12.0]])
    w = sequence_windows(vals, sym, ts, 3)[:, :, 0]
    np.testing.assert_array_equal(w, [[10, 10, 10], [20, 20, 20], [10, 10, 11], [20, 20, 21], [10, 11, 12]])


def test_lstm_live_window_equals_full_history(kinds_results, small_real):
    r = kinds_results["lstm"]
    assert r.model.lookback == 5
    full = predict_panel(r, small_real)
    ts = small_real.index[-1]
    short = predict_panel(r, small_real.tail(101))
    np.testing.assert_allclose(short.loc[ts], full.loc[ts], atol=0.02)
    # Same seed → same network → same numbers.
    again = compare(small_real, kinds=("lstm",), params=SMALL, n_folds=2)["lstm"]
    np.testing.assert_allclose(again.oos["proba"], r.oos["proba"], atol=1e-6)
