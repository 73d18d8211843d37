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

``--store postgres`` (and ``python -m bench live`` when PostgreSQL's binaries are present) runs each
case a second time on a throw-away local PostgreSQL server (bench/pg.py; fsync on, as a team's store
runs), printed beside the SQLite figures, with PostgreSQL's own floor measured in the same run: the
same rows through psycopg's ``COPY`` and through ``executemany`` in pipeline mode, one transaction;
and the server's CPU time beside the client's (the client waits while the server works, so on a
loaded machine the wall time of a two-process cycle is inflated more than SQLite's in-process one).
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


def run_case(n: int, frac: float, history: bool = False, url: str | None = None) -> dict[str, Any]:
    """Two cycles of one case in this process; the figures of each, and the peak RSS. ``history``: on a
    store seeded with a long history first (and the old reads timed on it after; SQLite only). ``url``: on
    that PostgreSQL database instead of a SQLite file."""
    if history and url:
        raise ValueError("the long-history case seeds a SQLite file: run it without a PostgreSQL url")
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
        store = Store(url or f"sqlite:///{db}").create()
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


def _case(
    n: int, frac: float, history: bool = False, url: str | None = None, pg_data: Path | None = None
) -> dict[str, Any] | None:
    """One case in its own process (peak RSS is per process); None, after saying why, when it failed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop(_PG_DATA, None)
    if pg_data is not None:
        env[_PG_DATA] = str(pg_data)
    args = [sys.executable, "-m", "bench.bench_cycle", str(n), str(frac), *(["history"] if history else [])]
    args += [url] if url else []
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        where = " (long history)" if history else " (postgresql)" if url else ""
        print(f"   {n:,} × {frac:.0%}{where}: FAILED\n{out.stderr[-2000:]}")
        return None
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


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
    skipped); ``--cases 5000x0.05,...`` to run a subset while iterating. The long-history case: SQLite."""
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
    empty: dict[str, Any] | None = None
    try:
        for k, (n, frac) in enumerate(cases):
            stores: list[tuple[str, str | None]] = [("sqlite", None)]
            if server is not None:
                stores.append(("postgresql", server.create_database(f"cycle_{k}")))
            done: dict[str, dict[str, Any]] = {}
            for name, url in stores:
                res = _case(n, frac, url=url, pg_data=server.data_dir if url and server else None)
                if res is None:
                    continue
                if (n, frac) == LONG and url is None:
                    empty = res
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
    if not args.cases:
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
    if len(sys.argv) >= 3 and not sys.argv[1].startswith("-"):
        extra = sys.argv[3:]
        pg_url = next((a for a in extra if a.startswith("postgresql")), None)
        print(json.dumps(run_case(int(sys.argv[1]), float(sys.argv[2]), history="history" in extra, url=pg_url)))
    else:
        main()
