"""Named, versioned feature sets: the one place that turns a ``Panel`` into model inputs.

Why named and versioned: a registered model records the feature set it was trained on, and the live
loop rebuilds exactly that set from the same code, so research and live cannot drift apart. A change
to a set's definition is a new name (``v2``), never an edit to ``v1``.

Every feature is *scale-free* (ratios, returns, oscillators) so one model can serve instruments of
any price level, and *causal*: the row for bar t uses bars ≤ t only (tested by truncation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.features import indicators as ind
from workbench.features.sets import V2_COLUMNS, Bars, v2_block, v2_stream
from workbench.features.streams import StreamState

__all__ = [
    "FeatureSet", "FEATURE_SETS", "build_features", "build_wide", "feature_block", "build_features_report", "feature_atr", "get_feature_set",
    "stack_wide", "FeatureReport", "feature_report",
]  # fmt: skip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSet:
    """A feature set's identity and needs.

    ``warmup`` is the number of bars of history to feed *before* the first bar you want features
    for: every feature is defined by then and the recursive filters (EMA, Wilder) have forgotten
    their seed, so features from a short live window match those from full history (v1: max |Δ| ≈ 2e-4 at 100 bars, 9e-4 at 80).
    """

    name: str
    version: int
    columns: tuple[str, ...]
    warmup: int


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(np.isfinite(out) & (den > 0), out, np.nan)


def _v1(panel: Panel) -> dict[str, np.ndarray]:
    c = panel.close.to_numpy(dtype=float)
    h = panel.high.to_numpy(dtype=float)
    lo = panel.low.to_numpy(dtype=float)
    line, sig, hist = ind.macd(c)
    _, upper, lower, pct_b = ind.bollinger(c, 20, 2.0)
    mid = ind.sma(c, 20)
    return {
        "ret_1": ind.returns(c, 1),
        "ret_5": ind.returns(c, 5),
        "ret_20": ind.returns(c, 20),
        "vol_20": ind.rolling_volatility(c, 20),
        "rsi_14": ind.rsi(c, 14) / 100.0,
        "macd": _ratio(line, c),
        "macd_signal": _ratio(sig, c),
        "macd_hist": _ratio(hist, c),
        "bb_pct_b": pct_b,
        "bb_width": _ratio(upper - lower, mid),
        "atr_14": _ratio(ind.atr(h, lo, c, 14), c),
        "ema_ratio_12": _ratio(c, ind.ema(c, 12)) - 1.0,
        "ema_ratio_26": _ratio(c, ind.ema(c, 26)) - 1.0,
    }


_V1_COLUMNS = (
    "ret_1", "ret_5", "ret_20", "vol_20", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_pct_b", "bb_width", "atr_14", "ema_ratio_12", "ema_ratio_26",
)  # fmt: skip


def _v2(panel: Panel, out: np.ndarray | None = None) -> dict[str, np.ndarray]:
    bars = Bars.from_panel(panel)
    return v2_stream(StreamState(len(bars.symbols)), bars, out=out)


FEATURE_SETS: dict[str, FeatureSet] = {
    "v1": FeatureSet(name="v1", version=1, columns=_V1_COLUMNS, warmup=100),
    # v2's slowest memory is EMA(50): 300 bars forget its seed to ~1e-5; live use prefers ``IncrementalFeatures``.
    "v2": FeatureSet(name="v2", version=2, columns=V2_COLUMNS, warmup=300),
}

_BUILDERS: dict[str, Callable[[Panel], dict[str, np.ndarray]]] = {"v1": _v1, "v2": _v2}


def get_feature_set(name: str) -> FeatureSet:
    """The feature set called ``name``; ValueError naming the known ones otherwise."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise ValueError(f"unknown feature set {name!r}; known feature sets: {sorted(FEATURE_SETS)}") from None


def build_features(panel: Panel, feature_set: str = "v1", out: np.ndarray | None = None) -> pd.DataFrame:
    """Long features indexed by (ts, symbol), one column per feature, one row per bar with a close.

    Warm-up rows are kept (with NaN features) so the index matches ``labels.direction_label``;
    models drop incomplete rows themselves. ``out``: see ``build_wide``; when every cell has a
    close the frame is a view of ``out``, so the next build into the same ``out`` overwrites it.
    """
    fs = get_feature_set(feature_set)
    wide = build_wide(panel, fs.name, out=out)
    return stack_wide(panel, {name: wide[name] for name in fs.columns})


def build_wide(panel: Panel, feature_set: str = "v1", out: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The features as wide (time × instrument) arrays, one per name: what a model over the
    panel reads without the long frame's index.

    ``out`` (v2 only): a block from ``feature_block(panel, "v2")`` to fill instead of a fresh one;
    reused across calls of the same shape it spares the page faults of ~860 MB of new memory per
    5,000 × 500 build. The arrays returned are then views of ``out``.
    """
    fs = get_feature_set(feature_set)
    if out is None:
        return _BUILDERS[fs.name](panel)
    if fs.name != "v2":
        raise ValueError(f"out= is supported for feature set v2 only (the fused kernels' block); got {fs.name!r}")
    return _v2(panel, out=out)


def feature_block(panel: Panel, feature_set: str = "v2") -> np.ndarray:
    """A (feature × time × instrument) block for ``build_wide``/``build_features``'s ``out=`` (NaN until filled).
    Kept for reuse, so on huge pages (``sets.v2_block``: dearer to get, ~5 % faster to fill)."""
    if get_feature_set(feature_set).name != "v2":
        raise ValueError(f"feature blocks exist for feature set v2 only; got {feature_set!r}")
    return v2_block(len(panel.index), len(panel.symbols), huge_pages=True)


@dataclass(frozen=True)
class FeatureReport:
    """Which instruments had bad input and what it did to their features.

    ``issues`` is a (symbol × issue) boolean frame; ``empty_features`` maps a symbol to the features
    that are NaN on every one of its rows (e.g. volume features of a source without volume).
    """

    feature_set: str
    issues: pd.DataFrame
    empty_features: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def affected(self, issue: str | None = None) -> list[str]:
        """Symbols with ``issue`` (any issue when None)."""
        frame = self.issues if issue is None else self.issues[[issue]]
        return sorted(frame.index[frame.any(axis=1)])

    def __str__(self) -> str:
        lines = [f"feature set {self.feature_set}: {len(self.affected())} of {len(self.issues)} instruments affected"]
        for issue in self.issues.columns:
            syms = self.affected(issue)
            if syms:
                lines.append(f"  {issue}: {', '.join(syms[:20])}{' …' if len(syms) > 20 else ''}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


ISSUES = ("missing_bars", "constant_close", "no_volume", "no_history", "empty_features")


def feature_report(panel: Panel, features: pd.DataFrame, feature_set: str) -> FeatureReport:
    """Inspect the input panel and the built features; see ``FeatureReport``."""
    c = panel.close.to_numpy(dtype=float)
    v = panel.volume.to_numpy(dtype=float)
    finite = np.isfinite(c)
    seen = np.maximum.accumulate(finite, axis=0)
    after = np.maximum.accumulate(finite[::-1], axis=0)[::-1]
    interior_gap = (~finite & seen & after).any(axis=0)  # a hole between the first and last bar
    with np.errstate(invalid="ignore"):
        hi, lo = np.nanmax(np.where(finite, c, -np.inf), axis=0), np.nanmin(np.where(finite, c, np.inf), axis=0)
    constant = finite.sum(axis=0) > 1
    constant &= hi == lo
    no_volume = ~(np.isfinite(v) & (v > 0) & finite).any(axis=0)
    no_history = ~finite.any(axis=0)
    empty: dict[str, tuple[str, ...]] = {}
    if len(features):
        all_nan = features.isna().groupby(level="symbol", sort=False).all()
        for sym, row in all_nan.iterrows():
            cols = tuple(row.index[row.to_numpy(dtype=bool)])
            if cols:
                empty[str(sym)] = cols
    issues = pd.DataFrame(
        {"missing_bars": interior_gap, "constant_close": constant, "no_volume": no_volume, "no_history": no_history},
        index=pd.Index(panel.symbols, name="symbol"),
    )
    issues["empty_features"] = issues.index.isin(list(empty))
    notes = []
    if feature_set == "v2":
        from workbench.features.sets import benchmark_symbol
        from workbench.features.timefeatures import calendar_note

        bench = benchmark_symbol(panel.symbols, panel.exchange)
        notes.append(f"beta/corr benchmark: {bench or 'equal-weight average of the panel'}")
        notes.append(calendar_note(panel.exchange, panel.index.min(), panel.index.max(), panel.calendars))
    return FeatureReport(feature_set, issues, empty, tuple(notes))


def build_features_report(panel: Panel, feature_set: str = "v1") -> tuple[pd.DataFrame, FeatureReport]:
    """``build_features`` plus the report of which instruments had bad input (logged as a warning too)."""
    X = build_features(panel, feature_set)
    report = feature_report(panel, X, feature_set)
    if report.affected():
        log.warning("%s", report)
    return X, report


def stack_wide(panel: Panel, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """Wide (time × symbol) arrays → long frame on the panel's (ts, symbol) rows that have a close.

    Shared by features and labels so both get the very same index.
    """
    close = panel.close.to_numpy(dtype=float)
    valid = np.isfinite(close)
    everything = bool(valid.all())
    rows, cols = np.nonzero(valid)  # row-major: sorted by ts, then symbol
    # Codes on the panel's own (unique) axes: no re-factorising millions of labels.
    index = pd.MultiIndex(
        # pandas takes an Index per level and an ndarray of codes; pandas-stubs wants sequences.
        levels=[panel.index, panel.close.columns],  # type: ignore[list-item]
        codes=[rows, cols],  # type: ignore[list-item]
        names=["ts", "symbol"],
        verify_integrity=False,
    ).remove_unused_levels()
    # One (feature × row) block, handed to pandas transposed: that is its own block layout, so the
    # frame is built without a second copy or a consolidation. Arrays that are already the rows of
    # one (feature × time × instrument) block (v2's kernels write that) are that block: no copy at all.
    whole = _block_of(arrays, close.shape)
    if whole is not None:
        data = whole.reshape(len(arrays), -1) if everything else whole[:, rows, cols]
        return pd.DataFrame(data.T, index=index, columns=list(arrays), copy=False)
    block = np.empty((len(arrays), len(rows)))
    for k, a in enumerate(arrays.values()):
        a = np.broadcast_to(np.asarray(a, dtype=float), close.shape)
        if everything:
            np.copyto(block[k].reshape(close.shape), a)
        else:
            block[k] = a[rows, cols]
    return pd.DataFrame(block.T, index=index, columns=list(arrays), copy=False)


def _block_of(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray | None:
    """The C-ordered (feature × time × instrument) array whose rows, in order, are ``arrays``; else None."""
    values = list(arrays.values())
    base = getattr(values[0], "base", None) if values else None
    if not isinstance(base, np.ndarray) or base.shape != (len(values), *shape) or not base.flags.c_contiguous:
        return None
    start = base.__array_interface__["data"][0]
    for k, a in enumerate(values):
        if not (
            isinstance(a, np.ndarray)
            and a.base is base
            and a.shape == shape
            and a.dtype == np.float64
            and a.__array_interface__["data"][0] == start + k * base.strides[0]
        ):
            return None
    return base


def feature_atr(panel: Panel, window: int) -> pd.DataFrame:
    """Wide ATR in price units (not scaled), the volatility unit for stops and targets."""
    return ind.atr(panel.high, panel.low, panel.close, window)
