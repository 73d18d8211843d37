"""Labels look ahead exactly ``horizon`` valid bars and line up with the features' index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.features import build_features, direction_label, forward_return


def test_forward_return_alignment(sp500_panel):
    fr = forward_return(sp500_panel, 5)
    c = sp500_panel.close
    t = 100
    assert fr.iloc[t]["AAPL"] == pytest.approx(c["AAPL"].iloc[t + 5] / c["AAPL"].iloc[t] - 1, rel=1e-12)
    assert fr.iloc[-5:].isna().all().all() and fr.iloc[:-5].notna().all().all()
    np.testing.assert_allclose(fr.to_numpy(), (c.shift(-5) / c - 1).to_numpy(), rtol=1e-12, equal_nan=True)


def test_direction_label_values_and_index(sp500_panel):
    y = direction_label(sp500_panel, 1)
    X = build_features(sp500_panel)
    assert y.index.equals(X.index)
    c = sp500_panel.close["MSFT"]
    ym = y.xs("MSFT", level="symbol")
    up = (c.shift(-1) > c).astype(float).where(c.shift(-1).notna())
    np.testing.assert_array_equal(ym.to_numpy(), up.to_numpy())
    assert set(np.unique(y.dropna())) == {0.0, 1.0}
    assert y.isna().sum() == sp500_panel.close.shape[1]  # the last bar of each symbol
    assert 0.45 < y.mean() < 0.56  # real daily moves: roughly balanced


def test_labels_skip_gaps_like_features(rw_panel):
    panel = rw_panel._map(lambda f: f.copy())
    for f in ("open", "high", "low", "close", "volume"):
        getattr(panel, f).iloc[200:203, 0] = np.nan  # a 3-bar halt in SYN-A
    fr = forward_return(panel, 1)
    c = panel.close["SYN-A"]
    assert fr["SYN-A"].iloc[199] == pytest.approx(c.iloc[203] / c.iloc[199] - 1)
    assert fr["SYN-A"].iloc[200:203].isna().all()
    with pytest.raises(ValueError, match="horizon"):
        forward_return(panel, 0)


def test_updown_label_uses_round_trip_costs(sp500_panel):
    from workbench.config import CostModel
    from workbench.features import updown_label
    from workbench.features.labels import round_trip_cost

    assert round_trip_cost(CostModel(fee_rate=0.001, slippage_bps=5)) == pytest.approx(0.003)
    y = updown_label(sp500_panel, 5)
    fwd = forward_return(sp500_panel, 5).stack()
    assert y.index.equals(build_features(sp500_panel).index)
    f = fwd.reindex(y.index)
    assert ((y == 1) == (f > 0.003)).all() and ((y == -1) == (f < -0.003)).all()
    assert y.isna().sum() == 5 * sp500_panel.close.shape[1]
    assert set(y.dropna().unique()) == {-1.0, 0.0, 1.0}
    free = updown_label(sp500_panel, 5, threshold=0.0)
    assert (free == 0).sum() < (y == 0).sum()


def _brute_triple_barrier(o, h, lo, c, stop, take, horizon):
    out = []
    for t in range(len(c)):
        res = (np.nan, np.nan, np.nan)
        if np.isfinite(stop[t]):
            for k in range(1, horizon + 1):
                if t + k >= len(c):
                    break
                j = t + k
                if lo[j] <= stop[t]:
                    res = (-1.0, min(stop[t], o[j]) / c[t] - 1, k)
                    break
                if h[j] >= take[t]:
                    res = (1.0, max(take[t], o[j]) / c[t] - 1, k)
                    break
                if k == horizon:
                    res = (0.0, c[j] / c[t] - 1, k)
        out.append(res)
    return np.array(out)


def test_triple_barrier_uses_the_signal_exits_and_matches_a_plain_loop(sp500_panel):
    from workbench.config import SignalParams
    from workbench.features import feature_atr, triple_barrier
    from workbench.signals import signal_frame

    params = SignalParams(stop_atr=1.5, take_profit_atr=2.0)
    tb = triple_barrier(sp500_panel, params, horizon=10)
    assert tb.index.equals(build_features(sp500_panel).index)
    atr = feature_atr(sp500_panel, params.atr_window)
    frames = signal_frame(pd.DataFrame(0.9, index=atr.index, columns=atr.columns), sp500_panel.close, atr, params)
    for sym in ("AAPL", "GE"):
        o, h, lo, c = (sp500_panel.field(f)[sym].to_numpy() for f in ("open", "high", "low", "close"))
        stop, take = frames["stop"][sym].to_numpy(), frames["take_profit"][sym].to_numpy()
        np.testing.assert_allclose(stop[20:], c[20:] - 1.5 * atr[sym].to_numpy()[20:])
        exp = _brute_triple_barrier(o, h, lo, c, stop, take, 10)
        got = tb.xs(sym, level="symbol")[["label", "ret", "bars"]].to_numpy()
        np.testing.assert_allclose(got, exp, rtol=1e-12, equal_nan=True)
    counts = tb["label"].value_counts()
    assert set(counts.index) == {-1.0, 0.0, 1.0} and counts.min() > 500
    # ATR warm-up (14 bars), and at the end only the bars whose outcome is still open
    assert tb["label"].isna().groupby(level="symbol").sum().between(14 + 1, 14 + 10).all()


def test_labels_never_leak_into_features(sp500_panel):
    """Changing the future changes labels at t but not features at t."""
    from workbench.data.panel import Panel

    t = 600
    shocked = Panel(
        **{f: sp500_panel.field(f).copy() for f in ("open", "high", "low", "close", "volume")},
        exchange=sp500_panel.exchange,
        timeframe=sp500_panel.timeframe,
    )
    for f in ("open", "high", "low", "close"):
        shocked.field(f).iloc[t + 1 :] *= 2.0
    ts = sp500_panel.index[t]
    for fs in ("v1", "v2"):
        pd.testing.assert_frame_equal(build_features(shocked, fs).loc[:ts], build_features(sp500_panel, fs).loc[:ts])
    assert direction_label(shocked, 1).xs(ts, level="ts").eq(1.0).all()


def test_cross_sectional_labels_split_each_date_at_its_median():
    from tests.unit.features.research_kit import signal_panel
    from workbench.features.labels import LABELS, cross_sectional_label, cross_sectional_rank, training_label

    panel = signal_panel(n_bars=60, n_symbols=21)
    fwd = forward_return(panel, 5)
    y = cross_sectional_label(panel, 5)
    rank = cross_sectional_rank(panel, 5)
    X = build_features(panel)
    assert y.index.equals(X.index) and rank.index.equals(X.index)
    wide = y.unstack("symbol").reindex_like(fwd)
    known = fwd.notna().all(axis=1)
    # 21 names: exactly 10 beat the median every date (the median name itself does not).
    assert (wide[known].sum(axis=1) == 10).all()
    t = fwd.index[7]
    above = fwd.loc[t] > fwd.loc[t].median()
    np.testing.assert_array_equal(wide.loc[t].to_numpy(), above.astype(float).to_numpy())
    assert wide[~known].isna().all().all()  # the last h dates: the future is unknown
    r = rank.unstack("symbol").loc[t]
    assert r.max() == 1.0 and r.min() == pytest.approx(1 / 21) and r.idxmax() == fwd.loc[t].idxmax()
    # Market timing is worthless on these labels: shifting every return by a common amount changes nothing.
    shifted = panel._map(lambda f: f.copy())
    shifted.close.loc[:] = shifted.close.to_numpy() * np.exp(np.linspace(0, 1, len(panel.index)))[:, None]
    pd.testing.assert_series_equal(cross_sectional_label(shifted, 5), y)
    for name in LABELS:
        lab = training_label(panel, name, 5)
        assert set(np.unique(lab.dropna())) <= {0.0, 1.0}, name
    with pytest.raises(ValueError, match="unknown label 'up'; known labels"):
        training_label(panel, "up", 5)
