"""The incremental signal engine gives the signals of the full recomputation, cycle after cycle.

The reference is today's path (``signals_for_panel`` on the panel, last row) run on *all* the
history the engine has seen since it warmed up: that is what "equal to a full recomputation"
means for recursive features. Real data (the S&P 500 CSVs) and synthetic panels with gaps, late
listings, a changing universe, a revised bar, a restart and a moving forming bar.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.research_kit import random_walk_panel, read_sp500
from workbench.config import SignalParams
from workbench.data.panel import FIELDS, Panel
from workbench.features.incremental import IncrementalFeatures
from workbench.models.training import train
from workbench.signals import Signal
from workbench.trading.engine import ModelSignalEngine, incremental_blocker
from workbench.trading.loop import ModelSignalEngine as FromLoop

PARAMS = SignalParams(hold_below=0.3)
WINDOW = 60


def assert_same_signals(got: list[Signal], expected: list[Signal]) -> None:
    assert [s.symbol for s in got] == [s.symbol for s in expected]
    for a, b in zip(got, expected, strict=True):
        assert (a.signal, a.ts, a.exchange) == (b.signal, b.ts, b.exchange), (a, b)
        for name in ("strength", "confidence", "price", "target_price", "stop_loss", "take_profit"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), (name, a, b)
            if x is not None:
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (name, a, b)


def assert_same_state(engine: ModelSignalEngine, expected: dict[str, pd.Series]) -> None:
    """The engine's committed feature rows equal ``expected`` (a full recomputation's, per symbol):
    stricter than the signals, which a tree model keeps equal under small feature differences."""
    last = engine._inc.last
    assert set(last.index) == set(expected)
    for sym, row in expected.items():
        np.testing.assert_allclose(last.loc[sym].to_numpy(), row.to_numpy(), rtol=1e-9, atol=1e-12, err_msg=sym)


def features(model, panel: Panel) -> pd.DataFrame:
    return IncrementalFeatures.from_history(panel, model.feature_set, PARAMS.atr_window).last


def reference(model, panel: Panel) -> list[Signal]:
    return ModelSignalEngine(model, PARAMS, incremental=False).signals(panel)


def windows(panel: Panel, start: int, stop: int, window: int = WINDOW):
    """What a feed hands the engine: the last ``window`` bars, the forming bar last."""
    for t in range(start, stop):
        yield t, panel.iloc(slice(max(0, t - window + 1), t + 1))


def with_values(panel: Panel, fn) -> Panel:
    return Panel(
        **{f: fn(f, getattr(panel, f).copy()) for f in FIELDS}, exchange=panel.exchange, timeframe=panel.timeframe
    )


@pytest.fixture(scope="module")
def rw():
    panel = random_walk_panel(
        n_bars=420, symbols=("A", "B", "C", "D", "BTC/USDT"), late_start={"C": 300}, early_end={"D": 380}, freq="1h"
    )
    panel = Panel(**{f: getattr(panel, f) for f in FIELDS}, exchange="binance", timeframe="1h")

    def holes(f, frame):  # B misses bars inside the live stretch
        frame.iloc[335:339, 1] = np.nan
        return frame

    return with_values(panel, holes)


@pytest.fixture(scope="module")
def models(rw):
    return {fs: train(rw.iloc(slice(0, 250)), feature_set=fs, params={"n_estimators": 30}) for fs in ("v1", "v2")}


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_equals_full_recomputation_over_many_cycles(rw, models, feature_set):
    model = models[feature_set]
    engine = ModelSignalEngine(model, PARAMS)
    assert engine.path == "incremental"
    first = 260 - WINDOW + 1
    n_signals = 0
    for t, window in windows(rw, 260, 420):
        got = engine.signals(window)
        assert_same_signals(got, reference(model, rw.iloc(slice(first, t + 1))))
        n_signals += sum(s.signal != "HOLD" for s in got)
    assert engine.rebuilds == ["warm-up"]
    assert n_signals > 50  # the comparison covered real BUY/SELL signals with prices, not only HOLDs


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_on_real_data(shared_data, feature_set):
    panel = read_sp500(shared_data)
    model = train(panel.iloc(slice(0, 700)), feature_set=feature_set, params={"n_estimators": 30})
    engine = ModelSignalEngine(model, PARAMS)
    first = 900 - 120 + 1
    for t, window in windows(panel, 900, 940, window=120):
        got = engine.signals(window)
        assert_same_signals(got, reference(model, panel.iloc(slice(first, t + 1))))
    assert len(got) == len(panel.symbols) and engine.rebuilds == ["warm-up"]
    # On the first cycle the engine is exactly today's windowed path; later it has more history.
    fresh = ModelSignalEngine(model, PARAMS)
    assert_same_signals(fresh.signals(window), reference(model, window))


def test_the_forming_bar_is_never_committed(rw, models):
    """Mid-bar the forming bar moves; only its closed values may enter the state."""
    model = models["v1"]
    moving, closed_only = ModelSignalEngine(model, PARAMS), ModelSignalEngine(model, PARAMS)
    rng = np.random.default_rng(3)
    for _t, window in windows(rw, 260, 330):
        bump = 1 + rng.normal(0, 0.03, window.close.shape[1])

        def mid_bar(f, frame, bump=bump):
            if f != "volume":
                frame.iloc[-1] = frame.iloc[-1].to_numpy() * bump
            return frame

        early = moving.signals(with_values(window, mid_bar))
        assert early[0].price != closed_only.signals(window)[0].price
        assert_same_signals(moving.signals(window), closed_only.signals(window))


def test_late_ticks_revising_the_bar_that_just_ended_cost_one_bar_not_a_rebuild(rw, models):
    """The live feed shows the bar that has just ended as it stands; late ticks may still move it."""
    model = models["v2"]
    engine = ModelSignalEngine(model, PARAMS)
    first = 260 - WINDOW + 1
    for t, window in windows(rw, 260, 300):

        def as_it_stands(f, frame):  # the just-ended bar, before its last ticks
            if f in ("close", "volume"):
                frame.iloc[-2] = frame.iloc[-2] * 0.997
            return frame

        engine.signals(with_values(window, as_it_stands))
        assert_same_signals(engine.signals(window), reference(model, rw.iloc(slice(first, t + 1))))
    assert engine.rebuilds == ["warm-up"] and engine.rollbacks == 40


def test_universe_changes_v1_warm_up_newcomers_only(rw, models):
    """C joins at bar 320; A leaves at 360 and comes back at 370, warmed up again from that panel."""
    model = models["v1"]
    engine = ModelSignalEngine(model, PARAMS)
    first = 260 - WINDOW + 1
    for t, window in windows(rw, 260, 420):
        cols = [c for c in window.symbols if not (t < 320 and c == "C") and not (360 <= t < 370 and c == "A")]
        got = engine.signals(subset(window, cols))
        expected = reference(model, subset(rw.iloc(slice(first, t + 1)), cols))
        if t >= 370:  # v1 is per instrument: A's reference is its own history since it came back
            again = {s.symbol: s for s in reference(model, subset(rw.iloc(slice(370 - WINDOW + 1, t + 1)), ["A"]))}
            expected = [again.get(s.symbol, s) for s in expected]
        assert_same_signals(got, expected)
        if t >= 400:  # once their features have warmed up, the newcomers trade
            assert {"A", "C"} <= {s.symbol for s in got}
    assert engine.rebuilds == ["warm-up"]  # newcomers were warmed up alone, nothing rebuilt


def subset(panel: Panel, cols: list[str]) -> Panel:
    return Panel(**{f: getattr(panel, f)[cols] for f in FIELDS}, exchange=panel.exchange, timeframe=panel.timeframe)


def without_btc(panel: Panel) -> Panel:
    return subset(panel, [c for c in panel.symbols if c != "BTC/USDT"])


@pytest.mark.parametrize("benchmark", ["BTC", "average"])
def test_universe_changes_v2_warm_up_newcomers_only(rw, models, benchmark):
    """A joins at bar 300, D leaves at 340: A is warmed up alone from the panel it joined in, D dropped,
    nothing rebuilt. Beta's benchmark is BTC, or without BTC the universe's average (which both changes
    move: everyone's beta/corr state is replayed from the panel, equal once 60 bars of it are valid)."""
    model = models["v2"]
    panel = rw if benchmark == "BTC" else without_btc(rw)
    window = 130
    engine = ModelSignalEngine(model, PARAMS)
    first, joined = 260 - window + 1, 300 - window + 1
    for t, win in windows(panel, 260, 370, window=window):
        cols = [c for c in win.symbols if not (t < 300 and c == "A") and not (t >= 340 and c == "D")]
        got = engine.signals(subset(win, cols))
        expected = reference(model, subset(panel.iloc(slice(first, t + 1)), cols))
        if t >= 300:  # A's reference is its own history since it joined (the other features equal)
            again = {s.symbol: s for s in reference(model, subset(panel.iloc(slice(joined, t + 1)), cols))}
            expected = [again["A"] if s.symbol == "A" else s for s in expected]
        assert_same_signals(got, expected)
    assert {"A"} <= {s.symbol for s in got} and "D" not in {s.symbol for s in got}
    assert engine.rebuilds == ["warm-up"]  # nothing rebuilt: no full warm-up at a universe change
    full = features(model, subset(panel.iloc(slice(first, t)), cols))
    again = features(model, subset(panel.iloc(slice(joined, t)), cols))
    assert_same_state(engine, {s: (again if s == "A" else full).loc[s] for s in cols})


def test_gap_longer_than_the_window_rebuilds_and_a_revised_bar_is_committed_again(rw, models):
    model = models["v1"]
    engine = ModelSignalEngine(model, PARAMS)
    engine.signals(rw.iloc(slice(200, 260)))
    engine.signals(rw.iloc(slice(201, 261)))
    got = engine.signals(rw.iloc(slice(300, 360)))  # the feed was away for 40 bars
    assert "no longer holds" in engine.rebuilds[-1]
    assert_same_signals(got, reference(model, rw.iloc(slice(300, 360))))

    def backfilled(f, frame):  # late ticks moved the bar the engine committed last cycle
        frame.loc[rw.index[358]] = frame.loc[rw.index[358]] * 1.01
        return frame

    got = engine.signals(with_values(rw.iloc(slice(301, 361)), backfilled))
    assert engine.rollbacks == 1 and len(engine.rebuilds) == 2  # one bar committed again, no rebuild
    assert_same_signals(got, reference(model, with_values(rw.iloc(slice(300, 361)), backfilled)))


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_a_backfill_of_past_bars_warms_their_instruments_again(rw, models, feature_set):
    """B's bars 325–328 were missing (a disconnect) and arrive at bar 340 from the venue's history."""
    model = models[feature_set]
    engine = ModelSignalEngine(model, PARAMS)
    gap = rw.index[325:329]

    def missing(f, frame):
        frame.loc[frame.index.isin(gap), "B"] = np.nan
        return frame

    for t, window in windows(rw, 300, 350):
        got = engine.signals(with_values(window, missing) if t < 340 else window)
    since = 340 - WINDOW + 1  # the panel at the backfill: what B is warmed up from again
    assert engine.rebuilds == ["warm-up"]  # only B warmed up again (under v2 its beta too)
    again = {s.symbol: s for s in reference(model, rw.iloc(slice(since, 350)))}
    expected = [again["B"] if s.symbol == "B" else s for s in reference(model, rw.iloc(slice(300 - WINDOW + 1, 350)))]
    assert "B" in {s.symbol for s in got}
    assert_same_signals(got, expected)


@pytest.mark.parametrize("feature_set", ["v1", "v2"])
def test_a_backfill_older_than_64_bars_is_seen(rw, models, feature_set):
    """B's bars 300–303 arrive from the venue at bar 390, 87 bars later: the whole panel is checked."""
    model = models[feature_set]
    engine = ModelSignalEngine(model, PARAMS)
    window = 150
    gap = rw.index[300:304]

    def missing(f, frame):
        frame.loc[frame.index.isin(gap), "B"] = np.nan
        return frame

    for t, win in windows(rw, 280, 395, window=window):
        got = engine.signals(with_values(win, missing) if t < 390 else win)
    assert engine.rebuilds == ["warm-up"] and engine.rewarmed == 1
    full = features(model, with_values(rw.iloc(slice(280 - window + 1, t)), missing))
    again = features(model, rw.iloc(slice(390 - window + 1, t)))
    assert_same_state(engine, {s: (again if s == "B" else full).loc[s] for s in rw.symbols})
    again = {s.symbol: s for s in reference(model, rw.iloc(slice(390 - window + 1, 395)))}
    expected = [
        again["B"] if s.symbol == "B" else s
        for s in reference(model, with_values(rw.iloc(slice(280 - window + 1, 395)), missing))
    ]
    assert "B" in {s.symbol for s in got}
    assert_same_signals(got, expected)


@pytest.mark.parametrize(
    ("feature_set", "field", "factor"), [("v1", "high", 1.5), ("v2", "low", 0.5), ("v2", "volume", 3.0)]
)
def test_a_backfill_that_corrects_only_high_low_or_volume_is_seen(rw, models, feature_set, field, factor):
    """B's bars 320–323 showed a wrong ``field`` (its close right) until the venue's history corrected
    them at bar 340: the check compares every field the features read, not only the close."""
    model = models[feature_set]
    engine = ModelSignalEngine(model, PARAMS)
    bad = rw.index[320:324]

    def wrong(f, frame):
        if f == field:
            frame.loc[frame.index.isin(bad), "B"] *= factor
        return frame

    for t, window in windows(rw, 300, 350):
        engine.signals(with_values(window, wrong) if t < 340 else window)
    assert engine.rebuilds == ["warm-up"] and engine.rewarmed == 1
    full = features(model, with_values(rw.iloc(slice(300 - WINDOW + 1, t)), wrong))
    again = features(model, rw.iloc(slice(340 - WINDOW + 1, t)))
    assert not np.allclose(full.loc["B"], again.loc["B"], equal_nan=True)  # the correction matters
    assert_same_state(engine, {s: (again if s == "B" else full).loc[s] for s in rw.symbols})


def test_restart_from_the_same_history_trades_the_same_signals(rw, models):
    model = models["v2"]
    running = ModelSignalEngine(model, PARAMS)
    restarted = None
    for t in range(260, 330):
        history = rw.iloc(slice(200, t + 1))  # the lake: everything since the run's warm-up
        sigs = running.signals(history.tail(WINDOW) if t > 260 else history)
        if t == 300:
            restarted = ModelSignalEngine(model, PARAMS)  # the process died; warm up from the lake
        if restarted is not None:
            assert_same_signals(restarted.signals(history if t == 300 else history.tail(WINDOW)), sigs)


def test_models_the_state_cannot_serve_take_the_full_path(rw, models):
    model = models["v1"]

    class Sequence:  # what serving sees of an LSTM: a lookback of several rows
        feature_set, feature_names, lookback = model.feature_set, model.feature_names, 5
        strength_reference = model.strength_reference

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return model.predict_proba(X)

    engine = ModelSignalEngine(Sequence(), PARAMS)
    assert engine.path.startswith("full recompute (a sequence model (lookback 5)")
    window = rw.iloc(slice(200, 260))
    assert_same_signals(engine.signals(window), reference(model, window))
    assert incremental_blocker(type("M", (), {"feature_set": "v9", "feature_names": ("x",)})()) is not None
    assert FromLoop is ModelSignalEngine
