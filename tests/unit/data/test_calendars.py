"""One calendar for any date: exchange_calendars' recorded sessions up to its last holiday year, the
exchange's weekly schedule beyond, a home's extra holidays (a ``Calendars`` value, never process state)
honoured by is_open, gaps and sessions."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from workbench.config import load_settings
from workbench.data.calendars import (
    RECORDED,
    Calendars,
    exchange_calendar,
    expected_bars,
    find_gaps,
    horizon_warnings,
    is_open,
    parse_extra_holidays,
)
from workbench.data.lake import Lake
from workbench.errors import ConfigError
from workbench.live import sessions

IST = "Asia/Kolkata"
REPUBLIC_DAY_2027 = dt.date(2027, 1, 26)
WITH_REPUBLIC_DAY = Calendars.with_holidays({"NSE": [REPUBLIC_DAY_2027]})


def ist(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz=IST)


def _xc(code: str, start: str, end: str):
    import exchange_calendars as xc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xc.get_calendar(code, start=start, end=end)


@pytest.mark.parametrize(
    "exchange, code, timeframe, start, end",
    [
        ("NSE", "XBOM", "1d", "2024-01-01", "2026-12-31"),
        ("BSE", "XBOM", "15m", "2025-01-01", "2025-03-28"),
        ("NYSE", "XNYS", "1h", "2023-06-01", "2023-12-31"),  # half days, DST
    ],
)
def test_recorded_years_are_exchange_calendars_own_sessions(exchange, code, timeframe, start, end):
    cal = _xc(code, "2020-01-01", "2026-12-31")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if timeframe == "1d":
            want = pd.DatetimeIndex(cal.sessions_in_range(start, end)).tz_localize("UTC")
        else:
            want = pd.DatetimeIndex(cal.trading_index(start, end, timeframe.replace("m", "min"), intervals=False))
    got = expected_bars(exchange, timeframe, start, pd.Timestamp(end) + pd.Timedelta(hours=23, minutes=59))
    np.testing.assert_array_equal(got.as_unit("ns").asi8, want.as_unit("ns").asi8)


def test_nse_in_2027_follows_the_weekly_schedule_and_extra_holidays():
    assert exchange_calendar("NSE").horizon == pd.Timestamp("2026-12-31")  # exchange_calendars 4.13.2
    assert is_open("NSE", ist("2027-01-04 09:15")) and is_open("NSE", ist("2027-01-04 15:29"))
    assert not is_open("NSE", ist("2027-01-04 09:14")) and not is_open("NSE", ist("2027-01-04 15:30"))
    assert not is_open("NSE", ist("2027-01-02 11:00")) and not is_open("NSE", ist("2027-01-03 11:00"))  # weekend
    assert is_open("NSE", ist("2027-01-26 11:00"))  # Republic Day is not recorded for 2027 …
    cals = WITH_REPUBLIC_DAY
    assert not is_open("NSE", ist("2027-01-26 11:00"), cals)  # … until the user adds it
    assert not sessions.is_open("NSE", ist("2027-01-26 11:00"), cals)  # the live loop's question, same answer
    assert sessions.open_mask(np.array(["NSE", "BSE", "binance"]), ist("2027-01-26 11:00"), cals).tolist() == [
        False,
        True,  # BSE has its own list: nothing added there
        True,
    ]
    assert is_open("NSE", ist("2027-01-27 11:00"), cals)
    days = expected_bars("NSE", "1d", "2027-01-25", "2027-01-29", cals)
    assert [d.day for d in days] == [25, 27, 28, 29]
    assert is_open("NSE", ist("2027-01-26 11:00")) and sessions.is_open("NSE", ist("2027-01-26 11:00"))  # none given


def test_beyond_the_horizon_bars_are_the_regular_hours_in_the_exchange_time_zone():
    bars = expected_bars("NSE", "5m", "2027-03-01", "2027-03-01 23:59")
    assert len(bars) == 75 and bars[0] == pd.Timestamp("2027-03-01 03:45", tz="UTC")  # 09:15 IST
    assert bars[-1] == pd.Timestamp("2027-03-01 09:55", tz="UTC")  # the last bar starts 15:25 IST
    # A rule-based calendar past its built years: New York hours follow daylight saving.
    assert exchange_calendar("NYSE").horizon == pd.Timestamp("2040-12-31")
    winter, summer = (
        expected_bars("NYSE", "1h", "2041-01-07", "2041-01-07 23:00"),
        expected_bars("NYSE", "1h", "2041-07-08", "2041-07-08 23:00"),
    )
    assert winter[0] == pd.Timestamp("2041-01-07 14:30", tz="UTC") and len(winter) == 7
    assert summer[0] == pd.Timestamp("2041-07-08 13:30", tz="UTC") and len(summer) == 7
    assert "not recorded after 2040-12-31" in exchange_calendar("NYSE").note("2040-06-01", "2041-02-01")
    assert exchange_calendar("NYSE").note("2020-01-01", "2030-01-01") == ""


def test_a_dates_sessions_do_not_depend_on_the_range_asked():
    cal = exchange_calendar("NSE")
    wide = cal.sessions("2026-06-01", "2027-12-31")
    narrow = cal.sessions("2026-12-20", "2027-01-15")
    keep = np.isin(wide.days, narrow.days)
    assert keep.sum() == len(narrow.days) > 0
    for a, b in zip(wide, narrow, strict=True):
        np.testing.assert_array_equal(a[keep], b)
    recorded = cal.sessions("2026-12-01", "2026-12-31")  # wholly within the recorded year
    seam = narrow.days[narrow.days <= pd.Timestamp("2026-12-31", tz="UTC").value]
    np.testing.assert_array_equal(seam, recorded.days[recorded.days >= narrow.days[0]])
    assert pd.Timestamp("2026-12-25", tz="UTC").value not in narrow.days  # a recorded holiday, across the seam
    assert pd.Timestamp("2026-12-24", tz="UTC").value in narrow.days


def test_extra_holidays_also_close_recorded_days():
    assert is_open("NSE", ist("2026-12-30 11:00"))
    late = Calendars.with_holidays({"NSE": [dt.date(2026, 12, 30)]})  # e.g. a closure announced late
    assert not is_open("NSE", ist("2026-12-30 11:00"), late)
    assert pd.Timestamp("2026-12-30", tz="UTC") not in expected_bars("NSE", "1d", "2026-12-28", "2026-12-31", late)


def test_gaps_beyond_the_horizon_use_the_weekly_schedule_and_extra_holidays(tmp_path):
    lake = Lake(tmp_path)
    days = expected_bars("NSE", "1d", "2026-12-01", "2027-02-26", WITH_REPUBLIC_DAY)
    assert pd.Timestamp("2027-01-26", tz="UTC") not in days
    lost = pd.Timestamp("2027-02-10", tz="UTC")
    stored = days[days != lost]
    n = len(stored)
    frame = pd.DataFrame(
        {"ts": stored, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "symbol": "TCS"}
    )
    lake.write(frame, "NSE", "1d", "test")
    gaps = find_gaps(lake, "NSE", "1d")  # no extra holidays: Republic Day 2027 looks missing
    assert gaps.loc[0, "missing"] == 2 and gaps.loc[0, "first_missing"] == pd.Timestamp("2027-01-26", tz="UTC")
    assert "not recorded after 2026-12-31" in gaps.attrs["note"]
    gaps = find_gaps(lake, "NSE", "1d", calendars=WITH_REPUBLIC_DAY)
    assert gaps.loc[0, "missing"] == 1 and gaps.loc[0, "first_missing"] == lost and n == len(days) - 1
    assert "1 holiday(s) from the settings" in gaps.attrs["note"]


def test_horizon_warning_within_30_days_or_passed():
    assert horizon_warnings(["NSE", "BSE"], "2026-11-30") == []  # 31 days ahead
    (w,) = horizon_warnings(["NSE", "BSE", "NYSE", "binance"], "2026-12-01")
    assert w.startswith("NSE/BSE holidays are recorded only to 2026-12-31: on an unrecorded holiday the venue")
    assert "upgrade exchange_calendars" in w and "passed" not in w
    (w,) = horizon_warnings(["NSE"], "2027-01-05")
    assert "passed" in w and "extra_holidays" in w
    assert "NSE: 1 extra holiday(s) set" in horizon_warnings(["NSE"], "2027-01-05", calendars=WITH_REPUBLIC_DAY)[0]
    assert horizon_warnings(["NYSE", "NASDAQ", "binance"], "2027-06-01") == []


def test_extra_holidays_from_the_settings_and_bad_entries(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "workbench.toml").write_text('[calendars]\nextra_holidays = {NSE = ["2027-01-26", 2027-03-04]}\n')
    s = load_settings(home)
    assert s.calendars.extra_holidays == {"NSE": (REPUBLIC_DAY_2027, dt.date(2027, 3, 4))}
    cals = Calendars.from_settings(s)
    assert not is_open("NSE", ist("2027-03-04 11:00"), cals) and is_open("BSE", ist("2027-03-04 11:00"), cals)
    assert is_open("NSE", ist("2027-03-04 11:00"))  # loading settings installs nothing for the process
    for bad, words in [
        ('{NSE = ["2027-13-01"]}', ["calendars.extra_holidays.NSE", "'2027-13-01'", "YYYY-MM-DD"]),
        ('{binance = ["2027-01-01"]}', ["calendars.extra_holidays.binance", "24/7"]),
        ('["2027-01-26"]', ["calendars.extra_holidays", "exchange = [dates]"]),
    ]:
        (home / "workbench.toml").write_text(f"[calendars]\nextra_holidays = {bad}\n")
        with pytest.raises(ConfigError) as e:
            load_settings(home)
        assert all(w in str(e.value) for w in words), str(e.value)
    with pytest.raises(ConfigError, match=r"extra_holidays.NSE: 'soon' is not a date"):
        parse_extra_holidays({"NSE": ["2027-01-26", "soon"]})


def test_two_homes_settings_side_by_side_in_one_process_each_keep_their_holidays(tmp_path):
    """Two homes' settings used together (one notebook): each home's calendars answer with its own
    holidays, whichever was loaded last; asked with none, the recorded sessions."""
    homes = {}
    for name, day in (("mumbai", "2027-01-26"), ("pune", "2027-03-04")):
        home = tmp_path / name
        home.mkdir()
        (home / "workbench.toml").write_text(f'[calendars]\nextra_holidays = {{NSE = ["{day}"]}}\n')
        homes[name] = load_settings(home)
    mumbai, pune = (Calendars.from_settings(homes[n]) for n in ("mumbai", "pune"))
    republic_day, march_4 = ist("2027-01-26 11:00"), ist("2027-03-04 11:00")
    assert [is_open("NSE", t, mumbai) for t in (republic_day, march_4)] == [False, True]
    assert [sessions.is_open("NSE", t, pune) for t in (republic_day, march_4)] == [True, False]
    assert [is_open("NSE", t) for t in (republic_day, march_4)] == [True, True]  # no settings: recorded
    assert is_open("NSE", republic_day, mumbai) is False  # still the first home's answer after the second
    assert mumbai != pune and Calendars.from_settings(homes["mumbai"]) == mumbai and Calendars() == RECORDED
