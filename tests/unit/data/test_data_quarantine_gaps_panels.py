"""Bad bars go to quarantine with a reason; gaps against exchange calendars; cross-venue panels; resumable pulls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.data.calendars import expected_bars, find_gaps
from workbench.data.candles import screen_candles
from workbench.data.ingest import pull
from workbench.data.lake import Lake


def bars(symbol, dates, base=100.0):
    ts = pd.DatetimeIndex(dates, tz="UTC") if not isinstance(dates, pd.DatetimeIndex) else dates
    close = base + np.arange(len(ts), dtype=float)
    return pd.DataFrame(
        {"ts": ts, "symbol": symbol, "open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 10.0}
    )


def test_screen_names_every_kind_of_bad_bar():
    df = bars("A", pd.date_range("2024-01-01", periods=8, tz="UTC"))
    df.loc[1, "close"] = np.nan
    df.loc[2, "open"] = -1.0
    df.loc[3, ["high", "low"]] = [90.0, 95.0]
    df.loc[4, "volume"] = -5.0
    df.loc[6, "ts"] = df.loc[5, "ts"]  # duplicate
    df.loc[7, "ts"] = df.loc[0, "ts"] - pd.Timedelta(days=3)  # out of order
    good, bad = screen_candles(df, "feed")
    assert good["ts"].tolist() == [df.loc[0, "ts"], df.loc[5, "ts"]]
    assert dict(zip(bad["row"], bad["reason"])) == {
        2: "NaN close", 3: "non-positive open", 4: "high < low", 5: "negative volume", 7: "duplicate timestamp", 8: "timestamp out of order",
    }  # fmt: skip


def test_write_screened_quarantines_once_and_stores_the_rest(tmp_path):
    lake = Lake(tmp_path)
    df = bars("BTC/USDT", pd.date_range("2024-01-01", periods=5, tz="UTC"))
    df.loc[2, "low"] = 0.0
    r = lake.write_screened(df, "binance", "1d", "ccxt:binance")
    assert (r.added, r.quarantined) == (4, 1)
    r2 = lake.write_screened(df, "binance", "1d", "ccxt:binance")  # an idempotent re-pull
    assert (r2.added, r2.quarantined) == (0, 1)
    q = lake.quarantined()
    assert (
        len(q) == 1
        and q.loc[0, "reason"] == "non-positive low"
        and q.loc[0, "ts"] == pd.Timestamp("2024-01-03", tz="UTC")
    )
    assert q.loc[0, ["exchange", "timeframe", "symbol", "source"]].tolist() == [
        "binance",
        "1d",
        "BTC/USDT",
        "ccxt:binance",
    ]
    assert len(lake.load_candles("binance", "1d")) == 4
    assert lake.quarantined("NSE").empty


def test_calendars_know_holidays_and_sessions():
    nse = expected_bars("NSE", "1d", "2024-01-22", "2024-01-29")
    assert (
        pd.Timestamp("2024-01-26", tz="UTC") not in nse and len(nse) == 4
    )  # Republic Day, and 22 Jan was a special closure
    nyse = expected_bars("NYSE", "1d", "2024-07-01", "2024-07-08")
    assert [d.day for d in nyse] == [1, 2, 3, 5, 8]
    hourly = expected_bars("NASDAQ", "1h", "2024-07-01", "2024-07-01 23:00")
    assert hourly[0] == pd.Timestamp("2024-07-01 13:30", tz="UTC") and len(hourly) == 7
    assert len(expected_bars("binance", "1h", "2024-01-01", "2024-01-02")) == 25


def test_gaps_are_reported_against_the_calendar(tmp_path):
    lake = Lake(tmp_path)
    sessions = expected_bars("NYSE", "1d", "2024-06-03", "2024-07-31")
    lake.write(bars("AAPL", sessions.delete([5, 6, 20])), "NYSE", "1d", "test")
    lake.write(bars("MSFT", sessions), "NYSE", "1d", "test")
    gaps = find_gaps(lake, "NYSE", "1d")
    assert gaps["symbol"].tolist() == ["AAPL"] and gaps.loc[0, "missing"] == 3
    assert gaps.loc[0, "first_missing"] == sessions[5]
    crypto = pd.date_range("2024-01-01", periods=10, tz="UTC")
    lake.write(bars("BTC/USDT", crypto.delete(4)), "binance", "1d", "test")
    assert find_gaps(lake, "binance", "1d").loc[0, "missing"] == 1


def test_panel_for_instruments_across_venues(tmp_path):
    lake = Lake(tmp_path)
    days = pd.date_range("2024-01-01", periods=6, tz="UTC")
    lake.write(bars("TCS", days[1:]), "NSE", "1d", "t")
    lake.write(bars("BTC/USDT", days, base=40000), "binance", "1d", "t")
    frames = lake.load_panel_for(["binance:BTC/USDT", "NSE:TCS"], "1d", start=days[1], fields=("close", "volume"))
    assert set(frames) == {"close", "volume"}
    close = frames["close"]
    assert list(close.columns) == ["binance:BTC/USDT", "NSE:TCS"] and len(close) == 5
    assert close.loc[days[1], "NSE:TCS"] == 100.0 and close.loc[days[2], "binance:BTC/USDT"] == 40002.0
    panel = lake.load_panel("binance", "1d")
    frames = lake.load_frames("binance", "1d", ["BTC/USDT"], fields=("high",))
    pd.testing.assert_frame_equal(frames["high"], panel.high, check_freq=False)
    with pytest.raises(KeyError, match="vwap"):
        lake.load_frames("binance", "1d", fields=("vwap",))


class PagedSource:
    """A chunked source of 5 pages of 10 daily bars; can be told to be interrupted (Ctrl-C) after a page."""

    name, exchange = "paged", "binance"

    def __init__(self, interrupt_after=None):
        self.interrupt_after = interrupt_after
        self.all = bars("ETH/USDT", pd.date_range("2023-01-01", periods=50, tz="UTC"))
        self.all.loc[33, "high"] = 1.0  # one bad bar

    def iter_raw(self, symbol, timeframe, since=None, until=None):
        rest = self.all if since is None else self.all[self.all["ts"] >= since]
        for i, start in enumerate(range(0, len(rest), 10)):
            if self.interrupt_after is not None and i == self.interrupt_after:
                raise KeyboardInterrupt
            yield rest.iloc[start : start + 10]


def test_interrupted_pull_resumes_without_loss(tmp_path):
    lake = Lake(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        pull(lake, PagedSource(interrupt_after=2), ["ETH/USDT"], "1d", progress=False)
    assert len(lake.load_candles("binance", "1d")) == 20  # two pages were stored before Ctrl-C
    report = pull(lake, PagedSource(), ["ETH/USDT"], "1d", progress=False)
    assert (
        report.new_rows == {"ETH/USDT": 29}
        and report.quarantined == {"ETH/USDT": 1}
        and "quarantined" in report.summary()
    )
    stored = lake.load_candles("binance", "1d")
    assert len(stored) == 49 and stored["ts"].is_unique
