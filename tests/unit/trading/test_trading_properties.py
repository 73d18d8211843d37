"""Properties of the whole trading core on the real paper venue and SQLite: for any sequence of bars
(bad prints included), signals (duplicates and contradictions included) and volume-capped fills, no
accepted order takes a position above 10% of equity, no entry follows the daily-loss limit, cash
never goes below zero, and the store's books match the venue's."""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from workbench.config import CostModel, RiskLimits
from workbench.signals import Signal
from workbench.trading.orders import OrderIntent, OrderManager, client_order_id
from workbench.trading.portfolio import snapshot
from workbench.trading.risk import RiskContext, evaluate
from workbench.trading.store import Store
from workbench.venues.base import BrokerStatus, Market, OrderRequest, Quote
from workbench.venues.paper.broker import PaperBroker

SYMS = ("AAA", "BBB", "CCC", "DDD")
LIMITS, COSTS, OK = RiskLimits(), CostModel(), BrokerStatus(True, "paper", "ok")
T0 = pd.Timestamp("2024-06-03 14:00", tz="UTC")
BAD = (float("nan"), 0.0, -5.0, float("inf"))

bar = st.tuples(
    st.tuples(*[st.floats(0.8, 1.25) for _ in SYMS]),  # close / previous close
    st.tuples(*[st.floats(0.0, 0.08) for _ in SYMS]),  # how far the bar's low dips below min(open, close)
    st.lists(st.tuples(st.sampled_from(SYMS), st.sampled_from(BAD)), max_size=2),  # bad prints this bar
    st.lists(
        st.tuples(
            st.sampled_from(SYMS),
            st.sampled_from(["BUY", "BUY", "SELL", "HOLD"]),
            st.floats(0.65, 1.0),
            st.floats(0.8, 0.99),
        ),
        max_size=6,
    ),
    st.sampled_from([False, False, True]),  # a new day starts with this bar
    st.sampled_from([1.0, 1.0, 0.55]),  # a market-wide shock (gap) on this bar
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bars=st.lists(bar, min_size=1, max_size=12),
    share=st.sampled_from([None, 0.02, 0.5]),
    lot=st.sampled_from([1.0, 0.01]),
)
def test_no_cap_breach_no_entry_after_daily_loss_no_negative_cash(bars, share, lot):
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'wb.db'}").create()
        markets = {s: Market(s, s, "USD", lot_size=lot, tick_size=0.01) for s in SYMS}
        broker = PaperBroker(
            store,
            starting_cash=50_000.0,
            fee_rate=COSTS.fee_rate,
            slippage_bps=COSTS.slippage_bps,
            markets=markets,
            max_volume_share=share,
        )
        run = store.start_run("paper", "paper", "paper")
        om = OrderManager(store, broker, "paper", run_id=run)
        prices = {s: 100.0 for s in SYMS}
        now = T0
        for cycle, (moves, dips, bad, sigs, new_day, shock) in enumerate(bars, start=1):
            now = now + (pd.Timedelta(days=1) if new_day else pd.Timedelta(hours=1))
            quotes = {}
            for s, m, dip in zip(SYMS, moves, dips):
                opened, prices[s] = prices[s] * shock, prices[s] * m * shock
                quotes[s] = Quote(
                    s,
                    prices[s],
                    now,
                    open=opened,
                    high=max(opened, prices[s]) * 1.01,
                    low=min(opened, prices[s]) * (1 - dip),
                    volume=400.0,
                )
            for s, px in bad:
                quotes[s] = Quote(s, px, now, volume=400.0)
            broker.on_bar(quotes)
            om.refresh_open()
            om.sync_exits(cycle)
            snap = snapshot(broker, store, "paper", now, quotes)
            sides = defaultdict(list)
            for s, side, *_ in sigs:
                if side != "HOLD":
                    sides[s].append(side)
            for s, side, strength, stop_frac in sigs:
                p = prices[s]
                if side == "HOLD":
                    continue
                stop = p * stop_frac if side == "BUY" else p * (2 - stop_frac)
                sig = Signal(s, side, strength, 0.6, p, stop, p * 1.1 if side == "BUY" else p * 0.9, ts=now, price=p)
                ctx = RiskContext(
                    snap, quotes, markets, LIMITS, COSTS, OK, now, cycle_sides={k: tuple(v) for k, v in sides.items()}
                )
                dec = evaluate(sig, ctx)
                if not dec.accepted:
                    event(f"rejected: {dec.rejections[0].rule if dec.rejections else 'hold'}")
                    continue
                q = quotes[s].last
                assert math.isfinite(q) and q > 0, "an order on a bad price"
                assert len(sides[s]) == 1, "a duplicate or contradictory signal traded"
                if dec.side == "buy":
                    assert snap.daily_pnl_pct > -LIMITS.max_daily_loss_pct, "an entry after the daily-loss limit"
                    value = (snap.quantity(s) + dec.quantity) * q
                    assert value <= LIMITS.max_position_pct * snap.equity * (1 + 1e-9), "above 10% of equity"
                event(f"accepted {dec.side}")
                ans = om.submit(
                    OrderIntent(
                        OrderRequest(client_order_id(run, cycle, s, dec.side), s, dec.side, dec.quantity),
                        run,
                        cycle,
                        "property",
                        stop_loss=stop if dec.side == "buy" else None,
                        take_profit=sig.take_profit if dec.side == "buy" else None,
                    )
                )
                if ans.filled_quantity > 0:
                    snap = snapshot(broker, store, "paper", now, quotes)
            bal = broker.balances()["USD"]
            assert bal.total >= -1e-9 and bal.free >= -1e-6, f"cash below zero: {bal}"
            held = broker.positions()
            assert all(v > 0 for v in held.values())
            book = {r["symbol"]: r["quantity"] for r in store.position_book("paper").values() if r["quantity"]}
            assert held.keys() == book.keys() and all(held[k] == pytest.approx(book[k], abs=1e-9) for k in held)
        store.dispose()
