"""Cycle discipline: cycles start on a fixed schedule (t0 + k·interval), an overrunning cycle never
overlaps the next and its lost ticks are skipped with a WARNING naming the slow stages, every cycle's
stage timings are stored and shown by ``live status``, and the heartbeat tells OK / STALLED / DEAD."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.kit.models import MomentumEngine, synthetic_panel
from workbench.trading.cycle import STAGES, Schedule, StageClock, Stop, drive, heartbeat_state, timing_summary
from workbench.trading.feeds import ReplayFeed
from workbench.trading.runner import run_live, status
from workbench.trading.store import Store


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class TimedFeed:
    """A replay feed that notes the monotonic time each cycle starts (asks for its bar) and ends."""

    def __init__(self, n_symbols: int = 4, bars: int = 30) -> None:
        self.inner = ReplayFeed.from_panel(synthetic_panel(n_symbols, 80 + bars), warmup_bars=40, replay_bars=bars)
        self.starts: list[float] = []

    @property
    def cursor(self) -> int:
        return self.inner.cursor

    @cursor.setter
    def cursor(self, value: int) -> None:
        self.inner.cursor = value

    def next(self):
        self.starts.append(time.monotonic())
        return self.inner.next()


class SlowEngine(MomentumEngine):
    """The kit's momentum rule, taking ``base_s`` per call and ``slow_s`` on call ``slow_on``."""

    def __init__(self, base_s: float = 0.0, slow_on: int | None = None, slow_s: float = 0.0) -> None:
        super().__init__(lookback=10, gain=3.0)
        self.base_s, self.slow_on, self.slow_s = base_s, slow_on, slow_s

    def signals(self, panel):
        out = super().signals(panel)
        time.sleep(self.slow_s if self.calls == self.slow_on else self.base_s)
        return out


# ---- pure parts ----------------------------------------------------------------------------------------
def test_schedule_ticks_are_fixed_and_an_overrun_skips_the_lost_ticks():
    clock = Clock(100.0)
    s = Schedule(10.0, t0=100.0, clock=clock)
    clock.t = 103.0  # tick 0 took 3 s: tick 1 is next, at 110, nothing skipped
    assert s.after(0) == (1, 0) and s.due(1) == 110.0
    clock.t = 134.5  # tick 1 ran until 134.5: ticks 2 and 3 (120, 130) are lost, tick 4 at 140 is next
    assert s.after(1) == (4, 2) and s.due(4) == 140.0
    assert Schedule(0.0, t0=0.0, clock=clock).after(7) == (8, 0)  # no interval: back to back, never "skipped"


def test_stage_clock_books_interleaved_stages_and_beats_between_them():
    clock, beats = Clock(0.0), []
    sc = StageClock(beat=lambda: beats.append(clock.t), beat_every_s=5.0, clock=clock)
    for stage, dt in [
        ("data", 1.0),
        ("risk", 0.5),
        ("orders", 2.0),
        ("risk", 0.5),
        ("orders", 2.0),
        ("portfolio", 0.1),
    ]:
        clock.t += dt
        sc.lap(stage)
    assert sc.times["risk"] == pytest.approx(1.0) and sc.times["orders"] == pytest.approx(4.0)
    assert sc.total == pytest.approx(6.1) and sc.slowest(2) == [("orders", 4.0), ("data", 1.0)]
    assert beats == [pytest.approx(6.0)]  # the first lap past 5 s beats, once


def test_heartbeat_state():
    assert heartbeat_state("RUNNING", True, 3.0) == "OK"
    assert heartbeat_state("RUNNING", True, 600.0) == "STALLED"
    assert heartbeat_state("RUNNING", False, 3.0) == "DEAD"
    assert heartbeat_state("STOPPED", False, 600.0) is None


# ---- the loop's schedule, on a stand-in cycle (exact timing: nothing else runs in it) -------------------
class Result:
    exhausted, started, note = False, None, None


def stand_in(durations: dict[int, float], default: float, starts: list[float]):
    """A ``run_cycle`` that only takes time: ``durations[k]`` seconds on cycle k, else ``default``."""

    def run_cycle(ctx, clock):
        ctx.cycle += 1
        starts.append(time.monotonic())
        time.sleep(durations.get(ctx.cycle, default))
        clock.lap("inference")
        return Result()

    return run_cycle


def ctx_for(settings):
    store = Store(settings.store_url).create()
    run_id = store.start_run("paper", "paper", "paper", "m", 0.25, 1)
    return SimpleNamespace(store=store, run_id=run_id, cycle=0, breakers=None, entries_paused=False)


def test_cycles_start_on_the_schedule_not_a_sleep_after_each_cycle(settings):
    """Each cycle takes 0.1 s of a 0.25 s interval: sleeping the interval after each cycle would drift
    0.1 s per cycle (0.35 s apart); on the schedule the starts stay at t0 + k·0.25."""
    ctx, starts = ctx_for(settings), []
    msg = drive(ctx, Stop(), 0.25, 6, stand_in({}, 0.1, starts))
    assert msg == "completed 6 cycle(s)"
    st = ctx.store.cycle_stages(ctx.run_id)
    assert list(st["cycle"]) == [1, 2, 3, 4, 5, 6]
    # On a loaded machine a cycle may overrun and skip a tick (recorded): the schedule then resumes on the
    # tick after, so each start is due at t0 + (k + ticks skipped so far)·0.25 and lateness never adds up.
    skipped = st["skipped_ticks"].cumsum().shift(fill_value=0).tolist()
    drift = [s - (starts[0] + (k + skipped[k]) * 0.25) for k, s in enumerate(starts)]
    assert all(-0.005 <= d < 0.2 for d in drift), drift  # (sleeping after each cycle: 0.5 s by the 6th)
    assert sum(skipped) == 0 or not ctx.store.events(ctx.run_id, kind="overrun").empty


def test_an_overrun_skips_ticks_never_overlaps_and_warns_naming_the_slow_stage(settings):
    ctx, starts = ctx_for(settings), []
    drive(ctx, Stop(), 0.25, 4, stand_in({2: 0.65}, 0.02, starts))  # cycle 2 runs from 0.25 s to 0.9 s
    assert starts[2] - starts[1] >= 0.65  # cycle 3 began after cycle 2 ended: no overlap
    assert starts[2] - starts[0] == pytest.approx(4 * 0.25, abs=0.1)  # at the next tick (1.0 s): 0.5, 0.75 skipped
    assert starts[3] - starts[0] == pytest.approx(5 * 0.25, abs=0.1)  # and back on the schedule
    stages = ctx.store.cycle_stages(ctx.run_id).set_index("cycle")
    assert list(stages["skipped_ticks"]) == [0, 2, 0, 0] and stages.loc[2, "inference_s"] >= 0.65
    (warning,) = ctx.store.events(ctx.run_id, kind="overrun").itertuples()
    assert warning.level == "WARNING" and "cycle 2 took 0.6" in warning.message
    assert "2 scheduled tick(s) skipped" in warning.message and "Slowest stages: inference" in warning.message


# ---- in a run ------------------------------------------------------------------------------------------
def test_a_slow_model_in_a_run_is_named_by_the_overrun_warning_and_live_status(settings):
    eng = SlowEngine(base_s=0.0, slow_on=2, slow_s=1.5)  # cycle 2 spends 1.5 s in the model
    rid = run_live(settings, engine=eng, feed=TimedFeed(), interval_s=0.4, min_interval_s=0, cycles=3)
    store = Store(settings.store_url)
    stages = store.cycle_stages(rid).set_index("cycle")
    assert stages.loc[2, "inference_s"] >= 1.5 and stages.loc[2, "skipped_ticks"] >= 2
    warnings = store.events(rid, kind="overrun")
    assert any("cycle 2 took" in m and "Slowest stages: inference" in m for m in warnings["message"])
    st = status(settings, run_id=rid)
    assert st["last_cycle"]["cycle"] == 3 and set(st["last_cycle"]["stages_s"]) == set(STAGES)
    assert st["recent"]["cycles"] == 3 and st["recent"]["overruns"] >= 1 and st["recent"]["skipped_ticks"] >= 2
    assert st["recent"]["slowest_stage"] == "inference" and st["recent"]["max_s"] >= 1.5
    assert st["heartbeat"] is None  # an ended run has no heartbeat state


def test_stage_timings_cover_the_cycle_and_the_summary_reads_them(settings):
    rid = run_live(
        settings, engine=SlowEngine(base_s=0.05), feed=TimedFeed(), interval_s=0.0, min_interval_s=0, cycles=3
    )
    df = Store(settings.store_url).cycle_stages(rid)
    parts = df[[f"{s}_s" for s in STAGES]].sum(axis=1)
    assert (parts <= df["total_s"] + 1e-5).all() and (parts >= 0.9 * df["total_s"]).all()  # nothing unaccounted
    assert (df["data_s"] > 0).all() and (df["orders_s"] > 0).all() and (df["portfolio_s"] > 0).all()
    assert (df["venues"] == "paper=closed").all() and not df["entries_paused"].any()
    assert timing_summary(df.iloc[:0]) == {"last_cycle": None, "recent": None}
    assert timing_summary(df)["last_cycle"]["cycle"] == 3


def test_a_registered_model_books_features_and_inference_apart_with_the_same_signals():
    from workbench.config import SignalParams
    from workbench.models.backup import BackupModel
    from workbench.trading.loop import ModelSignalEngine

    panel = synthetic_panel(4, 150)
    eng = ModelSignalEngine(BackupModel(), SignalParams())
    clock = StageClock()
    staged = eng.signals(panel, lap=clock.lap)
    assert clock.times["features"] > 0 and clock.times["inference"] > 0
    assert staged == eng.signals(panel) and len(staged) == 4


def test_the_collector_is_held_off_during_a_cycle_and_a_run_s_start_is_frozen_until_it_ends(settings):
    """A cycle runs with Python's cyclic GC off (a pass in the middle of a big batch walks every live
    object); between cycles it is on, collects what is new, and the objects the run began with are
    frozen out of its passes only while the run's loop lasts."""
    import gc

    from workbench.trading import phase2

    seen: list[tuple[bool, int]] = []

    def cycle(ctx, clock):
        with phase2.gc_paused():  # what phase2.run_cycle wraps its body in
            seen.append((gc.isenabled(), gc.get_freeze_count()))
        ctx.cycle += 1
        clock.lap("inference")
        return Result()

    assert gc.isenabled() and gc.get_freeze_count() == 0
    drive(ctx_for(settings), Stop(), 0.05, 3, cycle)
    assert [on for on, _ in seen] == [False, False, False] and all(n > 0 for _, n in seen)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()  # a caller that runs with the collector off keeps it off
    try:
        with phase2.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
