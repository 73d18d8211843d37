"""Value types shared by research and live: what an instrument's trading rules are (``Market``), what
a price looks like now (``Quote``) and over a bar (``Bar``), what an order asks for (``OrderRequest``)
and what a fill was (``Fill``), with the lot/tick/min-notional rules every side obeys.

Why a neutral module: the backtest, the risk rules and the features must use the very same rules as the
venues without importing one (research knows nothing of venues). It imports nothing from
``workbench.venues`` or ``workbench.trading``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

__all__ = [
    "OrderSide",
    "OrderType",
    "EXIT_TYPES",
    "Market",
    "Quote",
    "Bar",
    "OrderRequest",
    "Fill",
    "floor_to_lot",
    "on_grid",
    "grid_error",
    "cost_exchange",
]

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop_loss", "take_profit"]
EXIT_TYPES = frozenset({"stop_loss", "take_profit"})
# How far from a grid point a value may lie and still be on it, in units of the step: float
# representation noise only (a price typed as 24000.01 is 2400000.9999999998 ticks), never a real
# fraction of a tick. A second term covers the noise of the division for values of many ticks.
_GRID_TOL = 1e-9
_GRID_ULPS = 1e-15


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
class Bar:
    """One OHLCV bar of one symbol; ``ts`` is the bar's start in UTC (the lake's convention)."""

    symbol: str
    ts: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float


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

    @property
    def limit_level(self) -> float:
        """``limit_price`` of a limit/take-profit order (construction guaranteed it); for code typed on that."""
        if self.limit_price is None:
            raise ValueError(f"a {self.type} order has no limit_price")
        return self.limit_price

    @property
    def stop_level(self) -> float:
        """``stop_price`` of a stop-loss order (construction guaranteed it)."""
        if self.stop_price is None:
            raise ValueError(f"a {self.type} order has no stop_price")
        return self.stop_price


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


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
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


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


def on_grid(value: float, step: float | None) -> bool:
    """Whether ``value`` is a whole multiple of ``step`` (no step: anything is). Exact up to float
    representation noise: 24000.004 is not on a 0.01 grid, 24000.01 is."""
    if not step or step <= 0:
        return True
    n = value / step
    return abs(n - round(n)) <= _GRID_TOL + abs(n) * _GRID_ULPS


def grid_error(order: OrderRequest, lot: float | None, tick: float | None) -> tuple[str, str] | None:
    """(reason, message) when the order's quantity is off the lot grid or a price off the tick grid,
    else None: an off-grid order is refused with a stable code rather than silently rounded (that
    would change what the caller asked for)."""
    if not on_grid(order.quantity, lot):
        return "lot_size", f"quantity {order.quantity!r} of {order.symbol} is not a multiple of the lot size {lot:g}"
    for name in ("limit_price", "stop_price"):
        px = getattr(order, name)
        if px is not None and not on_grid(px, tick):
            return "tick_size", f"{name} {px!r} of {order.symbol} is not a multiple of the tick size {tick:g}"
    return None
