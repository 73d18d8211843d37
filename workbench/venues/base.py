"""The ``Broker`` protocol and the values that cross it.

Every adapter (paper, ccxt, Kite) implements the same small surface. Orders carry a client order id
chosen by the caller, so that after a crash the caller asks "what became of X?" instead of sending X
again. Errors are the broker branch of ``workbench.errors``, split by what the caller must do:

    TemporaryBrokerError   retry with backoff (network, 429, 5xx); the order may or may not have arrived
    OrderRejected          fix the order; ``reason`` is a stable code (``REJECT_REASONS``)
    AuthenticationError    stop trading: the keys are wrong or lack permission
    ExchangeUnavailable    stop new orders: the venue is down or in maintenance

``tests/unit/venues/conformance.py`` is the contract in executable form: every adapter must pass it.

The market value types (``Market``, ``Quote``, ``OrderRequest``, ``Fill``, the lot/tick rules) live in
``workbench.market`` and are re-exported here for the adapters. ``Venue`` describes one venue package
(its config class, broker and data factories, instrument loader, key fields) for the registry in
``workbench.venues``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd
from pydantic import BaseModel, ConfigDict

from workbench.errors import (  # re-exported: adapters and callers import errors from here
    AuthenticationError,
    BrokerError,
    ExchangeUnavailable,
    OrderRejected,
    TemporaryBrokerError,
)
from workbench.market import (  # re-exported for the adapters
    EXIT_TYPES,
    Fill,
    Market,
    OrderRequest,
    OrderSide,
    OrderType,
    Quote,
    cost_exchange,
    floor_to_lot,
    grid_error,
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
    "order_statuses",
    "BrokerError",
    "TemporaryBrokerError",
    "OrderRejected",
    "AuthenticationError",
    "ExchangeUnavailable",
    "Venue",
    "VenueConfig",
    "lazy",
]

# Stable codes carried by ``OrderRejected.reason`` (adapters map their venue's answers onto these).
REJECT_REASONS = frozenset(
    {
        "unknown_symbol",
        "no_price",
        "bad_price",
        "lot_size",
        "tick_size",
        "min_notional",
        "insufficient_funds",
        "insufficient_position",
        "unknown_order",
        "duplicate_order",
        "not_cancellable",
        "bad_order",
    }
)
OrderStatus = Literal["NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"]
FINAL_STATUSES = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})


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


def reason_of(message: str, table: list[tuple[re.Pattern[str], str]], default: str = "bad_order") -> str:
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


def order_statuses(broker: Any, client_order_ids: Sequence[str]) -> dict[str, BrokerOrder | Exception]:
    """What the venue says of each of these orders: its ``BrokerOrder``, or the exception asking raised
    (``OrderRejected('unknown_order')`` for an order it never heard of). One call when the venue's class
    has ``order_status_many`` (the paper venue: one query), else ``order_status`` one by one, as every
    real venue asks. Errors that stop trading (``AuthenticationError``, ``ExchangeUnavailable``) are
    raised, not kept: nothing after them would get an answer either."""
    cids = list(dict.fromkeys(client_order_ids))
    out: dict[str, BrokerOrder | Exception] = {}
    if not cids:
        return out
    many = getattr(broker, "order_status_many", None) if hasattr(type(broker), "order_status_many") else None
    if callable(many):
        try:
            answers = list(many(cids))
        except (AuthenticationError, ExchangeUnavailable):
            raise
        except Exception as e:  # nothing is known of any of them
            return {c: e for c in cids}
        if len(answers) != len(cids):
            err = ValueError(f"order_status_many answered {len(answers)} of {len(cids)} orders")
            return {c: err for c in cids}
        return dict(zip(cids, answers, strict=True))
    for cid in cids:
        try:
            out[cid] = broker.order_status(cid)
        except (AuthenticationError, ExchangeUnavailable):
            raise
        except Exception as e:
            out[cid] = e
    return out


class VenueConfig(BaseModel):
    """A venue's own settings, the ``[venues.<name>]`` table of ``workbench.toml`` (frozen; unknown
    keys are refused so a typo is named, not ignored). Each venue subclasses it in its ``config.py``."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def lazy(target: str) -> Callable[..., Any]:
    """``"module:function"`` as a callable that imports the module on first call: the registry and
    the settings can name a venue's broker and data factories without importing its client library."""
    module, _, attr = target.partition(":")

    def call(*args: Any, **kw: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kw)

    call.__name__ = call.__qualname__ = attr
    call.__doc__ = f"``{target}``, imported on first call."
    return call


@dataclass(frozen=True)
class Venue:
    """One venue package as the runner, the CLI, the dashboard and the settings see it.

    Factories take ``(settings, config, *, instance, vault, store)`` where ``config`` is the venue's
    validated ``[venues.<name>]`` table and ``instance`` the part after ``<name>:`` (a ccxt exchange
    id); ``instruments`` takes ``(path=None, *, instance=None, **kw)`` and returns master rows.
    """

    name: str
    config: type[VenueConfig]
    broker: Callable[..., Broker]
    data: Callable[..., Any] | None = None  # an OhlcvSource for `workbench data pull`
    quotes: Callable[..., Any] | None = None  # a QuoteSource for ``fetch_quotes``
    instruments: Callable[..., pd.DataFrame] | None = None  # the venue's instrument list
    key_fields: tuple[str, ...] | Callable[[str | None], tuple[str, ...]] = ()  # what `keys set` asks for
    trading_keys: tuple[str, ...] | None = None  # what trading reads (default: key_fields)
    has_testnet: bool = True
    simulated: bool = False  # paper: no keys, no venue to reach, never real money
    instance: Callable[[str], str] | None = None  # validates ``<name>:<instance>``; None: the name takes none
    instance_hint: str = ""  # how the CLI shows the name, e.g. "ccxt:<exchange id>"
    default_instance: str | None = None  # the instance offered where a concrete name is needed (the dashboard)
    key_hint: str = ""  # what to run when the keys are missing (default: `workbench keys set <label>`)

    def label(self, instance: str | None = None) -> str:
        """The broker name stored on runs and used as the vault prefix: ``kite``, ``ccxt:binance``."""
        return f"{self.name}:{instance}" if instance else self.name

    def fields(self, instance: str | None = None) -> tuple[str, ...]:
        """Secret fields `workbench keys set` asks for."""
        return tuple(self.key_fields(instance)) if callable(self.key_fields) else tuple(self.key_fields)

    def required_keys(self, instance: str | None = None) -> tuple[str, ...]:
        """Vault names trading reads, ``<label>/<field>``."""
        fields = self.trading_keys if self.trading_keys is not None else self.fields(instance)
        return tuple(f"{self.label(instance)}/{f}" for f in fields)

    def environment(self, testnet: bool) -> Literal["paper", "testnet", "live"]:
        """What this venue would trade: paper, its testnet (when asked and it has one), or live money."""
        if self.simulated:
            return "paper"
        return "testnet" if testnet and self.has_testnet else "live"

    def hint(self, instance: str | None = None) -> str:
        return self.key_hint or f"run `workbench keys set {self.label(instance)}`"
