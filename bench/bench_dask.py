"""Research on dask.distributed: a 5-fold × 3-model (lgbm, rf, lstm) walk-forward on the S&P 500 set with
1 vs 2 local worker processes (the same code path a team's cluster runs), a sweep of 20 backtests,
and what retraining 50 instruments costs here, measured on one and extrapolated.

The machine is shared: ``uptime``'s load is printed beside every figure. Run it niced:
``nice -n 10 python -m bench dask``. Environment (smaller runs on a busy machine; what ran is printed):
``BENCH_DASK_SYMBOLS`` (500), ``BENCH_DASK_BARS`` (0: all ~1,260 daily bars), ``BENCH_RF_TREES`` (50),
``BENCH_LSTM_EPOCHS`` (2: the LSTM on fewer epochs than its default 20), ``BENCH_DASK_KINDS`` (lgbm,rf,lstm).
``python -m bench dask --quick`` (or ``BENCH_QUICK=1``): 30 instruments × 300 bars, rf 20 trees, lstm 1
epoch, to check the bench end to end while iterating; its figures say nothing about the goal.
Synthetic random walks stand in when the S&P files are absent.

Goal (issue 21): 2 workers ≈ 2× faster than 1 on 2 idle cores; the anchors in the same run are that ideal
2.00× and the same walk-forward in-process (no Dask: what the scheduler and process hops cost on 1 worker).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from bench.sp500_data import SP500, load_sp500
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.data.panel import Panel

FOLDS, HORIZON = 5, 1


def load() -> str:
    """``uptime``'s 1-minute load average (the machine is shared with other agents)."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _panel(n_symbols: int, bars: int) -> tuple[Panel, str]:
    if SP500.exists():
        panel, skipped, _ = load_sp500()
        what = f"real S&P 500 daily bars ({len(skipped)} files failed strict validation)"
    else:
        from tests.unit.features.research_kit import random_walk_panel

        panel = random_walk_panel(n_bars=bars or 1260, symbols=tuple(f"SYN{i:03d}" for i in range(n_symbols)))
        what = "synthetic random walks (S&P files not found)"
    panel = panel.select(list(panel.symbols)[:n_symbols])
    if bars:
        panel = panel.tail(bars)
    return panel, what


def _walk_forward(settings, source, kinds, params, workers: int) -> tuple[float, dict, int]:
    from workbench.models import distributed

    with distributed.client_for(settings, workers=workers) as client:
        client.wait_for_workers(workers)
        t0 = time.perf_counter()
        (res,) = distributed.map_folds(
            client, source, kinds, params=params, n_folds=FOLDS, test_fraction=0.4, horizon=HORIZON
        )
        secs = time.perf_counter() - t0
    return secs, res, len({p.split("@")[1] for r in res.values() for p in r.lineage["dask_tasks"].split("; ")})


def _quick() -> bool:
    return "--quick" in sys.argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")


def _in_process(panel: Panel, kinds, params) -> float:
    """The anchor: the same folds × kinds in this process (``training.compare``), no Dask."""
    from workbench.models.training import compare

    t0 = time.perf_counter()
    compare(panel, kinds=kinds, ensemble=False, params=params, n_folds=FOLDS, test_fraction=0.4, horizon=HORIZON)
    return time.perf_counter() - t0


def _retrain(panel: Panel, timed: int = 5) -> None:
    """FreqAI retrains one model per pair, one after another. Here: ``timed`` instruments' own models, each
    a real fit (lgbm, 5-fold walk-forward, Platt-calibrated, registered-grade evidence), timed one after
    another and extrapolated to 50; beside it one cross-sectional lgbm on the 50 at once, measured.

    The leak check runs on every fit, in ``warn`` mode: on one instrument's few hundred bars its
    next-bar IC is one pooled Spearman over those bars, noise-driven, and may flag an honest feature;
    how many of the timed fits it flagged is printed, so the figure says what was timed."""
    import logging

    from workbench.models.training import train

    logging.getLogger("workbench.models.leakage").setLevel(logging.ERROR)  # counted below instead
    syms = list(panel.symbols)
    before = load()
    secs: list[float] = []
    flagged = 0
    for sym in syms[:timed]:
        one = panel.select([sym])
        t0 = time.perf_counter()
        res = train(one, "lgbm", validation="walk_forward", n_folds=FOLDS, test_fraction=0.4, leak_check="warn")
        secs.append(time.perf_counter() - t0)
        flagged += bool(res.leaks)
    per = sum(secs) / len(secs)
    print(
        f"   retrain per instrument (what FreqAI does): {len(secs)} instruments' own lgbm, each {FOLDS}-fold "
        f"walk-forward + Platt calibration on {len(panel.index)} bars, timed one after another: "
        f"{per:.2f} s each (min {min(secs):.2f}, max {max(secs):.2f}); the one-instrument leak check flagged "
        f"{flagged} of {len(secs)} (warned, trained anyway: its next-bar IC pools one instrument's bars); {before}",
        flush=True,
    )
    print(
        f"   on paper, 50 instruments one after another: 50 × {per:.2f} s = {50 * per / 60:.1f} min, so the oldest "
        f"model is {50 * per / 60:.1f} min stale when the last is done (FreqAI's 50 × 5 min: 250 min); on 2 "
        f"free workers ≈ {25 * per / 60:.1f} min",
        flush=True,
    )
    fifty = panel.select(syms[:50])
    before = load()
    t0 = time.perf_counter()
    res = train(fifty, "lgbm", validation="walk_forward", n_folds=FOLDS, test_fraction=0.4, leak_check="warn")
    pooled = time.perf_counter() - t0
    print(
        f"   retrain cross-sectional, measured: one lgbm on all {len(fifty.symbols)} at once ({FOLDS}-fold "
        f"walk-forward + Platt, {len(res.oos)} out-of-sample rows; leak check: "
        f"{'flagged ' + ', '.join(getattr(res.leaks, 'leaky', [])) if res.leaks else 'clean'}): {pooled:.1f} s, every model "
        f"equally fresh, {50 * per / max(pooled, 1e-9):.0f}× less than 50 per-instrument fits; {before} before, "
        f"{load()} after",
        flush=True,
    )


def main() -> None:
    from workbench.backtest.sweep import grid, run_sweep
    from workbench.models import distributed
    from workbench.models.registry import Registry

    quick = _quick()
    n = int(os.environ.get("BENCH_DASK_SYMBOLS", "30" if quick else "500"))
    bars = int(os.environ.get("BENCH_DASK_BARS", "300" if quick else "0"))
    trees = int(os.environ.get("BENCH_RF_TREES", "20" if quick else "50"))
    epochs = int(os.environ.get("BENCH_LSTM_EPOCHS", "1" if quick else "2"))
    if quick:
        print("   --quick: a small size to check the bench runs; not the issue's 500 instruments", flush=True)
    kinds = tuple(os.environ.get("BENCH_DASK_KINDS", "lgbm,rf,lstm").split(","))
    params = {"rf": {"n_estimators": trees}, "lstm": {"epochs": epochs, "batch_size": 1024}}
    panel, what = _panel(n, bars)
    print(
        f"   data: {what}: {len(panel.symbols)} instruments × {len(panel.index)} bars "
        f"{panel.index[0].date()} … {panel.index[-1].date()}; {load()}",
        flush=True,
    )
    print(
        f"   models: {', '.join(kinds)} (rf {trees} trees; lstm {epochs} epochs max, its default is 20), "
        f"{FOLDS} walk-forward folds over the last 40 % of the bars, label sign h{HORIZON}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "home")
        settings.ensure_dirs()
        Lake(settings.lake_dir).write(panel.to_long(), panel.exchange, panel.timeframe, "bench")
        source = distributed.LakeSource(str(settings.lake_dir), panel.exchange, panel.timeframe, tuple(panel.symbols))
        times = {}
        for workers in (1, 2):
            before = load()
            secs, res, used = _walk_forward(settings, source, kinds, params, workers)
            times[workers] = secs
            fit = {k: r.metrics["fit_seconds"] for k, r in res.items()}
            print(
                f"   {len(kinds)} models × {FOLDS} folds on {workers} worker(s): {secs:.0f} s wall "
                f"({used} workers ran tasks, {next(iter(res.values())).lineage.get('fit_threads', '?')} thread per "
                f"fit; fit seconds summed: "
                + ", ".join(f"{k} {v:.0f}" for k, v in fit.items())
                + f"); {before} before, {load()} after",
                flush=True,
            )
        before = load()
        anchor = _in_process(panel, kinds, params)
        print(
            f"   anchor: the same {len(kinds)} models × {FOLDS} folds in-process (no Dask): {anchor:.0f} s; "
            f"{before} before, {load()} after",
            flush=True,
        )
        print(
            f"   speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}× (goal and ideal: 2.00× on 2 idle cores; the "
            f"machine is shared, see the loads); 1 worker vs in-process: {times[1] / anchor:.2f}× "
            f"(Dask's overhead: scheduling, process hops, a feature build per worker)",
            flush=True,
        )

        # The sweep: one model registered from the walk-forward above, 20 risk configurations.
        res["lgbm"].lineage.update(source.lineage())
        Registry(settings).register(res["lgbm"])
        configs = grid(
            ["champion"], {"max_position_pct": [0.02, 0.05, 0.1, 0.2, 0.3], "min_strength": [0.0, 0.3, 0.5, 0.7]}
        )
        with distributed.client_for(settings, workers=2) as client:
            client.wait_for_workers(2)
            before = load()
            t0 = time.perf_counter()
            table = run_sweep(client, settings, configs, experiment="bench-sweep")
            secs = time.perf_counter() - t0
        print(
            f"   sweep: {len(table)} backtests of {len(panel.symbols)} instruments on 2 workers in {secs:.0f} s "
            f"({secs / len(table):.1f} s each, with reports); {before} before, {load()} after; best first:"
        )
        print(
            table[["config", "sharpe", "total_return", "max_drawdown", "trades"]]
            .head(5)
            .to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            flush=True,
        )

        _retrain(panel)


if __name__ == "__main__":
    main()
