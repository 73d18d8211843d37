"""Parity with live: the same bars replayed through the live loop (run_cycle, the real PaperBroker and
SQLite, a ReplayFeed over the panel, a signal engine reading the precomputed frames' row for the
bar) fill the same orders as the backtest: bar, symbol, side, quantity to lot precision, price."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.backtest import run_backtest
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.market import Market
from workbench.signals import latest_signals
from workbench.trading.feeds import ReplayFeed
from workbench.trading.loop import LiveContext, run_cycle
from workbench.trading.orders import OrderManager
from workbench.trading.store import Store
from workbench.venues.paper.broker import PaperBroker


def case(seed=3, n_bars=45, n_sym=6):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-02-01", periods=n_bars, freq="6h", tz="UTC", name="ts")
    cols = pd.Index([f"P{i}" for i in range(n_sym)], name="symbol")
    c = np.round(40 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_sym)), axis=0)), 2)
    o = np.round(c * np.exp(rng.normal(0, 0.01, c.shape)), 2)
    h = np.round(np.maximum(c, o) * (1 + rng.uniform(0, 0.03, c.shape)), 2)
    lo = np.round(np.minimum(c, o) * (1 - rng.uniform(0, 0.03, c.shape)), 2)
    c[5, 2] = np.nan  # a missing bar
    mk = lambda a: pd.DataFrame(a, index=idx, columns=cols)
    panel = Panel(
        open=mk(o), high=mk(h), low=mk(lo), close=mk(c), volume=mk(np.full(c.shape, 1e6)), exchange="T", timeframe="6h"
    )
    side = rng.choice([-1.0, 0.0, 1.0], size=c.shape, p=[0.2, 0.4, 0.4])
    base = np.nan_to_num(c, nan=40)
    atr = base * rng.uniform(0.01, 0.04, c.shape)
    frames = {
        "side": mk(side), "strength": mk(rng.uniform(0.5, 1.0, c.shape)), "confidence": mk(np.full(c.shape, 0.6)),
        "target": mk(np.where(side != 0, base + side * atr, np.nan)),
        "stop": mk(np.where(side != 0, base - side * 2 * atr, np.nan)),
        "take_profit": mk(np.where(side != 0, base + side * 3 * atr, np.nan)), "close": mk(c),
    }  # fmt: skip
    markets = {
        s: Market(s, s, "USD", lot_size=(1.0, 0.01)[i % 2], tick_size=0.01, exchange=("E1", "E2")[i % 2])
        for i, s in enumerate(cols)
    }
    return panel, frames, markets


class FrameEngine:
    """The precomputed frames' row for the current bar, as the live loop's signal engine."""

    def __init__(self, frames):
        self.frames = frames

    def signals(self, panel):
        ts = panel.index[-1]
        return latest_signals({k: v.loc[[ts]] for k, v in self.frames.items()}, panel.exchange)


def live_fills(tmp_path, panel, frames, markets, risk, costs, cash, exchange_costs):
    store = Store(f"sqlite:///{tmp_path / 'parity.db'}").create()
    broker = PaperBroker(store, starting_cash=cash, fee_rate=costs.fee_rate, slippage_bps=costs.slippage_bps, markets=markets,
                         exchange_costs=exchange_costs)  # fmt: skip
    run_id = store.start_run("paper", "paper", "paper")
    feed = ReplayFeed.from_panel(panel, warmup_bars=1, replay_bars=len(panel.index))
    ctx = LiveContext(store=store, broker=broker, feed=feed, engine=FrameEngine(frames), run_id=run_id, account="paper",
                      orders=OrderManager(store, broker, "paper", run_id=run_id), limits=risk, costs=costs,
                      exchange_costs={k: CostModel(fee_rate=f, slippage_bps=s) for k, (f, s) in exchange_costs.items()},
                      stale_after_s=1e12)  # fmt: skip
    rows, equity, seen = [], [], set()
    for bar in range(len(panel.index)):
        res = run_cycle(ctx)
        equity.append(res.equity)
        for f in broker.fills():
            if f.fill_id not in seen:
                seen.add(f.fill_id)
                rows.append((bar, f.symbol, f.side, f.quantity, f.price, f.fee))
    store.dispose()
    return rows, np.array(equity)


def test_live_loop_with_paper_broker_fills_what_the_backtest_fills(tmp_path):
    panel, frames, markets = case()
    risk, costs, cash = RiskLimits(), CostModel(fee_rate=0.001, slippage_bps=5.0), 100_000.0
    exchange_costs = {"E2": (0.002, 12.0)}
    live, live_eq = live_fills(tmp_path, panel, frames, markets, risk, costs, cash, exchange_costs)
    bt = run_backtest(frames, panel, risk, costs, cash, markets=markets, exchange_costs=exchange_costs).orders
    got = sorted(
        zip(
            [panel.index.get_loc(t) for t in bt["ts"]], bt["symbol"], bt["side"], bt["quantity"], bt["price"], bt["fee"]
        )
    )
    live = sorted(live)
    assert len(got) == len(live) > 20
    assert [g[:3] for g in got] == [w[:3] for w in live]
    lots = np.array([markets[g[1]].lot_size for g in got])
    assert np.all(np.abs(np.array([g[3] for g in got]) - [w[3] for w in live]) < lots / 2)
    np.testing.assert_allclose([g[4] for g in got], [w[4] for w in live], rtol=1e-12)
    np.testing.assert_allclose([g[5] for g in got], [w[5] for w in live], rtol=1e-9)
    r = run_backtest(frames, panel, risk, costs, cash, markets=markets, exchange_costs=exchange_costs)
    np.testing.assert_allclose(r.equity.to_numpy(), live_eq, rtol=1e-9)
    assert {"stop_loss", "take_profit", "sell_signal", "entry"} <= set(r.orders["reason"])
