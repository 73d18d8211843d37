"""pull(): resumes per symbol, records failures without stopping; the demo universe is idempotent."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.data.demo import SYNTHETIC_LABEL, DemoUniverse, demo_universe_in_lake, ensure_demo_data
from workbench.data.ingest import PullReport, pull
from workbench.data.lake import Lake
from workbench.data.sources.base import OhlcvSource
from workbench.data.sources.synthetic import SyntheticSource
from workbench.venues.ccxt.data import CcxtSource

END = pd.Timestamp("2025-06-01", tz="UTC")


class Recording:
    """Wraps a source and records each fetch's arguments (a real source underneath)."""

    def __init__(self, inner):
        self.inner, self.name, self.exchange, self.calls = inner, inner.name, inner.exchange, []

    def symbols(self):
        return self.inner.symbols()

    def fetch(self, symbol, timeframe, since=None, until=None):
        self.calls.append((symbol, since))
        return self.inner.fetch(symbol, timeframe, since, until)


def test_pull_resumes_from_the_last_stored_bar(tmp_path):
    lake = Lake(tmp_path)
    short = SyntheticSource(["A", "B"], seed=1, bars=100, end=END - pd.Timedelta(days=20))
    first = pull(lake, short, ["A", "B"], "1d", progress=False)
    assert first == PullReport("synthetic", "1d", {"A": 100, "B": 100}, {})
    src = Recording(SyntheticSource(["A", "B"], seed=1, bars=100, end=END))
    assert isinstance(src, OhlcvSource)
    second = pull(lake, src, ["A", "B"], "1d", progress=False)
    assert second.new_rows == {"A": 20, "B": 20} and second.total_new == 40 and second.ok
    assert src.calls == [(s, END - pd.Timedelta(days=20)) for s in ("A", "B")]  # last stored + 1 bar
    assert pull(lake, src, ["A", "B"], "1d", progress=False).new_rows == {"A": 0, "B": 0}
    stored = lake.load_candles("synthetic", "1d", ["A"])
    one_go = SyntheticSource(["A"], seed=1, bars=120, end=END).candles()
    pd.testing.assert_frame_equal(stored, one_go)  # resumed history is seamless


def test_one_failing_symbol_does_not_stop_the_others(tmp_path):
    lake = Lake(tmp_path)
    report = pull(lake, SyntheticSource(["A", "B"], bars=30, end=END), ["A", "NOPE", "B"], "1d", progress=False)
    assert report.new_rows == {"A": 30, "B": 30}
    assert list(report.errors) == ["NOPE"] and "NOPE" in report.errors["NOPE"]
    assert not report.ok and "1 failed" in report.summary()


def test_explicit_since_refetches_without_duplicates(tmp_path):
    lake = Lake(tmp_path)
    src = SyntheticSource(["A"], bars=50, end=END)
    pull(lake, src, ["A"], "1d", progress=False)
    again = pull(lake, src, ["A"], "1d", since=END - pd.Timedelta(days=30), progress=False)
    assert again.new_rows == {"A": 0} and len(lake.load_candles("synthetic", "1d")) == 50


def test_synthetic_demo_is_made_once(settings):
    assert demo_universe_in_lake(settings) is None
    uni = ensure_demo_data(settings, source="synthetic")
    assert uni == DemoUniverse("synthetic", "1d", tuple(settings.demo.synthetic_symbols), True, "synthetic")
    assert uni.label == SYNTHETIC_LABEL
    lake = Lake(settings.lake_dir)
    path = lake.path("synthetic", "1d", uni.symbols[0])
    stamp = path.stat().st_mtime_ns
    assert ensure_demo_data(settings, source="synthetic") == uni
    assert path.stat().st_mtime_ns == stamp  # not regenerated
    panel = lake.load_panel(uni.exchange, uni.timeframe, list(uni.symbols))
    assert (
        panel.close.shape == (settings.demo.bars, len(settings.demo.synthetic_symbols))
        and panel.close.notna().all().all()
    )
    assert demo_universe_in_lake(settings) == uni


def test_auto_falls_back_to_synthetic_when_the_exchange_is_unreachable(settings):
    dead = CcxtSource("binance", config={"urls": {"api": {"public": "http://127.0.0.1:9/api/v3"}}})
    assert dead.reachable(0.5) is False
    uni = ensure_demo_data(settings, source="auto", ccxt_source=dead)
    assert uni.synthetic and uni.exchange == "synthetic"


def test_ccxt_demo_label():
    assert DemoUniverse("binance", "1d", ("BTC/USDT",), False, "ccxt:binance").label == "binance public candles"


def test_bad_demo_source(settings):
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="yahoo"):
        ensure_demo_data(settings, source="yahoo")
