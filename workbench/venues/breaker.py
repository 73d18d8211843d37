"""A circuit breaker per venue, above the retry layer (``workbench.venues.retry``).

Why: the retry layer makes one call survive a blip; it cannot stop a run from hammering a venue that
is down, call after call, each spending its whole backoff budget. The breaker counts *consecutive*
temporary failures (network, timeout, 429, 5xx, "execution status unknown", maintenance) across all
of a venue's calls. At ``threshold`` it opens: calls fail at once, without touching the network, for
``cooldown_s``. Then it is half-open: calls go through again, and the first one decides — success
closes it, a temporary failure opens it for another cooldown. Every transition is reported to
``on_change`` (the live loop writes it as an event), so an operator sees when and why a venue was
cut off.

Rejections, bad keys and other non-temporary errors say nothing about the venue's health and pass
through without counting (they do not reset the count either).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from workbench.errors import ExchangeUnavailable, TemporaryBrokerError
from workbench.venues.base import BrokerStatus

__all__ = ["BreakerState", "CircuitBreaker", "Breakers", "GuardedBroker", "guard", "COUNTED", "OPEN_TEXT"]

log = logging.getLogger(__name__)

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half-open"]
COUNTED: tuple[type[Exception], ...] = (TemporaryBrokerError, ExchangeUnavailable)
"""The errors that say the venue is unhealthy (and so count towards opening the breaker)."""
OnChange = Callable[[str, str, str, str], None]  # venue, old state, new state, why
OPEN_TEXT = "not sent, the venue's circuit breaker is open"
"""In the message of the ``TemporaryBrokerError`` an open breaker raises instead of calling the venue."""


@dataclass
class CircuitBreaker:
    """closed → (``threshold`` consecutive temporary failures) → open → (``cooldown_s``) → half-open →
    success: closed / failure: open."""

    venue: str
    threshold: int = 3
    cooldown_s: float = 30.0
    on_change: OnChange | None = None
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.cooldown_s < 0:
            raise ValueError(f"a circuit breaker needs threshold ≥ 1 and cooldown ≥ 0, got {self}")

    def _move(self, new: BreakerState, why: str) -> None:
        old, self.state = self.state, new
        if old == new:
            return
        log.warning("%s circuit breaker %s → %s: %s", self.venue, old, new, why)
        if self.on_change is not None:
            self.on_change(self.venue, old, new, why)

    def allow(self) -> bool:
        """May a call go out now? An open breaker whose cooldown has passed turns half-open (and allows)."""
        if self.state == "open":
            assert self.opened_at is not None
            if self.clock() - self.opened_at < self.cooldown_s:
                return False
            self._move("half-open", f"{self.cooldown_s:g}s cooldown over: the next call probes the venue")
        return True

    def success(self) -> None:
        self.failures = 0
        if self.state != "closed":
            self._move("closed", "a call succeeded: the venue answers again")

    def failure(self, error: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        if self.state == "half-open" or (self.state == "closed" and self.failures >= self.threshold):
            self.opened_at = self.clock()
            why = "the probe failed" if self.state == "half-open" else f"{self.failures} temporary failure(s) in a row"
            self._move("open", f"{why} ({self.last_error}); calls stop for {self.cooldown_s:g}s")

    @property
    def is_open(self) -> bool:
        """Open and still cooling down (a half-open breaker lets calls through)."""
        return self.state == "open" and self.opened_at is not None and self.clock() - self.opened_at < self.cooldown_s

    def call(self, fn: Callable[[], T], what: str = "call") -> T:
        if not self.allow():
            raise TemporaryBrokerError(
                f"{self.venue} {what}: {OPEN_TEXT} after repeated temporary "
                f"failures (last: {self.last_error}); it is tried again within {self.cooldown_s:g}s"
            )
        try:
            out = fn()
        except COUNTED as e:
            self.failure(e)
            raise
        self.success()
        return out


@dataclass
class Breakers:
    """The run's breakers, one per venue, created on first use with the same settings."""

    threshold: int = 3
    cooldown_s: float = 30.0
    on_change: OnChange | None = None
    clock: Callable[[], float] = time.monotonic
    by_venue: dict[str, CircuitBreaker] = field(default_factory=dict)

    def of(self, venue: str) -> CircuitBreaker:
        if venue not in self.by_venue:
            self.by_venue[venue] = CircuitBreaker(venue, self.threshold, self.cooldown_s, self.on_change, self.clock)
        return self.by_venue[venue]

    def all_open(self) -> bool:
        """Every venue known to the run is cut off (no breaker yet: nothing has failed, so False)."""
        return bool(self.by_venue) and all(b.is_open for b in self.by_venue.values())

    def states(self) -> dict[str, str]:
        return {v: b.state for v, b in self.by_venue.items()}


_LOCAL = frozenset({"name", "environment", "account", "currency", "on_bar"})


class GuardedBroker:
    """A broker whose every venue call goes through its venue's breaker. ``check()`` never raises for
    an open breaker: it reports the venue unavailable, which is what the loop's exchange gate reads.
    Attributes that are not calls (name, environment, account, currency) and the paper broker's local
    ``on_bar`` pass straight through."""

    def __init__(self, broker: Any, breaker: CircuitBreaker):
        self._broker, self.breaker = broker, breaker

    @property
    def inner(self) -> Any:
        return self._broker

    def check(self) -> BrokerStatus:
        if not self.breaker.allow():
            env = self._broker.environment
            return BrokerStatus(
                False, env, f"circuit breaker open after repeated temporary failures ({self.breaker.last_error})"
            )
        status: BrokerStatus = self._broker.check()
        # check() reports failures as a status instead of raising: count them all the same.
        if getattr(status, "ok", True):
            self.breaker.success()
        else:
            self.breaker.failure(ExchangeUnavailable(getattr(status, "message", "venue not ok")))
        return status

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._broker, name)
        if name in _LOCAL or name.startswith("_") or not callable(attr):
            return attr

        def guarded(*args: Any, **kw: Any) -> Any:
            return self.breaker.call(lambda: attr(*args, **kw), name)

        return guarded

    def __repr__(self) -> str:
        return f"GuardedBroker({self._broker!r}, {self.breaker.state})"


class _GuardedBatchBroker(GuardedBroker):
    """A guarded broker whose venue takes batches: the order manager looks for the batch endpoints on
    the broker's class, so they are real methods here, each one call through the breaker."""

    def place_many(self, *args: Any, **kw: Any) -> Any:
        return self.breaker.call(lambda: self._broker.place_many(*args, **kw), "place_many")

    def cancel_many(self, *args: Any, **kw: Any) -> Any:
        return self.breaker.call(lambda: self._broker.cancel_many(*args, **kw), "cancel_many")


def guard(broker: Any, breaker: CircuitBreaker) -> GuardedBroker:
    """``broker`` behind ``breaker``, keeping its batch endpoints when its class has them."""
    if hasattr(type(broker), "place_many") and hasattr(type(broker), "cancel_many"):
        return _GuardedBatchBroker(broker, breaker)
    return GuardedBroker(broker, breaker)
