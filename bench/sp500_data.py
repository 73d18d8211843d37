"""The full S&P 500 daily set (505 Kaggle files, 2013–2018) read through the workbench's CSV source.

Each file is read and validated strictly by ``CsvSource``; a file that fails validation is skipped
and named (the data-checks work elsewhere adds a lenient mode; research must not trust bad bars).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from bench._util import SHARED
from workbench.data.panel import Panel
from workbench.data.sources.csv_source import CsvSource
from workbench.errors import DataError

SP500 = SHARED / "us_equities" / "sp500_5yr_kaggle_cnuge"


def load_sp500(folder: Path = SP500) -> tuple[Panel, dict[str, str], float]:
    """(panel, {file: reason} of skipped files, seconds)."""
    t0 = time.perf_counter()
    frames, skipped = [], {}
    for path in sorted(folder.glob("*.csv")):
        try:
            frames.append(CsvSource(path, "NYSE").candles)
        except DataError as e:
            skipped[path.name] = str(e)
    long = pd.concat(frames, ignore_index=True)
    return Panel.from_long(long, exchange="NYSE", timeframe="1d"), skipped, time.perf_counter() - t0


if __name__ == "__main__":
    panel, skipped, secs = load_sp500()
    print(f"{len(panel.symbols)} symbols, {len(panel.index)} bars in {secs:.1f} s; skipped {len(skipped)} files")
    for k, v in skipped.items():
        print(f"  {k}: {v[:150]}")
