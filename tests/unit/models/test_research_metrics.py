"""Per-date and per-fold scores on numbers worked out by hand (or by scipy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from workbench.models.evaluation import (
    daily_ic,
    expected_calibration_error,
    fold_scores,
    ic_summary,
    long_short,
    newey_west_t,
    quantile_returns,
    reliability_table,
    turnover,
)


def _long(n_dates: int, n_names: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ts = np.repeat(pd.date_range("2020-01-01", periods=n_dates, tz="UTC"), n_names)
    sym = np.tile([f"S{i}" for i in range(n_names)], n_dates)
    return rng, ts, sym


def test_daily_ic_is_scipy_spearman_per_date():
    rng, ts, _ = _long(30, 12)
    s, r = rng.normal(size=ts.size), rng.normal(size=ts.size)
    s[5] = np.nan  # a missing score drops that row only
    ic = daily_ic(s, r, ts)
    for k, day in enumerate(pd.DatetimeIndex(ts).unique()):
        m = (pd.DatetimeIndex(ts) == day) & np.isfinite(s)
        assert ic.iloc[k] == pytest.approx(spearmanr(s[m], r[m])[0], abs=1e-12)
    assert np.isnan(daily_ic(np.ones(ts.size), r, ts)).all()  # a constant score ranks nothing


def test_market_timing_scores_no_ic():
    """A score that is the same for every name on a date (pure timing) has no cross-sectional IC."""
    rng, ts, _ = _long(50, 20)
    market = np.repeat(rng.normal(size=50), 20)
    r = market + rng.normal(0, 0.1, ts.size)
    assert np.isnan(daily_ic(market, r, ts)).all()


def test_newey_west_t_widens_for_overlap():
    rng = np.random.default_rng(1)
    iid = rng.normal(0.1, 1, 5000)
    assert newey_west_t(iid, 0) == pytest.approx(iid.mean() / iid.std() * np.sqrt(iid.size), rel=1e-3)
    overlapping = np.convolve(rng.normal(0.1, 1, 5004), np.ones(5) / 5, mode="valid")  # a 5-bar moving sum
    naive = overlapping.mean() / overlapping.std() * np.sqrt(overlapping.size)
    assert newey_west_t(overlapping, 4) < 0.6 * naive
    s = ic_summary(pd.Series([0.1, 0.2, 0.0, 0.1]), horizon=1)
    assert s["ic_mean"] == pytest.approx(0.1) and s["ic_ir"] == pytest.approx(
        0.1 / np.std([0.1, 0.2, 0.0, 0.1], ddof=1)
    )


def test_quantile_returns_long_short_and_turnover():
    ts = np.repeat(pd.date_range("2020-01-01", periods=2, tz="UTC"), 5)
    sym = np.tile(list("ABCDE"), 2)
    score = np.array([1, 2, 3, 4, 5, 5, 4, 3, 2, 1], dtype=float)
    ret = np.array([-2, -1, 0, 1, 2, 2, 1, 0, -1, -2], dtype=float)
    qr = quantile_returns(score, ret, ts, q=5)
    assert qr.to_numpy().tolist() == [[-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2]]
    assert long_short(qr).tolist() == [4.0, 4.0]
    # Day 2 flips the ranking: the top name (E) and the bottom name (A) are both replaced.
    assert turnover(score, ts, sym, q=5) == pytest.approx(1.0)
    assert turnover(np.r_[score[:5], score[:5]], ts, sym, q=5) == pytest.approx(0.0)


def test_quantile_bins_spread_a_near_coin_flip_model():
    """A near-coin-flip model: equal-width bins pool it into two or three bins; equal-count bins
    give ten bins of equal weight, and measure the miscalibration (and its absence) all the same."""
    rng = np.random.default_rng(3)
    p = 0.5 + rng.normal(0, 0.02, 50_000)
    y = (rng.random(p.size) < 0.5 + 3 * (p - 0.5)).astype(int)  # 3× steeper than predicted
    uniform = reliability_table(y, p, 10, "uniform")
    assert (uniform["n"] > 0).sum() <= 3
    assert expected_calibration_error(y, p, strategy="quantile") > 0.02
    honest = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(honest, p, strategy="quantile") < 0.01
    assert reliability_table(y, p, 10, "quantile")["n"].between(4_900, 5_100).all()


def test_fold_scores_majority_has_no_ranking_metrics():
    rng, ts, sym = _long(40, 10)
    idx = pd.MultiIndex.from_arrays([ts, sym], names=["ts", "symbol"])
    fwd = rng.normal(size=ts.size)
    part = pd.DataFrame(
        {"label": (fwd > 0).astype(float), "forward_return": fwd, "const": 0.55, "perfect": 1 / (1 + np.exp(-fwd))},
        index=idx,
    )
    const = fold_scores(part, "const", horizon=1)
    assert const["auc"] == 0.5 and np.isnan(const["ic_mean"]) and np.isnan(const["turnover"])
    perfect = fold_scores(part, "perfect", horizon=1)
    assert perfect["auc"] == 1.0 and perfect["ic_mean"] == pytest.approx(1.0) and perfect["ls_return"] > 0


def test_promotion_refuses_a_pooled_metric(settings):
    from workbench.errors import ConfigError
    from workbench.models.retrain import retrain_and_decide

    with pytest.raises(ConfigError, match=r"'rank_ic' is not one of .*ic_mean"):
        retrain_and_decide(settings, panel=None, metric="rank_ic")
    with pytest.raises(Exception, match="promote_metric"):
        from workbench.config import load_settings

        load_settings(settings.home, retrain={"promote_metric": "rank_ic"})
