"""The one-row v2 path: ``v2_row.row_k`` against ``fused.series_k``, and the incremental state's buffers
(peek scratch, checkpoint) kept equal by copying only the ring slots one-bar steps wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.data.panel import FIELDS, Panel
from workbench.features import IncrementalFeatures
from workbench.features import fused as F
from workbench.features.sets import _SERIES_POS, v2_block
from workbench.features.streams import StreamState
from workbench.features.v2_row import row_k
from workbench.features.v2_universe import v2_arrays


def _holey_panel(n_bars: int, symbols: tuple[str, ...], seed: int) -> Panel:
    """Random walks with the cases the kernels branch on: missing bars, zero volumes, flat ranges."""
    p = random_walk_panel(n_bars=n_bars, symbols=symbols, freq="1h", seed=seed)
    rng = np.random.default_rng(seed)
    fields = {f: getattr(p, f).copy() for f in FIELDS}
    holes = rng.random(fields["close"].shape) < 0.04
    for f in FIELDS:
        fields[f] = fields[f].mask(holes)
    fields["volume"] = fields["volume"].mask(rng.random(holes.shape) < 0.05, 0.0)
    flat = rng.random(holes.shape) < 0.03
    for f in ("open", "high", "low"):
        fields[f] = fields[f].mask(flat, fields["close"])
    fields["high"] = fields["high"].mask(rng.random(holes.shape) < 0.02)  # a close without its high
    return Panel(**fields, exchange="binance", timeframe="1h")


def _hlcv(panel: Panel, t: int) -> list[np.ndarray]:
    rows = [np.ascontiguousarray(getattr(panel, f).to_numpy(dtype=float)[t : t + 1].T) for f in FIELDS[1:]]
    for r in rows:  # read-only, as v2_stream passes them: the kernels' one compiled version
        r.flags.writeable = False
    return rows


@pytest.mark.parametrize("n", [1, 2, 3, 37])
def test_row_kernel_equals_series_k_bit_for_bit(n):
    """Fewer instruments than the prefetch distance too; 90 rows, so every ring wraps and resets."""
    symbols = tuple(f"S{i}" for i in range(n))
    panel = _holey_panel(150, symbols, seed=n)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 60)), "v2")
    s, rings, _, _ = v2_arrays(inc._state)
    a = (s.copy(), rings.copy(), v2_block(1, n))
    b = (s.copy(), rings.copy(), v2_block(1, n))
    for t in range(60, 150):
        row_k(*_hlcv(panel, t), a[0], a[1], a[2], _SERIES_POS)
        F.series_k(*_hlcv(panel, t), b[0], b[1], b[2], _SERIES_POS)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert np.isfinite(a[2][_SERIES_POS]).any()


def _arrays(states: tuple[StreamState, ...]) -> list[np.ndarray]:
    return [x for st in states for _, arrays in st._slots for x in arrays]


def _assert_states_equal(got: tuple[StreamState, ...], want: tuple[StreamState, ...]) -> None:
    assert [k for st in got for k, _ in st._slots] == [k for st in want for k, _ in st._slots]
    for x, y in zip(_arrays(got), _arrays(want), strict=True):
        np.testing.assert_array_equal(x, y)


def _bar(panel: Panel, t: int, rng: np.random.Generator, moved: bool) -> dict[str, np.ndarray]:
    bar = {f: getattr(panel, f).to_numpy(dtype=float)[t : t + 1].copy() for f in FIELDS}
    if moved:  # a late tick: some instruments' close (and high) moved, one lost its bar
        k = rng.integers(0, bar["close"].shape[1])
        bar["close"] *= 1.0 + 1e-3 * rng.standard_normal(bar["close"].shape)
        bar["high"] = np.maximum(bar["high"], bar["close"])
        for f in FIELDS:
            bar[f][0, k] = np.nan
    return bar


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_peek_commit_rollback_sequences_equal_plain_updates(feature_set, seed):
    """Random sequences of the live loop's calls (peek a bar, checkpoint, commit the bar last peeked or a
    moved one, roll back, commit several bars at once). After each call the committed state, every
    array of it, equals a state that only ever saw the committed bars; each peek equals that state's
    copy advanced by the peeked bar, array by array, scratch included."""
    symbols = ("A", "B", "C", "D", "E", "BTC/USDT")
    panel = _holey_panel(360, symbols, seed=seed)
    idx = panel.index
    rng = np.random.default_rng(seed)
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 200)), feature_set)
    ref = inc.copy()
    ref_ckpt: IncrementalFeatures | None = None
    last_peek: dict[str, np.ndarray] | None = None
    t = 200
    ops = {"peek": 0, "commit peeked": 0, "commit moved": 0, "rollback": 0, "commit rows": 0}
    while t < 350:
        op = rng.choice(["peek", "peek", "checkpoint", "commit", "commit", "rollback", "rows"])
        if op == "peek":
            last_peek = _bar(panel, t, rng, moved=bool(rng.random() < 0.3))
            feats, atr = inc.peek_arrays(idx[t : t + 1], last_peek)
            want = ref.copy()
            want.update_arrays(idx[t : t + 1], last_peek)
            np.testing.assert_array_equal(feats, want._last)
            np.testing.assert_array_equal(atr, want._atr)
            assert inc._scratch is not None
            _assert_states_equal(inc._scratch, (want._state, want._atr_state))
            ops["peek"] += 1
        elif op == "checkpoint":
            inc.checkpoint()
            ref_ckpt = ref.copy()
        elif op == "commit":
            peeked = last_peek is not None and rng.random() < 0.7
            bar = last_peek if peeked else _bar(panel, t, rng, moved=bool(rng.random() < 0.5))
            assert bar is not None
            inc.update_arrays(idx[t : t + 1], bar)
            ref.update_arrays(idx[t : t + 1], bar)
            ops["commit peeked" if peeked else "commit moved"] += 1
            t, last_peek = t + 1, None
        elif op == "rollback" and ref_ckpt is not None:
            inc.rollback()
            ref = ref_ckpt.copy()
            t = 200 if ref.ts is None else int(idx.get_loc(ref.ts)) + 1
            ops["rollback"] += 1
        elif op == "rows":
            k = int(rng.integers(2, 4))
            rows = {f: getattr(panel, f).to_numpy(dtype=float)[t : t + k] for f in FIELDS}
            inc.update_arrays(idx[t : t + k], rows)
            ref.update_arrays(idx[t : t + k], rows)
            t, last_peek = t + k, None
            ops["commit rows"] += 1
        assert inc.ts == ref.ts
        np.testing.assert_array_equal(inc._last, ref._last)
        np.testing.assert_array_equal(inc._atr, ref._atr)
        _assert_states_equal((inc._state, inc._atr_state), (ref._state, ref._atr_state))
    assert min(ops.values()) > 0, ops  # every kind of call happened
    assert inc.reused_peeks > 0


def test_update_from_a_panel_with_fewer_or_reordered_symbols():
    """A panel bar may list the instruments in another order or leave some out (NaN: no bar)."""
    panel = random_walk_panel(n_bars=260, symbols=("A", "B", "C", "D"), freq="1h")
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 250)), "v2")
    twin = inc.copy()
    bar = panel.iloc(slice(250, 251))
    some = Panel(
        **{f: getattr(bar, f)[["C", "A", "D"]] for f in FIELDS}, exchange=bar.exchange, timeframe=bar.timeframe
    )
    got = inc.update(some)
    full = {f: getattr(bar, f).to_numpy(dtype=float).copy() for f in FIELDS}
    for f in FIELDS:
        full[f][:, 1] = np.nan
    twin.update_arrays(bar.index, full)
    pd.testing.assert_frame_equal(got, twin.last)
    assert got.loc["B"].isna().all() and got.loc[["A", "C", "D"]].notna().any(axis=1).all()
    dup = Panel(
        **{f: getattr(panel.iloc(slice(251, 252)), f)[["A", "A"]] for f in FIELDS}, exchange="x", timeframe="1h"
    )
    with pytest.raises(ValueError, match="more than once"):
        inc.update(dup)
