"""Time features follow the exchange calendar: local hours, half days, 24/7 crypto."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.features.timefeatures import session_clock, time_features


def test_nyse_intraday_and_half_day():
    idx = pd.DatetimeIndex(
        ["2023-11-24 14:30", "2023-11-24 17:30", "2023-11-27 14:30", "2023-11-27 20:30", "2023-11-25 15:00"], tz="UTC"
    )
    tf = time_features(idx, session_clock("NYSE", idx.min(), idx.max()), "30m")
    # 24 Nov 2023 (after Thanksgiving) closes at 13:00 New York = 18:00 UTC; 27 Nov closes 21:00 UTC.
    np.testing.assert_allclose(tf["hours_to_close"], [3.5, 0.5, 6.5, 0.5, 54.0])
    np.testing.assert_allclose(tf["session_phase"], [0, 3 / 3.5, 0, 6 / 6.5, 0])
    np.testing.assert_allclose(tf["hour_sin"][0], np.sin(2 * np.pi * 9.5 / 24))  # 09:30 local
    np.testing.assert_allclose(tf["day_of_week"], [4 / 6, 4 / 6, 0, 0, 5 / 6])


def test_crypto_is_24_7_and_unknown_venue_falls_back():
    idx = pd.date_range("2024-03-02 00:00", periods=4, freq="6h", tz="UTC")
    tf = time_features(idx, session_clock("binance", idx.min(), idx.max()), "6h")
    np.testing.assert_allclose(tf["hours_to_close"], [24, 18, 12, 6])
    np.testing.assert_allclose(tf["session_phase"], [0, 0.25, 0.5, 0.75])
    clock = session_clock("NOWHERE", idx.min(), idx.max())
    assert clock.code == "24/7" and "NOWHERE" in clock.note
