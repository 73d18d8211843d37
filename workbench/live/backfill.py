"""After a reconnect or a restart: merge the venue's OHLCV history into the bars built live.

The venue is the authority for bars the stream could not see whole. The rule, per (key, ts):
a *complete* live bar stays (research later sees exactly what live saw); a bar the venue reports
replaces an incomplete live bar (one that overlapped an outage) or fills a missing one; an
incomplete bar the venue does not report is kept, still flagged incomplete. Only closed bars are
taken from the venue (``ts + timeframe <= now``): the bar still forming is the builder's. The result
has exactly one row per (key, ts), sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.live.bars import BAR_COLUMNS

__all__ = ["BackfillReport", "merge_backfill", "backfill_start", "backfill"]

History = Callable[[Sequence[str], pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class BackfillReport:
    filled: int  # bars the live side did not have
    replaced: int  # incomplete live bars replaced by the venue's
    still_incomplete: int  # incomplete live bars the venue did not report
    ignored_forming: int  # venue rows for bars not closed yet at ``now``


def _tf_ns(timeframe: str | int) -> int:
    return int(timeframe) if isinstance(timeframe, int) else int(timeframe_delta(timeframe).value)


def merge_backfill(
    live: pd.DataFrame, history: pd.DataFrame, *, timeframe: str | int, now_ns: int
) -> tuple[pd.DataFrame, BackfillReport]:
    """Live bars (``BAR_COLUMNS``) + venue bars (ts, key, open..volume) → one bar per (key, ts)."""
    tf = _tf_ns(timeframe)
    hist = history.copy()
    hist["ts"] = pd.to_datetime(hist["ts"], utc=True).astype("datetime64[ns, UTC]")
    closed = (hist["ts"].astype("int64").to_numpy() + tf) <= int(now_ns)
    ignored = int((~closed).sum())
    hist = hist[closed].assign(complete=True, _prio=1)
    lv = live.copy()
    lv["ts"] = pd.to_datetime(lv["ts"], utc=True).astype("datetime64[ns, UTC]")
    lv["_prio"] = np.where(lv["complete"].to_numpy(dtype=bool), 0, 2)
    both = pd.concat([lv[[*BAR_COLUMNS, "_prio"]], hist[[*BAR_COLUMNS, "_prio"]]], ignore_index=True)
    both = both.sort_values(["key", "ts", "_prio"], kind="stable")
    first = ~both.duplicated(["key", "ts"], keep="first")
    kept = both[first]
    live_pairs = pd.MultiIndex.from_frame(lv[["key", "ts"]])
    from_hist = kept[kept["_prio"] == 1]
    had = pd.MultiIndex.from_frame(from_hist[["key", "ts"]]).isin(live_pairs)
    report = BackfillReport(
        filled=int((~had).sum()),
        replaced=int(had.sum()),
        still_incomplete=int((kept["_prio"] == 2).sum()),
        ignored_forming=ignored,
    )
    out = kept.drop(columns="_prio").reset_index(drop=True)
    out["complete"] = out["complete"].astype(bool)
    return out, report


def backfill_start(
    live: pd.DataFrame, gaps: Sequence[tuple[int, int]], *, timeframe: str | int, last_stored_ns: int | None = None
) -> int:
    """Where the venue history must start (ns, on a bar boundary): the earliest incomplete bar, outage or,
    after a restart, the bar after the last one stored in the lake."""
    tf = _tf_ns(timeframe)
    cands = [lo for lo, _ in gaps]
    if not live.empty and (~live["complete"].astype(bool)).any():
        cands.append(
            int(live.loc[~live["complete"].astype(bool), "ts"].astype("datetime64[ns, UTC]").astype("int64").min())
        )
    if last_stored_ns is not None:
        cands.append(int(last_stored_ns) + tf)
    if not cands:
        return -1
    t = min(cands)
    return t - t % tf


def backfill(
    live: pd.DataFrame, keys: Sequence[str], history: History, *, timeframe: str | int, start_ns: int, now_ns: int
) -> tuple[pd.DataFrame, BackfillReport]:
    """Fetch the venue's bars of ``keys`` from ``start_ns`` to ``now_ns`` through ``history`` and merge them."""
    if start_ns < 0 or not len(keys):
        return live.reset_index(drop=True), BackfillReport(0, 0, int((~live["complete"].astype(bool)).sum()), 0)
    hist = history(list(keys), pd.Timestamp(start_ns, tz="UTC"), pd.Timestamp(now_ns, tz="UTC"))
    return merge_backfill(live, hist, timeframe=timeframe, now_ns=now_ns)
