"""Data checked before it is trusted: lenient files quarantine bad rows with reasons, pandas/yfinance
exports are read, a second vendor is not stitched onto a history unasked, a folder imports in one go."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.ingest import ingest_folder, pull, source_from_spec, stitches
from workbench.data.lake import Lake
from workbench.data.sources.base import ScreenedSource
from workbench.data.sources.csv_source import CsvSource
from workbench.errors import BadCandlesError, ConfigError

KAGGLE = "us_equities/sp500_5yr_kaggle_cnuge"
HEADER = "date,open,high,low,close,volume,Name\n"


def _rows(n: int, start: str = "2020-01-01", sym: str = "ABC") -> list[str]:
    days = pd.date_range(start, periods=n, freq="D")
    return [f"{d.date()},{10 + i},{11 + i},{9 + i},{10.5 + i},{100 + i},{sym}" for i, d in enumerate(days)]


def test_lenient_keeps_the_good_rows_and_names_each_bad_one(tmp_path):
    rows = _rows(10)
    rows[2] = "2020-01-03,12,11,13,12.5,102,ABC"  # file row 3: high < low
    rows[5] = "2020-01-06,,16,14,15.5,105,ABC"  # row 6: no open
    rows[7] = "not a date,17,18,16,17.5,107,ABC"  # row 8: unparseable timestamp
    rows[8] = rows[6]  # row 9: the bar of row 7 again
    path = tmp_path / "ABC_data.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(BadCandlesError) as err:
        _ = CsvSource(path, "NYSE").candles
    assert err.value.row == 8  # strict (the default): one bad row (timestamps are read first) stops the file
    src = CsvSource(path, "NYSE", lenient=True)
    assert isinstance(src, ScreenedSource)
    assert len(src.candles) == 6 and src.candles["ts"].is_monotonic_increasing
    bad = src.rejected_for("ABC")
    assert dict(zip(bad["row"], bad["reason"])) == {
        3: "high < low",
        6: "NaN open",
        8: "unparseable or missing timestamp",
        9: "duplicate timestamp",
    }
    assert (bad["origin"] == str(path)).all()


def test_lenient_reads_a_newest_first_export_without_calling_it_out_of_order(tmp_path):
    rows = _rows(6)
    rows[3] = rows[3].replace(",13,14,12,", ",13,12,14,")  # file row 4 before reversal: high < low
    path = tmp_path / "DESC.csv"
    path.write_text(HEADER + "\n".join(reversed(rows)) + "\n")
    src = CsvSource(path, "NSE", lenient=True)
    assert len(src.candles) == 5 and src.candles["ts"].is_monotonic_increasing
    assert src.rejected[["row", "reason"]].values.tolist() == [[3, "high < low"]]  # row 3 of the file as written


def test_pull_quarantines_a_lenient_files_bad_rows(shared_data, tmp_path):
    lake = Lake(tmp_path / "lake")
    src = source_from_spec(f"csv:{shared_data / KAGGLE / 'BBY_data.csv'}@NYSE", settings=None, lenient=True)
    report = pull(lake, src, ["BBY"], "1d", progress=False)
    assert report.new_rows == {"BBY": 1258} and report.quarantined == {"BBY": 1} and report.ok
    q = lake.quarantined("NYSE", "1d")
    assert q[["symbol", "row", "reason"]].values.tolist() == [["BBY", 779, "low above min(open, close)"]]
    assert q["origin"].iloc[0].endswith("BBY_data.csv") and "quarantined" in report.summary()


def test_pandas_and_yfinance_exports_are_read(tmp_path):
    idx = pd.date_range("2024-01-02", periods=5, freq="B", tz="America/New_York")
    close = np.array([185.6, 184.3, 181.9, 181.2, 185.6])
    frame = pd.DataFrame(
        {
            "Open": close - 1,
            "High": close + 1,
            "Low": close - 2,
            "Close": close,
            "Adj Close": close * 0.99,
            "Volume": [82488700, 58414500, 71983600, 62303300, 59144500],
        },
        index=idx,
    )
    unnamed = tmp_path / "AAPL.csv"
    frame.to_csv(unnamed)  # header ",Open,High,...": the index column has no name
    assert unnamed.read_text().startswith(",Open,High,Low,Close,Adj Close,Volume")
    named = tmp_path / "MSFT.csv"
    frame.rename_axis("Date").to_csv(named)
    for path, sym in ((unnamed, "AAPL"), (named, "MSFT")):
        src = CsvSource(path, "NASDAQ")
        assert src.layout.name == "pandas_export" and src.symbols() == [sym] and src.timeframe == "1d"
        df = src.fetch(sym, "1d")
        assert df["ts"].tolist() == list(pd.date_range("2024-01-02", periods=5, freq="B", tz="UTC"))  # session dates
        assert df["close"].tolist() == close.tolist()  # the traded close, not Adj Close
    with pytest.raises(ConfigError, match="does not say which exchange"):
        source_from_spec(f"csv:{unnamed}", settings=None)


def test_a_second_vendor_is_not_stitched_on_unasked(shared_data, tmp_path):
    lake = Lake(tmp_path / "lake")
    kaggle = source_from_spec(f"csv:{shared_data / KAGGLE / 'MSFT_data.csv'}@NASDAQ", settings=None)
    alpha_path = shared_data / "us_equities/sp500_alphavantage_sample/DA-MSFT-T-2021-04-21.csv"
    assert pull(lake, kaggle, ["MSFT"], "1d", progress=False).new_rows == {"MSFT": 1259}

    refused = pull(lake, source_from_spec(f"csv:{alpha_path}@NASDAQ", None), ["MSFT"], "1d", progress=False)
    assert refused.new_rows == {} and "--allow-stitch" in refused.errors["MSFT"]
    assert "805 bars from csv:alphavantage" in refused.errors["MSFT"] and "csv:kaggle_sp500" in refused.errors["MSFT"]
    assert len(lake.load_candles("NASDAQ", "1d", ["MSFT"])) == 1259 and stitches(lake).empty
    assert pull(lake, kaggle, ["MSFT"], "1d", progress=False).ok  # the same vendor again: fine

    allowed = pull(
        lake, source_from_spec(f"csv:{alpha_path}@NASDAQ", None), ["MSFT"], "1d", progress=False, allow_stitch=True
    )
    assert allowed.new_rows == {"MSFT": 805} and "805 bars from csv:alphavantage" in allowed.stitched["MSFT"]
    log = stitches(lake)
    assert log[["symbol", "source", "added"]].values.tolist() == [["MSFT", "csv:alphavantage", 805]]
    assert lake.catalog().set_index("symbol").loc["MSFT", "source"] == "csv:alphavantage,csv:kaggle_sp500"


@pytest.fixture
def folder(shared_data, tmp_path):
    d = tmp_path / "csvs"
    d.mkdir()
    for sym in ("AAPL", "BBY", "FTV", "KO"):  # BBY and FTV each have one bad row
        shutil.copy(shared_data / KAGGLE / f"{sym}_data.csv", d)
    return d


def test_a_folder_imports_in_one_go_in_parallel(folder, tmp_path):
    strict = ingest_folder(Lake(tmp_path / "strict"), folder, "NYSE", workers=2, progress=False)
    assert strict.files == 4 and sorted(strict.new_rows) == ["AAPL", "KO"]
    assert sorted(strict.errors) == ["BBY_data.csv", "FTV_data.csv"] and "row 779" in strict.errors["BBY_data.csv"]

    parallel, serial = Lake(tmp_path / "lenient2"), Lake(tmp_path / "lenient1")
    report = ingest_folder(parallel, folder, "NYSE", lenient=True, workers=2, progress=False)
    assert report.ok and report.quarantined == {"BBY": 1, "FTV": 1} and len(report.new_rows) == 4
    ingest_folder(serial, folder, "NYSE", lenient=True, workers=1, progress=False)
    pd.testing.assert_frame_equal(parallel.load_candles("NYSE", "1d"), serial.load_candles("NYSE", "1d"))
    again = ingest_folder(parallel, folder, "NYSE", lenient=True, workers=2, progress=False)
    assert again.total_new == 0 and again.ok


def test_cli_data_ingest_and_pull_name_what_is_wrong(folder, tmp_path):
    home = str(tmp_path / "home")
    out = CliRunner().invoke(
        app, ["data", "ingest", str(folder), "--exchange", "NYSE", "--lenient", "--workers", "1", "--home", home]
    )
    assert out.exit_code == 0, out.output
    assert "4 files" in out.output and "2 bad rows of 2 symbols quarantined" in out.output
    out = CliRunner().invoke(app, ["data", "pull", "--source", f"csv:{folder / 'KO_data.csv'}", "--home", home])
    assert out.exit_code == 3 and "@NYSE" in out.output
    out = CliRunner().invoke(app, ["data", "ingest", str(tmp_path / "nowhere"), "--exchange", "NYSE", "--home", home])
    assert out.exit_code == 3 and "is not a folder" in out.output


def test_two_vendors_in_one_folder_are_not_stitched_either(shared_data, tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    shutil.copy(shared_data / KAGGLE / "MSFT_data.csv", d / "0_MSFT_data.csv")  # read first (files go by name)
    shutil.copy(shared_data / "us_equities/sp500_alphavantage_sample/DA-MSFT-T-2021-04-21.csv", d)
    lake = Lake(tmp_path / "lake")
    report = ingest_folder(lake, d, "NASDAQ", workers=1, progress=False)
    assert report.new_rows == {"MSFT": 1259} and stitches(lake).empty
    assert "4143 bars from csv:alphavantage" in report.errors["DA-MSFT-T-2021-04-21.csv MSFT"]
