"""The research evidence on the full S&P 500 set: lgbm, rf, lstm and their ensemble on the
cross-sectional label (beat the date's median over 5 days), embargo 5, three yearly walk-forward
folds — per-fold mean daily rank IC and ICIR beside the momentum and reversal baselines, and the verdict.

CPU-heavy: run with ``nice -n 10 python -m bench research``. Not part of ``make test``. Each model's
table is printed as soon as it is trained, so a run cut short still shows what it finished.
Environment: ``BENCH_RF_TREES`` (default 150, the model's own default), ``BENCH_LSTM_SYMBOLS`` (0: all;
else the LSTM and the three-member ensemble run on the first N symbols), ``BENCH_LSTM_EPOCHS``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from bench.sp500_data import SP500, load_sp500
from workbench.models.evidence import fold_table
from workbench.models.training import (
    _prepare,
    _train_prepared,
    comparison_table,
    ensemble_of,
)

HORIZON = 5
LABEL, FEATURES, FOLDS, SPAN = "xs_median", "v1", 3, "3y"
OPTS = dict(
    validation="walk_forward",
    n_folds=FOLDS,
    test_fraction=SPAN,
    embargo=HORIZON,
    calibration="platt",
    calib_fraction=0.2,
    lineage=None,
)


def _show(name: str, r, keep: Path) -> None:
    r.oos.to_parquet(keep / f"{name}_oos.parquet")  # the OOS rows, to re-plot without refitting
    r.folds.to_csv(keep / f"{name}_folds.csv", index=False)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        print(f"\n-- {name}: per fold (fit {r.metrics['fit_seconds']:.0f} s)")
        print(fold_table(r).to_string(), flush=True)
    print(f"   {r.verdict()}", flush=True)


def main() -> None:
    if not SP500.exists():
        print(f"   skipped: {SP500} not found (set WORKBENCH_TEST_DATA)")
        return
    keep = Path(os.environ.get("BENCH_OUT", ".cache/bench_research"))
    keep.mkdir(parents=True, exist_ok=True)
    panel, skipped, secs = load_sp500()
    print(
        f"   data: {len(panel.symbols)} of {len(panel.symbols) + len(skipped)} files, {len(panel.index)} bars "
        f"{panel.index[0].date()} … {panel.index[-1].date()} in {secs:.1f} s; {len(skipped)} files failed strict "
        f"validation and were skipped: {', '.join(sorted(k.removesuffix('_data.csv') for k in skipped))}"
    )
    print(
        f"   label {LABEL}, horizon {HORIZON}, embargo {HORIZON}, features {FEATURES}, {FOLDS} folds over the last "
        f"{SPAN} (yearly)",
        flush=True,
    )
    t0 = time.perf_counter()
    prep = _prepare(panel, FEATURES, HORIZON, LABEL, "refuse")
    if os.environ.get("BENCH_LSTM_ONLY"):  # the full-set LSTM, ensembled with a previous run's lgbm and rf
        _lstm_only(prep, keep, t0)
        return
    print(f"   features, labels and leak checks: {time.perf_counter() - t0:.0f} s; {prep.leaks}", flush=True)
    results = {}
    trees = int(os.environ.get("BENCH_RF_TREES", "150"))
    for kind, params in (("lgbm", None), ("rf", {"n_estimators": trees})):
        results[kind] = _train_prepared(prep, kind, params, 42, **OPTS)
        _show(kind, results[kind], keep)
    results["ensemble"] = ensemble_of([results["lgbm"], results["rf"]])
    _show("ensemble (lgbm + rf, full set)", results["ensemble"], keep)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        print("\n-- summary, full set (IC: mean of daily ICs over all test dates; AUC etc.: mean over folds)")
        print(comparison_table(results).to_string(), flush=True)
    n = int(os.environ.get("BENCH_LSTM_SYMBOLS", "0"))
    epochs = int(os.environ.get("BENCH_LSTM_EPOCHS", "20"))
    lstm_params = {"batch_size": 1024, "epochs": epochs}
    if n:
        sub = panel.select(panel.symbols[:n])
        prep = _prepare(sub, FEATURES, HORIZON, LABEL, "refuse")
        print(f"\n   LSTM on a subset: the first {n} symbols (alphabetical), {epochs} epochs max", flush=True)
        sub_results = {
            k: _train_prepared(prep, k, p, 42, **OPTS)
            for k, p in (("lgbm", None), ("rf", {"n_estimators": trees}), ("lstm", lstm_params))
        }
        _show(f"lstm ({n} symbols)", sub_results["lstm"], keep)
        sub_results["ensemble"] = ensemble_of(list(sub_results.values()))
        _show(f"ensemble (lgbm + rf + lstm, {n} symbols)", sub_results["ensemble"], keep)
        with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
            print(f"\n-- summary, {n}-symbol subset")
            print(comparison_table(sub_results).to_string(), flush=True)
    else:
        r = _train_prepared(prep, "lstm", lstm_params, 42, **OPTS)
        _show("lstm", r, keep)
        _show("ensemble (lgbm + rf + lstm)", ensemble_of([results["lgbm"], results["rf"], r]), keep)
    print(f"   total {time.perf_counter() - t0:.0f} s")


def _lstm_only(prep, keep: Path, t0: float) -> None:
    """LSTM on the full set; the three-member ensemble from the stored lgbm and rf OOS rows of a previous
    run (same data, folds and calibration slices: the ensemble is the mean of calibrated probabilities)."""
    from workbench.models.training import _summarise

    epochs = int(os.environ.get("BENCH_LSTM_EPOCHS", "20"))
    lstm = _train_prepared(prep, "lstm", {"batch_size": 1024, "epochs": epochs}, 42, **OPTS)
    _show(f"lstm (full set, {epochs} epochs max)", lstm, keep)
    members = [pd.read_parquet(keep / f"{k}_oos.parquet") for k in ("lgbm", "rf")] + [lstm.oos]
    oos = lstm.oos.copy()
    for m in members[:2]:
        if not m.index.equals(oos.index):
            raise RuntimeError("stored lgbm/rf rows differ from this run's: rerun the whole bench")
    oos["proba"] = sum(m["proba"].to_numpy() for m in members) / 3
    rows = lstm.folds[["fold", "train_start", "train_end", "test_start", "test_end", "n_train", "n_test"]]
    rows = rows.assign(fit_seconds=0.0).to_dict("records")
    metrics, folds = _summarise(oos, rows, HORIZON, LABEL)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        print("\n-- ensemble (lgbm + rf + lstm, full set): per fold")
        print(fold_table(folds).to_string(), flush=True)
    from workbench.models.verdict import verdict_text

    print(f"   {verdict_text('ensemble', LABEL, metrics)}")
    print(f"   total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
