"""Incremental features for the live loop: keep the indicator state, compute only the newest bar.

Why: every 30 s the loop needs the newest feature row for thousands of instruments. Recomputing the
whole history (or a ``warmup`` window) each cycle costs O(history); stepping the streaming kernels
one row costs O(instruments) and gives *the same numbers* as the full recomputation, because it is
the same code (``sets.STREAM_BUILDERS``) continuing from the state the history left behind.

Usage::

    inc = IncrementalFeatures.from_history(panel, "v2")      # once, on the loaded history
    row = inc.update(new_bars)      # each cycle: a Panel with the new bar(s) → (symbol × feature) frame
    atr = inc.atr                   # ATR in price units at the newest bar (stops/targets)

The instrument set is fixed at ``from_history``; a new listing needs a new ``from_history``.
An instrument without a bar this cycle passes NaN: its state is untouched and its row is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from workbench.data.panel import FIELDS, Panel
from workbench.features.pipeline import get_feature_set
from workbench.features.sets import STREAM_BUILDERS, Bars
from workbench.features.streams import StreamState, s_atr

__all__ = ["IncrementalFeatures"]


class IncrementalFeatures:
    """Feature state of one panel; ``update`` appends bars and returns the newest feature row."""

    def __init__(
        self, feature_set: str, symbols: tuple[str, ...], exchange: str, timeframe: str, atr_window: int | None
    ):
        fs = get_feature_set(feature_set)
        self.feature_set = fs.name
        self.columns = fs.columns
        self.symbols = tuple(symbols)
        self.exchange = exchange
        self.timeframe = timeframe
        self.atr_window = atr_window
        self.ts: pd.Timestamp | None = None
        self._builder = STREAM_BUILDERS[fs.name]
        self._state = StreamState(len(self.symbols))
        self._atr_state = StreamState(len(self.symbols))
        self._last = np.full((len(self.symbols), len(self.columns)), np.nan)
        self._atr = np.full(len(self.symbols), np.nan)

    @classmethod
    def from_history(cls, panel: Panel, feature_set: str = "v1", atr_window: int | None = 14) -> IncrementalFeatures:
        """Run the feature set over ``panel`` and keep its state (the full history, not a window:
        recursive filters then match the batch features exactly)."""
        inc = cls(feature_set, tuple(panel.symbols), panel.exchange, panel.timeframe, atr_window)
        if len(panel.index):
            inc._step(Bars.from_panel(panel))
        return inc

    # -----------------------------------------------------------------------------------------

    def update(self, bars: Panel | Mapping) -> pd.DataFrame:
        """Append the new bar(s) and return the newest feature row, indexed by symbol.

        ``bars`` is a ``Panel`` of one or more new rows (later than ``self.ts``), or a mapping with
        ``ts`` and the five fields, each a Series by symbol (or an array in ``symbols`` order).
        Symbols missing from the new bars are NaN (no bar this cycle); unknown symbols are an error.
        """
        b = self._bars(bars)
        if self.ts is not None and b.index.min() <= self.ts:
            raise ValueError(f"new bars must be later than the last one ({self.ts}); got {b.index.min()}")
        self._step(b)
        return self.last

    @property
    def last(self) -> pd.DataFrame:
        """The newest feature row (symbol × feature)."""
        return pd.DataFrame(self._last, index=pd.Index(self.symbols, name="symbol"), columns=list(self.columns))

    @property
    def atr(self) -> pd.Series:
        """ATR(``atr_window``) in price units at the newest bar: the unit of stops and targets."""
        return pd.Series(self._atr, index=pd.Index(self.symbols, name="symbol"), name="atr")

    def copy(self) -> IncrementalFeatures:
        """An independent copy (e.g. to try a bar without committing it)."""
        import copy

        return copy.deepcopy(self)

    # -----------------------------------------------------------------------------------------

    def _step(self, b: Bars) -> None:
        out = self._builder(self._state.begin(), b)
        self._last = np.column_stack([np.asarray(out[c], dtype=float)[-1] for c in self.columns])
        has_bar = np.isfinite(b.close[-1])[:, None]  # like build_features: no close, no row
        self._last = np.where(np.isfinite(self._last) & has_bar, self._last, np.nan)
        if self.atr_window:
            a = s_atr(self._atr_state.begin(), b.high, b.low, b.close, self.atr_window)
            self._atr = np.where(np.isfinite(a[-1]), a[-1], np.nan)
        self.ts = b.index[-1]

    def _bars(self, bars: Panel | Mapping) -> Bars:
        if isinstance(bars, Panel):
            unknown = sorted(set(bars.symbols) - set(self.symbols))
            if unknown:
                raise ValueError(
                    f"symbols {unknown} were not in the history: rebuild with IncrementalFeatures.from_history"
                )
            arrays = {f: getattr(bars, f).reindex(columns=list(self.symbols)).to_numpy(dtype=float) for f in FIELDS}
            index = bars.index
        else:
            ts = pd.Timestamp(bars["ts"])
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            index = pd.DatetimeIndex([ts], name="ts")
            arrays = {}
            for f in FIELDS:
                val = bars[f]
                if isinstance(val, pd.Series):
                    unknown = sorted(set(val.index) - set(self.symbols))
                    if unknown:
                        raise ValueError(
                            f"symbols {unknown} were not in the history: rebuild with IncrementalFeatures.from_history"
                        )
                    val = val.reindex(list(self.symbols)).to_numpy(dtype=float)
                val = np.asarray(val, dtype=float).reshape(1, -1)
                if val.shape[1] != len(self.symbols):
                    raise ValueError(f"field {f!r} has {val.shape[1]} values for {len(self.symbols)} symbols")
                arrays[f] = val
        arrays = {f: np.ascontiguousarray(a) for f, a in arrays.items()}
        return Bars(**arrays, index=index, symbols=self.symbols, exchange=self.exchange, timeframe=self.timeframe)
