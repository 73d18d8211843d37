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

The long-history case runs 5,000 instruments at 5 % on a store that already holds what weeks of an
intraday run leave (``HISTORY_FILLS`` fills of the account, ``HISTORY_EXITS`` exit orders of the run in
earlier cycles, seeded with raw ``executemany``): cycle 2 there must cost what it costs on an empty store.
Beside it, the two reads the cycle used to make on that store, timed as the code before revision 0009
ran them (the fees summed over every fill with no index on the account, twice a cycle; the exit pairs
counted over every exit order of the run, at each exit sync).
"""

from __future__ import annotations

import json
import math
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import synthetic_panel as _panel  # the panel bench_features uses too (same draws, same defaults)

CASES = [(5_000, 0.05), (5_000, 0.30), (20_000, 0.05), (20_000, 0.30)]
LONG = (5_000, 0.05)  # the case run again on a store with a long history
HISTORY_FILLS, HISTORY_EXITS = 1_000_000, 200_000
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


_TS = "2024-01-01T00:00:00.000000+00:00"
_OLD_FEES = "SELECT fee_currency, SUM(fee) FROM fills NOT INDEXED WHERE account = ? GROUP BY fee_currency"
_OLD_PAIRS = (
    "SELECT symbol, COUNT(DISTINCT oco_group) FROM orders WHERE account = ? AND oco_group IS NOT NULL "
    "AND run_id = ? GROUP BY symbol"
)


def _seed_history(db: Path, run_id: int, symbols: list[str]) -> dict[str, Any]:
    """What weeks of the run left behind: ``HISTORY_EXITS`` exit orders (pairs of a stop-loss and a
    take-profit, cancelled or filled) of this run in earlier cycles and ``HISTORY_FILLS`` fills of the
    account, with the running fee totals revision 0009 would have made of them."""
    con = sqlite3.connect(db)
    t0 = time.perf_counter()
    k = len(symbols)
    con.executemany(
        "INSERT INTO orders (client_order_id, run_id, cycle, account, symbol, side, type, quantity, stop_price, "
        "limit_price, status, filled_quantity, fee, oco_group, created_at, updated_at) "
        "VALUES (?, ?, 0, 'paper', ?, 'sell', ?, 1.0, 90.0, 110.0, ?, 0.0, 0.0, ?, ?, ?)",
        (
            (f"h{i}", run_id, symbols[(i // 2) % k], "stop_loss" if i % 2 == 0 else "take_profit",
             "FILLED" if i % 10 == 0 else "CANCELLED", f"gh{i // 2}", _TS, _TS)
            for i in range(HISTORY_EXITS)
        ),
    )  # fmt: skip
    con.executemany(
        "INSERT INTO fills (fill_id, client_order_id, account, symbol, side, quantity, price, fee, fee_currency, ts) "
        "VALUES (?, ?, 'paper', ?, 'sell', 1.0, 100.0, 0.1, 'USD', ?)",
        ((f"hf{i}", f"h{i % HISTORY_EXITS}", symbols[(i // 2) % k], _TS) for i in range(HISTORY_FILLS)),
    )
    con.execute(
        "INSERT INTO fee_totals (account, fee_currency, total) "
        "SELECT account, COALESCE(fee_currency, ''), SUM(fee) FROM fills GROUP BY account, COALESCE(fee_currency, '')"
    )
    con.commit()
    dt = time.perf_counter() - t0
    con.close()
    return {"fills": HISTORY_FILLS, "exits": HISTORY_EXITS, "seed_s": dt}


def _old_reads(db: Path, run_id: int) -> dict[str, Any]:
    """The two reads as the cycle made them before (best of 3 each), and whether the fees agree."""
    con = sqlite3.connect(db)
    try:
        out: dict[str, Any] = {}
        for name, sql, args in (("fees", _OLD_FEES, ("paper",)), ("pairs", _OLD_PAIRS, ("paper", run_id))):
            best = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                rows = con.execute(sql, args).fetchall()
                best = min(best, time.perf_counter() - t0)
            out[name + "_s"], out[name] = best, rows
        return out
    finally:
        con.close()


def run_case(n: int, frac: float, history: bool = False) -> dict[str, Any]:
    """Two cycles of one case in this process; the figures of each, and the peak RSS. ``history``: on a
    store seeded with a long history first (and the old reads timed on it after)."""
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
        seeded = _seed_history(db, run_id, [str(s) for s in panel.close.columns]) if history else None
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
            if seeded is not None:
                old = _old_reads(db, run_id)
                fees = store.fees_by_currency("paper")
                seeded |= {k: v for k, v in old.items() if k.endswith("_s")}
                seeded["fees_agree"] = all(math.isclose(fees[c or ""], v, rel_tol=1e-9) for c, v in old["fees"])
                t0 = time.perf_counter()
                store.fees_by_currency("paper")
                seeded["new_fees_s"] = time.perf_counter() - t0
        finally:
            for k, v in saved.items():
                setattr(phase2, k, v)
            store.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "frac": frac, "cycles": cycles, "rss_mb": rss, "history": seeded}


def _case(n: int, frac: float, history: bool = False) -> dict[str, Any] | None:
    """One case in its own process (peak RSS is per process); None, after saying why, when it failed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-m", "bench.bench_cycle", str(n), str(frac), *(["history"] if history else [])]
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        print(f"   {n:,} × {frac:.0%}{' (long history)' if history else ''}: FAILED\n{out.stderr[-2000:]}")
        return None
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def main() -> None:
    goal = {5_000: 0.5, 20_000: 2.0}
    print(f"   stages: {', '.join(STAGES)} (seconds); floor = raw sqlite3 executemany of the rows the cycle wrote")
    empty: dict[str, Any] | None = None
    for n, frac in CASES:
        res = _case(n, frac)
        if res is None:
            continue
        if (n, frac) == LONG:
            empty = res
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
    _long_history(empty)


def _long_history(empty: dict[str, Any] | None) -> None:
    """Cycle 2 of ``LONG`` on a store with a long history, beside the same case on an empty store, and
    the reads the cycle made before revision 0009 timed on that store."""
    n, frac = LONG
    res = _case(n, frac, history=True)
    if res is None or empty is None:
        return
    h, full, bare = res["history"], res["cycles"][1], empty["cycles"][1]
    print(
        f"   long history ({h['fills']:,} fills of the account, {h['exits']:,} exit orders of the run; seeded in "
        f"{h['seed_s']:.1f} s): {n:,} instruments, {frac:.0%} trade, cycle 2: {full['total']:.2f} s "
        f"(CPU {full['cpu']:.2f} s) against {bare['total']:.2f} s (CPU {bare['cpu']:.2f} s) on an empty store: "
        f"ratio {full['total'] / bare['total']:.2f} (CPU {full['cpu'] / max(bare['cpu'], 1e-9):.2f}; goal: ≈ 1)"
    )
    old = 2 * h["fees_s"] + h["pairs_s"]
    print(
        f"   the reads before revision 0009 on that store: fees summed over every fill {h['fees_s'] * 1e3:.0f} ms "
        f"(twice a cycle), exit pairs counted over the run {h['pairs_s'] * 1e3:.0f} ms (each exit sync): "
        f"≥ {old:.2f} s a cycle more, growing with the history; the running totals now read in "
        f"{h['new_fees_s'] * 1e3:.2f} ms, and agree with the sum: {'yes' if h['fees_agree'] else 'NO'}"
    )


if __name__ == "__main__":
    if len(sys.argv) in (3, 4):
        print(json.dumps(run_case(int(sys.argv[1]), float(sys.argv[2]), history=sys.argv[3:] == ["history"])))
    else:
        main()
