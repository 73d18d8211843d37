"""Forming bars from ticks equal bars computed directly from the same ticks, whatever the batching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.live.bars import BarBuilder, bars_from_ticks, lake_frames
from workbench.live.ticks import CumulativeVolume, Ticks

MIN = 60_000_000_000
T0 = 1_750_000_020 * 10**9 - (1_750_000_020 * 10**9) % MIN  # a minute boundary


def _ticks(slot, price, size, ts) -> Ticks:
    n = len(slot)
    nan = np.full(n, np.nan)
    return Ticks(
        np.asarray(slot, "int64"),
        np.asarray(price, "float64"),
        np.asarray(size, "float64"),
        nan,
        nan,
        np.asarray(ts, "int64"),
    )


def _random(n: int, n_slots: int, minutes: int, seed: int = 0) -> Ticks:
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.integers(0, minutes * MIN, n))
    return _ticks(rng.integers(0, n_slots, n), 100 + rng.normal(size=n).cumsum() * 0.05, rng.random(n), ts)


def _run(builder: BarBuilder, t: Ticks, batch: int, end_ns: int) -> pd.DataFrame:
    out = [
        builder.ingest(
            _ticks(t.slot[i : i + batch], t.price[i : i + batch], t.size[i : i + batch], t.ts[i : i + batch])
        )
        for i in range(0, len(t), batch)
    ]
    out.append(builder.flush(end_ns))
    return pd.concat(out, ignore_index=True).sort_values(["key", "ts"], kind="stable").reset_index(drop=True)


def _ref(keys, t: Ticks) -> pd.DataFrame:
    return bars_from_ticks(keys, t, "1m").sort_values(["key", "ts"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(("batch", "n"), [(1, 1_500), (7, 5_000), (1000, 20_000), (100_000, 20_000)])
def test_bars_equal_direct_computation_for_any_batching(batch, n):
    keys = [f"binance:S{i}/USDT" for i in range(40)]
    t = _random(n, 40, 12)
    got = _run(BarBuilder(keys, "1m", lateness_s=1.0), t, batch, int(t.ts[-1]) + 10 * MIN)
    ref = _ref(keys, t)
    assert len(got) == len(ref) > 300
    pd.testing.assert_frame_equal(got.drop(columns="complete"), ref)
    assert got["complete"].all()


def test_tick_exactly_on_boundary_opens_the_next_bar():
    keys = ["NSE:A"]
    t = _ticks([0, 0, 0], [10.0, 11.0, 12.0], [1, 1, 1], [T0 + MIN - 1, T0 + MIN, T0 + MIN + 5])
    got = _run(BarBuilder(keys, "1m", 0.0), t, 10, T0 + 5 * MIN)
    assert list(got["ts"].astype("int64")) == [T0, T0 + MIN]
    assert list(got["close"]) == [10.0, 12.0] and list(got["open"]) == [10.0, 11.0]


def test_gap_without_ticks_gives_no_bar_and_quiet_bars_close_by_the_clock():
    keys = ["NSE:A", "NSE:B"]
    b = BarBuilder(keys, "1m", 1.0)
    assert b.ingest(_ticks([0, 1], [10.0, 20.0], [1, 1], [T0 + 1, T0 + 2])).empty
    closed = b.ingest(_ticks([0], [11.0], [1], [T0 + 5 * MIN + 3 * 10**9]))  # A jumps 5 minutes: no bars between
    assert list(closed["key"]) == ["NSE:A", "NSE:B"] and list(closed["ts"].astype("int64")) == [T0, T0]
    assert b.flush(T0 + 6 * MIN).empty  # within lateness of A's bar end
    last = b.flush(T0 + 6 * MIN + 10**9)
    assert list(last["ts"].astype("int64")) == [T0 + 5 * MIN]


def test_out_of_order_ticks_within_lateness_give_the_same_bars():
    keys = [f"NSE:S{i}" for i in range(10)]
    t = _random(5_000, 10, 6, seed=3)
    rng = np.random.default_rng(4)
    jitter = rng.integers(0, 2 * 10**9, len(t))  # arrival up to 2 s late
    order = np.argsort(t.ts + jitter, kind="stable")
    shuffled = _ticks(t.slot[order], t.price[order], t.size[order], t.ts[order])
    got = _run(BarBuilder(keys, "1m", lateness_s=3.0), shuffled, 50, int(t.ts.max()) + 10 * MIN)
    ref = _ref(keys, _ticks(*(np.asarray(a)[np.argsort(t.ts, kind="stable")] for a in (t.slot, t.price, t.size, t.ts))))
    pd.testing.assert_frame_equal(got.drop(columns="complete"), ref)


def test_tick_later_than_lateness_is_dropped_and_counted():
    b = BarBuilder(["NSE:A"], "1m", 1.0)
    b.ingest(_ticks([0, 0], [10.0, 11.0], [1, 1], [T0 + 1, T0 + MIN + 2 * 10**9]))  # closes bar T0
    late = b.ingest(_ticks([0], [99.0], [5], [T0 + 30 * 10**9]))
    assert late.empty and b.late == 1
    rest = b.flush(T0 + 10 * MIN)
    assert list(rest["high"]) == [11.0]


def test_repeated_tickers_are_idempotent_through_cumulative_volume():
    keys = ["kite:A", "kite:B"]
    t = _random(2_000, 2, 4, seed=7)
    totals = np.zeros(len(t))
    for s in (0, 1):
        m = t.slot == s
        totals[m] = 1000 + np.cumsum(t.size[m])
    idx = np.repeat(np.arange(len(t)), 2)  # every ticker delivered twice
    cv = CumulativeVolume(2)
    sizes = cv.sizes(t.slot[idx], totals[idx])
    got = _run(
        BarBuilder(keys, "1m", 0.5), _ticks(t.slot[idx], t.price[idx], sizes, t.ts[idx]), 64, int(t.ts[-1]) + 5 * MIN
    )
    ref_sizes = np.nan_to_num(CumulativeVolume(2).sizes(t.slot, totals))
    ref = _ref(keys, _ticks(t.slot, t.price, ref_sizes, t.ts))
    pd.testing.assert_frame_equal(got.drop(columns="complete"), ref)
    # the first ticker of each slot has no volume before it: that bar alone is incomplete
    first_bar = got.groupby("key")["ts"].transform("min") == got["ts"]
    assert (got["complete"] == ~first_bar).all()


def test_cumulative_volume_restart_and_zero():
    np.testing.assert_array_equal(
        CumulativeVolume(1, "restart").sizes(np.array([0, 0, 0]), np.array([100.0, 130.0, 20.0])), [np.nan, 30, 20]
    )
    np.testing.assert_array_equal(
        CumulativeVolume(1, "zero").sizes(np.array([0, 0, 0]), np.array([100.0, 130.0, 20.0])), [np.nan, 30, 0]
    )


def test_gap_marks_overlapping_bars_incomplete():
    b = BarBuilder(["NSE:A"], "1m", 0.0)
    b.ingest(_ticks([0], [10.0], [1], [T0 + 1]))
    b.mark_gap(T0 + 30 * 10**9, T0 + MIN + 20 * 10**9)
    first = b.ingest(_ticks([0, 0], [11.0, 12.0], [1, 1], [T0 + MIN + 25 * 10**9, T0 + 2 * MIN + 1]))
    got = pd.concat([first, b.flush(T0 + 10 * MIN)])
    assert list(got["complete"]) == [False, False, True]


def test_lake_frames_split_by_exchange():
    b = BarBuilder(["NSE:A", "binance:BTC/USDT"], "1m", 0.0)
    b.ingest(_ticks([0, 1], [10.0, 20.0], [1, 2], [T0 + 1, T0 + 2]))
    frames = lake_frames(b.flush(T0 + 2 * MIN))
    assert set(frames) == {"NSE", "binance"}
    assert list(frames["binance"].columns) == ["ts", "symbol", "open", "high", "low", "close", "volume"]
    assert frames["binance"]["symbol"].tolist() == ["BTC/USDT"]
