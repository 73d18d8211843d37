"""Long work off the page's event loop: one worker thread, results applied back on the loop.

Why: a backtest takes seconds to minutes; run in a click handler it blocks the kernel, so the page
freezes — no tab switch, no refresh, no Stop button of a live run. Here the work runs in a thread and
only its result (or error) touches the widgets, from the kernel's event loop (widgets are not thread
safe). Cancel detaches the page at once: a Python thread cannot be interrupted safely, so the work
itself must stop on its own (the Models page's backtest checks an event between its steps) and any
result it still produces is dropped (``BackgroundJob`` says so in ``cancelled``).
Without a running event loop (tests, a plain script) ``poll()`` applies a finished result by hand.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["BackgroundJob"]

T = TypeVar("T")


class BackgroundJob(Generic[T]):
    """``work()`` in a daemon thread; ``on_done(result)`` or ``on_error(exc)`` once, on the loop;
    ``on_tick(elapsed_s)`` every ``tick_s`` while it runs (a progress line)."""

    def __init__(
        self,
        work: Callable[[], T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None],
        on_tick: Callable[[float], None] | None = None,
        tick_s: float = 0.5,
        name: str = "workbench-job",
    ):
        self.future: Future[T] = Future()
        self.started = time.monotonic()
        self.cancelled = False
        self._applied = False
        self._on_done, self._on_error, self._on_tick, self._tick_s = on_done, on_error, on_tick, tick_s
        self.future.set_running_or_notify_cancel()
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = None
        self._task = loop.create_task(self._watch()) if loop is not None and loop.is_running() else None

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self.future.set_result(work())
        except BaseException as e:  # handed to on_error on the loop, never lost in the thread
            self.future.set_exception(e)

    @property
    def running(self) -> bool:
        return not self.cancelled and not self._applied

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def cancel(self) -> None:
        """Stop waiting: nothing of this job reaches the page any more."""
        self.cancelled = True
        if self._task is not None:
            self._task.cancel()

    def poll(self) -> bool:
        """Apply the result if the work has finished (once); True when nothing is pending any more."""
        if self.cancelled or self._applied:
            return True
        if not self.future.done():
            if self._on_tick is not None:
                self._on_tick(self.elapsed_s)
            return False
        self._applied = True
        exc = self.future.exception()
        if exc is not None:
            self._on_error(exc)
        else:
            self._on_done(self.future.result())
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work ends, then apply it (tests, scripts); True when it ended in time."""
        try:
            self.future.exception(timeout=timeout)
        except TimeoutError:
            return False
        self.poll()
        return True

    async def _watch(self) -> None:
        while not self.poll():
            await asyncio.sleep(self._tick_s)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "done" if self._applied else "running"
        return f"BackgroundJob({state}, {self.elapsed_s:.1f} s)"
