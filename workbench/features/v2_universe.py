"""A change of universe under feature set v2 without a full warm-up.

Why it can be done: v2's state is per instrument (the rows of ``fused.V2State``) except for what the
universe shares. The cross-sectional ranks are read row by row and keep no state. The beta/corr
benchmark is BTC when the universe holds it, else the universe's equal-weight average return. Its
state keeps only the last 60 bars where the instrument's and the benchmark's returns are both valid.
So a newcomer is warmed up alone for its own indicators, and the beta/corr state is replayed over
the history window with the new universe's benchmark. That is done for the newcomers only while
the benchmark is the same instrument. It is done for everyone when the benchmark is the average
(a changed universe changes it) or another instrument. With 60 valid bars inside the window, this
equals a full recomputation (to rounding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench.features import fused as F
from workbench.features import kernels as K
from workbench.features.sets import V2_COLUMNS, Bars, benchmark_returns, cross_section
from workbench.features.streams import StreamState

__all__ = ["close_returns", "v2_arrays", "replay_pairs", "cross_section_row", "PAIR_WINDOW"]

PAIR_WINDOW = 60  # the beta/corr window ``sets.v2_stream`` gives ``fused.pair_k``
_POS = {name: i for i, name in enumerate(V2_COLUMNS)}


def close_returns(close: np.ndarray) -> np.ndarray:
    """``ret_1`` as ``fused.series_k`` makes it from a fresh state: each finite close over the previous
    finite close, minus one (NaN where the ratio is not finite or the previous close is not > 0)."""
    c = np.where(np.isfinite(close), close, np.nan)
    prev = pd.DataFrame(c).ffill().shift(1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = c / prev
        return np.where(np.isfinite(r) & (prev > 0), r, np.nan) - 1.0


def v2_arrays(state: StreamState) -> tuple[np.ndarray, ...]:
    """The fused v2 state's per-instrument arrays (s, rings, pair, pair_rings) held in ``state``."""
    for key, arrays in state._slots:
        if key and key[0] == "v2-fused":
            return arrays
    raise ValueError("the stream state holds no fused v2 state")


def replay_pairs(
    state: StreamState,
    close: np.ndarray,
    index: pd.DatetimeIndex,
    symbols: Sequence[str],
    exchange: str,
    timeframe: str,
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild the beta/corr state of instruments ``rows`` from ``close`` (time × every instrument of the
    universe, ``symbols`` order): their returns against the universe's benchmark over the window.
    Returns (beta, corr) at the window's last bar for those rows."""
    r1 = close_returns(close)
    b = Bars(close, close, close, close, close, index, tuple(symbols), exchange, timeframe)
    bench = np.ascontiguousarray(benchmark_returns(r1, b), dtype=np.float64)
    x = np.ascontiguousarray(r1[:, rows])
    pair = np.zeros((len(rows), F.N_PAIR))
    rings = np.zeros((len(rows), 2, F.RING))
    beta, corr = np.empty_like(x), np.empty_like(x)
    K.run(F.pair_k, x.size, x, bench, PAIR_WINDOW, pair, rings, beta, corr)
    _, _, p, pr = v2_arrays(state)
    p[rows] = pair
    pr[rows] = rings
    return beta[-1], corr[-1]


def cross_section_row(last: np.ndarray) -> None:
    """Recompute, in place, the cross-sectional columns of one v2 feature row block (instrument ×
    column) from its own columns, with ``v2_stream``'s own step (``sets.cross_section``)."""
    block = np.ascontiguousarray(last.T[:, None, :])
    cross_section(block)
    last[:, _CROSS] = block[_CROSS, 0].T


_CROSS = np.array([_POS[name] for name in F.CROSS], dtype=np.int64)
