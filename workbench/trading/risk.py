"""Risk: small pure rules, each answering ``None`` (pass) or a ``Rejection`` naming itself, and the
sizing rule. ``evaluate`` composes them for one signal; the loop logs every rejection with its rule.

Long-only (spot markets and cash equity accounts): BUY opens or adds to a long, SELL closes it.
Exits are never blocked by the daily-loss rule or by strength of a *new* position's sizing — only
by the gates that stop all trading (emergency stop, exchange down, unusable input).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from workbench.config import CostModel, RiskLimits
from workbench.market import Market, OrderSide, Quote, cost_exchange, floor_to_lot
from workbench.signals import Signal
from workbench.trading.portfolio import PortfolioSnapshot

if TYPE_CHECKING:  # a venue's status value, duck-typed here: risk imports no venue
    from workbench.venues.base import BrokerStatus

__all__ = [
    "Rejection",
    "RiskDecision",
    "RiskContext",
    "check_emergency",
    "check_exchange",
    "check_input",
    "check_strength",
    "check_daily_loss",
    "check_buying_power",
    "check_position_cap",
    "check_stop",
    "floor_to_lot",
    "entry_cost_factor",
    "size_entry",
    "evaluate",
]


@dataclass(frozen=True)
class Rejection:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class RiskDecision:
    accepted: bool
    quantity: float
    rejections: list[Rejection] = field(default_factory=list)
    side: OrderSide | None = None  # "buy" | "sell" when accepted
    price: float | None = None  # the decision price (the quote's last)


@dataclass(frozen=True)
class RiskContext:
    """Everything the rules may look at for one cycle (replace ``snapshot`` after each fill)."""

    snapshot: PortfolioSnapshot
    quotes: Mapping[str, Quote]
    markets: Mapping[str, Market]
    limits: RiskLimits
    costs: CostModel
    exchange: BrokerStatus
    now: pd.Timestamp
    stale_after_s: float = 120.0
    emergency: bool = False
    cycle_sides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # every side seen per symbol this cycle
    exchange_costs: Mapping[str, CostModel] = field(default_factory=dict)  # per exchange, overriding ``costs``

    def costs_for(self, market: Market) -> CostModel:
        """The costs of the exchange ``market`` trades on (``costs`` when it has none of its own)."""
        return self.exchange_costs.get(cost_exchange(market.symbol, market), self.costs)


# ---- the rules ------------------------------------------------------------------------------------
def check_emergency(stopped: bool) -> Rejection | None:
    return Rejection("emergency_stop", "an emergency stop is in force: no new orders") if stopped else None


def check_exchange(status: BrokerStatus) -> Rejection | None:
    return None if status.ok else Rejection("exchange", f"exchange not operational: {status.message}")


def check_input(
    signal: Signal, quote: Quote | None, now: pd.Timestamp, stale_after_s: float, sides_this_cycle: tuple[str, ...] = ()
) -> Rejection | None:
    """Bad input never trades: contradictory or duplicate signals, no/unusable/stale price."""
    if len(sides_this_cycle) > 1:
        if len(set(sides_this_cycle)) > 1:
            return Rejection(
                "contradictory_signals", f"{signal.symbol} got {'/'.join(sorted(set(sides_this_cycle)))} in one cycle"
            )
        return Rejection(
            "duplicate_signal", f"{signal.symbol} got {len(sides_this_cycle)} {signal.signal} signals in one cycle"
        )
    if quote is None:
        return Rejection("no_quote", f"no quote for {signal.symbol} this cycle")
    px = quote.last
    if px is None or not math.isfinite(px) or px <= 0:
        return Rejection("bad_price", f"{signal.symbol} price {px!r} is not a positive number")
    age = (pd.Timestamp(now) - pd.Timestamp(quote.ts)).total_seconds()
    if age > stale_after_s:
        return Rejection("stale_quote", f"{signal.symbol} quote is {age:,.0f}s old (limit {stale_after_s:,.0f}s)")
    return None


def check_strength(signal: Signal, limits: RiskLimits) -> Rejection | None:
    if signal.strength > limits.min_strength:
        return None
    return Rejection("min_strength", f"{signal.symbol} strength {signal.strength:.2f} ≤ {limits.min_strength:.2f}")


def check_daily_loss(snapshot: PortfolioSnapshot, limits: RiskLimits) -> Rejection | None:
    if snapshot.daily_pnl_pct > -limits.max_daily_loss_pct:
        return None
    return Rejection(
        "daily_loss",
        f"today's loss {-snapshot.daily_pnl_pct:.2%} ({snapshot.daily_pnl:,.2f}) reached the {limits.max_daily_loss_pct:.0%} limit: no new entries today",
    )


def check_buying_power(notional: float, cash: float) -> Rejection | None:
    if notional <= cash + 1e-9:
        return None
    return Rejection("buying_power", f"needs {notional:,.2f} with fees and slippage; {cash:,.2f} cash available")


def check_position_cap(value_after: float, equity: float, limits: RiskLimits) -> Rejection | None:
    cap = limits.max_position_pct * equity
    if value_after <= cap * (1 + 1e-9):
        return None
    return Rejection(
        "position_cap",
        f"position would be {value_after:,.2f}, above {limits.max_position_pct:.0%} of equity ({cap:,.2f})",
    )


def check_stop(signal: Signal, price: float) -> Rejection | None:
    """A long's stop must sit below the entry price, or the risk budget means nothing."""
    stop = signal.stop_loss
    if stop is None:
        return None
    if not math.isfinite(stop) or stop <= 0 or stop >= price:
        return Rejection("bad_stop", f"{signal.symbol} stop-loss {stop!r} is not below the entry price {price:g}")
    return None


# ---- sizing ---------------------------------------------------------------------------------------


def entry_cost_factor(costs: CostModel) -> float:
    """Cash spent per unit of price on a market buy: slippage moves the price, the fee is on notional."""
    return (1.0 + costs.slippage_bps / 1e4) * (1.0 + costs.fee_rate)


def size_entry(
    signal: Signal,
    equity: float,
    cash: float,
    price: float,
    market: Market,
    limits: RiskLimits,
    costs: CostModel,
    held_quantity: float = 0.0,
    fx: float = 1.0,
) -> float:
    """min(position cap left, risk budget / stop distance, affordable), floored to the lot size.
    ``price`` and the stop are in the instrument's currency; equity and cash in the base currency,
    ``fx`` base units per unit of the instrument's currency."""
    if not (price > 0 and equity > 0 and fx > 0) or not math.isfinite(price):
        return 0.0
    cap = limits.max_position_pct * equity / (price * fx) - max(held_quantity, 0.0)
    risk = math.inf
    if signal.stop_loss is not None and math.isfinite(signal.stop_loss) and abs(price - signal.stop_loss) > 0:
        risk = limits.risk_per_trade_pct * equity / (abs(price - signal.stop_loss) * fx)
    afford = max(cash, 0.0) / (price * fx * entry_cost_factor(costs))
    return floor_to_lot(min(cap, risk, afford), market.lot_size)


# ---- composition ----------------------------------------------------------------------------------
def evaluate(signal: Signal, context: RiskContext) -> RiskDecision:
    """Accept (with a quantity and side) or reject (with every rule that said no)."""
    if signal.signal == "HOLD":
        return RiskDecision(False, 0.0, [])
    quote = context.quotes.get(signal.symbol)
    checked = [
        check_emergency(context.emergency),
        check_exchange(context.exchange),
        check_input(
            signal, quote, context.now, context.stale_after_s, tuple(context.cycle_sides.get(signal.symbol, ()))
        ),
    ]
    gates = [g for g in checked if g is not None]
    if gates or quote is None:  # check_input rejects a missing quote
        return RiskDecision(False, 0.0, gates)
    strength = check_strength(signal, context.limits)
    if strength is not None:
        return RiskDecision(False, 0.0, [strength])
    price = float(quote.last)
    snap, limits = context.snapshot, context.limits
    held = snap.quantity(signal.symbol)
    market = context.markets.get(signal.symbol)
    if market is None:
        return RiskDecision(
            False, 0.0, [Rejection("unknown_market", f"no trading rules (lot size, min notional) for {signal.symbol}")]
        )

    if signal.signal == "SELL":
        if held <= 0:
            return RiskDecision(
                False,
                0.0,
                [Rejection("no_position", f"SELL closes a long and {signal.symbol} is not held (long-only)")],
            )
        qty = floor_to_lot(held, market.lot_size)
        if qty <= 0:
            return RiskDecision(
                False,
                0.0,
                [Rejection("position_size", f"quantity rounds to zero: {held:g} held, lot {market.lot_size:g}")],
            )
        return RiskDecision(True, qty, [], "sell", price)

    # BUY: a new entry or an add to a long. Values in the base currency: price × fx.
    out = [r for r in (check_daily_loss(snap, limits), check_stop(signal, price)) if r is not None]
    if out:
        return RiskDecision(False, 0.0, out)
    fx = snap.rate(snap.settlement(market.quote))
    cash = snap.cash_for(market.quote)
    cap_value = limits.max_position_pct * snap.equity
    if held * price * fx >= cap_value * (1 - 1e-9):
        return RiskDecision(
            False,
            0.0,
            [
                Rejection(
                    "position_cap",
                    f"{signal.symbol} already {held * price * fx:,.2f} ≥ cap {cap_value:,.2f} ({limits.max_position_pct:.0%} of equity)",
                )
            ],
        )
    costs = context.costs_for(market)
    qty = size_entry(signal, snap.equity, cash, price, market, limits, costs, held, fx)
    if qty <= 0:
        if cash < market.lot_size * price * fx * entry_cost_factor(costs):
            return RiskDecision(
                False,
                0.0,
                [
                    Rejection(
                        "buying_power",
                        f"{cash:,.2f} cash does not buy one lot ({market.lot_size:g}) of {signal.symbol} at {price:g}",
                    )
                ],
            )
        return RiskDecision(
            False,
            0.0,
            [
                Rejection(
                    "position_size",
                    f"quantity rounds to zero for {signal.symbol} at {price:g} (lot {market.lot_size:g})",
                )
            ],
        )
    if qty * price < market.min_notional:
        return RiskDecision(
            False,
            0.0,
            [
                Rejection(
                    "min_notional",
                    f"{qty:g} × {price:g} = {qty * price:,.2f} is below {signal.symbol}'s minimum notional {market.min_notional:,.2f}",
                )
            ],
        )
    final = [
        r
        for r in (
            check_buying_power(qty * price * fx * entry_cost_factor(costs), cash),
            check_position_cap((held + qty) * price * fx, snap.equity, limits),
        )
        if r is not None
    ]
    if final:
        return RiskDecision(False, 0.0, final)
    return RiskDecision(True, qty, [], "buy", price)
