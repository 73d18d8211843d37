"""Forming bars from ticks: open, high, low, close, volume of the model's timeframe, per instrument slot.

A bar covers ``[start, start + timeframe)``; a tick exactly on a boundary opens the next bar (the
venues' kline convention). Bars close on *time*, not on the next tick: once the watermark (the newest
tick time seen, or the clock passed to ``flush``) is ``lateness`` past a bar's end, the bar is emitted.
Until then a late tick still lands in its bar: each slot keeps the forming bar and the one before it,
and open/close follow tick *timestamps* (a late tick older than the open becomes the open), so ticks
that arrive out of order within ``lateness`` give the same bar as ticks in order. A tick for a bar
already emitted is dropped and counted (``late``). A minute without ticks gives no bar (as Kite and
Alpaca report it); the backfill brings what the venue has.

A tick of unknown size (NaN: the first ticker of an instrument) makes its bar incomplete.
Duplicates: ticks derived from cumulative volume (tickers) are idempotent — a repeated ticker has size
0 and the same price and time, so it changes nothing. Bars that overlap an outage (``mark_gap``, or
gaps carried by ``Ticks``) are emitted with ``complete=False``: the venue's history replaces them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from workbench.data.candles import CANDLE_COLUMNS, timeframe_delta
from workbench.instruments import split_key
from workbench.live.quotes import SlotMap
from workbench.live.ticks import Ticks

__all__ = ["BarBuilder", "BAR_COLUMNS", "bars_from_ticks", "lake_frames"]

BAR_COLUMNS = ("ts", "key", "open", "high", "low", "close", "volume", "complete")
_O, _H, _L, _C, _V = range(5)
_START, _OTS, _CTS = range(3)


@njit(cache=True)
def _overlaps(b, tf, lo, hi):  # pragma: no cover - numba
    return lo >= 0 and b <= hi and b + tf > lo


@njit(cache=True)
def _emit(s, k, t, val, done, last_out, out_i, out_f, out_c, m):  # pragma: no cover - numba
    out_i[m, 0] = s
    out_i[m, 1] = t[s, k, _START]
    for j in range(5):
        out_f[m, j] = val[s, k, j]
    out_c[m] = done[s, k]
    if t[s, k, _START] > last_out[s]:
        last_out[s] = t[s, k, _START]
    t[s, k, _START] = -1
    return m + 1


@njit(cache=True)
def _open(s, k, b, x, p, sz, tf, gap_lo, gap_hi, t, val, done):  # pragma: no cover - numba
    """Bar k of slot s starts at b with one tick; a size of NaN (unknown) or an outage makes it incomplete."""
    t[s, k, _START] = b
    t[s, k, _OTS] = x
    t[s, k, _CTS] = x
    val[s, k, _O] = p
    val[s, k, _H] = p
    val[s, k, _L] = p
    val[s, k, _C] = p
    val[s, k, _V] = 0.0 if np.isnan(sz) else sz
    done[s, k] = not (_overlaps(b, tf, gap_lo[s], gap_hi[s]) or np.isnan(sz))


@njit(cache=True)
def _ingest(
    slot, price, size, ts, tf, gap_lo, gap_hi, t, val, done, last_out, out_i, out_f, out_c, counts
):  # pragma: no cover
    """Apply ticks in arrival order. Returns bars emitted (a third bar evicts the oldest of the two kept).

    gap_lo/gap_hi: the latest outage per slot (-1: none); a bar opened over it is incomplete.
    State per slot s: k=0 the newest bar, k=1 the bar before it (still open to late ticks); an empty
    newest bar implies an empty older one. counts: [late, ignored, watermark].
    """
    m = 0
    n = t.shape[0]
    wm = counts[2]
    for i in range(slot.shape[0]):
        s = slot[i]
        p = price[i]
        if s < 0 or s >= n or np.isnan(p):
            counts[1] += 1
            continue
        x = ts[i]
        b = x - x % tf
        if b <= last_out[s]:  # its bar was already emitted
            counts[0] += 1
            continue
        if x > wm:
            wm = x
        cur = t[s, 0, _START]
        if cur == -1 or b > cur:
            if cur != -1:
                if t[s, 1, _START] != -1:
                    m = _emit(s, 1, t, val, done, last_out, out_i, out_f, out_c, m)
                for j in range(3):
                    t[s, 1, j] = t[s, 0, j]
                for j in range(5):
                    val[s, 1, j] = val[s, 0, j]
                done[s, 1] = done[s, 0]
            _open(s, 0, b, x, p, size[i], tf, gap_lo, gap_hi, t, val, done)
            continue
        if b == cur:
            k = 0
        elif b == t[s, 1, _START]:
            k = 1
        elif t[s, 1, _START] == -1:  # between the last emitted bar and the newest: open it as the older bar
            _open(s, 1, b, x, p, size[i], tf, gap_lo, gap_hi, t, val, done)
            continue
        else:  # neither of the two bars kept (three bars within the lateness): too late
            counts[0] += 1
            continue
        if p > val[s, k, _H]:
            val[s, k, _H] = p
        if p < val[s, k, _L]:
            val[s, k, _L] = p
        if np.isnan(size[i]):  # unknown traded size: the bar's volume is a lower bound
            done[s, k] = False
        else:
            val[s, k, _V] += size[i]
        if x < t[s, k, _OTS]:
            t[s, k, _OTS] = x
            val[s, k, _O] = p
        if x >= t[s, k, _CTS]:
            t[s, k, _CTS] = x
            val[s, k, _C] = p
    counts[2] = wm
    return m


@njit(cache=True)
def _close(tf, tol, wm, t, val, done, last_out, out_i, out_f, out_c, m):  # pragma: no cover - numba
    """Emit every bar whose end is ``tol`` behind the watermark (older bar first)."""
    for s in range(t.shape[0]):
        for k in (1, 0):
            b = t[s, k, _START]
            if b != -1 and b + tf + tol <= wm:
                m = _emit(s, k, t, val, done, last_out, out_i, out_f, out_c, m)
    return m


class BarBuilder:
    """Forming bars for a fixed universe; ``ingest`` ticks, get closed bars back (``BAR_COLUMNS``)."""

    def __init__(self, slots: SlotMap | list[str], timeframe: str | int = "1m", lateness_s: float = 2.0):
        self.slots = slots if isinstance(slots, SlotMap) else SlotMap(slots)
        n = len(self.slots)
        self.tf_ns = int(timeframe) if isinstance(timeframe, int) else int(timeframe_delta(timeframe).value)
        self.tol_ns = int(lateness_s * 1e9)
        self._t = np.full((n, 2, 3), -1, dtype="int64")
        self._val = np.zeros((n, 2, 5), dtype="float64")
        self._done = np.ones((n, 2), dtype=np.bool_)
        self._last_out = np.full(n, -1, dtype="int64")  # start of the newest bar emitted per slot
        self._counts = np.zeros(3, dtype="int64")  # late, ignored, watermark
        self._gap_lo = np.full(n, -1, dtype="int64")
        self._gap_hi = np.full(n, -1, dtype="int64")
        self._empty: pd.DataFrame | None = None

    @property
    def late(self) -> int:
        """Ticks dropped because their bar had already been emitted (later than ``lateness``)."""
        return int(self._counts[0])

    @property
    def watermark_ns(self) -> int:
        return int(self._counts[2])

    def mark_gap(self, from_ns: int, to_ns: int, slots: np.ndarray | None = None) -> None:
        """An outage (venue time) for ``slots`` (default: all): bars overlapping [from, to] — forming now or
        opened later — are incomplete."""
        lo, hi = int(from_ns), int(to_ns)
        sel = np.arange(len(self.slots)) if slots is None else np.asarray(slots, dtype="int64")
        self._gap_lo[sel], self._gap_hi[sel] = lo, hi
        start = self._t[sel, :, _START]
        hit = (start != -1) & (start <= hi) & (start + self.tf_ns > lo)
        done = self._done[sel]
        done[hit] = False
        self._done[sel] = done

    def _out(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.empty((n, 2), dtype="int64"), np.empty((n, 5), dtype="float64"), np.empty(n, dtype=np.bool_)

    def ingest(self, ticks: Ticks) -> pd.DataFrame:
        """Apply a batch (arrival order) and return the bars it closed."""
        for lo, hi, slots in ticks.gaps:
            self.mark_gap(lo, hi, slots)
        n = len(ticks)
        out_i, out_f, out_c = self._out(n + 2 * len(self.slots))
        m = _ingest(
            ticks.slot,
            ticks.price,
            ticks.size,
            ticks.ts,
            self.tf_ns,
            self._gap_lo,
            self._gap_hi,
            self._t,
            self._val,
            self._done,
            self._last_out,
            out_i,
            out_f,
            out_c,
            self._counts,
        )
        return self._close_due(out_i, out_f, out_c, m)

    def flush(self, now_ns: int) -> pd.DataFrame:
        """Close bars by the clock: a quiet instrument's bar still closes once ``now`` is past its end."""
        self._counts[2] = max(int(self._counts[2]), int(now_ns))
        return self._close_due(*self._out(2 * len(self.slots)), 0)

    def _close_due(self, out_i: np.ndarray, out_f: np.ndarray, out_c: np.ndarray, m: int) -> pd.DataFrame:
        """Emit, after the ``m`` bars already in the output, every bar the watermark has passed."""
        wm = int(self._counts[2])
        m = _close(self.tf_ns, self.tol_ns, wm, self._t, self._val, self._done, self._last_out, out_i, out_f, out_c, m)
        return self._frame(out_i[:m], out_f[:m], out_c[:m])

    def forming(self) -> pd.DataFrame:
        """The newest bar of every slot that has one (not closed yet; what features of the forming bar use)."""
        has = self._t[:, 0, _START] != -1
        idx = np.flatnonzero(has)
        out_i = np.column_stack([idx, self._t[idx, 0, _START]])
        return self._frame(out_i, self._val[idx, 0, :], self._done[idx, 0])

    def at(self, start_ns: int) -> pd.DataFrame:
        """The bars starting at ``start_ns`` not emitted yet — the forming one, or one that ended but is still
        open to late ticks — so a cycle right after a bar's end still sees that bar."""
        t = self._t[:, :, _START]
        hit = t == int(start_ns)
        slot, k = np.nonzero(hit)
        out_i = np.column_stack([slot, t[slot, k]])
        return self._frame(out_i, self._val[slot, k, :], self._done[slot, k])

    def at_arrays(self, start_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """``at`` as (slots, OHLCV rows in ``FIELDS`` order), no frame: the live feed's per-cycle path."""
        slot, k = np.nonzero(self._t[:, :, _START] == int(start_ns))
        return slot, self._val[slot, k, :]

    def _frame(self, out_i: np.ndarray, out_f: np.ndarray, out_c: np.ndarray) -> pd.DataFrame:
        if len(out_i) == 0:  # the common case between bar closes: skip building a frame from arrays
            if self._empty is None:
                self._empty = self._build(out_i, out_f, out_c)
            return self._empty.copy()
        return self._build(out_i, out_f, out_c)

    def _build(self, out_i: np.ndarray, out_f: np.ndarray, out_c: np.ndarray) -> pd.DataFrame:
        order = np.lexsort((out_i[:, 1], out_i[:, 0])) if len(out_i) > 1 else np.arange(len(out_i))
        out_i, out_f, out_c = out_i[order], out_f[order], out_c[order]
        keys = self.slots.key_array()[out_i[:, 0]] if len(out_i) else np.array([], dtype=object)
        return pd.DataFrame(
            {
                "ts": pd.to_datetime(out_i[:, 1], utc=True).astype("datetime64[ns, UTC]"),
                "key": pd.Series(keys, dtype="str"),
                "open": out_f[:, _O],
                "high": out_f[:, _H],
                "low": out_f[:, _L],
                "close": out_f[:, _C],
                "volume": out_f[:, _V],
                "complete": out_c,
            }
        )


def bars_from_ticks(keys: list[str], ticks: Ticks, timeframe: str | int) -> pd.DataFrame:
    """Reference OHLCV of a tick batch by plain grouping (first/last by timestamp, ties in arrival order).

    Why it exists: the definition the builder must match, written the obvious way (pandas groupby);
    tests and the benchmark hold the numba builder to it.
    """
    tf = int(timeframe) if isinstance(timeframe, int) else int(timeframe_delta(timeframe).value)
    ok = ~np.isnan(ticks.price) & (ticks.slot >= 0)
    df = pd.DataFrame({"slot": ticks.slot[ok], "price": ticks.price[ok], "size": ticks.size[ok], "t": ticks.ts[ok]})
    df["start"] = df["t"] - df["t"] % tf
    df = df.sort_values(["slot", "t"], kind="stable")
    g = df.groupby(["slot", "start"], sort=True)
    out = g.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
    ).reset_index()
    out.insert(0, "key", pd.Series(np.asarray(keys, dtype=object)[out["slot"].to_numpy()], dtype="str"))
    out.insert(0, "ts", pd.to_datetime(out["start"].to_numpy(), utc=True).astype("datetime64[ns, UTC]"))
    return out.drop(columns=["slot", "start"]).reset_index(drop=True)


def lake_frames(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Closed bars → one candles frame (``CANDLE_COLUMNS``) per exchange, ready for ``Lake.write``."""
    if bars.empty:
        return {}
    parts = bars["key"].map(split_key)
    ex = parts.str[0]
    df = bars.assign(symbol=parts.str[1].astype("str"))
    return {str(e): g[list(CANDLE_COLUMNS)].reset_index(drop=True) for e, g in df.groupby(ex, sort=True)}
