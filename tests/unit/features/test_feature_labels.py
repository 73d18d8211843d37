"""Labels look ahead exactly ``horizon`` valid bars and line up with the features' index."""

from __future__ import annotations

import numpy as np
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
