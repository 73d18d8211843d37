"""Inference on a panel, and research/live parity: the last row live equals that row in the backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.config import SignalParams
from workbench.features import get_feature_set
from workbench.models.inference import predict_panel, signals_for_panel
from workbench.signals import latest_signals


def test_predict_panel_shape_and_missing(rw_panel, rw_result):
    p = predict_panel(rw_result, rw_panel)
    assert p.index.equals(rw_panel.index) and p.columns.equals(rw_panel.close.columns)
    assert p.iloc[:33].isna().all().all() and p.iloc[33:, :3].notna().all().all()
    assert p["SYN-D"].iloc[: 80 + 33].isna().all() and p["SYN-D"].iloc[80 + 33 :].notna().all()
    assert p.stack().dropna().between(0, 1).all()
    # On the test window it is exactly the out-of-sample probability training reported.
    oos = rw_result.oos_proba
    pd.testing.assert_frame_equal(p.loc[oos.index], oos, check_names=False, check_freq=False)


def test_live_window_equals_backtest_row(rw_panel, rw_result):
    params = SignalParams()
    full = signals_for_panel(rw_result, rw_panel, params)
    for t in (200, 350, len(rw_panel.index) - 1):
        ts = rw_panel.index[t]
        causal = signals_for_panel(rw_result, rw_panel.upto(ts), params)
        for k, frame in full.items():
            pd.testing.assert_series_equal(causal[k].iloc[-1], frame.loc[ts], check_names=False)
    # The live loop's short window (feature-set warm-up) gives the same decisions as full history.
    warm = get_feature_set("v1").warmup
    live = latest_signals(signals_for_panel(rw_result, rw_panel.tail(warm + 1), params))
    hist = latest_signals(full)
    assert [s.signal for s in live] == [s.signal for s in hist]
    assert np.allclose([s.confidence for s in live], [s.confidence for s in hist], atol=2e-2)
