"""The one retry layer of the venues: temporary errors retried with backoff, sends never duplicated.

Every venue adapter goes through these two helpers and nothing above the adapters retries (the live
loop and the order manager call once): a call is tried at most ``RetryPolicy.attempts`` times, never
``attempts`` squared.

- ``retry_call`` is for calls that are safe to repeat (reads, cancels): a ``TemporaryBrokerError``
  (network, timeout, 429, 5xx, "execution status unknown") is tried again after an exponential,
  jittered wait — jitter so that many clients hit by one outage do not come back in lockstep — until
  the attempts or the time budget are spent; every retry is logged at WARNING with the venue and
  the operation.
- ``send_idempotent`` is for sending an order, which is *not* safe to repeat: a temporary failure
  of a send leaves its outcome unknown (the venue may have taken the order and lost the answer), so
  before anything is sent again the order is looked up by its client order id. Found: that is the
  answer. Positively unknown to the venue: sent again. The look-up itself failing: asked again after
  the next wait, never sent blind. Binance, for one, keeps client order ids unique among *open*
  orders only, so a blind re-send of a filled order's id would trade twice.

Errors other than temporary ones (a rejection, bad keys, maintenance) pass through at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from workbench.errors import BrokerError, TemporaryBrokerError

__all__ = ["RetryPolicy", "retry_call", "send_idempotent"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Translate = Callable[[Exception], Exception]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a venue adapter tries: ``attempts`` tries in all (≥ 1), waits growing from
    ``backoff_s`` by doubling up to ``max_wait_s`` plus up to ``backoff_s`` of random jitter, and no
    new try started once ``deadline_s`` have passed since the first one began (a request already
    in flight still gets its own HTTP timeout)."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 5.0
    deadline_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.max_wait_s < 0 or self.deadline_s <= 0:
            raise ValueError(f"a retry policy needs attempts ≥ 1, waits ≥ 0 and a positive deadline, got {self}")

    def retrying(self, venue: str, what: str, sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """tenacity's loop for this policy: retries ``TemporaryBrokerError`` only, re-raises the last error."""
        return Retrying(
            retry=retry_if_exception_type(TemporaryBrokerError),
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.deadline_s),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_wait_s) + wait_random(0, self.backoff_s),
            before_sleep=_log_retry(venue, what, self.attempts),
            sleep=sleep,
            reraise=True,
        )


def _log_retry(venue: str, what: str, attempts: int) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s %s: try %d of %d failed (%s); trying again in %.2f s",
            venue,
            what,
            state.attempt_number,
            attempts,
            err,
            wait,
        )

    return before_sleep


def _translated(
    fn: Callable[[], T], translate: Translate | None, catch: type[Exception] | tuple[type[Exception], ...]
) -> T:
    """``fn()`` with every ``catch`` error turned into the broker tree (broker errors pass as they are)."""
    try:
        return fn()
    except BrokerError:
        raise
    except catch as e:
        if translate is None:
            raise
        raise translate(e) from e


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    venue: str,
    what: str,
    translate: Translate | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = Exception,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, a call safe to repeat, with ``catch`` errors translated by ``translate`` and the
    temporary ones tried again as ``policy`` says; the last error is raised when they are spent."""
    for attempt in policy.retrying(venue, what, sleep):
        with attempt:
            return _translated(fn, translate, catch)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def send_idempotent(
    send: Callable[[], T],
    lookup: Callable[[], T | None],
    *,
    policy: RetryPolicy,
    venue: str,
    what: str,
    translate: Translate | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = Exception,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Send an order at most ``policy.attempts`` times without ever making two of it.

    ``send()`` sends once. ``lookup()`` asks the venue once, by client order id, and returns the
    order, or None only when the venue positively does not know it; both raise (or have translated)
    ``TemporaryBrokerError`` when they cannot tell. After a send fails temporarily, every later try
    starts with the look-up, and sends again only after a None. When the tries are spent the
    outcome is still unknown: a ``TemporaryBrokerError`` saying so (the order may exist; the
    caller keeps it open and asks ``order_status`` later)."""
    unknown = False  # a send failed without telling whether the venue took the order

    def step() -> T:
        nonlocal unknown
        if unknown:
            found = _translated(lookup, translate, catch)  # cannot tell → raises → asked again next try
            if found is not None:
                log.warning(
                    "%s %s: the unanswered send had arrived; found by its client order id, not sent again", venue, what
                )
                return found
            unknown = False  # the venue does not know it: sending again cannot duplicate it
        try:
            return _translated(send, translate, catch)
        except TemporaryBrokerError:
            unknown = True
            raise

    try:
        return retry_call(step, policy=policy, venue=venue, what=what, sleep=sleep)
    except TemporaryBrokerError as e:
        if not unknown:
            raise
        raise TemporaryBrokerError(
            f"{venue}: {what} may or may not have arrived after {policy.attempts} tries ({e}); "
            "order_status() will tell once the venue answers"
        ) from e
