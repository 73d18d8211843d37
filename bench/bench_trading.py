"""The trading core at scale: risk decisions for 5,000 signals, one full live cycle over 5,000
instruments on the paper venue and SQLite, and sustained order events per second into the store."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.kit holds the test engine

from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.signals import Signal
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import LiveContext, run_cycle
from workbench.trading.orders import OrderManager
from workbench.trading.portfolio import compute_snapshot
from workbench.trading.risk import RiskContext, evaluate
from workbench.trading.store import Store
from workbench.venues.base import BrokerStatus, Market, Quote
from workbench.venues.paper.broker import PaperBroker

N = 5_000
NOW = pd.Timestamp("2024-06-03 14:00", tz="UTC")


def _signals(symbols, close, rng) -> list[Signal]:
    out = []
    kinds = rng.choice(["BUY", "SELL", "HOLD"], size=len(symbols), p=[0.5, 0.2, 0.3])
    strength = rng.uniform(0.5, 1.0, len(symbols))
    for s, k, st, px in zip(symbols, kinds, strength, close):
        if k == "HOLD":
            out.append(Signal(s, "HOLD", float(st), 0.55, None, None, None, ts=NOW, price=float(px)))
        else:
            sign = 1 if k == "BUY" else -1
            out.append(
                Signal(
                    s,
                    k,
                    float(st),
                    0.7,
                    px * (1 + 0.01 * sign),
                    px * (1 - 0.03 * sign),
                    px * (1 + 0.05 * sign),
                    ts=NOW,
                    price=float(px),
                )
            )
    return out


def bench_decisions(rng) -> None:
    symbols = [f"S{i:04d}" for i in range(N)]
    close = rng.uniform(10, 500, N)
    held = {s: 3.0 for s in symbols[::10]}
    prices = dict(zip(symbols, close))
    snap = compute_snapshot(
        NOW, 1_000_000.0, held, prices, {s: {"average_price": prices[s]} for s in held}, day_start_equity=1_000_000.0
    )
    quotes = {s: Quote(s, float(p), NOW) for s, p in prices.items()}
    markets = {s: Market(s, s, "USD", lot_size=1.0) for s in symbols}
    ctx = RiskContext(
        snap,
        quotes,
        markets,
        RiskLimits(),
        CostModel(),
        BrokerStatus(True, "paper", "ok"),
        NOW,
        cycle_sides={s: ("BUY",) for s in symbols},
    )
    sigs = _signals(symbols, close, rng)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        decisions = [evaluate(s, ctx) for s in sigs]
        best = min(best, time.perf_counter() - t0)
    acc = sum(d.accepted for d in decisions)
    print(f"   risk decisions, {N:,} signals: {best * 1e3:.1f} ms ({best / N * 1e6:.1f} µs/signal), {acc:,} accepted")


class _Fixed:
    def __init__(self, sigs):
        self.sigs = sigs

    def signals(self, panel):
        return self.sigs


def bench_cycle(rng, tmp: Path) -> None:
    """One run_cycle over 5,000 instruments: on_bar, refresh, 5,000 risk decisions, every accepted
    order written NEW → sent → filled with its fill and position rows, exit pairs placed, rejections
    logged in one batch, equity and cycle rows."""
    idx = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC", name="ts")
    cols = pd.Index([f"S{i:04d}" for i in range(N)], name="symbol")
    close = rng.uniform(10, 500, (3, N))
    mk = lambda a: pd.DataFrame(a, index=idx, columns=cols)
    panel = Panel(
        open=mk(close),
        high=mk(close * 1.01),
        low=mk(close * 0.99),
        close=mk(close),
        volume=mk(np.full((3, N), 1e6)),
        exchange="BENCH",
        timeframe="1d",
    )
    store = Store(f"sqlite:///{tmp / 'cycle.db'}").create()
    broker = PaperBroker(store, starting_cash=1_000_000.0, max_volume_share=0.1)
    run_id = store.start_run("paper", "paper", "paper")
    sigs = _signals(list(cols), close[-1], rng)
    sigs = [
        Signal(
            s.symbol,
            s.signal,
            s.strength,
            s.confidence,
            s.target_price,
            s.stop_loss,
            s.take_profit,
            ts=idx[-1],
            price=s.price,
        )
        for s in sigs
    ]
    feed = ReplayFeed.from_panel(panel, warmup_bars=2, replay_bars=1)
    ctx = LiveContext(
        store=store,
        broker=broker,
        feed=feed,
        engine=_Fixed(sigs),
        orders=OrderManager(store, broker, "paper", run_id=run_id),
        run_id=run_id,
        account="paper",
        limits=RiskLimits(max_position_pct=0.0005),
        costs=CostModel(),
        stale_after_s=1e12,
    )
    t0 = time.perf_counter()
    r = run_cycle(ctx)
    dt = time.perf_counter() - t0
    n_orders = len(store.orders(run_id, limit=100_000))
    print(
        f"   full cycle, {N:,} instruments on paper + SQLite: {dt:.2f} s ({r.n_orders} entries filled, {n_orders} order rows incl. exits, "
        f"{r.n_rejections:,} rejections logged in one batch)"
    )
    store.dispose()


def bench_events(tmp: Path) -> None:
    """Orders written NEW, then SUBMITTED, then FILLED: each transition one committed transaction
    (order row + its event), as the order manager writes them."""
    store = Store(f"sqlite:///{tmp / 'events.db'}").create()
    n = 1_500
    t0 = time.perf_counter()
    for i in range(n):
        cid = f"o{i}"
        store.insert_order(
            {
                "client_order_id": cid,
                "account": "paper",
                "symbol": "AAA",
                "side": "buy",
                "type": "market",
                "quantity": 1.0,
                "status": "NEW",
            }
        )
        store.update_order(cid, status="SUBMITTED")
        store.update_order(cid, status="FILLED", filled_quantity=1.0, average_price=100.0)
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(20):
        store.log_events([("risk_rejection", f"signal {j} rejected", "INFO") for j in range(5_000)])
    dt2 = time.perf_counter() - t1
    print(
        f"   order events into SQLite (WAL): {3 * n / dt:,.0f} transitions/s committed one by one; "
        f"batched event log {100_000 / dt2:,.0f} rows/s"
    )
    store.dispose()


def main() -> None:
    rng = np.random.default_rng(3)
    bench_decisions(rng)
    with tempfile.TemporaryDirectory() as d:
        bench_cycle(rng, Path(d))
        bench_events(Path(d))


if __name__ == "__main__":
    main()
