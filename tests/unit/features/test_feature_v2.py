"""Feature set v2: columns, no look-ahead (truncation equals full history), bad input → NaN and a report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.data.panel import Panel
from workbench.features import FEATURE_SETS, build_features, build_features_report
from workbench.features import indicators as ind


@pytest.fixture(scope="module")
def v2_full(sp500_panel):
    return build_features(sp500_panel, "v2")


def test_v2_columns_and_values(sp500_panel, v2_full):
    X = v2_full
    assert tuple(X.columns) == FEATURE_SETS["v2"].columns and len(X.columns) == 43
    assert set(FEATURE_SETS["v1"].columns) < set(X.columns)
    pd.testing.assert_frame_equal(
        X[list(FEATURE_SETS["v1"].columns)], build_features(sp500_panel, "v1"), rtol=1e-9, atol=1e-12
    )
    complete = X.dropna()
    assert len(complete) > 0.9 * len(X) and np.isfinite(complete.to_numpy()).all()
    assert complete.index.get_level_values("ts").min() == sp500_panel.index[60]  # 60 returns for ret_60 and beta_60
    for col in ("rsi_14", "adx_14", "stoch_k", "stoch_d", "mfi_14", "cs_rank_ret_20", "session_phase", "day_of_week"):
        assert complete[col].between(0, 1).all(), col
    assert complete["dist_high_20"].le(0).all() and complete["dist_low_20"].ge(0).all()
    assert set(np.unique(complete["breakout_up_20"])) == {0.0, 1.0}
    # cross-sectional ranks: one timestamp, ten stocks → ranks (k − ½)/10
    row = complete.xs(sp500_panel.index[700], level="ts")
    np.testing.assert_allclose(np.sort(row["cs_rank_ret_20"]), (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(row["cs_z_ret_20"].mean(), 0, atol=1e-12)
    # NYSE daily sessions: 6.5 h, 3.5 h on half days (e.g. the day after Thanksgiving 2013)
    htc = X["hours_to_close"].xs("AAPL", level="symbol")
    assert htc.max() == 6.5 and htc.loc["2013-11-29"].item() == 3.5
    # beta/corr to the equal-weight average: XOM's beta is the panel's, AAPL's corr below 1
    assert 0.2 < complete["corr_60"].median() < 0.95


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_no_look_ahead_many_random_times(sp500_panel, v2_full, feature_set):
    full = v2_full if feature_set == "v2" else build_features(sp500_panel, "v1")
    rng = np.random.default_rng(42)
    for t in rng.choice(np.arange(5, len(sp500_panel.index) - 1), size=12, replace=False):
        ts = sp500_panel.index[t]
        cut = build_features(sp500_panel.upto(ts), feature_set)
        pd.testing.assert_frame_equal(cut.xs(ts, level="ts"), full.xs(ts, level="ts"), rtol=1e-12, atol=1e-14)


def _bad_panel() -> Panel:
    p = random_walk_panel(
        n_bars=300, symbols=("OK", "HOLES", "FLAT", "NOVOL", "EMPTY", "ZEROPX"), late_start={"HOLES": 20}
    )
    fields = {f: getattr(p, f).copy() for f in ("open", "high", "low", "close", "volume")}
    for f in fields.values():
        f.iloc[100:130, 1] = np.nan  # a 30-bar NaN run
        f.iloc[:, 4] = np.nan  # never traded
    for f in ("open", "high", "low", "close"):
        fields[f]["FLAT"] = 50.0
        fields[f].iloc[200:, 5] = 0.0  # prices go to zero
    fields["volume"]["NOVOL"] = 0.0
    fields["volume"].iloc[150, 0] = np.nan  # one missing volume
    return Panel(**fields, exchange="NASDAQ", timeframe="1d")


def test_bad_input_gives_nan_never_inf_and_is_reported():
    panel = _bad_panel()
    with np.errstate(all="raise"):
        X, report = build_features_report(panel, "v2")
    assert not np.isinf(X.to_numpy()).any()
    assert report.affected("missing_bars") == ["HOLES"]
    assert report.affected("constant_close") == ["FLAT"]
    assert "NOVOL" in report.affected("no_volume") and "EMPTY" in report.affected("no_history")
    assert "volume_z_20" in report.empty_features["NOVOL"] and "mfi_14" in report.empty_features["NOVOL"]
    assert "volume_z_20" in report.empty_features["FLAT"] or X.xs("FLAT", level="symbol")["vol_20"].dropna().eq(0).all()
    assert "EMPTY" not in X.index.get_level_values("symbol")
    ok = X.xs("OK", level="symbol").dropna()
    assert len(ok) > 200  # a healthy instrument is untouched by its neighbours' problems
    flat = X.xs("FLAT", level="symbol")
    assert flat["adx_14"].isna().all() and flat["rsi_14"].dropna().eq(0.5).all()
    assert "HOLES" in str(report) and "FLAT" in str(report)


def test_source_without_volume_builds_v2(rw_panel):
    no_vol = Panel(
        **{f: getattr(rw_panel, f) for f in ("open", "high", "low", "close")},
        volume=rw_panel.volume * 0.0,
        exchange="binance",
        timeframe="1h",
    )
    X, report = build_features_report(no_vol, "v2")
    for col in ("mfi_14", "obv_flow_20", "volume_z_20", "vwap_dist_20", "cs_rank_volume_z_20"):
        assert X[col].isna().all(), col
    assert X["rsi_14"].notna().sum() > 1000
    assert report.affected("no_volume") == rw_panel.symbols


def test_cross_sectional_helpers():
    x = np.array([[1.0, 3.0, 2.0, np.nan], [5.0, 5.0, np.nan, np.nan], [np.nan] * 4])
    np.testing.assert_allclose(ind.cs_rank(x), [[1 / 6, 5 / 6, 0.5, np.nan], [0.5, 0.5, np.nan, np.nan], [np.nan] * 4])
    z = ind.cs_zscore(x)
    np.testing.assert_allclose(z[0, :3], (x[0, :3] - 2) / np.std([1, 3, 2]))
    assert z[1, 0] == 0.0 and np.isnan(z[2]).all()
