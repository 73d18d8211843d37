"""CcxtSource with a real ccxt.binance client talking HTTP to the local FakeBinance server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kit.fake_binance import FakeBinance
from workbench.data.demo import ensure_demo_data
from workbench.data.ingest import pull
from workbench.data.lake import Lake
from workbench.errors import DataError, SourceUnavailableError, TemporaryError, UnknownSymbolError
from workbench.venues.ccxt.data import CcxtSource

DAY = pd.Timedelta(days=1)


def daily(n: int, end: pd.Timestamp) -> pd.DataFrame:
    ts = pd.date_range(end=end, periods=n, freq="1D", tz="UTC")
    close = 100 + np.sin(np.arange(n) / 9.0) * 10 + np.arange(n) * 0.01
    return pd.DataFrame(
        {
            "ts": ts,
            "open": close - 0.2,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 10.0 + np.arange(n),
        }
    )


@pytest.fixture
def fake():
    with FakeBinance() as server:
        yield server


@pytest.fixture
def source(fake) -> CcxtSource:
    return CcxtSource("binance", config=fake.ccxt_config())


def test_paginated_fetch_returns_every_bar_once_in_order(fake, source):
    today = pd.Timestamp.now(tz="UTC").floor("D")
    bars = daily(1201, today)  # the last one (today) is still open
    fake.set_candles("BTC/USDT", bars)
    got = source.fetch("BTC/USDT", "1d", since=bars["ts"].iloc[0])
    assert len(got) == 1200 and got["ts"].is_unique and got["ts"].is_monotonic_increasing
    assert got["ts"].iloc[0] == bars["ts"].iloc[0] and got["ts"].iloc[-1] == today - DAY  # open bar dropped
    np.testing.assert_allclose(got["close"].to_numpy(), bars["close"].to_numpy()[:-1])
    pages = fake.klines_requests()
    assert len(pages) == 3 and all(p["symbol"] == "BTCUSDT" and p["interval"] == "1d" for p in pages)  # 500+500+201
    assert [int(p["startTime"]) for p in pages][1] == int(bars["ts"].iloc[500].value // 10**6)


def test_until_bounds_the_pull(fake, source):
    bars = daily(1200, pd.Timestamp("2024-12-31", tz="UTC"))
    fake.set_candles("ETH/USDT", bars)
    got = source.fetch("ETH/USDT", "1d", since=bars["ts"].iloc[100], until=bars["ts"].iloc[699])
    assert len(got) == 600 and got["ts"].iloc[-1] == bars["ts"].iloc[699]
    assert len(fake.klines_requests()) == 2


def test_pull_resumes_and_fetches_only_new_bars(tmp_path, fake, source):
    lake = Lake(tmp_path / "lake")
    today = pd.Timestamp.now(tz="UTC").floor("D")
    bars = daily(801, today)
    fake.set_candles("BTC/USDT", bars.iloc[:700])  # the exchange knew 700 bars then
    first = pull(lake, source, ["BTC/USDT"], "1d", since=bars["ts"].iloc[0], progress=False)
    assert first.new_rows == {"BTC/USDT": 700}
    fake.set_candles("BTC/USDT", bars)  # 100 closed bars later (+ today's open one)
    fake.requests.clear()
    second = pull(lake, source, ["BTC/USDT"], "1d", progress=False)
    assert second.new_rows == {"BTC/USDT": 100} and second.ok
    (first_page,) = fake.klines_requests()
    assert int(first_page["startTime"]) == int(bars["ts"].iloc[700].value // 10**6)  # last stored + 1 bar
    assert len(lake.load_candles("binance", "1d", ["BTC/USDT"])) == 800
    assert lake.catalog().loc[0, "source"] == "ccxt:binance"


def test_rate_limit_maps_to_a_temporary_error(fake, source):
    source.symbols()  # markets loaded: the 429 hits the candles request itself
    fake.fail_next(429)
    with pytest.raises(SourceUnavailableError, match="retry later") as err:
        source.fetch("BTC/USDT", "1h", since=pd.Timestamp("2024-01-01", tz="UTC"))
    assert isinstance(err.value, DataError) and isinstance(err.value, TemporaryError)
    assert type(err.value.__cause__).__module__.startswith("ccxt")
    fake.fail_next(503)
    with pytest.raises(SourceUnavailableError):
        source.fetch("BTC/USDT", "1h", since=pd.Timestamp("2024-01-01", tz="UTC"))
    # after the failures the same client works again
    assert (
        len(
            source.fetch(
                "BTC/USDT", "1h", since=pd.Timestamp("2024-01-01", tz="UTC"), until=pd.Timestamp("2024-01-02", tz="UTC")
            )
        )
        == 25
    )


def test_unknown_symbol(tmp_path, fake, source):
    with pytest.raises(UnknownSymbolError, match="DOGE/USDT"):
        source.fetch("DOGE/USDT", "1d")
    report = pull(Lake(tmp_path), source, ["DOGE/USDT", "ETH/BTC"], "1d", progress=False)
    # ETH/BTC: one default page of 500 (the exchange's latest bars) minus the still-open one
    assert list(report.errors) == ["DOGE/USDT"] and report.new_rows == {"ETH/BTC": 499}


def test_reachable_and_symbols(fake, source):
    assert source.reachable(1.0)
    assert "BTC/USDT" in source.symbols() and (source.name, source.exchange) == ("ccxt:binance", "binance")
    fake.fail_next(503)
    assert not source.reachable(1.0)


def test_real_exchange_info_snapshot_is_served(shared_data):
    with FakeBinance(exchange_info=shared_data / "instruments/binance_spot_exchangeInfo_2023-09-08.json") as fake:
        src = CcxtSource("binance", config=fake.ccxt_config())
        symbols = src.symbols()
        assert len(symbols) > 1000 and "BTC/USDT" in symbols
        assert (
            len(
                src.fetch(
                    "SOL/USDT",
                    "4h",
                    since=pd.Timestamp("2024-01-01", tz="UTC"),
                    until=pd.Timestamp("2024-01-02", tz="UTC"),
                )
            )
            == 7
        )


def test_demo_auto_pulls_real_candles_incrementally(tmp_path, fake, source):
    from workbench.config import load_settings

    settings = load_settings(tmp_path / "home", demo={"ccxt_timeframe": "1d"})
    uni = ensure_demo_data(settings, source="auto", ccxt_source=source)
    # the exchange's USDT pairs ranked by quote volume (the fake's follow price): ETH/BTC is not USDT-quoted
    assert not uni.synthetic and uni.exchange == "binance" and uni.symbols == settings.demo.ccxt_symbols
    assert uni.label == "binance public candles" and uni.source == "ccxt:binance"
    lake = Lake(settings.lake_dir)
    cat = lake.catalog()
    assert (cat["rows"] == settings.demo.bars).all() and len(cat) == 6
    fake.requests.clear()
    assert ensure_demo_data(settings, source="auto", ccxt_source=source) == uni
    assert all(len(lake.load_candles("binance", "1d", [s])) == settings.demo.bars for s in uni.symbols)
    starts = {int(q["startTime"]) for q in fake.klines_requests()}
    assert starts == {int(pd.Timestamp.now(tz="UTC").floor("D").value // 10**6)}  # only asked for what is new
    assert not [p for _, p, _ in fake.requests if p.endswith("/ticker/24hr")]  # the pairs chosen once are kept
