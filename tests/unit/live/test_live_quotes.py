"""The quote cache: latest wins by timestamp, stale quotes never reach a signal and are counted."""

from __future__ import annotations

import numpy as np

from workbench.live.quotes import QuoteCache, SlotMap
from workbench.live.ticks import TickBuffer

S = 10**9


def test_latest_wins_and_older_ticks_are_ignored():
    q = QuoteCache(["NSE:A", "NSE:B"], stale_after_s=30)
    buf = TickBuffer()
    buf.push([0, 0, 1], [10.0, 11.0, 20.0], 0.0, [9.9, np.nan, 19.9], [10.1, np.nan, 20.1], [100 * S, 101 * S, 100 * S])
    buf.push_one(0, 5.0, 0.0, np.nan, np.nan, 99 * S)  # older than the cached quote
    buf.push_one(7, 5.0, 0.0, np.nan, np.nan, 99 * S)  # not in the universe
    q.apply(buf.drain())
    assert q.last.tolist() == [11.0, 20.0]
    assert q.bid.tolist() == [9.9, 19.9]  # a tick without bid keeps the last bid
    assert q.ignored == 2


def test_stale_quotes_are_nan_to_signals_and_counted():
    q = QuoteCache(SlotMap(["NSE:A", "NSE:B", "NSE:C"]), stale_after_s=30)
    buf = TickBuffer()
    buf.push([0, 1], [10.0, 20.0], 0.0, np.nan, np.nan, [100 * S, 60 * S])
    q.apply(buf.drain())
    prices, stale = q.fresh_prices(now=120 * S)
    assert stale.tolist() == [False, True, True]  # B is 60 s old, C never quoted
    assert np.isnan(prices[1:]).all() and prices[0] == 10.0
    q.fresh_prices(now=120 * S)
    assert q.last_stale == 2 and q.stale_refused == 4
    snap = q.snapshot(now=120 * S)
    assert snap["stale"].tolist() == [False, True, True] and snap["age_s"].iloc[0] == 20.0


def test_buffer_keeps_arrival_order_between_frames_and_single_ticks():
    buf = TickBuffer()
    buf.push_one(0, 1.0, 0.0, np.nan, np.nan, 1)
    buf.push([1, 2], [2.0, 3.0], 0.0, np.nan, np.nan, 2)
    buf.push_one(3, 4.0, 0.0, np.nan, np.nan, 3)
    buf.gap(5, 6)
    t = buf.drain()
    assert t.slot.tolist() == [0, 1, 2, 3] and t.gaps == ((5, 6, None),)
    assert len(buf.drain()) == 0
