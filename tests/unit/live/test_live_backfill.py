"""Backfill merge: venue bars fill what is missing and replace what is incomplete; never a duplicate."""

from __future__ import annotations

import pandas as pd

from workbench.live.backfill import backfill, backfill_start, merge_backfill

MIN = 60_000_000_000
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")


def _bars(rows, complete=None):
    df = pd.DataFrame(rows, columns=["m", "key", "close"])
    df["ts"] = [T0 + pd.Timedelta(minutes=m) for m in df["m"]]
    for c in ("open", "high", "low"):
        df[c] = df["close"]
    df["volume"] = 1.0
    df["complete"] = True if complete is None else complete
    return df[["ts", "key", "open", "high", "low", "close", "volume", "complete"]]


def test_merge_keeps_complete_live_replaces_incomplete_fills_missing():
    live = _bars([(0, "A", 1.0), (1, "A", 2.0), (3, "A", 4.0), (0, "B", 1.0)], complete=[True, False, True, True])
    venue = _bars([(0, "A", 9.0), (1, "A", 2.5), (2, "A", 3.0), (3, "A", 9.0), (4, "A", 5.0), (5, "A", 6.0)]).drop(
        columns="complete"
    )
    now = int((T0 + pd.Timedelta(minutes=5, seconds=30)).value)
    out, rep = merge_backfill(live, venue, timeframe="1m", now_ns=now)
    a = out[out["key"] == "A"]
    assert a["close"].tolist() == [1.0, 2.5, 3.0, 4.0, 5.0]  # minute 5 is still forming at now
    assert not out.duplicated(["key", "ts"]).any() and out["complete"].all()
    assert (rep.filled, rep.replaced, rep.still_incomplete, rep.ignored_forming) == (2, 1, 0, 1)


def test_backfill_start_and_call():
    live = _bars([(0, "A", 1.0), (2, "A", 2.0)], complete=[True, False])
    gap = (int((T0 + pd.Timedelta(minutes=1, seconds=20)).value), int((T0 + pd.Timedelta(minutes=2, seconds=5)).value))
    start = backfill_start(live, [gap], timeframe="1m")
    assert start == int((T0 + pd.Timedelta(minutes=1)).value)
    calls = []

    def history(keys, lo, hi):
        calls.append((keys, lo, hi))
        return _bars([(1, "A", 1.5), (2, "A", 2.5)]).drop(columns="complete")

    out, rep = backfill(
        live, ["A"], history, timeframe="1m", start_ns=start, now_ns=int((T0 + pd.Timedelta(minutes=3)).value)
    )
    assert out["close"].tolist() == [1.0, 1.5, 2.5] and rep.replaced == 1 and rep.filled == 1
    assert calls[0][1] == T0 + pd.Timedelta(minutes=1)
