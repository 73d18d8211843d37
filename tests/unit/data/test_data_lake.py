"""The parquet lake on real files: idempotent appends, aligned panels, helpful errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.data.lake import CATALOG_COLUMNS, Lake
from workbench.data.sources.csv_source import CsvSource
from workbench.errors import BadCandlesError, NoDataError, UnknownSymbolError


def bars(symbol: str, start: str, n: int, freq: str = "1D", base: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    close = base + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "ts": ts,
            "symbol": symbol,
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1000.0,
        }
    )


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path / "lake")


def test_write_is_idempotent_and_appends_only_new_rows(lake):
    assert lake.write(bars("BTC/USDT", "2024-01-01", 10), "binance", "1d", "test") == 10
    assert lake.write(bars("BTC/USDT", "2024-01-01", 10), "binance", "1d", "test") == 0
    assert lake.write(bars("BTC/USDT", "2024-01-06", 10), "binance", "1d", "test") == 5  # 5 overlap, 5 new
    stored = lake.load_candles("binance", "1d", ["BTC/USDT"])
    assert len(stored) == 15 and stored["ts"].is_unique and stored["ts"].is_monotonic_increasing
    assert lake.last_ts("binance", "1d", "BTC/USDT") == pd.Timestamp("2024-01-15", tz="UTC")
    assert lake.last_ts("binance", "1d", "ETH/USDT") is None
    path = lake.path("binance", "1d", "BTC/USDT")
    assert path.parent.name == "timeframe=1d" and path.name == "data.parquet"
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith("delta-")) == [
        ".lock",
        "data.parquet",
    ]  # no temp files


def test_stored_bars_win_over_revisions(lake):
    lake.write(bars("A", "2024-01-01", 3), "X", "1d", "first")
    revised = bars("A", "2024-01-01", 4)
    revised.loc[0, ["close", "high"]] = [500.0, 501.0]
    assert lake.write(revised, "X", "1d", "second") == 1
    got = lake.load_candles("X", "1d", ["A"])
    assert got["close"].tolist() == [100.0, 101.0, 102.0, 103.0]
    cat = lake.catalog()
    assert cat.loc[0, "source"] == "first,second" and cat.loc[0, "rows"] == 4


def test_write_validates(lake):
    bad = bars("A", "2024-01-01", 3)
    bad.loc[1, "low"] = 1000.0
    with pytest.raises(BadCandlesError) as err:
        lake.write(bad, "X", "1d", "test")
    assert err.value.row == 2
    assert lake.datasets() == []


def test_panel_aligns_symbols_with_different_histories(lake):
    lake.write(bars("A", "2024-01-01", 10), "X", "1d", "t")
    lake.write(
        pd.concat([bars("B", "2024-01-05", 10, base=50.0), bars("C", "2024-01-03", 2, base=7.0)]), "X", "1d", "t"
    )
    panel = lake.load_panel("X", "1d")
    assert panel.symbols == ["A", "B", "C"] and len(panel.index) == 14  # 2024-01-01 .. 2024-01-14
    assert str(panel.index.dtype) == "datetime64[ns, UTC]" and panel.index.name == "ts"
    assert np.isnan(panel.close.loc["2024-01-04", "B"]) and panel.close.loc["2024-01-05", "B"] == 50.0
    assert np.isnan(panel.close.loc["2024-01-11", "A"]) and panel.close.loc["2024-01-10", "A"] == 109.0
    assert panel.close["C"].notna().sum() == 2
    assert panel.volume.shape == panel.close.shape


def test_panel_symbol_order_and_date_filters(lake):
    lake.write(pd.concat([bars("A", "2024-01-01", 30), bars("B", "2024-01-01", 30)]), "X", "1d", "t")
    panel = lake.load_panel("X", "1d", ["B", "A"], start="2024-01-10", end=pd.Timestamp("2024-01-12", tz="UTC"))
    assert panel.symbols == ["B", "A"]
    assert panel.index.tolist() == list(pd.date_range("2024-01-10", "2024-01-12", tz="UTC"))
    assert panel.close.loc["2024-01-10", "A"] == 109.0
    with pytest.raises(NoDataError, match="Widen the dates"):
        lake.load_panel("X", "1d", ["A"], start="2030-01-01")


def test_unknown_symbol_and_no_data_messages(lake):
    with pytest.raises(NoDataError, match="workbench data pull") as err:
        lake.load_panel("binance", "1d")
    assert "holds: nothing" in str(err.value)
    lake.write(pd.concat([bars(s, "2024-01-01", 3) for s in "ABCDEFGHIJ"]), "X", "1d", "t")
    with pytest.raises(UnknownSymbolError) as err:
        lake.load_panel("X", "1d", ["A", "ZZZ"])
    msg = str(err.value)
    assert "'ZZZ'" in msg and "A, B, C" in msg and "(10 in all)" in msg and "workbench data pull --symbols ZZZ" in msg
    with pytest.raises(NoDataError, match="X/1d"):
        lake.load_panel("X", "1h")


def test_catalog_and_datasets(lake, shared_data):
    assert list(lake.catalog().columns) == list(CATALOG_COLUMNS) and lake.catalog().empty
    folder = shared_data / "nse/nifty50_daily_upstox_2020_2025"
    for name in ("TCS", "M&M", "JIOFIN"):
        src = CsvSource(next(folder.glob(f"{name}_*.csv")), "NSE")
        assert lake.write(src.candles, "NSE", "1d", src.name) == len(src.candles)
    lake.write(bars("BTC/USDT", "2024-01-01", 5), "binance", "4h", "ccxt:binance")
    assert lake.datasets() == [("NSE", "1d"), ("binance", "4h")]
    assert lake.symbols("NSE", "1d") == ["JIOFIN", "M&M", "TCS"]
    cat = lake.catalog().set_index("symbol")
    assert cat.loc["TCS", "rows"] == 1241 and cat.loc["M&M", "source"] == "csv:upstox"
    assert cat.loc["JIOFIN", "first"] == pd.Timestamp("2023-08-21", tz="UTC")
    assert cat.loc["BTC/USDT", "timeframe"] == "4h"
    panel = lake.load_panel("NSE", "1d")
    assert panel.close.shape == (1241, 3) and panel.close["JIOFIN"].isna().sum() == 1241 - cat.loc["JIOFIN", "rows"]


# ---- layout: one sorted file per dataset, deltas, compaction, the lock, migration ----------------

_APPENDER = """
import sys
import pandas as pd
from workbench.data.lake import Lake
lake, who, n = Lake(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for k in range(n):  # one bar per write, as a live refresh appends
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=k)
    bar = pd.DataFrame({"ts": [ts], "symbol": [who], "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1.0})
    assert lake.write(bar, "X", "1d", who) == 1
"""


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root, n = tmp_path / "lake", 60  # 120 writes: compactions (every few deltas) race with appends
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(root), who, str(n)], env=env) for who in ("A", "B")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lake = Lake(root)
    got = lake.load_candles("X", "1d")
    assert got.groupby("symbol").size().to_dict() == {"A": n, "B": n}
    assert not got.duplicated(["symbol", "ts"]).any()
    assert len(list(lake.path("X", "1d", "A").parent.glob("delta-*.parquet"))) < 32  # compacted as it went


def test_appends_are_compacted_into_one_sorted_file(lake):
    import pyarrow.parquet as pq

    lake.write(bars("B", "2024-01-01", 30), "X", "1d", "t")
    for k in range(40):  # each a small delta; compaction folds them in
        lake.write(
            bars("A", "2024-01-01", 1).assign(ts=pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=k)),
            "X",
            "1d",
            "t",
        )
    base = lake.path("X", "1d", "A")
    deltas = list(base.parent.glob("delta-*.parquet"))
    assert len(deltas) < 32
    table = pq.read_table(base).to_pandas()
    keys = list(zip(table["symbol"].astype(str), table["ts"]))
    assert keys == sorted(keys)  # the base is sorted by (symbol, ts)
    panel = lake.load_panel("X", "1d")
    assert panel.close["A"].notna().sum() == 40 and panel.close["B"].notna().sum() == 30


def test_a_per_symbol_lake_is_migrated_once(tmp_path):
    """Lakes written by earlier versions (one file per symbol) load as before and are folded into the
    one-file layout on first access; a bar stored twice (a crash mid-migration) is kept once."""
    lake = Lake(tmp_path)
    d = tmp_path / "ohlcv" / "exchange=X" / "timeframe=1d"
    for sym, n in (("A/USD", 5), ("B", 3)):
        f = bars(sym, "2024-01-01", n).assign(source="old")
        f["ts"] = f["ts"].astype("datetime64[us, UTC]")
        p = d / f"symbol={sym.replace('/', '%2F')}" / "data.parquet"
        p.parent.mkdir(parents=True)
        f.to_parquet(p, index=False)
    other = Lake(tmp_path / "other")  # a base that holds A/USD already: a migration cut short after its replace
    other.write(bars("A/USD", "2024-01-01", 5), "X", "1d", "old")
    import shutil

    shutil.copy(other.path("X", "1d", "A/USD"), d / "data.parquet")
    assert lake.write(bars("B", "2024-01-03", 1), "X", "1d", "new") == 0  # stored in B's old file already
    assert lake.datasets() == [("X", "1d")]
    assert lake.symbols("X", "1d") == ["A/USD", "B"]
    assert not list(d.glob("symbol=*"))  # migrated: the per-symbol directories are gone
    got = lake.load_candles("X", "1d")
    assert got.groupby("symbol").size().to_dict() == {"A/USD": 5, "B": 3}
    assert lake.catalog()["source"].tolist() == ["old", "old"]
    assert lake.last_ts("X", "1d", "A/USD") == pd.Timestamp("2024-01-05", tz="UTC")


def test_appends_fold_into_one_delta_and_keep_every_bar(lake):
    """A live refresh appends a bar at a time: the reads after it open the base and one delta,
    not one file per append (each file costs a scan tens of ms), and no bar is lost or doubled."""
    many = [bars(f"S{i}", "2015-01-01", 2000) for i in range(30)]
    lake.write(pd.concat(many, ignore_index=True), "X", "1d", "t")
    base = lake.path("X", "1d", "S0")
    base_mtime = base.stat().st_mtime_ns
    for k in range(12):
        new = [b.iloc[-1:].assign(ts=b["ts"].iloc[-1] + pd.Timedelta(days=k + 1)) for b in many[: 5 + k % 3]]
        lake.write(pd.concat(new, ignore_index=True), "X", "1d", "t")
    assert base.stat().st_mtime_ns == base_mtime  # small appends: no compaction yet
    assert len(list(base.parent.glob("delta-*.parquet"))) == 1
    got = lake.load_candles("X", "1d")
    assert not got.duplicated(["symbol", "ts"]).any()
    assert len(got) == 30 * 2000 + sum(5 + k % 3 for k in range(12))
    panel = lake.load_panel("X", "1d")
    assert panel.close["S0"].notna().sum() == 2012 and panel.close["S29"].notna().sum() == 2000


def test_a_complete_panel_is_placed_as_the_general_path_would_and_stays_writable(lake):
    """A panel with every bar (the fast path: the scanned values already are the array) gives the
    frames of the general placement, which a user may edit; a panel with one bar missing still has
    its NaN where the bar is missing."""
    lake.write(pd.concat([bars(s, "2024-01-01", 12, base=10.0 * (i + 1)) for i, s in enumerate("ABC")]), "X", "1d", "t")
    frames = lake.load_panel_for(["X:A", "X:B", "X:C"], "1d", fields=("close", "volume"))
    want = pd.concat([bars(s, "2024-01-01", 12, base=10.0 * (i + 1)) for i, s in enumerate("ABC")])
    want = want.pivot(index="ts", columns="symbol", values="close")
    assert np.array_equal(frames["close"].to_numpy(), want.to_numpy())
    assert list(frames["close"].columns) == ["X:A", "X:B", "X:C"] and (frames["volume"].to_numpy() == 1000.0).all()
    frames["close"].iloc[0, 0] = -1.0  # the user's own copy: no read-only Arrow buffer underneath
    assert frames["close"].iloc[0, 0] == -1.0
    again = lake.load_panel_for(["X:C", "X:A"], "1d")["close"]  # another column order: general path
    assert np.array_equal(again.to_numpy(), want[["C", "A"]].to_numpy())
    lake.write(bars("D", "2024-01-02", 11, base=5.0), "X", "1d", "t")
    holey = lake.load_panel_for(["X:A", "X:B", "X:C", "X:D"], "1d")["close"]
    assert (
        np.isnan(holey.iloc[0, 3])
        and holey.iloc[1, 3] == 5.0
        and np.array_equal(holey.iloc[:, :3].to_numpy(), want.to_numpy())
    )
