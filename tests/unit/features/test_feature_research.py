"""Research tools find planted information, measure decay and turnover, and draw figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.unit.features.research_kit import random_walk_panel
from workbench.features import build_features
from workbench.features import research as R


@pytest.fixture(scope="module")
def planted():
    panel = random_walk_panel(n_bars=500, symbols=tuple(f"S{i}" for i in range(12)), seed=3)
    X = build_features(panel, "v1")
    fwd1 = R.forward_returns_long(panel, 1)
    rng = np.random.default_rng(0)
    X = X.assign(oracle=fwd1 + rng.normal(0, fwd1.std(), len(fwd1)), noise=rng.normal(size=len(X)))
    return panel, X


def test_ic_finds_the_planted_feature(planted):
    panel, X = planted
    ic = R.ic_by_period(X, R.forward_returns_long(panel, 1), freq="ME")
    assert len(ic) == 17 and list(ic.columns) == list(X.columns)
    s = R.ic_summary(ic)
    assert s.loc["oracle", "mean_ic"] > 0.5 and s.loc["oracle", "hit_rate"] == 1.0
    assert abs(s.loc["noise", "mean_ic"]) < 0.05
    xs = R.ic_by_period(X, R.forward_returns_long(panel, 1), freq=None, min_obs=10)
    assert len(xs) > 400 and xs["oracle"].mean() > 0.4
    # an exact Spearman on one period, by hand
    month = X.join(R.forward_returns_long(panel, 1).rename("f")).loc["2021-03"].dropna()
    assert ic.loc["2021-03-01", "rsi_14"] == pytest.approx(
        month["rsi_14"].corr(month["f"], method="spearman"), abs=1e-12
    )


def test_decay_turnover_correlation_and_plots(planted):
    panel, X = planted
    decay = R.ic_decay(panel, X[["oracle", "ret_20", "noise"]], horizons=(1, 5, 20))
    assert decay.loc[1, "oracle"] > 0.5 > decay.loc[5, "oracle"] > decay.loc[20, "oracle"] - 0.2
    turn = R.feature_turnover(X[["ret_1", "ret_20", "noise"]])
    assert turn["ret_20"] < 0.2 < 0.8 < turn["noise"] and turn["ret_1"] > 0.8
    corr = R.feature_correlation(X)
    assert corr.shape == (15, 15) and np.allclose(np.diag(corr), 1)
    assert corr.loc["macd", "macd_signal"] > 0.8
    figs = [
        R.plot_ic_summary(R.ic_summary(R.ic_by_period(X, R.forward_returns_long(panel, 1)))),
        R.plot_ic_decay(decay),
        R.plot_correlation(corr),
        R.plot_ic_timeseries(R.ic_by_period(X, R.forward_returns_long(panel, 1)), "oracle"),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    import matplotlib.pyplot as plt

    for f in figs:
        plt.close(f)
    assert isinstance(pd.DataFrame(), pd.DataFrame)
