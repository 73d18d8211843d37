"""One exception tree, split by what the operator must do.

    WorkbenchError                       anything the workbench raises on purpose
    ├── ConfigError                      a setting is wrong: fix the setting
    │   └── VaultError                   the vault cannot decrypt: master key missing/wrong, or data altered
    ├── DataError                        market data is unusable
    │   ├── BadCandlesError              a file/batch has bad bars (names the file and row)
    │   ├── UnknownSymbolError           a symbol the source or lake does not have
    │   ├── NoDataError                  nothing stored for what was asked
    │   ├── InstrumentListError          an instrument list is malformed: the master is left unchanged
    │   └── SourceUnavailableError       a data source did not answer: retry later
    ├── ModelError                       a model cannot be trained, saved or loaded
    │   ├── NoModelError                 no registered model under that name/alias
    │   └── LeakError                    a training feature reads the future: fix the feature
    ├── BrokerError                      anything from a broker
    │   ├── TemporaryBrokerError         retry with backoff (network, 429, 5xx, timeouts)
    │   ├── OrderRejected                fix the order (funds, lot size, min notional, symbol)
    │   ├── AuthenticationError          the key is wrong, expired or lacks permission: stop
    │   └── ExchangeUnavailable          the venue is down or in maintenance: stop new orders
    ├── TemporaryError                   transient: the same call may succeed later (retry with backoff)
    │   ├── TemporaryBrokerError         (also a BrokerError)
    │   └── SourceUnavailableError       (also a DataError)
    ├── InvalidTransition                an order status change the state machine forbids
    ├── RunActiveError                   another live run holds this account: stop it first
    ├── Cancelled                        the user cancelled long work: it stopped and saved nothing
    └── AccessError                      who acts is unknown or not allowed: log in / ask for the permission
        ├── NotLoggedIn                  no valid session (missing, expired, revoked, user disabled)
        ├── LoginFailed                  wrong username or password, or locked after repeated failures
        └── PermissionDenied             the user lacks trade_paper / trade_live / admin

A class with two parents is listed under both (``tests/unit/test_errors.py`` checks that this picture
and the classes below agree). Messages say what is wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "WorkbenchError",
    "ConfigError",
    "VaultError",
    "DataError",
    "BadCandlesError",
    "UnknownSymbolError",
    "NoDataError",
    "InstrumentListError",
    "SourceUnavailableError",
    "ModelError",
    "NoModelError",
    "LeakError",
    "BrokerError",
    "TemporaryBrokerError",
    "OrderRejected",
    "AuthenticationError",
    "ExchangeUnavailable",
    "TemporaryError",
    "InvalidTransition",
    "RunActiveError",
    "Cancelled",
    "AccessError",
    "NotLoggedIn",
    "LoginFailed",
    "PermissionDenied",
]


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class TemporaryError(WorkbenchError):
    """Transient (network, timeout, rate limit, maintenance): the same call may succeed later, so
    retry loops retry exactly this branch and nothing else."""


class ConfigError(WorkbenchError):
    """A setting is missing or invalid."""


class VaultError(ConfigError):
    """The vault cannot decrypt: the key changed or the file was tampered with."""


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


class InstrumentListError(DataError):
    """A listing file is malformed or truncated; the master was left as it was."""

    def __init__(self, origin: str, problem: str):
        self.origin, self.problem = str(origin), problem
        super().__init__(
            f"instrument list {origin}: {problem}. The instrument master was not changed; "
            "download the list again (or pass a complete file with --from-file) and refresh."
        )


class SourceUnavailableError(DataError, TemporaryError):
    """The source did not answer (network, timeout, HTTP 429/5xx, maintenance): retry later.

    A ``DataError`` (a data pull failed; ``ingest.pull`` records it per symbol) and a
    ``TemporaryError`` (retry loops try it again with backoff), so neither caller needs to know
    about the other's exception family.
    """


class ModelError(WorkbenchError):
    """A model cannot be trained, saved or loaded."""


class NoModelError(ModelError):
    """No registered model answers to the requested name, version or alias."""


class LeakError(ModelError):
    """A feature of the training matrix reads the future: fix the feature before training on it."""


class BrokerError(WorkbenchError):
    """Base of errors coming from a broker adapter."""


class TemporaryBrokerError(BrokerError, TemporaryError):
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


class InvalidTransition(WorkbenchError):
    """An order status change the state machine forbids (e.g. FILLED → CANCELLED): a venue report or
    a store row that breaks the rules, so it is logged and nothing is changed."""

    def __init__(self, current: str, new: str, allowed: Iterable[str] = ()):
        self.current, self.new = current, new
        allowed_text = ", ".join(sorted(allowed)) or "nothing (final)"
        super().__init__(f"order cannot go from {current} to {new}; from {current} it may go to {allowed_text}")


class RunActiveError(WorkbenchError):
    """A live run already holds the account (one live run per account): the message names it and how to stop it."""


class Cancelled(WorkbenchError):
    """The user cancelled long work (a dashboard backtest): it stopped at its next step and saved nothing."""


class AccessError(WorkbenchError):
    """Who is acting is unknown or not allowed to: log in, or ask an admin for the permission."""


class NotLoggedIn(AccessError):
    """No valid session: it is missing, expired, revoked, or its user is disabled."""


class LoginFailed(AccessError):
    """Wrong username or password, or the account is locked for a while after repeated failures."""


class PermissionDenied(AccessError):
    """The user lacks the permission the action needs (``trade_paper``, ``trade_live``, ``admin``)."""
