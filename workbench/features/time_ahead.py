"""The time features of the live loop's bar, computed for the next bars at once and looked up after.

Why: ``timefeatures.time_features`` of one timestamp costs ~0.8 ms (pandas' time-zone conversion and
field access cost that much for any short index), as much as everything else in the one-bar v2 update
outside its per-instrument pass. The next bar is almost always this one plus one timeframe, so one
call covers the next ``AHEAD`` bars (as long as one call of one) and each later bar finds its row.
The values are ``time_features``' own: it works timestamp by timestamp, so a timestamp's row does not
depend on the others in the call (a batch build computes them all in one call, too); tested equal bit
for bit to the one-timestamp call. A bar off the grid (a gap, a weekend, a new clock) computes afresh.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.features.timefeatures import SessionClock, time_features

__all__ = ["AHEAD", "time_row"]

AHEAD = 64  # bars computed per call: the 64-timestamp call costs about what a 1-timestamp call does
_KEY = "time_ahead"


def time_row(
    kept: dict[str, Any], index: pd.DatetimeIndex, clock: SessionClock, timeframe: str
) -> dict[str, np.ndarray]:
    """``time_features(index, clock, timeframe)`` for a one-timestamp ``index``, from the rows kept in
    ``kept`` (a stream state's ``extra``) when an earlier call computed them ahead with this clock."""
    if len(index) != 1:
        return time_features(index, clock, timeframe)
    ts = pd.Timestamp(index[0])
    ahead = kept.get(_KEY)
    if ahead is not None and ahead[0] is clock and ahead[1] == timeframe and ahead[2] == str(ts.tz):
        k = ahead[3].get(ts.value)
        if k is not None:
            return {name: values[k : k + 1] for name, values in ahead[4].items()}
    grid = pd.date_range(ts, periods=AHEAD, freq=timeframe_delta(timeframe), name=index.name)
    grid = grid[grid <= clock.end] if len(grid) > 1 else grid
    rows = time_features(grid, clock, timeframe)
    kept[_KEY] = (clock, timeframe, str(ts.tz), {int(t): k for k, t in enumerate(grid.as_unit("ns").asi8)}, rows)
    return {name: values[:1] for name, values in rows.items()}
