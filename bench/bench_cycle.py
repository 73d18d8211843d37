"""The full live cycle on paper + SQLite, stage by stage: data (the bar snapshot and the venue's
bar) → incremental features → inference (LightGBM) → signals → risk → orders → portfolio, for
5,000 and 20,000 instruments, a realistic cycle (≈5% of instruments trade) and a worst case (≈30%),
each entry with its resting OCO exit pair. Goals (issue 16): < 0.5 s at 5,000 and < 2 s at 20,000
instruments, peak memory < 2 GB at 20,000.

Each case runs in its own process (peak RSS is per process). Cycle 1 opens the positions (entries +
exit pairs); cycle 2 manages them (the venue's bar against thousands of resting exits, refresh, sync)
and trades again. Beside the figures, the lower bound of the write path: the same number of rows
inserted with raw ``sqlite3.executemany`` in one transaction into a WAL database — what no ORM,
venue simulation or bookkeeping could beat.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [(5_000, 0.05), (5_000, 0.30), (20_000, 0.05), (20_000, 0.30)]
HISTORY = 120  # bars before the live ones (v2's warm-up is shorter)
STAGES = ("data", "features", "inference", "signals", "risk", "orders", "portfolio", "other")


class Stages:
    """Wall time per stage; a stage called inside another is the outer one's time (no double count)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self._depth = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._depth += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.t[name] += time.perf_counter() - t0

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            with self.stage(name):
                return fn(*a, **kw)

        return timed


def _panel(n: int, bars: int, seed: int = 0):
    from workbench.data.panel import Panel

    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC", name="ts")
    cols = pd.Index([f"S{i:05d}" for i in range(n)], name="symbol")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (bars, n)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, close.shape)))
    vol = np.full(close.shape, 1e7)
    f = {
        k: pd.DataFrame(v, index=idx, columns=cols)
        for k, v in dict(open=open_, high=high, low=low, close=close, volume=vol).items()
    }
    return Panel(**f, exchange="BENCH", timeframe="1h")


class ModelEngine:
    """Features updated by one bar, a LightGBM score per instrument, the top ``frac`` as BUY signals
    with stops from the bar's range — what ``ModelSignalEngine`` does, with each stage timed."""

    def __init__(self, history, frac: float, stages: Stages):
        import lightgbm as lgb

        from workbench.features import IncrementalFeatures, build_features

        self.frac, self.stages = frac, stages
        self.inc = IncrementalFeatures.from_history(history, "v2")
        X = build_features(history.iloc(slice(len(history.index) - 12, len(history.index))), "v2")
        self.columns = list(X.columns)
        y = np.random.default_rng(1).normal(0, 0.01, len(X))  # no edge is claimed: speed only
        self.model = lgb.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1, n_jobs=1)
        self.model.fit(X.to_numpy(dtype=np.float32), y)

    def signals(self, panel) -> list:
        from workbench.signals import Signal

        bar = panel.iloc(slice(len(panel.index) - 1, len(panel.index)))
        with self.stages.stage("features"):
            row = self.inc.update(bar)
        with self.stages.stage("inference"):
            score = self.model.predict(row[self.columns].to_numpy(dtype=np.float32))
        with self.stages.stage("signals"):
            ts = panel.index[-1]
            close = panel.close.iloc[-1].to_numpy()
            k = round(self.frac * len(score))
            top = set(np.argsort(-score)[:k].tolist())
            out = []
            for j, sym in enumerate(row.index):
                px = float(close[j])
                if j in top:
                    out.append(Signal(sym, "BUY", 0.9, 0.8, px * 1.01, px * 0.97, px * 1.05, ts=ts, price=px))
                else:
                    out.append(Signal(sym, "HOLD", 0.3, 0.5, None, None, None, ts=ts, price=px))
        return out


def _rows_written(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        tables = ("orders", "order_events", "fills", "positions", "signals", "events", "paper_orders", "paper_fills")
        return sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)
    finally:
        con.close()


def _lower_bound(n_rows: int, tmp: Path) -> float:
    """Raw sqlite3: ``n_rows`` ten-column rows, one executemany, one commit, WAL."""
    (tmp / "floor.db").unlink(missing_ok=True)
    con = sqlite3.connect(tmp / "floor.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT, c TEXT, d REAL, e REAL, f REAL, g TEXT, h TEXT, i REAL, j TEXT)"
    )
    rows = [
        (f"wb-1-1-S{i:06d}-b", "S", "buy", 1.0, 2.0, 3.0, "FILLED", "2024-01-01T00:00:00.000000+00:00", 0.1, "x")
        for i in range(n_rows)
    ]
    t0 = time.perf_counter()
    con.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    dt = time.perf_counter() - t0
    con.close()
    return dt


def run_case(n: int, frac: float) -> dict[str, Any]:
    """Two cycles of one case in this process; the figures of each, and the peak RSS."""
    from workbench.config import CostModel, RiskLimits
    from workbench.trading import phase2
    from workbench.trading.cycle import collect_between_cycles, gc_frozen
    from workbench.trading.feeds import ReplayFeed
    from workbench.trading.loop import LiveContext, run_cycle
    from workbench.trading.orders import OrderManager
    from workbench.trading.store import Store
    from workbench.venues.paper.broker import PaperBroker

    panel = _panel(n, HISTORY + 2)
    stages = Stages()
    engine = ModelEngine(panel.iloc(slice(0, HISTORY)), frac, stages)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = tmp / "cycle.db"
        store = Store(f"sqlite:///{db}").create()
        broker = PaperBroker(store, starting_cash=1e9, max_volume_share=0.1)
        run_id = store.start_run("paper", "paper", "paper")
        feed = ReplayFeed.from_panel(panel, warmup_bars=HISTORY, replay_bars=2)
        ctx = LiveContext(
            store=store, broker=broker, feed=feed, engine=engine,
            orders=OrderManager(store, broker, "paper", run_id=run_id), run_id=run_id, account="paper",
            limits=RiskLimits(max_position_pct=min(0.5 / max(frac * n, 1), 1.0), min_strength=0.7),
            costs=CostModel(), stale_after_s=1e12,
        )  # fmt: skip
        feed.next = stages.wrap("data", feed.next)  # type: ignore[method-assign]
        broker.on_bar = stages.wrap("data", broker.on_bar)  # type: ignore[method-assign]
        for name in ("refresh_open", "submit_many", "sync_exits"):
            setattr(ctx.orders, name, stages.wrap("orders", getattr(ctx.orders, name)))
        saved = {k: getattr(phase2, k) for k in ("evaluate", "snapshot", "sync_portfolio")}
        phase2.evaluate = stages.wrap("risk", saved["evaluate"])  # type: ignore[attr-defined]
        phase2.snapshot = stages.wrap("portfolio", saved["snapshot"])  # type: ignore[attr-defined]
        phase2.sync_portfolio = stages.wrap("portfolio", saved["sync_portfolio"])  # type: ignore[attr-defined]
        cycles = []
        try:
            with gc_frozen():  # as ``cycle.drive`` runs the cycles
                for _ in range(2):
                    stages.t.clear()
                    rows0 = _rows_written(db)
                    t0, cpu0 = time.perf_counter(), time.process_time()
                    r = run_cycle(ctx)
                    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    gc_s = collect_between_cycles()  # what the live loop does while it waits: off the clock
                    per = {k: stages.t.get(k, 0.0) for k in STAGES[:-1]}
                    per["other"] = max(total - sum(per.values()), 0.0)
                    rows = _rows_written(db) - rows0
                    cycles.append({"total": total, "cpu": cpu, "stages": per, "orders": r.n_orders, "rows": rows,
                                   "floor": _lower_bound(rows, tmp), "gc_after": gc_s})  # fmt: skip
        finally:
            for k, v in saved.items():
                setattr(phase2, k, v)
            store.dispose()
    return {"n": n, "frac": frac, "cycles": cycles, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    goal = {5_000: 0.5, 20_000: 2.0}
    print(f"   stages: {', '.join(STAGES)} (seconds); floor = raw sqlite3 executemany of the rows the cycle wrote")
    for n, frac in CASES:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        }
        out = subprocess.run([sys.executable, "-m", "bench.bench_cycle", str(n), str(frac)], capture_output=True, text=True, env=env,
                             cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        if out.returncode != 0:
            print(f"   {n:,} × {frac:.0%}: FAILED\n{out.stderr[-2000:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        for i, c in enumerate(res["cycles"], 1):
            st = " ".join(f"{k} {c['stages'][k]:.3f}" for k in STAGES)
            verdict = "meets" if c["total"] < goal[n] else "MISSES"
            print(
                f"   {n:>6,} instruments, {frac:>4.0%} trade, cycle {i}: {c['total']:.2f} s ({verdict} the {goal[n]:g} s goal; "
                f"CPU {c.get('cpu', 0.0):.2f} s, the figure to compare under load); "
                f"{c['orders']:,} orders, {c['rows']:,} rows written (floor {c['floor'] * 1e3:.0f} ms) | {st}"
                f" | gc after the cycle {c.get('gc_after', 0.0):.3f} (off the clock)"
            )
        print(
            f"   {n:>6,} instruments, {frac:>4.0%} trade: peak RSS {res['rss_mb']:,.0f} MB"
            + (" (goal < 2,048 MB)" if n == 20_000 else "")
        )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(run_case(int(sys.argv[1]), float(sys.argv[2]))))
    else:
        main()
