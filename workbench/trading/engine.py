"""The live signal engine: a registered model behind the loop's ``SignalEngine`` seam.

Why incremental: every cycle the feed hands over a panel (history + the forming bar as its last
row). Recomputing features over that whole window and predicting every row of it costs
O(window × instruments) to use one row; this engine keeps ``IncrementalFeatures`` state across
cycles instead — warmed up once from the history, then each cycle it commits the bars that closed
since, evaluates the forming bar on a scratch copy of the state (``peek``: the committed state is
not touched, so a bar that is still moving never enters the history), and runs the model once on
the universe's current rows. The signals are those ``signals.signal_frame`` + ``latest_signals``
make of the same probabilities, so live and backtest still share one definition of a signal.

Equal to the full recomputation over the history the engine has seen (the first panel's rows plus
every bar committed since): on the first cycle that *is* today's full-recompute path; later it has
more history than a window, which is what the model was trained on.

The newest closed bar may still move (the live feed shows a just-ended bar as it stands while late
ticks arrive): it is committed after a checkpoint, and when the next panel shows it revised the
state rolls back one bar and commits it again (``rollbacks``). Every older committed bar the panel
still holds (or the last ``history`` of them) is compared with the last panel's OHLCV too: a
backfill that fills or corrects one re-warms only the instruments concerned from the panel
(``rewarmed``). A revision of a bar older than the panel cannot be seen (the live feed's panel
holds every bar it keeps). The state is rebuilt from the panel (logged, counted in ``rebuilds``)
when the engine cannot continue exactly: the panel no longer holds the last committed bar (a gap
longer than the window), or time went backwards. When the universe changes, newcomers are warmed
up alone from the panel and merged in, leavers dropped (v2 also replays its beta/corr state when
the benchmark changes: ``v2_universe``).

Models the incremental state cannot serve use today's full path (``signals_for_panel`` on the
panel, then the last row): sequence models (``lookback`` > 1: the LSTM, ensembles holding one) read
the last ``lookback`` feature rows per instrument; feature sets without a streaming builder. Which
path runs and why is ``path``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from workbench.config import SignalParams
from workbench.data.panel import FIELDS, Panel
from workbench.features.incremental import IncrementalFeatures
from workbench.features.pipeline import FEATURE_SETS
from workbench.features.sets import STREAM_BUILDERS
from workbench.signals import Signal, latest_signals, signal_frame

__all__ = ["ModelSignalEngine", "incremental_blocker"]

log = logging.getLogger(__name__)

_REVISED = " was revised"


def incremental_blocker(model: Any) -> str | None:
    """Why ``model`` cannot be served from the incremental state (None when it can)."""
    fs = getattr(model, "feature_set", None)
    names = getattr(model, "feature_names", None)
    if fs is None or names is None:
        return "the model does not name its feature set and features"
    if fs not in STREAM_BUILDERS or fs not in FEATURE_SETS:
        return f"feature set {fs!r} has no streaming builder"
    # A registry LoadedModel says its lookback; a TrainResult's is on the model inside it.
    lookback = max(int(getattr(m, "lookback", 1) or 1) for m in (model, getattr(model, "model", None)))
    if lookback > 1:
        return (
            f"a sequence model (lookback {lookback}) reads the last {lookback} feature rows of each instrument; "
            "the incremental state keeps the newest row only"
        )
    missing = sorted(set(names) - set(FEATURE_SETS[fs].columns))
    if missing:
        return f"features {missing} are not in feature set {fs}"
    return None


class ModelSignalEngine:
    """Signals of a registered model on the newest row of each panel (see the module docstring).

    ``incremental=False`` forces the full path (``signals_for_panel`` then the last row)."""

    def __init__(
        self,
        model: Any,
        params: SignalParams,
        note: str | None = None,
        backup: bool = False,
        incremental: bool = True,
        history: int | None = None,
    ):
        self.model, self.params, self.note, self.backup = model, params, note, backup
        # committed bars checked for revisions (backfills) each cycle: None = every bar the panel holds
        self.history = history
        self.rewarmed = 0  # instruments warmed up again because their past bars were revised
        self.fallback_reason: str | None = incremental_blocker(model) if incremental else "chosen (incremental=False)"
        self.rebuilds: list[str] = []  # why the state was (re)built from a panel, oldest first
        self.rollbacks = 0  # times the newest committed bar was revised and committed again
        self._inc: IncrementalFeatures | None = None
        self._committed: np.ndarray | None = None  # (5 × instrument) OHLCV of the last committed bar
        # OHLCV of the committed bars before that one (``FIELDS`` order), as the last panel showed them:
        # a backfill that fills or corrects one of them is seen by comparing the next panel with it.
        self._history: tuple[pd.DatetimeIndex, tuple[np.ndarray, ...], pd.Index] | None = None
        self._rewarm: set[str] = set()
        self._cols: pd.Index | None = None  # the panel columns ``_pos`` was computed for
        self._pos = np.empty(0, dtype=np.int64)  # state position of each panel column

    # -- what the loop and the dashboard show ---------------------------------------------------

    @property
    def no_edge(self) -> bool:
        """The model's stored out-of-sample verdict says it lost to its baselines."""
        m = getattr(self.model, "metrics", None) or {}
        return "beats_baselines" in m and not m["beats_baselines"]

    @property
    def universe(self) -> dict | None:
        return getattr(self.model, "universe", None)

    @property
    def ref(self) -> str:
        r = getattr(self.model, "ref", None)
        return "model" if r is None else str(r)

    @property
    def path(self) -> str:
        """How signals are computed: "incremental" or "full recompute (<why>)"."""
        return "incremental" if self.fallback_reason is None else f"full recompute ({self.fallback_reason})"

    def describe(self) -> str:
        if self.note:
            return self.note
        metrics = getattr(self.model, "metrics", None) or {}
        shown = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:6])
        kind = getattr(self.model, "kind", "?")
        flag = "NO EDGE: it lost to its baselines out of sample (its stored verdict); " if self.no_edge else ""
        return (
            f"{flag}{kind} model {self.ref}; features {getattr(self.model, 'feature_set', '?')}, horizon {getattr(self.model, 'horizon', '?')}"
            + (f"; out-of-sample: {shown}" if shown else "; no out-of-sample metrics recorded")
        )

    # -- signals ---------------------------------------------------------------------------------

    staged = True  # ``signals`` books features and inference on the live loop's stage clock

    def signals(self, panel: Panel, lap: Callable[[str], None] | None = None) -> list[Signal]:
        if self.fallback_reason is not None:
            from workbench.models.inference import signals_for_panel

            return latest_signals(signals_for_panel(self.model, panel, self.params, lap), panel.exchange)
        if not len(panel.index):
            return []
        features, atr = self._forming_features(panel)
        if lap is not None:
            lap("features")
        out = self._infer(panel, features, atr, lap)
        if lap is not None:
            lap("signals")
        return out

    def _forming_features(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        """(symbol × feature) rows and ATR of the panel's last bar, in the panel's column order."""
        why = self._rebuild_reason(panel)
        if why is not None and why.endswith(_REVISED) and self._inc is not None and self._inc.has_checkpoint:
            self._inc.rollback()  # only the newest committed bar moved (late ticks): commit it again
            self.rollbacks += 1
            why = None
        if why is not None:
            self._warm(panel, why)
        elif self._rewarm:  # bars before the newest were backfilled: those instruments warm up again
            assert self._inc is not None
            log.info("signal engine re-warms %d instrument(s) whose past bars were revised", len(self._rewarm))
            self.rewarmed += len(self._rewarm)
            self._inc.keep_symbols([s for s in self._inc.symbols if s not in self._rewarm])
            self._cols = None
        self._rewarm = set()
        inc = self._inc
        assert inc is not None
        idx = panel.index
        start = 0 if inc.ts is None else int(idx.searchsorted(inc.ts, side="right"))
        cols = panel.close.columns
        if start < len(idx) - 1:  # bars closed since the last cycle: commit them
            self._commit(panel, start, len(idx) - 1)
        pos = self._positions(cols)
        if len(pos) != len(inc.symbols) or (pos < 0).any():  # v1: newcomers warm up alone, leavers go
            self._adopt(panel)
            pos = self._positions(cols)
        forming = {f: _rows(panel, f, len(idx) - 1, len(idx), pos, len(inc.symbols)) for f in FIELDS}
        feats, atr = inc.peek_arrays(idx[-1:], forming)
        self._keep_history(panel, pos)
        return feats[pos], atr[pos]

    def _infer(
        self, panel: Panel, features: np.ndarray, atr: np.ndarray, lap: Callable[[str], None] | None = None
    ) -> list[Signal]:
        """One ``predict_proba`` on the rows with every feature, then the shared signal rule."""
        inc = self._inc
        assert inc is not None
        names = list(self.model.feature_names)
        col_of = {c: i for i, c in enumerate(inc.columns)}
        ok = np.isfinite(features[:, [col_of[c] for c in names]]).all(axis=1)
        proba = np.full(len(ok), np.nan)
        rows = np.flatnonzero(ok)
        if len(rows):
            ts = panel.index[-1:]
            index = pd.MultiIndex(
                levels=[ts, panel.close.columns],  # type: ignore[list-item]
                codes=[np.zeros(len(rows), dtype=np.int64), rows],  # type: ignore[list-item]
                names=["ts", "symbol"],
                verify_integrity=False,
            )
            X = pd.DataFrame(features[rows], index=index, columns=list(inc.columns))
            proba[rows] = self.model.predict_proba(X)
        if lap is not None:
            lap("inference")
        grid = panel.close.iloc[-1:]
        wide = lambda a: pd.DataFrame(a[None, :], index=grid.index, columns=grid.columns)  # noqa: E731
        frames = signal_frame(wide(proba), grid, wide(atr), self.params, self.model.strength_reference)
        return latest_signals(frames, panel.exchange)

    # -- state -----------------------------------------------------------------------------------

    def _rebuild_reason(self, panel: Panel) -> str | None:
        inc = self._inc
        if inc is None:
            return "warm-up"
        if inc.ts is None:
            return None  # nothing committed yet: every closed row of this panel is new
        idx = panel.index
        if idx[-1] <= inc.ts:
            return f"the forming bar {idx[-1]} is not after the last committed bar {inc.ts}"
        k = int(idx.searchsorted(inc.ts))
        if k >= len(idx) or idx[k] != inc.ts:
            return f"the panel no longer holds the last committed bar {inc.ts} (a gap longer than its window)"
        pos = self._positions(panel.close.columns)
        if not inc.separable and (len(pos) != len(inc.symbols) or (pos < 0).any()):
            return f"the universe changed and feature set {inc.feature_set} is not per instrument"
        kept = np.zeros(len(inc.symbols), dtype=bool)  # state instruments this panel shows
        kept[pos[pos >= 0]] = True
        moved = self._backfilled(panel, pos) & kept
        if moved.any():
            names = [s for s, m in zip(inc.symbols, moved, strict=True) if m]
            if not inc.separable:
                return f"bars before {inc.ts} were revised (a backfill) for {len(names)} instrument(s): {names[:5]}"
            self._rewarm = set(names)
        seen = np.stack([_rows(panel, f, k, k + 1, pos, len(inc.symbols))[0] for f in FIELDS])
        assert self._committed is not None
        if not np.array_equal(seen[:, kept], self._committed[:, kept], equal_nan=True):
            return f"the committed bar {inc.ts}{_REVISED}"
        return None

    def _warm(self, panel: Panel, why: str) -> None:
        n = len(panel.index)
        fs = self.model.feature_set
        self._inc = IncrementalFeatures.from_history(panel.iloc(slice(0, max(n - 2, 0))), fs, self.params.atr_window)
        self._cols = None
        if n >= 2:
            self._commit(panel, n - 2, n - 1)  # the newest closed bar after a checkpoint, as every cycle
        else:
            self._committed = np.full((len(FIELDS), len(self._inc.symbols)), np.nan)
        self.rebuilds.append(why)
        if why != "warm-up":
            log.warning("signal engine rebuilt its feature state from the panel: %s", why)

    def _commit(self, panel: Panel, start: int, stop: int) -> None:
        inc = self._inc
        assert inc is not None
        pos = self._positions(panel.close.columns)
        fields = {f: _rows(panel, f, start, stop, pos, len(inc.symbols)) for f in FIELDS}
        if stop - start > 1:
            inc.update_arrays(panel.index[start : stop - 1], {f: a[:-1] for f, a in fields.items()})
        # The newest closed bar may still be revised by late ticks (the feed shows it as it stands):
        # remember the state before it, so a revision costs one bar again, not a rebuild.
        inc.checkpoint()
        inc.update_arrays(panel.index[stop - 1 : stop], {f: a[-1:] for f, a in fields.items()})
        self._committed = np.stack([fields[f][-1] for f in FIELDS])

    def _adopt(self, panel: Panel) -> None:
        """Bring the state's instruments in line with the panel's (per-instrument feature sets)."""
        inc = self._inc
        assert inc is not None
        cols = list(panel.close.columns)
        inc.keep_symbols(cols)
        held = set(inc.symbols)
        new = [c for c in cols if c not in held]
        # also without newcomers: under v2 a drop can change the beta benchmark, replayed from the panel
        k = len(panel.index) - 1 if inc.ts is None else int(panel.index.searchsorted(inc.ts)) + 1
        inc.add_symbols(panel.iloc(slice(0, k)))
        if new:
            log.info("signal engine warmed up %d new instrument(s) from the panel", len(new))
        self._cols = None
        if inc.ts is not None:
            self._remember(panel, int(panel.index.searchsorted(inc.ts)))

    def _remember(self, panel: Panel, k: int) -> None:
        inc = self._inc
        assert inc is not None
        if k < 0:
            self._committed = np.full((len(FIELDS), len(inc.symbols)), np.nan)
            return
        pos = self._positions(panel.close.columns)
        self._committed = np.stack([_rows(panel, f, k, k + 1, pos, len(inc.symbols))[0] for f in FIELDS])

    def _keep_history(self, panel: Panel, pos: np.ndarray) -> None:
        """Remember this panel's OHLCV before the newest committed bar (views: the feeds hand over a new
        panel each cycle and never write into one they handed over), so the next panel is checked whole."""
        inc = self._inc
        assert inc is not None
        if inc.ts is None:
            self._history = None
            return
        k = int(panel.index.searchsorted(inc.ts))
        k0 = 0 if self.history is None else max(0, k - self.history)
        fields = tuple(getattr(panel, f).to_numpy(dtype=float)[k0:k] for f in FIELDS)
        self._history = (panel.index[k0:k], fields, panel.close.columns)

    def _backfilled(self, panel: Panel, pos: np.ndarray) -> np.ndarray:
        """Per state instrument: did a committed bar before the newest change in this panel, in any field
        the features read (open, high, low, close or volume)?"""
        inc = self._inc
        assert inc is not None
        moved = np.zeros(len(inc.symbols), dtype=bool)
        if self._history is None or not len(self._history[0]):
            return moved
        ts, old, old_cols = self._history
        at = panel.index.get_indexer(ts)
        have = np.flatnonzero(at >= 0)
        if not len(have):
            return moved
        cols = panel.close.columns
        col_at = np.arange(len(cols)) if cols is old_cols or cols.equals(old_cols) else old_cols.get_indexer(cols)
        new_rows, old_rows = at[have].astype(np.int64), have.astype(np.int64)
        changed = np.zeros(len(cols), dtype=np.bool_)
        for f, before in zip(FIELDS, old, strict=True):
            _changed_columns(getattr(panel, f).to_numpy(dtype=float), new_rows, before, old_rows, col_at, changed)
        held = pos >= 0
        moved[pos[held]] = changed[held]
        return moved

    def _positions(self, cols: pd.Index) -> np.ndarray:
        """State position of each panel column (−1 for one the state does not hold), cached."""
        inc = self._inc
        assert inc is not None
        if self._cols is None or not (cols is self._cols or cols.equals(self._cols)):
            self._pos = pd.Index(inc.symbols).get_indexer(cols).astype(np.int64)
            self._cols = cols
        return self._pos


@njit(cache=True)
def _changed_columns(
    new: np.ndarray, new_rows: np.ndarray, old: np.ndarray, old_rows: np.ndarray, col_at: np.ndarray, out: np.ndarray
) -> None:
    """Mark in ``out`` each column of ``new`` where any of ``new_rows`` differs from ``old_rows`` of
    ``old``'s column ``col_at`` (NaN equal to NaN; a column the old panel lacked (−1), or one already
    marked by another field, is skipped). Row by row: fast for both layouts a panel's arrays come in
    (a C-ordered row is contiguous; a Fortran-ordered one touches one line per column, and the next 7
    rows find those lines in cache). No temporaries."""
    n = new.shape[1]
    for r in range(len(new_rows)):
        a, b = new_rows[r], old_rows[r]
        for j in range(n):
            c = col_at[j]
            if c < 0 or out[j]:
                continue
            x, y = new[a, j], old[b, c]
            if x != y and not (np.isnan(x) and np.isnan(y)):
                out[j] = True


def _rows(panel: Panel, field: str, start: int, stop: int, pos: np.ndarray, n: int) -> np.ndarray:
    """Rows ``start:stop`` of a field as (rows × n) in state order; NaN for instruments the panel lacks."""
    values = getattr(panel, field).to_numpy(dtype=float)[start:stop]
    if len(pos) == n and (pos == np.arange(n)).all():
        return values
    out = np.full((stop - start, n), np.nan)
    held = pos >= 0
    out[:, pos[held]] = values[:, held]
    return out
