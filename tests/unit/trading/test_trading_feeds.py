"""The replay feed over a real parquet lake in a temp dir: windows, quotes, cursor, the end."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kit.models import synthetic_panel
from workbench.data.lake import Lake
from workbench.errors import NoDataError
from workbench.trading.feeds import MarketFeed, ReplayFeed, quotes_from_bar


@pytest.fixture
def lake(tmp_path):
    lk = Lake(tmp_path / "lake")
    lk.write(synthetic_panel(n_symbols=4, n_bars=60).to_long(), "TEST", "1d", "synthetic")
    return lk


def test_replays_the_last_bars_one_per_tick_with_warmup(lake):
    full = lake.load_panel("TEST", "1d")
    feed = ReplayFeed(lake, "TEST", "1d", None, warmup_bars=30, replay_bars=5)
    assert isinstance(feed, MarketFeed) and feed.steps == 5
    ticks = [feed.next() for _ in range(5)]
    assert [t.now for t in ticks] == list(full.index[-5:])
    assert [t.exhausted for t in ticks] == [False] * 4 + [True]
    for t in ticks:
        assert len(t.panel.index) == 30 and t.panel.index[-1] == t.now  # no look-ahead
    last = ticks[-1].quotes["S002"]
    assert (
        last.last == full.close["S002"].iloc[-1]
        and last.high == full.high["S002"].iloc[-1]
        and last.ts == full.index[-1]
    )
    with pytest.raises(NoDataError, match="replay is over"):
        feed.next()


def test_cursor_resumes_and_short_history_still_warms_up(lake):
    feed = ReplayFeed(lake, "TEST", "1d", ["S000", "S001"], warmup_bars=30, replay_bars=5, start_cursor=3)
    t = feed.next()
    assert t.panel.symbols == ["S000", "S001"] and feed.cursor == 4 and feed.remaining == 1
    # Asking to replay more bars than exist beyond the warm-up: the replay starts once warm-up is there.
    long = ReplayFeed(lake, "TEST", "1d", None, warmup_bars=30, replay_bars=500)
    assert long.steps == 60 - 29
    assert len(long.next().panel.index) == 30


def test_quotes_skip_symbols_without_a_bar():
    p = synthetic_panel(n_symbols=3, n_bars=5)
    close = p.close.copy()
    close.iloc[-1, 1] = np.nan
    p2 = type(p)(open=p.open, high=p.high, low=p.low, close=close, volume=p.volume, exchange="T", timeframe="1d")
    assert sorted(quotes_from_bar(p2)) == ["S000", "S002"]


def test_a_quote_s_missing_bar_fields_are_none_and_the_rest_plain_floats():
    p = synthetic_panel(n_symbols=3, n_bars=5)
    high, vol = p.high.copy(), p.volume.copy()
    high.iloc[-1, 0], vol.iloc[-1, 2] = np.nan, np.inf
    p2 = type(p)(open=p.open, high=high, low=p.low, close=p.close, volume=vol, exchange="T", timeframe="1d")
    q = quotes_from_bar(p2)
    assert q["S000"].high is None and q["S002"].volume is None and q["S001"].symbol == "S001"
    assert q["S000"].low == float(p.low.iloc[-1, 0]) and type(q["S001"].high) is float
    assert q["S001"].last == float(p.close.iloc[-1, 1]) and q["S001"].ts == p.index[-1]


def test_live_feed_refreshes_the_lake_then_reads_it(tmp_path):
    from workbench.trading.feeds import CcxtLiveFeed

    lake = Lake(tmp_path / "lake")
    panel = synthetic_panel(n_symbols=2, n_bars=40)
    long = panel.to_long()
    batches = iter([long[long["ts"] <= panel.index[30]], long])
    pulls = []

    def refresh():
        pulls.append(lake.write(next(batches), "TEST", "1d", "test"))

    feed = CcxtLiveFeed(None, lake, "TEST", "1d", ["S000", "S001"], warmup_bars=10, refresh=refresh)
    t1, t2 = feed.next(), feed.next()
    assert pulls == [62, 18]
    assert t1.panel.index[-1] == panel.index[30] and t2.panel.index[-1] == panel.index[-1] and len(t2.panel.index) == 10
    assert t2.quotes["S001"].last == panel.close["S001"].iloc[-1] and not t2.exhausted
