"""The ``Broker`` protocol and the values that cross it.

Every adapter (paper, ccxt, Kite) implements the same small surface. Orders carry a client order id
chosen by the caller, so that after a crash the caller asks "what became of X?" instead of sending X
again. Errors are the broker branch of ``workbench.errors``, split by what the caller must do:

    TemporaryBrokerError   retry with backoff (network, 429, 5xx); the order may or may not have arrived
    OrderRejected          fix the order; ``reason`` is a stable code (``REJECT_REASONS``)
    AuthenticationError    stop trading: the keys are wrong or lack permission
    ExchangeUnavailable    stop new orders: the venue is down or in maintenance

``tests/unit/brokers/conformance.py`` is the contract in executable form: every adapter must pass it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import pandas as pd

from workbench.errors import (  # re-exported: adapters and callers import errors from here
    AuthenticationError,
    BrokerError,
    ExchangeUnavailable,
    OrderRejected,
    TemporaryBrokerError,
)

__all__ = [
    "floor_to_lot",
    "cost_exchange",
    "grid_error",
    "reason_of",
    "OrderSide",
    "OrderType",
    "EXIT_TYPES",
    "REJECT_REASONS",
    "OrderStatus",
    "FINAL_STATUSES",
    "Market",
    "Quote",
    "Balance",
    "BrokerStatus",
    "OrderRequest",
    "BrokerOrder",
    "Fill",
    "Broker",
    "BrokerError",
    "TemporaryBrokerError",
    "OrderRejected",
    "AuthenticationError",
    "ExchangeUnavailable",
]

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop_loss", "take_profit"]
EXIT_TYPES = frozenset({"stop_loss", "take_profit"})
# Stable codes carried by ``OrderRejected.reason`` (adapters map their venue's answers onto these).
REJECT_REASONS = frozenset(
    {
        "unknown_symbol", "no_price", "bad_price", "lot_size", "tick_size", "min_notional", "insufficient_funds",
        "insufficient_position", "unknown_order", "duplicate_order", "not_cancellable", "bad_order",
    }
)
OrderStatus = Literal["NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"]
FINAL_STATUSES = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})


@dataclass(frozen=True)
class Market:
    """Trading rules of one instrument: quantities are multiples of ``lot_size``, prices of
    ``tick_size``, and an order's notional must reach ``min_notional``."""

    symbol: str
    base: str
    quote: str
    lot_size: float = 1e-8
    tick_size: float = 1e-8
    min_notional: float = 0.0
    exchange: str | None = None  # picks per-exchange fees and slippage in the paper broker


@dataclass(frozen=True)
class Quote:
    symbol: str
    last: float
    ts: pd.Timestamp
    bid: float | None = None
    ask: float | None = None
    volume: float | None = None
    high: float | None = None
    low: float | None = None
    open: float | None = None


@dataclass(frozen=True)
class Balance:
    currency: str
    free: float
    total: float


@dataclass(frozen=True)
class BrokerStatus:
    ok: bool
    environment: Literal["paper", "testnet", "live"]
    message: str


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    type: OrderType = "market"
    limit_price: float | None = None  # limit and take_profit orders
    stop_price: float | None = None  # stop_loss orders: a market order once the price trades through it
    oco_group: str | None = None  # orders sharing a group are one-cancels-other: a fill of one cancels the rest

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order side must be 'buy' or 'sell', not {self.side!r}")
        if not (isinstance(self.quantity, (int, float)) and math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"order quantity must be a positive number, got {self.quantity!r}")
        if self.type not in ("market", "limit", "stop_loss", "take_profit"):
            raise ValueError(f"order type must be market, limit, stop_loss or take_profit, not {self.type!r}")
        if self.type in ("limit", "take_profit") and not _positive(self.limit_price):
            raise ValueError(f"a {self.type} order needs a positive limit_price, got {self.limit_price!r}")
        if self.type == "stop_loss" and not _positive(self.stop_price):
            raise ValueError(f"a stop_loss order needs a positive stop_price, got {self.stop_price!r}")


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


@dataclass(frozen=True)
class BrokerOrder:
    """What the broker says about an order now."""

    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    status: OrderStatus
    filled_quantity: float = 0.0
    average_price: float | None = None
    fee: float = 0.0
    broker_order_id: str | None = None
    reason: str | None = None
    type: OrderType = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    oco_group: str | None = None

    @property
    def remaining(self) -> float:
        return max(float(self.quantity) - float(self.filled_quantity), 0.0)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Fill:
    fill_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    fee_currency: str
    ts: pd.Timestamp
    extra: dict = field(default_factory=dict, compare=False)


def floor_to_lot(quantity: float, lot: float) -> float:
    """Largest multiple of ``lot`` not above ``quantity`` (the one rounding every order obeys); a quantity one float-ulp short of a lot
    multiple (a held position read back from the database) counts as that multiple, so exits close
    positions fully instead of leaving dust."""
    if not (quantity > 0) or not math.isfinite(quantity):
        return 0.0
    if not lot or lot <= 0:
        return quantity
    x = quantity / lot
    n = math.floor(x + max(1e-9, x * 1e-12))
    digits = max(0, -math.floor(math.log10(lot))) + 3
    q = round(n * lot, digits)
    while q > quantity * (1 + 1e-12) and n > 0:  # float noise of a held quantity is not "more than held"
        n -= 1
        q = round(n * lot, digits)
    return max(q, 0.0)


def cost_exchange(symbol: str, market: Market | None) -> str:
    """The exchange whose fees and slippage apply to ``symbol``: its market's, else the symbol's
    ``EXCH:`` prefix ("" for neither). One rule for the paper broker, the risk rules and the backtest."""
    return (market.exchange if market is not None else None) or symbol.rpartition(":")[0]


def _on_grid(value: float, step: float | None) -> bool:
    if not step or step <= 0:
        return True
    n = value / step
    return abs(n - round(n)) <= 1e-6 * max(1.0, abs(n))


def grid_error(order: OrderRequest, lot: float | None, tick: float | None) -> tuple[str, str] | None:
    """(reason, message) when the order's quantity is off the lot grid or a price off the tick grid,
    else None: an off-grid order is refused with a stable code rather than silently rounded (that
    would change what the caller asked for)."""
    if not _on_grid(order.quantity, lot):
        return "lot_size", f"quantity {order.quantity:g} of {order.symbol} is not a multiple of the lot size {lot:g}"
    for name in ("limit_price", "stop_price"):
        px = getattr(order, name)
        if px is not None and not _on_grid(px, tick):
            return "tick_size", f"{name} {px:g} of {order.symbol} is not a multiple of the tick size {tick:g}"
    return None


def reason_of(message: str, table: list[tuple[re.Pattern, str]], default: str = "bad_order") -> str:
    """The ``REJECT_REASONS`` code of a venue's rejection text: the first pattern of ``table`` it matches."""
    return next((code for rx, code in table if rx.search(message or "")), default)


@runtime_checkable
class Broker(Protocol):
    """What the live loop needs from a venue. Methods raise the ``BrokerError`` tree only."""

    name: str

    @property
    def environment(self) -> Literal["paper", "testnet", "live"]: ...

    def check(self) -> BrokerStatus:
        """Connect and verify the keys and the venue; never raises for a down venue (ok=False)."""
        ...

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        """Trading rules of the symbols the venue lists; unknown symbols are simply absent."""
        ...

    def balances(self) -> dict[str, Balance]:
        """Cash per currency (``free`` excludes what open orders reserve)."""
        ...

    def positions(self) -> dict[str, float]:
        """Quantity held per symbol (spot: base-currency balances of traded symbols)."""
        ...

    def quotes(self, symbols: list[str]) -> dict[str, Quote]: ...

    def place(self, order: OrderRequest) -> BrokerOrder:
        """Send an order; idempotent on ``client_order_id`` (a re-send returns the existing order).
        Raises ``OrderRejected`` with a ``REJECT_REASONS`` code when the venue refuses it."""
        ...

    def cancel(self, client_order_id: str) -> BrokerOrder:
        """Cancel an open order; cancelling a final order returns it unchanged.
        ``OrderRejected('unknown_order')`` when the venue never heard of it."""
        ...

    def order_status(self, client_order_id: str) -> BrokerOrder:
        """``OrderRejected('unknown_order')`` when the venue never heard of it (or not yet: venues
        are eventually consistent, callers allow a grace period)."""
        ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]: ...
