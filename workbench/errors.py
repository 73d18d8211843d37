"""One exception tree, split by what the operator must do.

    WorkbenchError                       anything the workbench raises on purpose
    ├── ConfigError                      a setting is wrong: fix the setting
    ├── DataError                        market data is unusable
    │   ├── BadCandlesError              a file/batch has bad bars (names the file and row)
    │   ├── UnknownSymbolError           a symbol the source or lake does not have
    │   └── NoDataError                  nothing stored for what was asked
    ├── ModelError
    │   └── NoModelError                 no registered model under that name/alias
    ├── BrokerError                      anything from a broker
    │   ├── TemporaryBrokerError         retry with backoff (network, 429, 5xx, timeouts)
    │   ├── OrderRejected                fix the order (funds, lot size, min notional, symbol)
    │   ├── AuthenticationError          the key is wrong, expired or lacks permission: stop
    │   └── ExchangeUnavailable          the venue is down or in maintenance: stop new orders
    └── TradingStopped                   the live loop must stop (emergency stop, fatal check)

Messages say what is wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "ConfigError",
    "DataError",
    "BadCandlesError",
    "UnknownSymbolError",
    "NoDataError",
    "ModelError",
    "NoModelError",
    "BrokerError",
    "TemporaryBrokerError",
    "OrderRejected",
    "AuthenticationError",
    "ExchangeUnavailable",
    "TradingStopped",
    "VaultError",
    "AccessError",
    "NotLoggedIn",
    "LoginFailed",
    "PermissionDenied",
]


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError):
    """A setting is missing or invalid."""


class DataError(WorkbenchError):
    """Market data cannot be used as given."""


class BadCandlesError(DataError):
    """Bars fail validation; the message names the origin (file) and the first bad row."""

    def __init__(self, origin: str, row: int | None, reason: str):
        self.origin, self.row, self.reason = origin, row, reason
        where = f"{origin}, row {row}" if row is not None else origin
        super().__init__(f"bad candles in {where}: {reason}. Fix or remove those rows and import again.")


class UnknownSymbolError(DataError):
    """A symbol the source or the lake does not know."""


class NoDataError(DataError):
    """Nothing is stored for the requested exchange/timeframe/symbols/dates."""


class ModelError(WorkbenchError):
    """A model cannot be trained, saved or loaded."""


class NoModelError(ModelError):
    """No registered model answers to the requested name, version or alias."""


class BrokerError(WorkbenchError):
    """Base of errors coming from a broker adapter."""


class TemporaryBrokerError(BrokerError):
    """Transient: network, timeout, rate limit (429), server error (5xx). Retry with backoff."""


class OrderRejected(BrokerError):
    """The broker refused the order; ``reason`` tells the rule (funds, lot size, symbol...)."""

    def __init__(self, reason: str, message: str | None = None):
        self.reason = reason
        super().__init__(message or reason)


class AuthenticationError(BrokerError):
    """The key is wrong, expired or lacks trade permission. Fix the key; do not retry."""


class ExchangeUnavailable(BrokerError):
    """The venue is down or in maintenance. No new orders until it is back."""


class VaultError(ConfigError):
    """The vault cannot decrypt: the master key is missing or wrong, or the data was tampered with."""


class AccessError(WorkbenchError):
    """Who is acting is unknown or not allowed to: log in, or ask an admin for the permission."""


class NotLoggedIn(AccessError):
    """No valid session: it is missing, expired, revoked, or its user is disabled."""


class LoginFailed(AccessError):
    """Wrong username or password, or the account is locked for a while after repeated failures."""


class PermissionDenied(AccessError):
    """The user lacks the permission the action needs (``trade_paper``, ``trade_live``, ``admin``)."""


class TradingStopped(WorkbenchError):
    """The live loop must stop now (emergency stop or a failed Phase 1 check)."""
