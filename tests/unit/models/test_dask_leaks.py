"""The cluster fit's leak checks, per time shard and combined: the in-process figures on honest
features (exactly the same daily-IC mean, the same cut dates), and a planted look-ahead is caught
whichever shard holds it. The shards run here, one after another, as a worker would run them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import signal_panel
from workbench.data.lake import Lake
from workbench.features import build_features, pipeline
from workbench.features.labels import forward_return
from workbench.models import dask_leaks
from workbench.models import dask_lgbm as dl
from workbench.models.base import complete_rows
from workbench.models.leakage import leak_check


def _lake(tmp_path, n_symbols: int) -> dl.LakeSource:
    panel = signal_panel(n_bars=360, n_symbols=n_symbols, strength=0.0, seed=11)
    Lake(tmp_path).write(panel.to_long(), panel.exchange, panel.timeframe, "test")
    return dl.LakeSource(str(tmp_path), panel.exchange, panel.timeframe)


def _combined(src: dl.LakeSource, shards: int = 3):
    stamps = dl.lake_timestamps(src)
    tasks = dl._shard_tasks(src, stamps, shards, 400, feature_set="v1", horizon=1, label="sign")
    rows = pd.concat([dl.shard_rows(t) for t in tasks])
    row_ts = pd.DatetimeIndex(rows["ts"].unique()).sort_values()
    from workbench.models.leakage import cut_dates

    return dask_leaks.combine([dask_leaks.shard_leaks(t, cut_dates(row_ts)) for t in tasks])


def _in_process(src: dl.LakeSource):
    panel = src.load()
    X = build_features(panel)
    X = X[complete_rows(X)]
    return leak_check(panel, X, build=lambda p: build_features(p))


def test_honest_features_combine_to_the_in_process_report(tmp_path):
    src = _lake(tmp_path, 30)
    report, method = _combined(src)
    local = _in_process(src)
    assert not report and not local and "exact combination" in method
    a, b = report.next_bar_ic.sort_index(), local.next_bar_ic.sort_index()
    assert list(a.index) == list(b.index) and np.allclose(a, b, rtol=0, atol=1e-9)


def test_few_instruments_use_the_pooled_approximation_and_say_so(tmp_path):
    src = _lake(tmp_path, 4)
    report, method = _combined(src)
    local = _in_process(src)
    assert "approximation" in method and not report
    assert (report.next_bar_ic - local.next_bar_ic).abs().max() < 0.05  # near, not equal: said so above


@pytest.mark.parametrize("n_symbols", [30, 4])
def test_a_planted_look_ahead_is_caught_across_shards(tmp_path, monkeypatch, n_symbols):
    src = _lake(tmp_path, n_symbols)
    honest = pipeline._BUILDERS["v1"]

    def leaky(panel):
        out = honest(panel)
        out["ret_1"] = out["ret_1"] + 0.3 * np.nan_to_num(forward_return(panel, 1).to_numpy())  # wide
        return out

    monkeypatch.setitem(pipeline._BUILDERS, "v1", leaky)
    report, _ = _combined(src)
    assert report.leaky == ["ret_1"] and "ret_1" in report.truncation and report.ic["ret_1"] > 0.2
