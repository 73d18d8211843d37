"""Cycle discipline: the schedule the live loop keeps, the stage clock every cycle carries, and what a
run does when its store cannot be written.

Why a fixed schedule: "sleep ``interval`` after each cycle" drifts by the cycle's own length every
time, so a 30-second strategy trades at 30 s + whatever the cycle took, later every bar. Here cycle
*k* is due at ``t0 + k·interval``. A cycle that overruns its slot never overlaps the next (the loop is
one thread and a cycle runs to its end); the ticks it ran over are *skipped*, not caught up in a
burst, and a WARNING names the stages that took the time, so the operator knows whether to shrink the
universe, the model or the interval. (Freqtrade warns when a strategy takes more than a quarter of a
candle; here the warning carries the per-stage split, and every cycle's split is stored.)

Every cycle's stage timings — data, features, inference, signals, risk, orders, portfolio — go to the
``cycle_stages`` table (``Store.add_cycle_stages``/``cycle_stages``), with the ticks skipped and the
venues' circuit breaker states; ``live status`` shows the last one and a short summary of the recent
ones, the dashboard charts them. The heartbeat is written between stages (at most every
``HEARTBEAT_S``) as well as while waiting, so a slow cycle still shows a live process; a process that
stops beating for ``STALL_AFTER_S`` is reported STALLED, one that is gone DEAD.
"""

from __future__ import annotations

import errno
import gc
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import TemporaryError

if TYPE_CHECKING:
    from workbench.trading.loop import LiveContext
    from workbench.trading.store import Store

__all__ = [
    "STAGES",
    "HEARTBEAT_S",
    "STALL_AFTER_S",
    "POLL_S",
    "StageClock",
    "Schedule",
    "Stop",
    "poll",
    "wait_until",
    "drive",
    "gc_paused",
    "collect_between_cycles",
    "gc_frozen",
    "timing_summary",
    "heartbeat_state",
    "is_store_error",
    "try_finish",
    "store_failed",
    "store_failure_note",
]

log = logging.getLogger(__name__)

STAGES = ("data", "features", "inference", "signals", "risk", "orders", "portfolio")
HEARTBEAT_S = 5.0
STALL_AFTER_S = 60.0
"""A live process that has not beaten for this long is STALLED: cycles beat between stages and waits
beat every ``HEARTBEAT_S``, so only a single stage (or call) hung for a minute gets here."""
POLL_S = 0.05


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for one cycle. Why: a cycle that books thousands of
    orders allocates hundreds of thousands of small containers, and each generation-2 pass in the
    middle of it walks every object the process holds (the model, the panel, the row dicts) — seconds
    at 20,000 instruments. Reference counting still frees nearly everything at once; the few cycles
    left are collected by ``collect_between_cycles`` while the loop waits for its next tick."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextmanager
def gc_frozen() -> Iterator[None]:
    """For a run's lifetime, what the process holds when it starts cycling (the model, the history,
    the libraries) is frozen out of the collector's passes (``gc.freeze``), so the pass after each
    cycle walks only what is new; unfrozen again when the run's loop ends."""
    mine = gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def collect_between_cycles() -> float:
    """Collect what the cycle left in reference cycles, off the cycle's clock (the loop is idle until
    its next tick; under ``gc_frozen`` this walks only objects made since the run began). Returns the
    seconds it took."""
    t0 = time.perf_counter()
    gc.collect()
    return time.perf_counter() - t0


class StageClock:
    """Wall time per stage of one cycle: ``lap(stage)`` books the time since the previous lap to
    ``stage`` (stages may interleave, e.g. risk and orders per signal; their times add up), and beats
    the heartbeat when ``beat_every_s`` has passed since the last beat."""

    def __init__(
        self,
        beat: Callable[[], None] | None = None,
        beat_every_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.times: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._clock, self._beat, self._every = clock, beat, beat_every_s
        self.started = self._t = clock()
        self._next_beat = self._t + beat_every_s

    def lap(self, stage: str) -> None:
        now = self._clock()
        self.times[stage] = self.times.get(stage, 0.0) + (now - self._t)
        self._t = now
        if self._beat is not None and now >= self._next_beat:
            self._beat()
            self._next_beat = self._clock() + self._every

    @property
    def total(self) -> float:
        return self._t - self.started

    def slowest(self, n: int = 3) -> list[tuple[str, float]]:
        return sorted(((k, v) for k, v in self.times.items() if v > 0), key=lambda kv: -kv[1])[:n]


@dataclass
class Schedule:
    """Ticks at ``t0 + k·interval``. ``after(i)``: the tick to run after tick ``i`` has finished now,
    and how many ticks were skipped because tick ``i`` overran (0 when it finished in its slot)."""

    interval: float
    t0: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic

    def due(self, k: int) -> float:
        return self.t0 + k * self.interval

    def after(self, i: int) -> tuple[int, int]:
        if self.interval <= 0:
            return i + 1, 0
        elapsed = self.clock() - self.t0
        j = max(i + 1, math.floor(elapsed / self.interval) + 1)
        return j, j - i - 1


class Stop:
    """Why the loop ends: set by commands, by SIGTERM/SIGINT, or by the cycle budget."""

    def __init__(self) -> None:
        self.reason: str | None = None  # "stop" | "emergency_stop" | "signal"

    def set(self, reason: str) -> None:
        if self.reason != "emergency_stop":
            self.reason = reason


def poll(store: Store, run_id: int, stop: Stop) -> None:
    cmd = store.pending_command(run_id)
    if cmd is not None:
        stop.set(cmd)
        store.log_event("command", f"'{cmd}' received", "WARNING", run_id)


def wait_until(store: Store, run_id: int, due: float, stop: Stop, act: Callable[[], None] | None = None) -> None:
    """Sleep until the monotonic time ``due`` in small steps, obeying commands, the dashboard's actions
    (``act``) and signals meanwhile and beating the heartbeat every ``HEARTBEAT_S``."""
    beat = time.monotonic() + HEARTBEAT_S
    while stop.reason is None:
        left = due - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(POLL_S, left))
        poll(store, run_id, stop)
        if act is not None and stop.reason is None:
            act()
        if time.monotonic() >= beat:
            store.heartbeat(run_id)
            beat = time.monotonic() + HEARTBEAT_S


def _overrun_text(cycle: int, took: float, interval: float, skipped: int, clock: StageClock) -> str:
    slow = ", ".join(f"{k} {v:.3g}s ({v / max(took, 1e-9):.0%})" for k, v in clock.slowest(3))
    return (
        f"cycle {cycle} took {took:.3g}s, longer than the {interval:g}s interval: {skipped} scheduled tick(s) "
        f"skipped (cycles never overlap; the next one starts on the schedule's next tick). Slowest stages: {slow}. "
        "Shrink the universe or the model, or lengthen --interval."
    )


def drive(
    ctx: LiveContext,
    stop: Stop,
    interval: float,
    cycles: int | None,
    run_cycle: Callable[..., Any],
    act: Callable[[], None] | None = None,
) -> str | None:
    """The run's cycles on the schedule until the budget, the replay's end or a stop; returns the
    run's closing message (None when stopped). A cycle that fails on a temporary error (the venue or
    the data source did not answer after the adapter's retries) is logged and the next tick tries
    again: one -1001 or one 503 does not end a run. Store errors and everything else escape."""
    with gc_frozen():
        return _drive(ctx, stop, interval, cycles, run_cycle, act)


def _drive(
    ctx: LiveContext,
    stop: Stop,
    interval: float,
    cycles: int | None,
    run_cycle: Callable[..., Any],
    act: Callable[[], None] | None,
) -> str | None:
    store, run_id = ctx.store, ctx.run_id
    schedule = Schedule(interval)
    tick, done = 0, 0
    while True:
        poll(store, run_id, stop)
        if stop.reason is not None:
            return None
        if act is not None:  # flatten / close a position, asked for from the dashboard
            act()
        clock = StageClock(beat=lambda: store.heartbeat(run_id))
        try:
            result = run_cycle(ctx, clock=clock)
        except TemporaryError as e:
            result = None
            store.log_event(
                "cycle_failed",
                f"cycle {ctx.cycle} could not finish: {type(e).__name__}: {e}. Nothing is sent blind; the next cycle "
                "tries again (orders already recorded are reconciled by their client ids)",
                "WARNING",
                run_id,
            )
            store.heartbeat(run_id)
        done += 1
        took = clock.total
        nxt, skipped = schedule.after(tick)
        if result is not None:
            _store_stages(store, ctx, result, clock, skipped)
        if skipped:
            text = _overrun_text(ctx.cycle, took, interval, skipped, clock)
            log.warning(text)
            store.log_event("overrun", text, "WARNING", run_id)
        collect_between_cycles()
        if result is not None and result.exhausted:
            return f"replay finished after {done} cycle(s)"
        if cycles is not None and done >= cycles:
            return f"completed {done} cycle(s)"
        tick = nxt
        wait_until(store, run_id, schedule.due(tick), stop, act)
        if stop.reason is not None:
            return None


def _store_stages(store: Store, ctx: LiveContext, result: Any, clock: StageClock, skipped: int) -> None:
    breakers = getattr(ctx, "breakers", None)
    venues = ",".join(f"{v}={s}" for v, s in breakers.states().items()) if breakers is not None else ""
    row: dict[str, Any] = {f"{k}_s": round(v, 6) for k, v in clock.times.items() if k in STAGES}
    row.update(
        total_s=round(clock.total, 6),
        skipped_ticks=int(skipped),
        venues=venues[:200] or None,
        entries_paused=bool(getattr(ctx, "entries_paused", False)),
        note=getattr(result, "note", None),
    )
    store.add_cycle_stages(ctx.run_id, ctx.cycle, getattr(result, "started", None) or pd.Timestamp.now(tz="UTC"), row)


def timing_summary(df: pd.DataFrame) -> dict[str, Any]:
    """``live status``'s view of ``Store.cycle_stages``: the last cycle's stages and, over the rows
    given, the mean and worst cycle, the ticks skipped and the stage that takes the most time."""
    if df.empty:
        return {"last_cycle": None, "recent": None}
    last = df.iloc[-1]
    stage_cols = [f"{s}_s" for s in STAGES]
    means = df[stage_cols].astype(float).mean()
    return {
        "last_cycle": {
            "cycle": int(last["cycle"]),
            "total_s": float(last["total_s"]),
            "stages_s": {s: float(last[f"{s}_s"]) for s in STAGES},
            "skipped_ticks": int(last["skipped_ticks"]),
            "venues": last["venues"],
            "entries_paused": bool(last["entries_paused"]),
        },
        "recent": {
            "cycles": len(df),
            "mean_s": round(float(df["total_s"].mean()), 6),
            "max_s": round(float(df["total_s"].max()), 6),
            "skipped_ticks": int(df["skipped_ticks"].sum()),
            "overruns": int((df["skipped_ticks"] > 0).sum()),
            "slowest_stage": str(means.idxmax()).removesuffix("_s") if means.max() > 0 else None,
        },
    }


def heartbeat_state(status: str, alive: bool, age_s: float | None) -> str | None:
    """OK / STALLED (alive but silent for ``STALL_AFTER_S``) / DEAD (RUNNING with its process gone);
    None for a run that has ended."""
    if status != "RUNNING":
        return None
    if not alive:
        return "DEAD"
    if age_s is not None and age_s > STALL_AFTER_S:
        return "STALLED"
    return "OK"


def is_store_error(e: BaseException) -> bool:
    """An error of the store itself (disk full, read-only, locked, I/O), not of the trading logic."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(e, SQLAlchemyError) or (isinstance(e, OSError) and getattr(e, "errno", None) in _STORE_ERRNOS)


_STORE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO}


def try_finish(store: Store, run_id: int, message: str) -> bool:
    """Record FAILED; False (never an exception on top of the one being handled) when the store refuses."""
    try:
        store.finish_run(run_id, "FAILED", message)
        return True
    except Exception:
        return False


def store_failed(settings: Any, store: Store, run_id: int, error: BaseException) -> int:
    """The store could not be written (disk full, read-only, locked, I/O): nothing more is traded —
    an order is never sent without its NEW row, so none can be lost or doubled by stopping here. The
    run is recorded FAILED with the reason, retried for ``live.store_retry_s`` (the store may be
    written again once space is freed or the lock released). If it never can be, the reason goes to
    a note beside the store (read by the next start on the account, which resumes and reconciles the
    run) and the error is raised for the command line to explain (exit code 7, no traceback)."""
    from workbench.cli_exits import explain

    _, why = explain(error, store.url)
    message = f"the store could not be written, trading stopped: {why}"
    print(f"run {run_id}: {message}", file=sys.stderr, flush=True)
    end = time.monotonic() + float(settings.live.store_retry_s)
    while True:
        if try_finish(store, run_id, message):
            try:
                store.log_event("run", f"run {run_id} failed: {message}", "ERROR", run_id)
            except Exception:
                pass  # the FAILED row is what matters; the event is a copy
            _store_note(settings, run_id).unlink(missing_ok=True)
            return run_id
        if time.monotonic() >= end:
            break
        time.sleep(min(1.0, max(0.05, float(settings.live.store_retry_s) / 20)))
    try:
        _store_note(settings, run_id).write_text(f"{pd.Timestamp.now(tz='UTC').isoformat()} {message}\n")
    except OSError:
        pass  # on the same full disk: the resume says the process died, the log above says why
    raise error


def _store_note(settings: Any, run_id: int) -> Path:
    return Path(settings.data_dir) / "logs" / f"run-{run_id}.store-failure.txt"


def store_failure_note(settings: Any, run_id: int, forget: bool = False) -> str | None:
    """Why a crashed run's process stopped, when it stopped because its store could not be written
    (``forget``: the note is removed once read, by the start that resumes the run)."""
    path = _store_note(settings, run_id)
    try:
        text = path.read_text().strip() or None
    except OSError:
        return None
    if forget:
        path.unlink(missing_ok=True)
    return text
