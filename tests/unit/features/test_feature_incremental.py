"""Incremental update: the newest row from kept state equals the full recomputation, for all instruments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel
from workbench.features import IncrementalFeatures, build_features, feature_atr


def assert_rows_equal(got: pd.DataFrame, expected: pd.DataFrame, exact: bool) -> None:
    expected = expected.reindex(index=got.index, columns=got.columns)
    a, b = got.to_numpy(), expected.to_numpy()
    assert (np.isnan(a) == np.isnan(b)).all()
    if exact:
        np.testing.assert_array_equal(a, b)
    else:  # v1's batch is the original numpy code; its stream twin sums windows in another order
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_update_equals_full_recomputation_on_real_data(sp500_panel, feature_set):
    full = build_features(sp500_panel, feature_set)
    atr = feature_atr(sp500_panel, 14)
    start = 900
    inc = IncrementalFeatures.from_history(sp500_panel.iloc(slice(0, start)), feature_set)
    assert inc.ts == sp500_panel.index[start - 1]
    for t in range(start, start + 25):
        row = inc.update(sp500_panel.iloc(slice(t, t + 1)))
        assert_rows_equal(row, full.xs(sp500_panel.index[t], level="ts"), exact=feature_set == "v2")
        np.testing.assert_allclose(inc.atr.to_numpy(), atr.iloc[t].to_numpy(), rtol=1e-10)
    assert row.notna().all().all()


def test_missing_bars_mapping_input_and_late_symbol():
    panel = random_walk_panel(n_bars=260, symbols=("A", "B", "C", "BTC/USDT"), late_start={"C": 150}, freq="1h")
    panel = type(panel)(
        **{f: getattr(panel, f).copy() for f in ("open", "high", "low", "close", "volume")},
        exchange="binance",
        timeframe="1h",
    )
    for f in ("open", "high", "low", "close", "volume"):
        getattr(panel, f).iloc[205:209, 1] = np.nan  # B misses four bars in the live window
    full = build_features(panel, "v2")
    inc = IncrementalFeatures.from_history(panel.iloc(slice(0, 200)), "v2")
    for t in range(200, 260):
        if t % 2:
            row = inc.update(panel.iloc(slice(t, t + 1)))
        else:  # the live loop's shape: one Series per field, symbols as index (one symbol absent = no bar)
            bar = {
                f: getattr(panel, f).iloc[t].drop("A") if t == 230 else getattr(panel, f).iloc[t]
                for f in ("open", "high", "low", "close", "volume")
            }
            bar["ts"] = panel.index[t]
            if t == 230:
                for f in ("open", "high", "low", "close", "volume"):
                    getattr(panel, f).iloc[t, 0] = np.nan
                full = build_features(panel, "v2")
            row = inc.update(bar)
        exp = full.xs(panel.index[t], level="ts")
        present = row.index.isin(exp.index)
        assert row[~present].isna().all().all()  # no bar this cycle → NaN row
        assert_rows_equal(row[present], exp, exact=True)
    assert row.loc["C"].notna().all()  # the late listing warmed up inside the live window


def test_update_is_batchable_and_checks_input(rw_panel):
    inc = IncrementalFeatures.from_history(rw_panel.iloc(slice(0, 300)), "v2")
    twin = inc.copy()
    last = inc.update(rw_panel.iloc(slice(300, 310)))  # ten bars at once
    for t in range(300, 310):
        one = twin.update(rw_panel.iloc(slice(t, t + 1)))
    pd.testing.assert_frame_equal(last, one)
    with pytest.raises(ValueError, match="later than the last one"):
        inc.update(rw_panel.iloc(slice(305, 306)))
    bar = {
        f: getattr(rw_panel, f).iloc[311].rename({"SYN-A": "NEW"}) for f in ("open", "high", "low", "close", "volume")
    }
    with pytest.raises(ValueError, match="from_history"):
        inc.update({**bar, "ts": rw_panel.index[311]})


@pytest.mark.parametrize("symbols", [("A", "B", "C", "D", "BTC/USDT"), ("A", "B", "C", "D", "E")])
def test_v2_universe_change_warms_up_newcomers_only(symbols):
    """A leaves, C joins at bar 200 with 100 bars of history: the state then equals a full recomputation
    in which the newcomer's bars start at the history given (beta against BTC, or the universe's average,
    which both changes move)."""
    from workbench.data.panel import FIELDS, Panel

    p = random_walk_panel(n_bars=260, symbols=symbols, freq="1h")
    p = Panel(**{f: getattr(p, f) for f in FIELDS}, exchange="binance", timeframe="1h")

    def sub(panel: Panel, cols) -> Panel:
        return Panel(**{f: getattr(panel, f)[list(cols)] for f in FIELDS}, exchange="binance", timeframe="1h")

    inc = IncrementalFeatures.from_history(sub(p.iloc(slice(0, 200)), [s for s in symbols if s != "C"]), "v2")
    inc.keep_symbols([s for s in inc.symbols if s != "A"])
    if "BTC/USDT" not in symbols:  # the average moved with A: the state must not go on before add_symbols
        with pytest.raises(ValueError, match="add_symbols"):
            inc.update(sub(p.iloc(slice(200, 201)), inc.symbols))
    universe = [s for s in symbols if s != "A"]
    inc.add_symbols(sub(p.iloc(slice(100, 200)), universe))
    assert set(inc.symbols) == set(universe)
    ref = Panel(**{f: getattr(p, f).copy() for f in FIELDS}, exchange="binance", timeframe="1h")
    for f in FIELDS:
        getattr(ref, f).iloc[:100, symbols.index("C")] = np.nan  # the newcomer's history starts at bar 100
    full = IncrementalFeatures.from_history(sub(ref.iloc(slice(0, 200)), inc.symbols), "v2")
    assert_rows_equal(inc.last, full.last, exact=False)
    for t in range(200, 210):
        got = inc.update(sub(p.iloc(slice(t, t + 1)), inc.symbols))
        assert_rows_equal(got, full.update(sub(p.iloc(slice(t, t + 1)), inc.symbols)), exact=False)
    assert got.loc["C"].notna().all() and got["beta_60"].notna().all()


def _fields(panel, t: int) -> dict[str, np.ndarray]:
    return {
        f: getattr(panel, f).to_numpy(dtype=float)[t : t + 1].copy() for f in ("open", "high", "low", "close", "volume")
    }


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_committing_the_bar_last_peeked_reuses_the_peek_and_the_checkpoint_still_rolls_back(rw_panel, feature_set):
    """The live cycle: peek the forming bar, then (once it closed) checkpoint and commit it. Committing
    the very bar last peeked takes the peek's state instead of computing it again; a bar that moved
    since (a late tick), or a caller who reused its arrays, is computed; rollback returns to the
    checkpoint either way. Every row equals the same bars committed by a fresh state."""
    ref = IncrementalFeatures.from_history(rw_panel.iloc(slice(0, 300)), feature_set)
    inc = ref.copy()
    idx = rw_panel.index
    for t in range(300, 306):
        ref.update_arrays(idx[t : t + 1], _fields(rw_panel, t))
        bar = _fields(rw_panel, t)
        peeked, _ = inc.peek_arrays(idx[t : t + 1], bar)
        inc.checkpoint()
        if t == 303:  # a late tick moved the close after the last peek
            bar["close"] = bar["close"] * 1.001
            inc.update_arrays(idx[t : t + 1], bar)
            inc.rollback()  # the engine sees the revision and commits the bar as it now stands
            bar = _fields(rw_panel, t)
        if t == 304:  # the caller reused (wrote into) the arrays it peeked with
            bar["high"][:] = bar["high"] * 1.01
            inc.update_arrays(idx[t : t + 1], bar)
            inc.rollback()
            bar = _fields(rw_panel, t)
        inc.update_arrays(idx[t : t + 1], bar)
        assert_rows_equal(inc.last, ref.last, exact=True)
        np.testing.assert_array_equal(inc.atr.to_numpy(), ref.atr.to_numpy())
        if t not in (303, 304):
            np.testing.assert_array_equal(peeked, ref.last.to_numpy())
    assert inc.reused_peeks == 4  # 300, 301, 302, 305: the others were computed

    # a checkpoint taken before a reused peek still rolls back to the state before that bar
    inc.peek_arrays(idx[306:307], _fields(rw_panel, 306))
    inc.checkpoint()
    inc.update_arrays(idx[306:307], _fields(rw_panel, 306))
    assert inc.reused_peeks == 5
    inc.rollback()
    assert inc.ts == idx[305]
    moved = _fields(rw_panel, 306)
    moved["low"] = moved["low"] * 0.99
    inc.update_arrays(idx[306:307], moved)
    ref.update_arrays(idx[306:307], moved)
    assert_rows_equal(inc.last, ref.last, exact=True)
    for t in range(307, 310):  # and the state carries on equal
        inc.update_arrays(idx[t : t + 1], _fields(rw_panel, t))
        ref.update_arrays(idx[t : t + 1], _fields(rw_panel, t))
    assert_rows_equal(inc.last, ref.last, exact=True)
