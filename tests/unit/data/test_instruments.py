"""The instrument master on the real published lists in shared/data/instruments."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from workbench.errors import InstrumentListError, UnknownSymbolError
from workbench.instruments import InstrumentMaster, load_nasdaqlisted, refresh, split_key


@pytest.fixture(scope="module")
def master(shared_data, tmp_path_factory) -> InstrumentMaster:
    m = InstrumentMaster(tmp_path_factory.mktemp("master") / "instruments.parquet")
    refresh(m, "all", shared_data / "instruments")
    return m


def test_counts_per_exchange_match_the_files(master):
    c = master.counts()
    raw = master.raw()
    assert raw.groupby("source").size().to_dict() == {
        "nasdaqlisted": 4973, "otherlisted": 6606, "nse": 1971, "bse": 4456, "kite": 31373, "ccxt:binance": 2292,
    }  # fmt: skip
    assert c.loc["NASDAQ", ["instruments", "etfs", "test_issues"]].tolist() == [4973, 914, 8]
    assert {ex: int(c.loc[ex, "instruments"]) for ex in ("NYSE", "ARCA", "BATS", "AMEX", "IEX", "CHX")} == {
        "NYSE": 2892, "ARCA": 2391, "BATS": 1007, "AMEX": 312, "IEX": 3, "CHX": 1,
    }  # fmt: skip
    assert c.loc["BSE", "instruments"] == 4456 and c.loc["NFO", "instruments"] == 31010
    assert c.loc["NSE", "instruments"] == 1972  # EQUITY_L's 1,971 + one NSE EQ only Kite lists
    assert c.loc["binance", ["instruments", "tradable", "inactive"]].tolist() == [2292, 1340, 952]
    t = master.table(tradable_only=True)
    cash = t[~t["exchange"].isin(["NFO"]) & ~t["is_etf"]]
    assert len(t) >= 5000 and len(cash) >= 5000  # even without derivatives and ETFs


def test_one_company_on_two_exchanges_shares_an_isin_and_gets_broker_ids(master):
    nse, bse = master.get("NSE:RELIANCE"), master.get("BSE:RELIANCE")
    assert nse["isin"] == bse["isin"] == "INE002A01018" and nse["key"] != bse["key"]
    assert nse["kite_token"] == 738561 and nse["source"] == "nse+kite" and nse["tick_size"] == 0.05
    assert bse["bse_code"] == "500325" and bse["currency"] == "INR"
    btc = master.get("binance:BTC/USDT")
    assert btc["ccxt_id"] == "BTCUSDT" and btc["min_notional"] == 5.0 and btc["lot_size"] == 1e-05 and btc["tradable"]
    assert master.get("NASDAQ:QQQ")["is_etf"] and master.get("NASDAQ:QQQ")["asset_class"] == "etf"
    with pytest.raises(UnknownSymbolError, match="NASDAQ:NOPE"):
        master.get("NASDAQ:NOPE")
    assert split_key("binance:BTC/USDT:USDT") == ("binance", "BTC/USDT:USDT")


def test_search_puts_exact_symbol_first(master):
    hits = master.search("reliance", limit=5)
    assert set(hits["key"].iloc[:2]) == {"NSE:RELIANCE", "BSE:RELIANCE"}
    assert master.search("AAPL", exchange="NASDAQ").loc[0, "key"] == "NASDAQ:AAPL"
    assert (master.search("", exchange="NSE", limit=None)["exchange"] == "NSE").all()


def test_test_issues_are_flagged_not_mixed_in(shared_data):
    df = load_nasdaqlisted(shared_data / "instruments" / "nasdaqlisted.txt")
    assert df["is_test"].sum() == 8 and df["as_of"].iloc[0] == pd.Timestamp("2025-07-21")


@pytest.mark.parametrize(
    "name,mangle,match",
    [
        ("nasdaqlisted.txt", lambda t: t[: t.rindex("File Creation")], "truncated"),
        ("nse_EQUITY_L.csv", lambda t: t[: len(t) // 2].rsplit(",", 3)[0], "row 98"),
        ("bse_Equity.csv", lambda t: "garbage\n", "missing columns"),
        ("binance_spot_exchangeInfo_2023-09-08.json", lambda t: t[:5000], "truncated"),
    ],
)
def test_a_broken_file_fails_clearly_and_keeps_the_master(shared_data, tmp_path, name, mangle, match):
    folder = tmp_path / "lists"
    shutil.copytree(shared_data / "instruments", folder)
    m = InstrumentMaster(tmp_path / "instruments.parquet")
    refresh(m, "all", folder)
    before = m.path.read_bytes()
    (folder / name).chmod(0o644)
    (folder / name).write_text(mangle((shared_data / "instruments" / name).read_text()))
    with pytest.raises(InstrumentListError, match=match) as err:
        refresh(m, "all", folder)
    assert name in str(err.value) and "not changed" in str(err.value)
    assert m.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
