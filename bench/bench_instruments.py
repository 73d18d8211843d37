"""Refreshing the instrument master from the saved published lists (shared/data/instruments)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench._util import SHARED, measure
from workbench.instruments import InstrumentMaster, refresh


def main() -> None:
    lists = SHARED / "instruments"
    if not lists.is_dir():
        print(f"   skipped: {lists} not found (set WORKBENCH_TEST_DATA)")
        return
    with tempfile.TemporaryDirectory() as d:
        master = InstrumentMaster(Path(d) / "instruments.parquet")
        report, secs, peak = measure(refresh, master, "all", lists)  # second run replaces the same rows
        print(f"   refresh all lists: {secs:.2f} s, peak {peak:.0f} MiB — {report.summary()}")
        t0 = time.perf_counter()
        table = master.table()
        print(f"   merged table read: {time.perf_counter() - t0:.3f} s for {len(table)} rows")
        t0 = time.perf_counter()
        hits = master.search("bank", limit=None)
        print(f"   search 'bank': {time.perf_counter() - t0:.3f} s, {len(hits)} hits")
