"""Every file layout in shared/data parses to the bars PROVENANCE.md describes."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.data.ingest import source_from_spec
from workbench.data.sources.csv_source import CsvSource, read_freqtrade_json, symbol_from_filename
from workbench.errors import BadCandlesError, ConfigError, DataError, UnknownSymbolError

UTC = "UTC"


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz=UTC)


def test_kaggle_sp500(shared_data):
    src = CsvSource(shared_data / "us_equities/sp500_5yr_kaggle_cnuge/AAPL_data.csv", "NASDAQ")
    df = src.candles
    assert src.layout.name == "kaggle_sp500" and src.symbols() == ["AAPL"] and src.timeframe == "1d"
    assert len(df) == 1259
    assert df["ts"].iloc[0] == T("2013-02-08") and df["ts"].iloc[-1] == T("2018-02-07")
    assert df.iloc[0][["open", "close", "volume"]].tolist() == [67.7142, 67.8542, 158168416.0]


def test_kaggle_real_defects_are_reported_with_their_row(shared_data):
    folder = shared_data / "us_equities/sp500_5yr_kaggle_cnuge"
    with pytest.raises(BadCandlesError) as err:
        CsvSource(folder / "FTV_data.csv", "NYSE").candles
    assert (err.value.row, err.value.reason.split(" (")[0]) == (1, "missing open")
    with pytest.raises(BadCandlesError) as err:  # a real bar whose low is above its close
        CsvSource(folder / "BBY_data.csv", "NYSE").candles
    assert (err.value.row, err.value.reason.split(" (")[0]) == (779, "low above min(open, close)")


def test_alphavantage_raw_ohlc_and_symbol_from_name(shared_data):
    src = CsvSource(shared_data / "us_equities/sp500_alphavantage_sample/DA-MSFT-T-2021-04-21.csv", "NASDAQ")
    df = src.candles
    assert src.layout.name == "alphavantage" and src.symbols() == ["MSFT"]
    assert len(df) == 5402 and df["ts"].iloc[0] == T("1999-11-01") and df["ts"].iloc[-1] == T("2021-04-21")


def test_upstox_daily_keeps_the_session_date(shared_data):
    src = CsvSource(shared_data / "nse/nifty50_daily_upstox_2020_2025/TCS_2020-10-01_to_2025-09-30.csv", "NSE")
    df = src.candles
    assert src.layout.name == "upstox" and src.symbols() == ["TCS"]
    assert len(df) == 1241
    # "2020-10-01 00:00:00+05:30" is the 2020-10-01 session, not 2020-09-30 18:30 UTC
    assert df["ts"].iloc[0] == T("2020-10-01") and df["ts"].iloc[-1] == T("2025-09-30")
    assert (df["ts"] == df["ts"].dt.normalize()).all()


def test_upstox_names_with_dash_and_ampersand(shared_data):
    folder = shared_data / "nse/nifty50_daily_upstox_2020_2025"
    assert CsvSource(folder / "BAJAJ-AUTO_2020-10-01_to_2025-09-30.csv", "NSE").symbols() == ["BAJAJ-AUTO"]
    late = CsvSource(folder / "JIOFIN_2020-10-01_to_2025-09-30.csv", "NSE").candles
    assert late["ts"].iloc[0] == T("2023-08-21")
    assert CsvSource(folder / "M&M_2020-10-01_to_2025-09-30.csv", "NSE").symbols() == ["M&M"]


def test_nse_website_export_is_newest_first_and_reversed(shared_data):
    src = CsvSource(shared_data / "nse/nse_website_format/HDFCLIFE.csv", "NSE")
    df = src.candles
    assert src.layout.name == "nse_website" and src.symbols() == ["HDFCLIFE"]
    assert len(df) == 879 and df["ts"].is_monotonic_increasing
    first = df.iloc[0]
    assert first["ts"] == T("2017-11-17") and (first["open"], first["close"], first["volume"]) == (
        310.0,
        344.6,
        168836552.0,
    )
    assert df["ts"].iloc[-1] == T("2021-06-08")


def test_bse_export(shared_data):
    path = shared_data / "bse/ITC-1965-2026.csv"
    assert sum(1 for _ in path.open()) - 1 == 8558  # data rows in the file
    src = CsvSource(path, "BSE")
    df = src.candles
    assert src.layout.name == "bse" and src.symbols() == ["ITC"]
    # 36 dates of 1998-2001 appear twice (two settlement segments) and become one bar each
    assert len(df) == 8558 - 36 and df["ts"].is_unique
    assert df["ts"].iloc[0] == T("1991-01-02") and df["ts"].iloc[-1] == T("2026-02-01")
    day = df.set_index("ts").loc[T("2001-05-14")]
    assert (day["open"], day["high"], day["low"], day["close"], day["volume"]) == (
        808.0,
        808.0,
        761.0,
        777.85,
        254098.0 + 10000.0,
    )
    last = df.iloc[-1]
    assert (last["open"], last["close"], last["volume"]) == (325.0, 309.6, 2691420.0)


def test_firstrate_intraday_naive_eastern(shared_data):
    src = CsvSource(shared_data / "intraday/us_firstratedata_sample/SPY_1min_sample.csv", "NYSE", tz="America/New_York")
    df = src.candles
    assert src.layout.name == "generic" and src.symbols() == ["SPY"] and src.timeframe == "1m"
    assert df["ts"].iloc[0] == T("2026-01-26 09:00")  # 04:00 New York (EST) = 09:00 UTC
    assert df["ts"].iloc[-1] == T("2026-02-10 00:59")  # 19:59 EST
    qqq = CsvSource(
        shared_data / "intraday/us_firstratedata_sample/QQQ_5min_sample.csv", "NASDAQ", tz="America/New_York"
    )
    assert qqq.timeframe == "5m" and qqq.symbols() == ["QQQ"]


def test_freqtrade_json(shared_data):
    df = read_freqtrade_json(shared_data / "crypto/binance/BTC_USDT-1d.json")
    assert df["symbol"].unique().tolist() == ["BTC/USDT"] and len(df) == 1881
    assert df["ts"].iloc[0] == T("2017-08-17") and df["open"].iloc[0] == 4261.48
    fut = read_freqtrade_json(shared_data / "crypto/binance/futures/BTC_USDT-1d-futures.json")
    assert fut["symbol"].iloc[0] == "BTC/USDT" and len(fut) == 365


def test_fetch_filters_and_checks(shared_data):
    src = CsvSource(shared_data / "us_equities/sp500_5yr_kaggle_cnuge/AAPL_data.csv", "NASDAQ")
    part = src.fetch("AAPL", "1d", since=T("2018-01-01"), until=T("2018-01-31"))
    assert len(part) == 21 and part["ts"].iloc[0] == T("2018-01-02") and part["ts"].iloc[-1] == T("2018-01-31")
    with pytest.raises(UnknownSymbolError, match="MSFT"):
        src.fetch("MSFT", "1d")
    with pytest.raises(DataError, match="holds 1d bars"):
        src.fetch("AAPL", "5m")


def test_unrecognised_header(tmp_path):
    path = tmp_path / "weird.csv"
    path.write_text("when,price,size\n2024-01-01,1,2\n")
    with pytest.raises(BadCandlesError) as err:
        CsvSource(path, "X").candles
    assert err.value.row is None and "unrecognised columns ['when', 'price', 'size']" in err.value.reason
    assert "expected" in err.value.reason


def test_generic_layout_with_symbol_column_and_aware_intraday(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        "2024-03-01 09:15:00+05:30,TCS,10,11,9,10.5,5\n"
        "2024-03-01 09:20:00+05:30,TCS,10.5,11,10,10.8,6\n"
        "2024-03-01 09:15:00+05:30,INFY,20,21,19,20.5,7\n"
    )
    src = CsvSource(path, "NSE")
    assert src.symbols() == ["INFY", "TCS"] and src.timeframe == "5m"
    assert src.fetch("TCS", "5m")["ts"].tolist() == [T("2024-03-01 03:45"), T("2024-03-01 03:50")]


def test_symbol_from_filename():
    assert symbol_from_filename("AAPL_data.csv") == "AAPL"
    assert symbol_from_filename("BAJAJ-AUTO_2020-10-01_to_2025-09-30.csv") == "BAJAJ-AUTO"
    assert symbol_from_filename("ITC-1965-2026.csv") == "ITC"
    assert symbol_from_filename("DA-AAPL-T-2021-04-21.csv") == "AAPL"
    assert symbol_from_filename("SPY.csv") == "SPY"


def test_source_from_spec(shared_data, settings):
    nse = source_from_spec(f"csv:{shared_data}/nse/nse_website_format/HDFCLIFE.csv", settings)
    assert (nse.name, nse.exchange) == ("csv:nse_website", "NSE")  # the vendor layout is recorded with each bar
    kaggle = f"csv:{shared_data}/us_equities/sp500_5yr_kaggle_cnuge/AAPL_data.csv"
    with pytest.raises(ConfigError, match=r"does not say which exchange.*AAPL_data.csv@NYSE"):
        source_from_spec(kaggle, settings)  # a US vendor file is not filed under a made-up "US"
    assert source_from_spec(kaggle + "@NASDAQ", settings).exchange == "NASDAQ"
    spy = source_from_spec(f"csv:{shared_data}/intraday/us_firstratedata_sample/SPY_1min_sample.csv@NYSE", settings)
    assert (spy.exchange, spy.tz) == ("NYSE", "America/New_York")
    syn = source_from_spec("synthetic", settings)
    assert (syn.name, syn.exchange, syn.symbols()) == ("synthetic", "synthetic", list(settings.demo.synthetic_symbols))
    ccxt_src = source_from_spec("ccxt:binance", settings)
    assert (ccxt_src.name, ccxt_src.exchange) == ("ccxt:binance", "binance")
    with pytest.raises(ConfigError, match="not a file"):
        source_from_spec("csv:/nonexistent/file.csv", settings)
    with pytest.raises(ConfigError, match="unknown data source"):
        source_from_spec("yahoo", settings)
