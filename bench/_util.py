"""Shared helpers: where the real lists are, and timing with peak memory."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

SHARED = Path(os.environ.get("WORKBENCH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def measure(fn, *args, **kw):
    """(result, seconds, peak traced MiB): timed on a plain run, memory on a second, traced run (tracing slows Python)."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    try:
        fn(*args, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, elapsed, peak / 2**20
