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

``--store postgres`` (and ``python -m bench live`` when PostgreSQL's binaries are present) runs each
case a second time on a throw-away local PostgreSQL server (bench/pg.py; fsync on, as a team's store
runs), printed beside the SQLite figures, with PostgreSQL's own floor measured in the same run: the
same rows through psycopg's ``COPY`` and through ``executemany`` in pipeline mode, one transaction;
and the server's CPU time beside the client's (the client waits while the server works, so on a
loaded machine the wall time of a two-process cycle is inflated more than SQLite's in-process one).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import synthetic_panel as _panel  # the panel bench_features uses too (same draws, same defaults)

CASES = [(5_000, 0.05), (5_000, 0.30), (20_000, 0.05), (20_000, 0.30)]
HISTORY = 120  # bars before the live ones (v2's warm-up is shorter)
_PG_DATA = "WB_BENCH_PG_DATA"  # the parent's PostgreSQL data directory, for the server's CPU time
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


def _rows_written(engine: Any) -> int:
    from sqlalchemy import text

    tables = ("orders", "order_events", "fills", "positions", "signals", "events", "paper_orders", "paper_fills")
    with engine.connect() as conn:
        return sum(int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in tables)


def _lower_bound(n_rows: int, tmp: Path) -> float:
    """Raw sqlite3: ``n_rows`` ten-column rows, one executemany, one commit, WAL."""
    (tmp / "floor.db").unlink(missing_ok=True)
    con = sqlite3.connect(tmp / "floor.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE t (a TEXT PRIMARY KEY, b TEXT, c TEXT, d REAL, e REAL, f REAL, g TEXT, h TEXT, i REAL, j TEXT)"
    )
    rows = _floor_rows(n_rows)
    t0 = time.perf_counter()
    con.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    dt = time.perf_counter() - t0
    con.close()
    return dt


def _server_cpu() -> float:
    """CPU seconds of the PostgreSQL cluster the parent started (0.0 on SQLite: its work is in ours)."""
    from bench.pg import cluster_cpu_seconds

    data = os.environ.get(_PG_DATA)
    return cluster_cpu_seconds(Path(data)) if data else 0.0


def _floor_rows(n_rows: int) -> list[tuple[Any, ...]]:
    return [
        (f"wb-1-1-S{i:06d}-b", "S", "buy", 1.0, 2.0, 3.0, "FILLED", "2024-01-01T00:00:00.000000+00:00", 0.1, "x")
        for i in range(n_rows)
    ]


def _pg_lower_bound(n_rows: int, url: str) -> dict[str, float]:
    """The same ten-column rows on the same PostgreSQL server, one transaction and one commit each:
    ``COPY`` (the fastest way in) and ``executemany`` in pipeline mode (the fastest INSERT statements:
    no round trip per row)."""
    import psycopg

    rows = _floor_rows(n_rows)
    create = (
        "CREATE TABLE IF NOT EXISTS floor_t (a VARCHAR PRIMARY KEY, b VARCHAR, c VARCHAR, d DOUBLE PRECISION, "
        "e DOUBLE PRECISION, f DOUBLE PRECISION, g VARCHAR, h VARCHAR, i DOUBLE PRECISION, j VARCHAR)"
    )
    out: dict[str, float] = {}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        for how in ("copy", "pipeline"):
            con.execute(create)
            con.execute("TRUNCATE floor_t")
            con.commit()
            t0 = time.perf_counter()
            with con.cursor() as cur:
                if how == "copy":
                    with cur.copy("COPY floor_t FROM STDIN") as cp:
                        for r in rows:
                            cp.write_row(r)
                else:
                    with con.pipeline():
                        cur.executemany("INSERT INTO floor_t VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
            con.commit()
            out[how] = time.perf_counter() - t0
        con.execute("DROP TABLE floor_t")
        con.commit()
    return out


def run_case(n: int, frac: float, url: str | None = None) -> dict[str, Any]:
    """Two cycles of one case in this process (on SQLite, or on the PostgreSQL database ``url``); the
    figures of each, and the peak RSS."""
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
        store = Store(url or f"sqlite:///{tmp / 'cycle.db'}").create()
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
                    rows0 = _rows_written(store.engine)
                    srv0 = _server_cpu()
                    t0, cpu0 = time.perf_counter(), time.process_time()
                    r = run_cycle(ctx)
                    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    srv = _server_cpu() - srv0
                    gc_s = collect_between_cycles()  # what the live loop does while it waits: off the clock
                    per = {k: stages.t.get(k, 0.0) for k in STAGES[:-1]}
                    per["other"] = max(total - sum(per.values()), 0.0)
                    rows = _rows_written(store.engine) - rows0
                    cycles.append({"total": total, "cpu": cpu, "stages": per, "orders": r.n_orders, "rows": rows,
                                   "floor": _lower_bound(rows, tmp), "gc_after": gc_s})  # fmt: skip
                    if url:
                        cycles[-1]["pg_floor"] = _pg_lower_bound(rows, url)
                        cycles[-1]["server_cpu"] = srv
        finally:
            for k, v in saved.items():
                setattr(phase2, k, v)
            store.dispose()
    return {"n": n, "frac": frac, "cycles": cycles, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run(n: int, frac: float, url: str | None, pg_data: Path | None = None) -> dict[str, Any] | str:
    """One case in a fresh process (peak RSS is per process): its figures, or the error's tail."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop(_PG_DATA, None)
    if pg_data is not None:
        env[_PG_DATA] = str(pg_data)
    cmd = [sys.executable, "-m", "bench.bench_cycle", str(n), str(frac), *([url] if url else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        return out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _print(res: dict[str, Any], store: str) -> None:
    goal = {5_000: 0.5, 20_000: 2.0}
    n, frac = res["n"], res["frac"]
    for i, c in enumerate(res["cycles"], 1):
        st = " ".join(f"{k} {c['stages'][k]:.3f}" for k in STAGES)
        verdict = "meets" if c["total"] < goal[n] else "MISSES"
        floor = f"floor {c['floor'] * 1e3:.0f} ms"
        if "pg_floor" in c:
            pf = c["pg_floor"]
            floor = f"floor: COPY {pf['copy'] * 1e3:.0f} ms, pipelined executemany {pf['pipeline'] * 1e3:.0f} ms"
        print(
            f"   {store:<10} {n:>6,} instruments, {frac:>4.0%} trade, cycle {i}: {c['total']:.2f} s ({verdict} the "
            f"{goal[n]:g} s goal; CPU {c.get('cpu', 0.0):.2f} s"
            + (f" + server {c['server_cpu']:.2f} s" if "server_cpu" in c else "")
            + ", the figure to compare under load); "
            f"{c['orders']:,} orders, {c['rows']:,} rows written ({floor}) | {st}"
            f" | gc after the cycle {c.get('gc_after', 0.0):.3f} (off the clock)"
        )
    print(
        f"   {store:<10} {n:>6,} instruments, {frac:>4.0%} trade: peak RSS {res['rss_mb']:,.0f} MB"
        + (" (goal < 2,048 MB)" if n == 20_000 else "")
    )


def main(argv: list[str] | None = None) -> None:
    """``--store sqlite|postgres|both`` (default both: PostgreSQL where its binaries are, else said and
    skipped); ``--cases 5000x0.05,...`` to run a subset while iterating."""
    import argparse

    from bench.pg import find_pg_bin, start_postgres

    ap = argparse.ArgumentParser(prog="bench.bench_cycle")
    ap.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--cases", default="")
    args, _ = ap.parse_known_args(sys.argv[1:] if argv is None else argv)  # ``python -m bench live`` passes its own
    cases = [(int(a), float(b)) for a, b in (c.split("x") for c in args.cases.split(",") if c)] or CASES
    server = None
    if args.store != "sqlite":
        if find_pg_bin() is None:
            print("   PostgreSQL: skipped, its binaries are not installed (Debian package `postgresql`)")
            if args.store == "postgres":
                raise SystemExit(2)
        else:
            try:
                server = start_postgres(durable=True)
            except (OSError, subprocess.CalledProcessError, RuntimeError) as e:  # e.g. root without runuser
                print(f"   PostgreSQL: skipped, the server did not start ({type(e).__name__}: {e})")
                if args.store == "postgres":
                    raise SystemExit(2) from e
    print(
        f"   stages: {', '.join(STAGES)} (seconds); sqlite floor = raw sqlite3 executemany of the rows the cycle "
        "wrote"
        + ("; postgres floor = psycopg COPY / pipelined executemany of those rows, same server" if server else "")
    )
    try:
        for k, (n, frac) in enumerate(cases):
            stores: list[tuple[str, str | None]] = [("sqlite", None)]
            if server is not None:
                stores.append(("postgresql", server.create_database(f"cycle_{k}")))
            done: dict[str, dict[str, Any]] = {}
            for name, url in stores:
                res = _run(n, frac, url, server.data_dir if url and server else None)
                if isinstance(res, str):
                    print(f"   {name:<10} {n:,} × {frac:.0%}: FAILED\n{res}")
                else:
                    _print(res, name)
                    done[name] = res["cycles"][-1]
            if len(done) == 2:
                sq, pg = done["sqlite"], done["postgresql"]
                work = pg["cpu"] + pg.get("server_cpu", 0.0)
                print(
                    f"   {'':<10} {n:>6,} instruments, {frac:>4.0%} trade, last cycle, PostgreSQL against SQLite: wall "
                    f"{pg['total'] / sq['total']:.2f}×; CPU {work:.2f} s (client + server) against {sq['cpu']:.2f} s "
                    f"= {work / max(sq['cpu'], 1e-9):.2f}× (the ratio to compare under load)"
                )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and not sys.argv[1].startswith("-"):
        print(json.dumps(run_case(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None)))
    else:
        main()
