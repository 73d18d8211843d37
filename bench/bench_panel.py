"""``load_panel_for`` of 5,000 instruments × 2 years of daily bars from the parquet lake."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import pandas as pd

from bench._util import measure
from workbench.data.lake import Lake

N, DAYS = 5000, 730


def _fill(lake: Lake) -> None:
    ts = pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("D"), periods=DAYS, freq="1D")
    rng = np.random.default_rng(0)
    for i in range(N):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, DAYS)))
        df = pd.DataFrame({"ts": ts, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1e5})
        # Write the files directly in the lake's layout (the bench measures reads, not 5,000 validations).
        df.insert(1, "symbol", f"S{i:04d}")
        Lake._replace(lake.path("BENCH", "1d", f"S{i:04d}"), df.assign(source="bench"))


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        lake = Lake(d)
        t0 = time.perf_counter()
        _fill(lake)
        print(f"   wrote {N} symbols × {DAYS} daily bars in {time.perf_counter() - t0:.1f} s")
        keys = [f"BENCH:S{i:04d}" for i in range(N)]
        for fields in (("close",), ("open", "high", "low", "close", "volume")):
            frames, secs, peak = measure(lake.load_panel_for, keys, "1d", fields=fields)
            shape = frames["close"].shape
            print(f"   load_panel_for {len(fields)} field(s): {secs:.2f} s, peak {peak:.0f} MiB, frame {shape[0]}×{shape[1]}")
        _panel, secs, peak = measure(lake.load_panel, "BENCH", "1d")
        print(f"   Lake.load_panel (all 5 fields, Panel): {secs:.2f} s, peak {peak:.0f} MiB")
