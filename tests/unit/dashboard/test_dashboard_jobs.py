"""Long work off the event loop: on a running loop (Voilà's, JupyterLab's) the result is applied by the
loop itself, while the loop keeps serving other work; an error arrives as an error, once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from workbench.dashboard.jobs import BackgroundJob


def test_on_a_running_loop_the_result_arrives_while_the_loop_stays_free():
    async def main() -> tuple[list, list, int]:
        gate = threading.Event()
        done: list = []
        ticks: list = []
        job = BackgroundJob(lambda: (gate.wait(10), 42)[1], done.append, done.append, ticks.append, tick_s=0.01)
        beats = 0
        for _ in range(20):  # the loop keeps turning while the work waits
            await asyncio.sleep(0.01)
            beats += 1
        assert not done and job.running
        gate.set()
        for _ in range(500):
            if done:
                break
            await asyncio.sleep(0.01)
        return done, ticks, beats

    # A loop of its own on a thread of its own: a loop an earlier test in this worker left set on the main
    # thread (seen under `make test`'s file order) must not decide this test.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done, ticks, beats = pool.submit(asyncio.run, main()).result()
    assert done == [42] and beats == 20 and ticks and ticks == sorted(ticks)


def test_an_error_is_handed_over_once_and_a_cancelled_job_hands_nothing():
    errors: list = []
    results: list = []

    def boom() -> int:
        raise ValueError("no bars")

    job = BackgroundJob(boom, results.append, errors.append)
    assert job.wait(10)
    job.poll()
    assert results == [] and [str(e) for e in errors] == ["no bars"]
    gate = threading.Event()
    late = BackgroundJob(lambda: (gate.wait(10), 1)[1], results.append, errors.append)
    late.cancel()
    gate.set()
    late.future.result(timeout=10)
    assert late.poll() and results == [] and len(errors) == 1
