"""validate_candles: each rule names the right 1-based data row of the file the user has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.data.candles import CANDLE_COLUMNS, timeframe_delta, timeframe_of, validate_candles
from workbench.data.sources.csv_source import CsvSource
from workbench.errors import BadCandlesError

GOOD = [
    ("2024-01-01", 10.0, 11.0, 9.0, 10.5, 100),
    ("2024-01-02", 10.5, 12.0, 10.0, 11.0, 200),
    ("2024-01-03", 11.0, 11.5, 10.2, 10.4, 150),
    ("2024-01-04", 10.4, 10.9, 9.8, 10.0, 120),
    ("2024-01-05", 10.0, 10.6, 9.9, 10.3, 90),
]


def write_csv(path: Path, rows) -> Path:
    lines = ["ts,open,high,low,close,volume"] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def with_row(i: int, **changes):
    """GOOD with data row i (1-based) changed."""
    rows = [list(r) for r in GOOD]
    names = ["ts", "open", "high", "low", "close", "volume"]
    for k, v in changes.items():
        rows[i - 1][names.index(k)] = v
    return rows


@pytest.mark.parametrize(
    ("row", "changes", "reason"),
    [
        (3, {"open": None}, "missing open"),
        (2, {"close": "nan"}, "missing close"),
        (4, {"low": 0.0}, "non-positive low"),
        (5, {"open": -1.0}, "non-positive open"),
        (2, {"high": 9.5}, "high < low"),
        (3, {"high": 10.9}, "high below max(open, close)"),  # open 11.0 > high
        (4, {"low": 10.2}, "low above min(open, close)"),  # close 10.0 < low
        (1, {"volume": -5}, "negative volume"),
        (4, {"ts": "2024-01-03"}, "duplicated timestamp"),
        (4, {"ts": "2024-01-01T12:00"}, "out of order"),
        (2, {"ts": "not a date"}, "unparseable timestamp"),
        (5, {"volume": "lots"}, "volume is not a number"),
    ],
)
def test_each_rule_names_the_first_bad_row(tmp_path, row, changes, reason):
    path = write_csv(tmp_path / "XYZ.csv", with_row(row, **changes))
    with pytest.raises(BadCandlesError) as err:
        CsvSource(path, "TEST").candles
    assert err.value.row == row
    assert reason in err.value.reason
    assert str(path) in str(err.value) and f"row {row}" in str(err.value)


def test_first_offending_row_wins_across_rules(tmp_path):
    rows = with_row(4, volume=-1)
    rows[1][3] = 13.0  # row 2: low 13 > high 12
    with pytest.raises(BadCandlesError) as err:
        CsvSource(write_csv(tmp_path / "A.csv", rows), "TEST").candles
    assert (err.value.row, err.value.reason.split(" (")[0]) == (2, "high < low")


def test_newest_first_file_is_reversed(tmp_path):
    out = CsvSource(write_csv(tmp_path / "REV_x.csv", GOOD[::-1]), "TEST").candles
    assert list(out.columns) == list(CANDLE_COLUMNS)
    assert out["ts"].is_monotonic_increasing
    assert out["close"].tolist() == [r[4] for r in GOOD]
    assert out["symbol"].unique().tolist() == ["REV"]


def test_mixed_order_is_an_error_at_the_row_breaking_the_run(tmp_path):
    rows = GOOD[::-1]
    rows[1], rows[2] = rows[2], rows[1]  # newest-first except one swapped pair
    with pytest.raises(BadCandlesError) as err:
        CsvSource(write_csv(tmp_path / "MIX.csv", rows), "TEST").candles
    assert err.value.row == 3 and "out of order" in err.value.reason


def test_clean_copy_dtypes_and_utc():
    df = pd.DataFrame(GOOD, columns=["ts", "open", "high", "low", "close", "volume"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("Asia/Kolkata")  # aware input: converted
    df["symbol"] = "A"
    df["extra"] = 1
    out = validate_candles(df, "mem")
    assert list(out.columns) == list(CANDLE_COLUMNS)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    assert out["ts"].iloc[0] == pd.Timestamp("2023-12-31 18:30", tz="UTC")
    assert all(out[c].dtype == np.float64 for c in ("open", "high", "low", "close", "volume"))
    assert df["ts"].dt.tz is not None and "extra" in df  # input untouched


def test_order_is_per_symbol_in_long_frames():
    a = pd.DataFrame(GOOD, columns=["ts", "open", "high", "low", "close", "volume"]).assign(symbol="A")
    b = a.iloc[::-1].assign(symbol="B")  # B newest-first, interleaved with A
    mixed = pd.concat([a, b]).sort_index(kind="stable").reset_index(drop=True)
    out = validate_candles(mixed, "mem")
    assert out.groupby("symbol")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert len(out) == 10


def test_rows_argument_maps_messages_to_file_rows():
    df = pd.DataFrame(GOOD, columns=["ts", "open", "high", "low", "close", "volume"]).assign(symbol="A")
    df.loc[2, "low"] = -1.0
    with pytest.raises(BadCandlesError) as err:
        validate_candles(df, "f.csv", rows=np.array([10, 11, 13, 14, 15]))
    assert err.value.row == 13


def test_missing_column_has_no_row():
    with pytest.raises(BadCandlesError) as err:
        validate_candles(pd.DataFrame({"ts": [], "symbol": []}), "x")
    assert err.value.row is None and "missing columns" in err.value.reason


def test_timeframes_round_trip():
    assert timeframe_delta("4h") == pd.Timedelta(hours=4)
    assert [timeframe_of(timeframe_delta(t)) for t in ("1m", "15m", "1h", "1d", "1w")] == [
        "1m",
        "15m",
        "1h",
        "1d",
        "1w",
    ]
    with pytest.raises(ValueError):
        timeframe_delta("1M")
