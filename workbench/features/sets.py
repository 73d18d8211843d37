"""Feature sets written as streams: ``builder(state, bars) -> {name: (time × instrument) array}``.

Why streams: run over a whole history with a fresh ``StreamState`` they give the batch features;
run over one new row with the state kept from the last cycle they give the newest row of that
batch (``incremental.IncrementalFeatures``). v2 is built this way in batch too. v1's batch stays the
original numpy code in ``pipeline`` (models were trained on it); ``v1_stream`` is its incremental
twin and is tested equal to it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import EllipsisType

import numba
import numpy as np
import pandas as pd

try:  # numpy's private switch (numpy ≥ 2, process-wide): only a speed hint, so its absence must not break imports
    from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a numpy without it: allocate as numpy decides

    def _set_madvise_hugepage(enabled: bool) -> bool:
        return enabled


from workbench.data.calendars import Calendars
from workbench.data.panel import Panel
from workbench.features import fused as F
from workbench.features import kernels as K
from workbench.features import streams as S
from workbench.features.time_ahead import time_row
from workbench.features.timefeatures import TIME_COLUMNS, session_clock
from workbench.features.v2_row import row_pass

__all__ = [
    "Bars",
    "V1_COLUMNS",
    "V2_COLUMNS",
    "STREAM_BUILDERS",
    "v1_stream",
    "v2_stream",
    "v2_block",
    "benchmark_symbol",
    "benchmark_returns",
    "cross_section",
]

V1_COLUMNS = (
    "ret_1", "ret_5", "ret_20", "vol_20", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_pct_b", "bb_width", "atr_14", "ema_ratio_12", "ema_ratio_26",
)  # fmt: skip

# The per-instrument series and the pair features are named where the fused kernels write them.
V2_COLUMNS = (
    *F.SERIES, *F.PAIR,
    "cs_rank_ret_5", "cs_rank_ret_20", "cs_z_ret_20", "cs_rank_vol_20", "cs_rank_volume_z_20",
    *TIME_COLUMNS,
)  # fmt: skip


@dataclass(frozen=True)
class Bars:
    """The arrays a builder reads: OHLCV (time × instrument) float arrays plus the grid's identity."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    exchange: str
    timeframe: str
    calendars: Calendars | None = None  # the time features' holidays (None: the recorded sessions)

    @classmethod
    def from_panel(cls, panel: Panel) -> Bars:
        # As the panel holds them (pandas: each instrument contiguous in time), not copied to C order.
        arr = {f: getattr(panel, f).to_numpy(dtype=float) for f in ("open", "high", "low", "close", "volume")}
        return cls(
            **arr,
            index=panel.index,
            symbols=tuple(panel.symbols),
            exchange=panel.exchange,
            timeframe=panel.timeframe,
            calendars=panel.calendars,
        )


def v1_stream(st: S.StreamState, b: Bars) -> dict[str, np.ndarray]:
    """Feature set v1, streaming (same formulas as ``pipeline._v1``)."""
    c, h, lo = b.close, b.high, b.low
    line, sig, hist = S.s_macd(st, c)
    _, upper, lower, pct_b = S.s_bollinger(st, c, 20, 2.0)
    mid = S.s_sma(st, c, 20)
    return {
        "ret_1": S.s_returns(st, c, 1),
        "ret_5": S.s_returns(st, c, 5),
        "ret_20": S.s_returns(st, c, 20),
        "vol_20": S.s_volatility(st, c, 20),
        "rsi_14": S.s_rsi(st, c, 14) / 100.0,
        "macd": S.ratio(line, c),
        "macd_signal": S.ratio(sig, c),
        "macd_hist": S.ratio(hist, c),
        "bb_pct_b": pct_b,
        "bb_width": S.ratio(upper - lower, mid),
        "atr_14": S.ratio(S.s_atr(st, h, lo, c, 14), c),
        "ema_ratio_12": S.ratio(c, S.s_ema(st, c, 12)) - 1.0,
        "ema_ratio_26": S.ratio(c, S.s_ema(st, c, 26)) - 1.0,
    }


_BTC = ("BTC/USDT", "BTC/USD", "BTC/USDC", "BTCUSDT", "BTC-USD", "BTC/BUSD", "BTC")


def benchmark_symbol(symbols, exchange: str) -> str | None:
    """BTC when the panel holds it (the crypto market's index); None → the panel's equal-weight average."""
    for s in _BTC:
        if s in symbols:
            return s
    return None


def benchmark_returns(r1: np.ndarray, b: Bars, column: int | EllipsisType | None = ...) -> np.ndarray:
    """The beta/corr benchmark's return per bar: ``benchmark_symbol``'s, else the equal-weight average of
    the finite returns (shared by ``v2_stream`` and the universe change's replay, ``v2_universe``).
    ``column``: the benchmark's column (None: the average) when the caller has it: finding it scans the
    symbols, ~0.2 ms a call at 5,000, which the live loop's one-bar update would pay every cycle."""
    if column is ...:
        column = _benchmark_column(b.symbols, b.exchange)
    if column is not None:
        return r1[:, column]
    finite = np.isfinite(r1)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(finite, r1, 0.0).sum(axis=1) / n, np.nan)


def _benchmark_column(symbols: tuple[str, ...], exchange: str) -> int | None:
    sym = benchmark_symbol(symbols, exchange)
    return None if sym is None else symbols.index(sym)


def _kept_benchmark_column(st: S.StreamState, b: Bars) -> int | None:
    """``_benchmark_column``, kept in the state for as long as the instruments are the same tuple."""
    kept = st.extra.get("benchmark")
    if kept is None or kept[0] is not b.symbols:
        kept = st.extra["benchmark"] = (b.symbols, _benchmark_column(b.symbols, b.exchange))
    return kept[1]


def _clock(st: S.StreamState, b: Bars):
    clock = st.extra.get("clock")
    if clock is None or not clock.covers(b.index):
        lo = b.index.min() if clock is None else min(b.index.min(), clock.start + pd.Timedelta(days=10))
        clock = session_clock(b.exchange, lo, b.index.max(), b.calendars)
        st.extra["clock"] = clock
    return clock


def v2_stream(st: S.StreamState, b: Bars, out: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Feature set v2: v1 plus trend strength, oscillators, volume, support/resistance, market beta,
    cross-sectional ranks and calendar time. Volume features are NaN where volume is missing or zero.

    Computed by the fused kernels of ``fused`` (one pass per instrument, then beta/corr, then the
    cross-section) into one (feature × time × instrument) block; the arrays returned are its rows.
    Formula by formula the same as composing the streaming indicators (tested against that).

    ``out``: a C-ordered float64 (feature × time × instrument) block to write into instead of a
    fresh one from ``v2_block`` (860 MB for 5,000 × 500: mapping its pages costs a fresh build
    ~0.05 s of CPU more than a reused block). Every cell is overwritten; the arrays returned are
    views of ``out``."""
    # The slot holds the state's four per-instrument arrays (not the object), so the generic state
    # operations (copy, checkpoint/rollback, merge and subset by instrument) work on it.
    arrays = st.slot(("v2-fused", F.N_STATE, F.N_RINGS, F.RING), lambda: astuple_state(F.V2State.empty(st.n)))
    state = F.V2State(*arrays)
    T, N = b.close.shape
    block = v2_block(T, N) if out is None else _checked_out(out, (len(V2_COLUMNS), T, N))
    cells = T * N
    # (instrument × time) inputs: free for a panel's arrays (pandas keeps each instrument contiguous)
    # and one compiled layout for every caller.
    hlcv = [np.ascontiguousarray(np.asarray(x, dtype=np.float64).T) for x in (b.high, b.low, b.close, b.volume)]
    if T == 1:  # the live loop's one new bar: the same step, its state's memory fetched ahead
        row_pass(st.extra, hlcv[0], hlcv[1], hlcv[2], hlcv[3], state.s, state.rings, block, _SERIES_POS)
    else:
        K.run(F.series_k, cells, *hlcv, state.s, state.rings, block, _SERIES_POS)
    r1 = block[_POS["ret_1"]]
    bench = np.ascontiguousarray(benchmark_returns(r1, b, _kept_benchmark_column(st, b)), dtype=np.float64)
    beta, corr = block[_POS["beta_60"]], block[_POS["corr_60"]]
    K.run(F.pair_k, cells, r1, bench, 60, state.pair, state.pair_rings, beta, corr)
    cross_section(block)
    tf = time_row(st.extra, b.index, _clock(st, b), b.timeframe)
    for name in TIME_COLUMNS:
        block[_POS[name]] = np.asarray(tf[name], dtype=np.float64)[:, None]
    return {name: block[i] for i, name in enumerate(V2_COLUMNS)}


def v2_block(T: int, N: int, huge_pages: bool = False) -> np.ndarray:
    """A block ``v2_stream(..., out=)`` fills for T bars × N instruments, its pages already mapped.

    Why filled here: the kernels write it down each instrument's column (stride N), so left fresh
    its pages fault in scattered order from two threads: measured on 5,000 × 500 (load 17), a build
    into a fresh block cost 1.7–2.5 s CPU, into a block filled by one sequential pass first 0.76 s,
    into a reused one 0.72 s.

    Why small pages unless ``huge_pages``: numpy asks the kernel for transparent huge pages for a
    large array, and with THP ``defrag=madvise`` (the common default) the kernel then compacts memory
    in the faulting thread to find each 2 MB page. Measured at 5,000 × 500, one thread, a fresh
    block right after a reused build (load 6, medians of 5): 2.54 s CPU (1.9–2.7) with huge pages,
    0.94–0.95 s (0.92–1.05) with 4 kB pages. A block kept for reuse (``pipeline.feature_block``)
    pays that once and then runs ~5 % faster with huge pages (0.611 against 0.645 s CPU per build):
    it asks for them."""
    shape = (len(V2_COLUMNS), T, N)
    if huge_pages:
        block = np.empty(shape)
    else:
        previous = _set_madvise_hugepage(False)
        try:
            block = np.empty(shape)
        finally:
            _set_madvise_hugepage(previous)
    block.fill(np.nan)
    return block


def _checked_out(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float64 and out.flags.c_contiguous):
        got = f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out).__name__)}"
        raise ValueError(
            f"out= must be a C-ordered float64 array of shape {shape} (features × bars × instruments); got {got}"
        )
    if not out.flags.writeable:
        raise ValueError("out= is read-only; pass a writeable block (sets.v2_block)")
    return out


def cross_section(block: np.ndarray) -> None:
    """Fill, in place, the cross-sectional columns (``fused.CROSS``) of a C-ordered (feature × time ×
    instrument) block from its own columns: one definition for the batch, the live rows and a universe
    change's newest row (``v2_universe.cross_section_row``)."""
    cells = block.shape[1] * block.shape[2]
    _cross_ranks(block, cells)
    K.run(F.zscore_k, cells, block, _POS["ret_20"], _POS["cs_z_ret_20"])


_RANK_ROWS = 32  # rows per job: one job's argsort (32 × N int64) stays in L2 for N ≤ 1,000s


def _cross_ranks(block: np.ndarray, cells: int) -> None:
    """Each ranked feature's rows: ``fused.sort_order`` (numpy's SIMD sort, releases the GIL) then ``rank_rows_k``
    (no GIL), ``_RANK_ROWS`` rows per job on numba's thread count, so the sort is not the one
    serial step of the build and its order array stays small and in cache."""
    T = block.shape[1]
    jobs = [(_POS[src], _POS[dst], r0) for src, dst in _RANKED for r0 in range(0, T, _RANK_ROWS)]

    def rank(job: tuple[int, int, int]) -> None:
        src, dst, r0 = job
        vals = block[src, r0 : r0 + _RANK_ROWS]
        F.rank_rows_k(vals, F.sort_order(vals), block[dst, r0 : r0 + _RANK_ROWS])

    threads = numba.get_num_threads() if cells >= K.SMALL else 1
    if threads <= 1 or len(jobs) == 1:
        for job in jobs:
            rank(job)
        return
    with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
        list(pool.map(rank, jobs))


_POS = {name: i for i, name in enumerate(V2_COLUMNS)}
_SERIES_POS = np.array([_POS[n] for n in F.SERIES], dtype=np.int64)
_RANKED = [(src, dst) for src, dst in zip(F.CROSS_SOURCES, F.CROSS, strict=True) if "_rank_" in dst]
assert set(F.SERIES) | set(F.PAIR) | set(F.CROSS) | set(TIME_COLUMNS) == set(V2_COLUMNS)


STREAM_BUILDERS = {"v1": v1_stream, "v2": v2_stream}


def astuple_state(state: F.V2State) -> tuple[np.ndarray, ...]:
    """A fused v2 state as its per-instrument arrays (axis 0 = instrument), in field order."""
    return (state.s, state.rings, state.pair, state.pair_rings)
