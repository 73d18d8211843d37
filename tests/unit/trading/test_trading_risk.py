"""Risk rules one by one (each names itself), sizing, and hypothesis properties over random
sequences of signals and prices: no buy above the position cap, no entry after the daily-loss
limit, cash never negative."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from workbench.config import CostModel, RiskLimits
from workbench.signals import Signal
from workbench.trading.portfolio import compute_snapshot
from workbench.trading.risk import (
    RiskContext,
    check_buying_power,
    check_daily_loss,
    check_emergency,
    check_exchange,
    check_input,
    check_position_cap,
    check_strength,
    entry_cost_factor,
    evaluate,
    floor_to_lot,
    size_entry,
)
from workbench.venues.base import BrokerStatus, Market, Quote

NOW = pd.Timestamp("2024-06-03 14:00", tz="UTC")
LIMITS = RiskLimits()
COSTS = CostModel()
OK = BrokerStatus(True, "paper", "fine")


def buy(sym="AAA", strength=0.9, stop=95.0, price=100.0) -> Signal:
    return Signal(sym, "BUY", strength, 0.8, price + 1, stop, price + 10, ts=NOW, price=price)


def sell(sym="AAA", strength=0.9, price=100.0) -> Signal:
    return Signal(sym, "SELL", strength, 0.8, price - 1, price + 5, price - 10, ts=NOW, price=price)


def ctx(cash=100_000.0, held=None, prices=None, day_start=None, lot=1.0, min_notional=0.0, **kw) -> RiskContext:
    prices = prices or {"AAA": 100.0}
    held = held or {}
    snap = compute_snapshot(NOW, cash, held, prices, {s: {"average_price": prices[s]} for s in held}, day_start)
    quotes = {s: Quote(s, p, NOW) for s, p in prices.items()}
    markets = {s: Market(s, s, "USD", lot_size=lot, min_notional=min_notional) for s in prices}
    return RiskContext(
        snapshot=snap,
        quotes=quotes,
        markets=markets,
        limits=kw.pop("limits", LIMITS),
        costs=COSTS,
        exchange=kw.pop("exchange", OK),
        now=NOW,
        **kw,
    )


# ---- each rule names itself -------------------------------------------------------------------------
def test_rules_pass_and_fail_with_their_names():
    assert check_strength(buy(strength=0.71), LIMITS) is None
    assert check_strength(buy(strength=0.70), LIMITS).rule == "min_strength"  # strictly greater than 0.7
    assert check_emergency(False) is None and check_emergency(True).rule == "emergency_stop"
    assert check_exchange(OK) is None
    down = check_exchange(BrokerStatus(False, "live", "maintenance until 02:00"))
    assert down.rule == "exchange" and "maintenance" in down.message
    assert check_buying_power(100.0, 100.0) is None and check_buying_power(100.01, 100.0).rule == "buying_power"
    assert check_position_cap(10_000.0, 100_000.0, LIMITS) is None
    assert check_position_cap(10_001.0, 100_000.0, LIMITS).rule == "position_cap"
    snap = compute_snapshot(NOW, 95_000.0, {}, {}, day_start_equity=100_000.0)
    assert check_daily_loss(snap, LIMITS).rule == "daily_loss"  # exactly 5% down: stop
    snap = compute_snapshot(NOW, 95_001.0, {}, {}, day_start_equity=100_000.0)
    assert check_daily_loss(snap, LIMITS) is None


@pytest.mark.parametrize(
    "quote, sides, rule",
    [
        (None, (), "no_quote"),
        (Quote("AAA", float("nan"), NOW), (), "bad_price"),
        (Quote("AAA", 0.0, NOW), (), "bad_price"),
        (Quote("AAA", -3.0, NOW), (), "bad_price"),
        (Quote("AAA", 100.0, NOW - pd.Timedelta(minutes=10)), (), "stale_quote"),
        (Quote("AAA", 100.0, NOW), ("BUY", "BUY"), "duplicate_signal"),
        (Quote("AAA", 100.0, NOW), ("BUY", "SELL"), "contradictory_signals"),
    ],
)
def test_bad_input_is_rejected_with_reason(quote, sides, rule):
    assert check_input(buy(), quote, NOW, 120.0, sides).rule == rule
    c = ctx(cycle_sides={"AAA": sides} if sides else {})
    c = RiskContext(**{**c.__dict__, "quotes": {} if quote is None else {"AAA": quote}})
    d = evaluate(buy(), c)
    assert not d.accepted and d.rejections[0].rule == rule


def test_evaluate_accepts_a_strong_buy_sized_by_the_cap():
    d = evaluate(buy(stop=50.0), ctx())
    # cap 10% × 100k / 100 = 100 shares; risk 1% × 100k / 50 = 20 shares → 20
    assert d.accepted and d.side == "buy" and d.quantity == 20.0 and d.price == 100.0
    d = evaluate(buy(stop=99.0), ctx())  # risk allows 1000: the 10% cap binds
    assert d.quantity == 100.0


@pytest.mark.parametrize(
    "signal, context, rule",
    [
        (buy(strength=0.5), ctx(), "min_strength"),
        (buy(), ctx(emergency=True), "emergency_stop"),
        (buy(), ctx(exchange=BrokerStatus(False, "paper", "down")), "exchange"),
        (buy(), ctx(cash=94_000.0, day_start=100_000.0), "daily_loss"),
        (buy(stop=101.0), ctx(), "bad_stop"),
        (buy(), ctx(held={"AAA": 100.0}, cash=90_000.0), "position_cap"),
        (buy(), ctx(cash=50.0), "buying_power"),
        (buy(), ctx(lot=1.0, min_notional=20_000.0), "min_notional"),
        (sell(), ctx(), "no_position"),
        (buy(sym="ZZZ"), ctx(), "no_quote"),
    ],
)
def test_evaluate_rejections_name_their_rule(signal, context, rule):
    d = evaluate(signal, context)
    assert not d.accepted and d.quantity == 0.0
    assert [r.rule for r in d.rejections] == [rule], d.rejections


def test_a_buy_is_sized_with_its_exchanges_costs():
    """The venue charges its exchange's fee and slippage; sizing with the account-wide costs would
    send a buy the paper broker (or a real venue) refuses for want of cash."""
    import dataclasses

    limits = RiskLimits(max_position_pct=1.0, risk_per_trade_pct=1.0)
    base = ctx(cash=1_010.0, limits=limits)
    assert evaluate(buy(stop=50.0), base).quantity == 10.0  # 1,010 / (100 × 1.0015) = 10.08 at the account's costs
    nse = {"AAA": Market("AAA", "AAA", "INR", lot_size=1.0, exchange="NSE")}
    dear = CostModel(fee_rate=0.01, slippage_bps=100.0)
    d = evaluate(buy(stop=50.0), dataclasses.replace(base, markets=nse, exchange_costs={"NSE": dear}))
    assert d.accepted and d.quantity == 9.0  # 1,010 / (100 × 1.01 × 1.01) = 9.90
    other = dataclasses.replace(base, markets=nse, exchange_costs={"BSE": dear})  # another exchange's costs: unused
    assert evaluate(buy(stop=50.0), other).quantity == 10.0
    d = evaluate(
        buy(stop=50.0), dataclasses.replace(ctx(cash=100.0, limits=limits), markets=nse, exchange_costs={"NSE": dear})
    )
    assert [r.rule for r in d.rejections] == ["buying_power"]  # 100 buys no share at 102.01 a share


def test_sell_closes_the_whole_long_even_after_the_daily_loss_limit():
    d = evaluate(sell(), ctx(cash=50_000.0, held={"AAA": 37.0}, day_start=100_000.0))  # −45% today
    assert d.accepted and d.side == "sell" and d.quantity == 37.0


def test_hold_is_no_action():
    h = Signal("AAA", "HOLD", 0.1, 0.5, None, None, None)
    d = evaluate(h, ctx())
    assert not d.accepted and d.rejections == [] and d.side is None


# ---- sizing -----------------------------------------------------------------------------------------
def test_floor_to_lot():
    assert floor_to_lot(0.3, 0.1) == 0.3
    assert floor_to_lot(0.29999, 0.1) == 0.2
    assert floor_to_lot(7.9, 1.0) == 7.0
    assert floor_to_lot(0.0009, 0.001) == 0.0
    assert floor_to_lot(float("nan"), 1.0) == 0.0 and floor_to_lot(-1.0, 1.0) == 0.0


@pytest.mark.parametrize("lot", [1.0, 0.01, 0.001, 1e-8])
def test_size_entry_respects_lot_size_and_all_three_caps(lot):
    m = Market("AAA", "AAA", "USD", lot_size=lot)
    s = buy(stop=99.0)
    q = size_entry(s, equity=100_000.0, cash=100_000.0, price=100.0, market=m, limits=LIMITS, costs=COSTS)
    assert q <= 100.0 and q == pytest.approx(100.0, abs=lot) and abs(q / lot - round(q / lot)) < 1e-6
    q = size_entry(
        s, equity=100_000.0, cash=100_000.0, price=100.0, market=m, limits=LIMITS, costs=COSTS, held_quantity=60.0
    )
    assert q == pytest.approx(40.0, abs=lot) and q <= 40.0
    q = size_entry(buy(stop=90.0), 100_000.0, 100_000.0, 100.0, m, LIMITS, COSTS)  # risk: 1000 / 10 = 100
    assert q == pytest.approx(100.0, abs=lot) and q <= 100.0
    q = size_entry(s, 100_000.0, 3_000.0, 100.0, m, LIMITS, COSTS)  # cash binds
    assert q * 100.0 * entry_cost_factor(COSTS) <= 3_000.0 and q > 3_000.0 / (100.0 * entry_cost_factor(COSTS)) - lot
    assert size_entry(s, 100_000.0, 50.0, 100.0, Market("AAA", "AAA", "USD", lot_size=1.0), LIMITS, COSTS) == 0.0


# ---- properties -------------------------------------------------------------------------------------
SYMS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
step = st.tuples(
    st.tuples(*[st.floats(0.7, 1.3) for _ in SYMS]),  # price moves this step
    st.lists(
        st.tuples(
            st.sampled_from(SYMS), st.sampled_from(["BUY", "BUY", "SELL"]), st.floats(0.5, 1.0), st.floats(0.5, 0.999)
        ),
        max_size=4,
    ),
    st.sampled_from([False, False, True]),  # a new day starts before this step
)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, min_size=1, max_size=25), lot=st.sampled_from([1.0, 0.01, 1e-8]), cash0=st.floats(1_000.0, 1e6)
)
def test_properties_cap_daily_loss_and_cash(steps, lot, cash0):
    """Simulate an account that fills every accepted order at decision price ± slippage with fees."""
    slip, fee = COSTS.slippage_bps / 1e4, COSTS.fee_rate
    prices = {s: 100.0 for s in SYMS}
    cash, held = cash0, {s: 0.0 for s in SYMS}
    markets = {s: Market(s, s, "USD", lot_size=lot) for s in SYMS}
    day_start = cash0
    for moves, sigs, new_day in steps:
        prices = {s: prices[s] * m for s, m in zip(SYMS, moves)}
        quotes = {s: Quote(s, p, NOW) for s, p in prices.items()}
        if new_day:
            day_start = cash + sum(held[s] * prices[s] for s in SYMS)
        sides: dict[str, list[str]] = {}
        for sym, side, _, _ in sigs:
            sides.setdefault(sym, []).append(side)
        for sym, side, strength, stop_frac in sigs:
            p = prices[sym]
            sig = Signal(
                sym, side, strength, 0.6, p, p * (stop_frac if side == "BUY" else 2 - stop_frac), p, ts=NOW, price=p
            )
            snap = compute_snapshot(NOW, cash, held, prices, day_start_equity=day_start)
            c = RiskContext(
                snap, quotes, markets, LIMITS, COSTS, OK, NOW, cycle_sides={k: tuple(v) for k, v in sides.items()}
            )
            d = evaluate(sig, c)
            if not d.accepted:
                event(f"rejected by {d.rejections[0].rule}")
                continue
            event(f"accepted {d.side}")
            assert len(sides[sym]) == 1  # duplicates/contradictions never trade
            assert strength > LIMITS.min_strength
            if d.side == "buy":
                assert snap.daily_pnl_pct > -LIMITS.max_daily_loss_pct, "entry after the daily-loss limit"
                assert (held[sym] + d.quantity) * p <= LIMITS.max_position_pct * snap.equity * (1 + 1e-9), (
                    "above the cap"
                )
                fill = p * (1 + slip)
                cash -= d.quantity * fill * (1 + fee)
                held[sym] += d.quantity
            else:
                assert d.quantity <= held[sym] + 1e-12
                fill = p * (1 - slip)
                cash += d.quantity * fill * (1 - fee)
                held[sym] -= d.quantity
            lots = d.quantity / lot
            assert abs(lots - round(lots)) <= 1e-9 * max(1.0, lots)  # a whole number of lots
            assert cash >= -1e-9 * max(1.0, cash0), "cash went negative"
            assert all(q >= -1e-12 for q in held.values())


def test_property_scenario_daily_loss_blocks_then_allows_next_day():
    """Deterministic companion of the property: −6% today blocks entries; tomorrow they resume."""
    c = ctx(cash=10_000.0, held={"AAA": 850.0}, prices={"AAA": 100.0}, day_start=100_000.0)  # equity 95k → −5%
    assert [r.rule for r in evaluate(buy(), c).rejections] == ["daily_loss"]
    c = ctx(cash=10_000.0, held={"AAA": 840.0}, prices={"AAA": 100.0, "BBB": 100.0}, day_start=94_000.0)
    d = evaluate(buy("BBB"), c)
    assert d.accepted and math.isclose(d.quantity, 94.0)  # 10% of 94k equity at 100


def test_floor_to_lot_keeps_a_held_sum_whole():
    held = 38.08785512 + 0.11115889  # two fills read back from the database
    assert floor_to_lot(held, 1e-8) == pytest.approx(38.19901401, abs=1e-12)
    assert held - floor_to_lot(held, 1e-8) < 1e-8 / 2
