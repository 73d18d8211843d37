"""Kite, Alpaca and ccxt through their real client libraries, talking HTTP to local fake servers."""

from __future__ import annotations

import time

import ccxt
import numpy as np
import pandas as pd
import pytest
from alpaca.data.historical import StockHistoricalDataClient
from kiteconnect import KiteConnect

from tests.kit.fake_alpaca import FakeAlpaca
from tests.kit.fake_binance import FakeBinance
from tests.kit.fake_kite import FakeKite
from workbench.data.ingest import pull
from workbench.data.lake import Lake
from workbench.data.quotes import fetch_quotes
from workbench.instruments import InstrumentMaster, refresh
from workbench.venues.alpaca.data import AlpacaQuotes, AlpacaSource
from workbench.venues.ccxt.data import CcxtQuotes
from workbench.venues.kite.data import KiteQuotes, KiteSource
from workbench.venues.kite.instruments import load_kite


def daily(dates, base=100.0):
    close = base + np.sin(np.arange(len(dates)) / 7.0) * 5
    return pd.DataFrame(
        {"ts": dates, "open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1000.0}
    )


def kite_client(fake) -> KiteConnect:
    return KiteConnect(api_key="test", access_token="token", root=fake.url)


def test_kite_instruments_and_chunked_history_resume(tmp_path):
    with FakeKite() as fake:
        kite = kite_client(fake)
        rows = load_kite(kite=kite)
        assert rows["key"].tolist() == ["NSE:RELIANCE", "NSE:TCS"] and rows["kite_token"].tolist() == [738561, 2953217]
        master = InstrumentMaster(tmp_path / "i.parquet")
        refresh(master, "kite", loaders={"kite": lambda _: rows})
        dates = pd.date_range("2017-01-02", "2025-01-10", freq="B")
        fake.set_candles(738561, daily(dates.tz_localize("Asia/Kolkata")))
        src = KiteSource.from_master(kite, master, "NSE", per_second=1000)
        lake = Lake(tmp_path / "lake")
        report = pull(lake, src, ["RELIANCE"], "1d", since=pd.Timestamp("2017-01-01", tz="UTC"), progress=False)
        assert report.ok and report.new_rows == {"RELIANCE": len(dates)}
        calls = [p for m, p, q in fake.requests if p.startswith("/instruments/historical")]
        assert len(calls) == 2  # 8 years of days in 2000-day chunks
        stored = lake.load_candles("NSE", "1d", ["RELIANCE"])
        assert stored["ts"].iloc[0] == pd.Timestamp("2017-01-02", tz="UTC")  # session date at 00:00 UTC
        fake.requests.clear()
        again = pull(lake, src, ["RELIANCE"], "1d", progress=False)
        assert again.new_rows == {"RELIANCE": 0}
        first = next(q for m, p, q in fake.requests if p.startswith("/instruments/historical"))
        assert first["from"][0].startswith("2025-01-11")  # resumed after the last stored bar
        minute = KiteSource(kite, "NSE", {"TCS": 2953217}, per_second=1000)
        fake.set_candles(2953217, daily(pd.date_range("2024-01-01 09:15", periods=3, freq="1min", tz="Asia/Kolkata")))
        got = minute.fetch(
            "TCS", "1m", since=pd.Timestamp("2023-10-01", tz="UTC"), until=pd.Timestamp("2024-01-02", tz="UTC")
        )
        assert len(got) == 3 and got["ts"].iloc[0] == pd.Timestamp("2024-01-01 03:45", tz="UTC")
        assert (
            sum(p.startswith("/instruments/historical/2953217/minute") for m, p, q in fake.requests) == 2
        )  # 60-day chunks


def test_alpaca_bars_paged_and_quarantined(tmp_path):
    with FakeAlpaca(page_size=200) as fake:
        client = StockHistoricalDataClient("key", "secret", raw_data=True, url_override=fake.url)
        dates = pd.date_range("2023-01-03", periods=450, freq="B", tz="America/New_York").tz_convert("UTC")
        bars = daily(dates)
        bars.loc[100, "low"] = -1.0
        fake.set_bars("AAPL", bars)
        src = AlpacaSource(client, exchange="NASDAQ", per_second=1000)
        lake = Lake(tmp_path)
        report = pull(lake, src, ["AAPL"], "1d", since=pd.Timestamp("2023-01-01", tz="UTC"), progress=False)
        assert report.new_rows == {"AAPL": 449} and report.quarantined == {"AAPL": 1}
        assert (
            len([1 for m, p, q in fake.requests if p == "/v2/stocks/bars"]) == 3
        )  # the client followed next_page_token
        stored = lake.load_candles("NASDAQ", "1d", ["AAPL"])
        assert stored["ts"].iloc[0] == pd.Timestamp("2023-01-03", tz="UTC")
        assert lake.quarantined("NASDAQ").loc[0, "reason"] == "non-positive low"


def test_fetch_quotes_batches_and_isolates_a_slow_source():
    syms = [f"S{i:04d}" for i in range(1200)]
    with FakeBinance() as binance, FakeKite(delay_s=0.0) as kite_fake, FakeAlpaca(delay_s=2.0) as slow:
        ex = ccxt.binance(binance.ccxt_config())
        kite = kite_client(kite_fake)
        alpaca = StockHistoricalDataClient("k", "s", raw_data=True, url_override=slow.url)
        sources = [
            CcxtQuotes(ex, timeout_s=5),
            KiteQuotes(kite, timeout_s=5, per_second=1000),
            AlpacaQuotes(alpaca, timeout_s=0.5),
        ]
        keys = ["binance:BTC/USDT", "binance:ETH/USDT"] + [f"NSE:{s}" for s in syms] + ["NASDAQ:AAPL", "LSE:VOD"]
        t0 = time.monotonic()
        q = fetch_quotes(keys, sources)
        elapsed = time.monotonic() - t0
        assert elapsed < 1.9  # the 2 s Alpaca answer was not waited for
        assert q["key"].tolist() == keys
        nse = q[q["key"].str.startswith("NSE:")]
        assert nse["last"].notna().all() and (nse["ask"] > nse["bid"]).all() and not nse["stale"].any()
        assert np.allclose(nse["change_pct"], 2.0)
        assert sum(p == "/quote" for m, p, _ in kite_fake.requests) == 3  # 1200 keys, 500 a call
        btc = q.set_index("key").loc["binance:BTC/USDT"]
        assert btc["last"] > 0 and btc["change_pct"] == 2.0 and not btc["stale"]
        aapl = q.set_index("key").loc["NASDAQ:AAPL"]
        assert aapl["stale"] and "timed out" in aapl["error"]
        assert q.set_index("key").loc["LSE:VOD", "error"] == "no quote source for this exchange"


def test_alpaca_quotes_flag_stale_snapshots():
    with FakeAlpaca() as fake:
        fake.stale_symbols = {"MSFT"}
        client = StockHistoricalDataClient("k", "s", raw_data=True, url_override=fake.url)
        q = fetch_quotes(["NASDAQ:AAPL", "NASDAQ:MSFT"], [AlpacaQuotes(client)], stale_after_s=60).set_index("key")
        assert not q.loc["NASDAQ:AAPL", "stale"] and q.loc["NASDAQ:MSFT", "stale"]
        assert q.loc["NASDAQ:AAPL", "bid"] < q.loc["NASDAQ:AAPL", "ask"] and q.loc[
            "NASDAQ:AAPL", "change_pct"
        ] == pytest.approx(5.0)
