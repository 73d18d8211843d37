"""The research evidence on the full S&P 500 set: lgbm, rf, lstm and their ensemble on the
cross-sectional label (beat the date's median over 5 days), embargo 5, three yearly walk-forward
folds — per-fold mean daily rank IC and ICIR beside the momentum and reversal baselines, and the verdict.

CPU-heavy (minutes): run with ``nice -n 10 python -m bench research``. Not part of ``make test``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from bench.sp500_data import SP500, load_sp500
from workbench.models.evidence import fold_table
from workbench.models.training import compare, comparison_table

HORIZON = 5
SETTINGS = dict(label="xs_median", horizon=HORIZON, embargo=HORIZON, n_folds=3, test_fraction="3y",
                feature_set="v1", validation="walk_forward")
# The LSTM at batch 1024 (default 256): the same model, four times fewer steps per epoch on 2 cores.
PARAMS = {"lstm": {"batch_size": 1024}}


def main() -> None:
    if not SP500.exists():
        print(f"   skipped: {SP500} not found (set WORKBENCH_TEST_DATA)")
        return
    panel, skipped, secs = load_sp500()
    print(f"   data: {len(panel.symbols)} of {len(panel.symbols) + len(skipped)} files, {len(panel.index)} bars "
          f"{panel.index[0].date()} … {panel.index[-1].date()} in {secs:.1f} s; {len(skipped)} files failed strict "
          f"validation and were skipped: {', '.join(sorted(k.removesuffix('_data.csv') for k in skipped))}")
    print(f"   settings: {SETTINGS}")
    kinds = tuple(os.environ.get("BENCH_KINDS", "lgbm,rf,lstm").split(","))
    t0 = time.perf_counter()
    results = compare(panel, kinds=kinds, params=PARAMS, **SETTINGS)
    print(f"   trained {', '.join(results)} in {time.perf_counter() - t0:.0f} s")
    keep = Path(os.environ.get("BENCH_OUT", ".cache/bench_research"))  # the OOS rows, to re-plot without refitting
    keep.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        r.oos.to_parquet(keep / f"{name}_oos.parquet")
        r.folds.to_csv(keep / f"{name}_folds.csv", index=False)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        for name, r in results.items():
            print(f"\n-- {name}: per fold (fit {r.metrics['fit_seconds']:.0f} s)")
            print(fold_table(r).to_string())
            print(f"   {r.verdict()}")
        print("\n-- summary (IC: mean of daily ICs over all test dates; AUC etc.: mean over folds)")
        print(comparison_table(results).to_string())


if __name__ == "__main__":
    main()
