"""The MLflow registry in a real sqlite tracking store: register, load, aliases, promote, reports."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from workbench.errors import NoModelError
from workbench.features import build_features
from workbench.models.inference import predict_panel
from workbench.models.registry import LoadedModel, ModelRef, Registry


@pytest.fixture(scope="module")
def registry(registry_settings):
    return Registry(registry_settings)


def test_empty_store_says_what_to_do(registry, registry_settings):
    assert not registry.has("champion")
    assert registry.list().empty and "version" in registry.list().columns
    with pytest.raises(NoModelError) as e:
        registry.load()
    assert str(e.value) == (
        f"no model registered as 'champion' in {registry_settings.tracking_uri}: run `workbench train` first"
    )


def test_round_trip_aliases_promote(registry, registry_settings, rw_result, rw_panel):
    tracking_before = mlflow.get_tracking_uri()
    ref1 = registry.register(rw_result)
    assert ref1 == ModelRef(registry_settings.model_name, 1, ref1.run_id, "champion")
    assert mlflow.get_tracking_uri() == tracking_before  # no global MLflow state touched

    loaded = registry.load("champion")
    assert isinstance(loaded, LoadedModel) and loaded.ref == ref1
    assert loaded.kind == "lgbm" and loaded.feature_set == "v1" and loaded.horizon == 1
    assert loaded.feature_names == rw_result.feature_names
    assert loaded.universe == rw_result.universe and loaded.split == rw_result.split
    np.testing.assert_array_equal(loaded.strength_reference, rw_result.strength_reference)
    # Same predictions as the in-memory model, bit for bit.
    pd.testing.assert_frame_equal(predict_panel(loaded, rw_panel), predict_panel(rw_result, rw_panel))

    ref2 = registry.register(rw_result)
    assert (ref2.version, ref2.alias) == (2, "challenger")
    assert registry.load("champion").ref.version == 1
    assert registry.load(f"{registry_settings.model_name}@challenger").ref.version == 2
    assert registry.load(f"{registry_settings.model_name}/1").ref.version == 1
    assert registry.load("2").ref.version == 2

    listing = registry.list()
    assert listing["version"].tolist() == [1, 2]
    assert listing["aliases"].tolist() == ["champion", "challenger"]
    assert listing["kind"].tolist() == ["lgbm", "lgbm"]
    assert listing["auc"].iloc[0] == pytest.approx(rw_result.metrics["auc"])
    assert listing["created"].iloc[0].tzinfo is not None

    promoted = registry.promote(2)
    assert promoted == ModelRef(registry_settings.model_name, 2, ref2.run_id, "champion")
    assert registry.load("champion").ref.version == 2
    assert registry.list()["aliases"].tolist() == ["", "champion"]  # the challenger alias is spent
    assert not registry.has("challenger")
    with pytest.raises(NoModelError, match="'workbench/9'"):
        registry.promote(9)


def test_run_contents_and_pyfunc(registry, rw_result, rw_panel):
    ref = registry.register(rw_result, alias="candidate")
    assert ref.alias == "candidate"
    run = registry.client.get_run(ref.run_id)
    exp = registry.client.get_experiment(run.info.experiment_id)
    assert exp.name == "SYNTH-1d"
    assert run.data.params["data_hash"] == rw_result.data_hash
    assert run.data.params["split.test_start"] == rw_result.split["test_start"]
    assert run.data.params["features"].split(",") == list(rw_result.feature_names)
    assert run.data.metrics["accuracy"] == pytest.approx(rw_result.metrics["accuracy"])
    # The leak check's verdict travels with an in-process fit too, as with a cluster fit.
    assert run.data.params["lineage.leak_check"].startswith("the whole training matrix in one process")
    assert (
        run.data.params["lineage.leak_report"]
        == str(rw_result.leaks)
        == "no leak found (truncation and next-bar IC checks)"
    )
    # A standard MLflow pyfunc: anyone can load it without the workbench registry.
    mv = registry.client.get_model_version(registry.name, str(ref.version))
    pyfunc = mlflow.pyfunc.load_model(mv.source)
    X = build_features(rw_panel).dropna()
    np.testing.assert_array_equal(pyfunc.predict(X), rw_result.predict_proba(X))
    meta = pyfunc.unwrap_python_model().meta
    assert meta["kind"] == "lgbm" and meta["universe"]["exchange"] == "SYNTH"


def test_log_report(registry, rw_result, tmp_path):
    ref = registry.register(rw_result, alias="report-test")
    note = tmp_path / "report.txt"
    note.write_text("ok")
    registry.log_report(
        ref.run_id,
        {
            "backtest_sharpe": 1.25,
            "backtest_trades": 7,
            "backtest_start": "2021-01-01",
            "backtest_win_rate": float("nan"),
        },
        {"summary": note},
    )
    run = registry.client.get_run(ref.run_id)
    assert run.data.metrics["backtest_sharpe"] == 1.25 and run.data.metrics["backtest_trades"] == 7
    assert "backtest_win_rate" not in run.data.metrics
    assert run.data.tags["backtest_start"] == "2021-01-01"
    files = [f.path for f in registry.client.list_artifacts(ref.run_id, "reports/summary")]
    assert files == ["reports/summary/report.txt"]


def test_bad_references(registry):
    with pytest.raises(NoModelError, match="'nope'"):
        registry.load("nope")
    with pytest.raises(NoModelError):
        registry.load("other-model@champion")
    with pytest.raises(ValueError, match="NAME/VERSION"):
        registry.load("workbench/latest")
