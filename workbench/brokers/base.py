"""The ``Broker`` protocol and the values that cross it.

Every adapter (paper, ccxt, Kite) implements the same small surface. Orders carry a client order id
chosen by the caller, so that after a crash the caller asks "what became of X?" instead of sending X
again. Errors are the broker branch of ``workbench.errors``.
"""

from __future__ import annotations

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
    "OrderSide",
    "OrderType",
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
OrderType = Literal["market", "limit"]
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
    limit_price: float | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order side must be 'buy' or 'sell', not {self.side!r}")
        if not (self.quantity > 0):
            raise ValueError(f"order quantity must be positive, got {self.quantity}")
        if self.type == "limit" and not (self.limit_price and self.limit_price > 0):
            raise ValueError("a limit order needs a positive limit_price")


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


@runtime_checkable
class Broker(Protocol):
    """What the live loop needs from a venue. Methods raise the ``BrokerError`` tree only."""

    name: str

    @property
    def environment(self) -> Literal["paper", "testnet", "live"]: ...

    def check(self) -> BrokerStatus:
        """Connect and verify the keys and the venue; never raises for a down venue (ok=False)."""
        ...

    def markets(self, symbols: list[str]) -> dict[str, Market]: ...

    def balances(self) -> dict[str, Balance]: ...

    def positions(self) -> dict[str, float]:
        """Quantity held per symbol (spot: base-currency balances of traded symbols)."""
        ...

    def quotes(self, symbols: list[str]) -> dict[str, Quote]: ...

    def place(self, order: OrderRequest) -> BrokerOrder:
        """Send an order; idempotent on ``client_order_id`` (a re-send returns the existing order)."""
        ...

    def cancel(self, client_order_id: str) -> BrokerOrder: ...

    def order_status(self, client_order_id: str) -> BrokerOrder: ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]: ...
