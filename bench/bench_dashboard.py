"""The dashboard's live view at 5,000 rows: what one refresh costs the kernel.

A store holds one run with 5,000 instruments' signals (two cycles), 5,000 orders with a fill each,
5,000 log events and 500 equity points. Timed (wall and kernel CPU, ``LiveView.refresh``'s own
figures): the first refresh (everything read and sent), a refresh with nothing new (what the page pays
every 2 s between cycles), and a refresh after one new cycle (5,000 new signals, 50 new orders). The
anchor beside them: the bare SQL read of the same new rows into pandas, which any refresh must pay.
Widgets are built without a browser: sending to the page is serialisation in this kernel, counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

N = 5_000


def _seed(settings, user_id: int) -> int:
    from workbench.store.schema import equity, events, fills, orders, signals
    from workbench.trading.store import Store

    store = Store(settings.store_url).create()
    run = store.start_run("paper", "paper", "paper", "bench", 30.0, pid=None, user_id=user_id)
    rng = np.random.default_rng(0)
    t0 = pd.Timestamp("2030-01-01", tz="UTC")
    with store.engine.begin() as c:
        for cycle in (1, 2):
            c.execute(insert(signals), _signal_rows(run, cycle, rng, t0))
        c.execute(
            insert(orders),
            [
                {
                    "client_order_id": f"o{i}",
                    "run_id": run,
                    "cycle": 1 + i // 50,
                    "account": "paper",
                    "symbol": f"I{i:04d}",
                    "side": "buy" if i % 2 else "sell",
                    "type": "market",
                    "quantity": 1.0,
                    "status": "FILLED",
                    "filled_quantity": 1.0,
                    "average_price": 100.0,
                    "fee": 0.1,
                    "created_at": (t0 + pd.Timedelta(seconds=i)).isoformat(),
                    "updated_at": (t0 + pd.Timedelta(seconds=i)).isoformat(),
                }
                for i in range(N)
            ],
        )
        c.execute(
            insert(fills),
            [
                {
                    "fill_id": f"f{i}",
                    "client_order_id": f"o{i}",
                    "account": "paper",
                    "symbol": f"I{i:04d}",
                    "side": "buy" if i % 2 else "sell",
                    "quantity": 1.0,
                    "price": 100.0,
                    "fee": 0.1,
                    "fee_currency": "USD",
                    "ts": (t0 + pd.Timedelta(seconds=i)).isoformat(),
                }
                for i in range(N)
            ],
        )
        c.execute(
            insert(events),
            [
                {"ts": (t0 + pd.Timedelta(seconds=i)).isoformat(), "run_id": run, "level": "INFO", "kind": "fill"}
                | {"message": f"event {i}"}
                for i in range(N)
            ],
        )
        c.execute(
            insert(equity),
            [
                {"run_id": run, "cycle": i, "account": "paper", "ts": (t0 + pd.Timedelta(minutes=i)).isoformat()}
                | {"bar_ts": None, "cash": 1e5, "positions_value": 0.0, "equity": 1e5 + i, "day_start_equity": 1e5}
                for i in range(500)
            ],
        )
    return run


def _signal_rows(run: int, cycle: int, rng: np.random.Generator, t0: pd.Timestamp) -> list[dict]:
    s = rng.uniform(0, 1, N)
    side = np.where(s > 0.7, "BUY", np.where(s < 0.3, "SELL", "HOLD"))
    ts = (t0 + pd.Timedelta(days=cycle)).isoformat()
    return [
        {"run_id": run, "cycle": cycle, "bar_ts": ts, "symbol": f"I{i:04d}", "signal": str(side[i])}
        | {"strength": float(s[i]), "confidence": 0.5, "price": 100.0 + i}
        for i in range(N)
    ]


def main() -> None:
    from workbench.config import load_settings
    from workbench.dashboard.live_view import LiveView
    from workbench.security.access import accounts_for
    from workbench.store.schema import orders, signals

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "home")
        settings.ensure_dirs()
        accounts = accounts_for(settings)
        accounts.add_user("bench", "bench-password-0123", ["trade_paper"], actor=None)
        user = accounts.user("bench")
        run = _seed(settings, int(user.id))
        view = LiveView(settings, lambda: user)
        first = view.refresh()
        idle = [view.refresh() for _ in range(5)]
        # One new cycle: 5,000 signals and 50 orders.
        from workbench.trading.store import Store

        store = Store(settings.store_url)
        t0 = pd.Timestamp("2030-01-01", tz="UTC")
        with store.engine.begin() as c:
            c.execute(insert(signals), _signal_rows(run, 3, np.random.default_rng(1), t0))
            stamp = (t0 + pd.Timedelta(days=9)).isoformat()
            c.execute(
                insert(orders),
                [
                    {"client_order_id": f"n{i}", "run_id": run, "cycle": 3, "account": "paper", "symbol": f"I{i:04d}"}
                    | {"side": "buy", "type": "market", "quantity": 1.0, "status": "NEW"}
                    | {"created_at": stamp, "updated_at": stamp}
                    for i in range(50)
                ],
            )
        t = time.perf_counter()
        with store.engine.connect() as c:  # the anchor: the same new rows, bare SQL into pandas
            pd.DataFrame(c.execute(select(signals).where(signals.c.cycle == 3)).fetchall())
            pd.DataFrame(c.execute(select(orders).where(orders.c.updated_at >= stamp)).fetchall())
        anchor = time.perf_counter() - t
        cycle = view.refresh()
        print(f"   live view, {N:,} instruments / {N:,} orders / {N:,} fills / {N:,} log rows:")
        print(
            f"   first refresh (all rows read and sent): {first['wall_s'] * 1e3:8.1f} ms wall, {first['cpu_s'] * 1e3:8.1f} ms CPU"
        )
        w = np.median([r["wall_s"] for r in idle]) * 1e3
        cpu = np.median([r["cpu_s"] for r in idle]) * 1e3
        print(f"   refresh, nothing new (every 2 s):       {w:8.1f} ms wall, {cpu:8.1f} ms CPU (median of 5)")
        print(
            f"   refresh after a cycle (5,000 signals):  {cycle['wall_s'] * 1e3:8.1f} ms wall, {cycle['cpu_s'] * 1e3:8.1f} ms CPU"
        )
        print(f"   anchor: bare SQL read of those new rows: {anchor * 1e3:8.1f} ms")
        print(f"   kernel CPU share at a 2 s poll between cycles: {cpu / 2000:.2%}")


if __name__ == "__main__":
    main()
