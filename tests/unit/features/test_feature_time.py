"""Time features follow the exchange calendar: local hours, half days, 24/7 crypto."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.features.timefeatures import TIME_COLUMNS, session_clock, time_features


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


# ---- NSE/BSE past the last recorded holiday year (exchange_calendars 4.13.2: 2026-12-31) ---------------


def test_nse_clock_is_the_exchange_clock_for_history_ending_2026_11():
    clock = session_clock("NSE", pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-11-30", tz="UTC"))
    assert clock.code == "XBOM" and clock.tz == "Asia/Kolkata"
    assert "not recorded after 2026-12-31" in clock.note and "weekly schedule" in clock.note
    idx = pd.DatetimeIndex(["2027-01-04 03:45", "2027-01-04 09:45", "2027-01-02 05:00"], tz="UTC")
    tf = time_features(idx, clock, "15m")  # Mon 09:15 IST, Mon 15:15 IST, a Saturday
    np.testing.assert_allclose(tf["hours_to_close"], [6.25, 0.25, 53.0])  # Sat 05:00 UTC → Mon 10:00 UTC
    np.testing.assert_allclose(tf["session_phase"], [0.0, 6 / 6.25, 0.0])


def test_extra_holidays_move_the_next_close_in_time_features():
    from workbench.data.calendars import Calendars

    day_before = pd.DatetimeIndex(["2027-01-25 10:00"], tz="UTC")  # after the close of Monday 25 Jan (IST)
    lo, hi = pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-11-30", tz="UTC")
    plain = time_features(day_before, session_clock("NSE", lo, hi), "15m")["hours_to_close"]
    republic_day = Calendars.with_holidays({"NSE": [pd.Timestamp("2027-01-26").date()]})
    holiday = time_features(day_before, session_clock("NSE", lo, hi, republic_day), "15m")["hours_to_close"]
    np.testing.assert_allclose(plain, [24.0])  # to Tuesday's 15:30 IST
    np.testing.assert_allclose(holiday, [48.0])  # Republic Day added: to Wednesday's


def test_a_panels_calendars_reach_its_features_in_training_and_live():
    """The holidays travel with the panel (``Panel.with_calendars``): the batch build and the live
    one-bar update both see them; the same bars with no calendars get the recorded sessions."""
    from workbench.data.calendars import Calendars
    from workbench.features import IncrementalFeatures, build_features

    republic_day = Calendars.with_holidays({"NSE": [pd.Timestamp("2027-01-26").date()]})
    panel = _nse_panel("15m", "2027-01-18", "2027-01-25 09:45")
    after_close = pd.Timestamp("2027-01-25 10:00", tz="UTC")  # Monday 15:30 IST: the next close is Tue or Wed
    panel = panel._map(lambda f: pd.concat([f, f.iloc[[-1]].set_axis([after_close])]))
    assert panel.calendars is None and panel.with_calendars(republic_day).calendars is republic_day
    for cals, hours in ((None, 24.0), (republic_day, 48.0)):
        p = panel.with_calendars(cals)
        full = build_features(p, "v2").xs(after_close, level="ts")["hours_to_close"]
        assert (full == hours).all(), (cals, full.tolist())
        inc = IncrementalFeatures.from_history(p.iloc(slice(0, -1)), "v2")
        row = inc.update(p.iloc(slice(-1, None)))
        assert (row["hours_to_close"] == hours).all(), (cals, row["hours_to_close"].tolist())
        assert p.upto(after_close).tail(3).calendars is cals  # truncations (the leak checks') keep them


def _nse_panel(timeframe: str, start: str, end: str):
    from tests.unit.features.research_kit import random_walk_panel
    from workbench.data.calendars import expected_bars
    from workbench.data.panel import Panel

    idx = expected_bars("NSE", timeframe, start, end)
    rw = random_walk_panel(n_bars=len(idx), symbols=("TCS", "INFY", "RELIANCE"))
    fields = {f: getattr(rw, f).set_axis(idx, axis=0) for f in ("open", "high", "low", "close", "volume")}
    return Panel(**fields, exchange="NSE", timeframe=timeframe)


@pytest.mark.parametrize(
    "timeframe, start, live_from, end",
    [
        # the live clock is built within the recorded years and rebuilt when the bars pass its end
        ("1d", "2024-06-03", "2025-12-01", "2027-01-08"),
        ("15m", "2026-11-02", "2026-12-24 06:00", "2027-01-08 23:59"),
    ],
)
def test_same_bars_same_features_in_training_and_live_across_the_horizon(timeframe, start, live_from, end):
    """Training builds v2 over the whole history; live starts from the history before ``live_from`` and
    updates bar by bar into January 2027 (past the recorded holidays): every row must be equal."""
    from workbench.features import IncrementalFeatures, build_features

    panel = _nse_panel(timeframe, start, end)
    idx = panel.index
    full = build_features(panel, "v2")
    first = int(np.searchsorted(idx, pd.Timestamp(live_from, tz="UTC")))
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, first)), "v2")
    for t in range(first, len(idx)):
        row = inc.update(panel.iloc(slice(t, t + 1)))
        want = full.xs(idx[t], level="ts").reindex(index=row.index, columns=row.columns)
        np.testing.assert_array_equal(row.to_numpy(), want.to_numpy(), err_msg=str(idx[t]))
    last = full.xs(idx[-1], level="ts")[list(TIME_COLUMNS)].iloc[0]
    if timeframe == "1d":  # Friday 8 Jan 2027: an XBOM session of 6.25 hours, not a 24-hour UTC day
        assert last["hours_to_close"] == 6.25 and last["day_of_week"] == 4 / 6
    else:  # Friday 15:15 IST
        assert last["hours_to_close"] == 0.25 and last["session_phase"] == 6 / 6.25


def test_feature_report_says_where_sessions_follow_the_weekly_schedule():
    from workbench.features.timefeatures import calendar_note

    assert calendar_note("NSE", pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2026-11-30", tz="UTC")) == (
        "time features: calendar XBOM"
    )
    beyond = calendar_note("NSE", pd.Timestamp("2026-06-01", tz="UTC"), pd.Timestamp("2027-02-01", tz="UTC"))
    assert beyond.startswith("time features: calendar XBOM; NSE (XBOM) holidays not recorded after 2026-12-31")
    assert calendar_note("NSE", pd.NaT, pd.NaT) == "time features: calendar XBOM"  # an empty panel
