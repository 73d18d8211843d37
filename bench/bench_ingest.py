"""``ingest_folder`` of the 505 Kaggle S&P 500 files (5 years of daily bars each) into an empty lake.

Anchor in the same run: reading the same files with ``pandas.read_csv`` alone (no checks, no lake),
the floor any importer sits on. CPU is this process's only (the reader processes are the forkserver's
children, not ours): single-process it is the whole cost, in parallel it is the writer's share, the
part that does not spread. On a loaded machine wall ≫ CPU. Goal (issue 19): the whole folder in < 30 s.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time

import pandas as pd

from bench._util import SHARED
from workbench.data.ingest import ingest_folder
from workbench.data.lake import Lake

FOLDER = SHARED / "us_equities" / "sp500_5yr_kaggle_cnuge"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _timed(fn):
    t0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - t0, _cpu() - c0


def main() -> None:
    if not FOLDER.is_dir():
        print(f"   skipped: {FOLDER} not found (set WORKBENCH_TEST_DATA)")
        return
    files = sorted(FOLDER.glob("*.csv"))
    _, wall, cpu = _timed(lambda: [pd.read_csv(f) for f in files])
    print(
        f"   anchor: pandas.read_csv of {len(files)} files: {wall:.1f} s wall, {cpu:.1f} s CPU; "
        f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} CPUs"
    )
    cpus = len(os.sched_getaffinity(0))
    for label, kw in (("strict, 1 process", {"workers": 1}), (f"lenient, {cpus} processes", {"lenient": True})):
        with tempfile.TemporaryDirectory() as d:
            report, wall, cpu = _timed(lambda d=d, kw=kw: ingest_folder(Lake(d), FOLDER, "NYSE", progress=False, **kw))
        bad = sum(report.quarantined.values())
        print(
            f"   ingest_folder {label}: {wall:.1f} s wall, {cpu:.1f} s CPU in this process — {report.total_new} bars of "
            f"{len(report.new_rows)} symbols; {len(report.errors)} files refused; {bad} rows quarantined"
        )
