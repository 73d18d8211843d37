"""The venues' one retry layer (``workbench.venues.retry``): what is retried, how often, how long, and
that a send whose outcome is unknown is looked up before it is ever sent again. The adapters' own
tests (ccxt, Alpaca, Kite) drive the same helpers through real clients against the fake venues."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from workbench.errors import AuthenticationError, OrderRejected, TemporaryBrokerError
from workbench.venues.retry import RetryPolicy, retry_call, send_idempotent

FAST = RetryPolicy(attempts=3, backoff_s=0.0, max_wait_s=0.0)


def failing(n: int, error: Exception, result: object = "ok") -> tuple[Callable[[], object], list[int]]:
    """A call that raises ``error`` its first ``n`` times, then returns ``result``; and its call counter."""
    calls = [0]

    def fn() -> object:
        calls[0] += 1
        if calls[0] <= n:
            raise error
        return result

    return fn, calls


def test_temporary_errors_are_retried_and_each_retry_is_logged_with_venue_and_operation(caplog):
    fn, calls = failing(2, TemporaryBrokerError("HTTP 503"))
    with caplog.at_level(logging.WARNING, logger="workbench.venues.retry"):
        assert retry_call(fn, policy=FAST, venue="ccxt:binance", what="fetch_balance") == "ok"
    assert calls[0] == 3
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and all(r.levelno == logging.WARNING for r in caplog.records)
    assert msgs[0].startswith("ccxt:binance fetch_balance: try 1 of 3 failed (HTTP 503)") and "try 2 of 3" in msgs[1]


def test_a_persistent_temporary_error_is_tried_exactly_attempts_times():
    fn, calls = failing(99, TemporaryBrokerError("HTTP 502"))
    with pytest.raises(TemporaryBrokerError, match="HTTP 502"):
        retry_call(fn, policy=RetryPolicy(attempts=4, backoff_s=0.0, max_wait_s=0.0), venue="kite", what="the margins")
    assert calls[0] == 4


@pytest.mark.parametrize(
    "error", [OrderRejected("lot_size", "off the lot grid"), AuthenticationError("bad key"), RuntimeError("bug")]
)
def test_other_errors_are_not_retried(error):
    fn, calls = failing(1, error)
    with pytest.raises(type(error)):
        retry_call(fn, policy=FAST, venue="alpaca", what="the account")
    assert calls[0] == 1


def test_venue_errors_are_translated_into_the_broker_tree_and_only_caught_ones():
    fn, calls = failing(1, ConnectionError("reset"))
    translate = lambda e: TemporaryBrokerError(f"did not answer ({e})")
    assert (
        retry_call(fn, policy=FAST, venue="alpaca", what="x", translate=translate, catch=ConnectionError) == "ok"
        and calls[0] == 2
    )
    fn, calls = failing(1, KeyError("not a venue error"))
    with pytest.raises(KeyError):
        retry_call(fn, policy=FAST, venue="alpaca", what="x", translate=translate, catch=ConnectionError)
    assert calls[0] == 1


def test_waits_grow_exponentially_with_jitter_and_are_capped():
    waits: list[float] = []
    fn, _ = failing(99, TemporaryBrokerError("down"))
    policy = RetryPolicy(attempts=6, backoff_s=1.0, max_wait_s=5.0, deadline_s=1e6)
    with pytest.raises(TemporaryBrokerError):
        retry_call(fn, policy=policy, venue="v", what="x", sleep=waits.append)
    assert len(waits) == 5
    for n, w in enumerate(waits):  # 1, 2, 4, then the cap 5; each plus up to backoff_s of jitter
        low = min(2.0**n, 5.0)
        assert low <= w <= low + 1.0, (n, w)
    firsts = set()
    for _ in range(20):
        seen: list[float] = []
        fn, _ = failing(1, TemporaryBrokerError("down"))
        retry_call(fn, policy=policy, venue="v", what="x", sleep=seen.append)
        firsts.add(seen[0])
    assert len(firsts) > 1  # jittered: clients hit by one outage do not come back in lockstep


def test_no_new_try_starts_past_the_deadline():
    fn, calls = failing(1_000, TemporaryBrokerError("down"))
    policy = RetryPolicy(attempts=100, backoff_s=0.02, max_wait_s=0.02, deadline_s=0.1)
    with pytest.raises(TemporaryBrokerError):
        retry_call(fn, policy=policy, venue="v", what="x")
    assert 1 <= calls[0] <= 5  # a 0.1 s budget holds at most a handful of 0.02–0.04 s waits


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline_s=0)


# ---- send_idempotent ------------------------------------------------------------------------------
class Venue:
    """A venue in miniature: orders by client id; faults say whether a send is taken before failing."""

    def __init__(self) -> None:
        self.orders: dict[str, int] = {}
        self.sends = self.lookups = 0
        self.send_faults: list[bool] = []  # per failing send: True = the order was taken, then the answer lost
        self.lookup_faults = 0

    def send(self, cid: str) -> str:
        self.sends += 1
        if self.send_faults:
            taken = self.send_faults.pop(0)
            if taken:
                self.orders[cid] = self.orders.get(cid, 0) + 1
            raise TemporaryBrokerError("execution status unknown (-1001)")
        self.orders[cid] = self.orders.get(cid, 0) + 1
        return f"sent {cid}"

    def lookup(self, cid: str) -> str | None:
        self.lookups += 1
        if self.lookup_faults:
            self.lookup_faults -= 1
            raise TemporaryBrokerError("timeout")
        return f"found {cid}" if cid in self.orders else None


def place(v: Venue, cid: str = "c1", policy: RetryPolicy = FAST) -> str:
    return send_idempotent(lambda: v.send(cid), lambda: v.lookup(cid), policy=policy, venue="fake", what=f"order {cid}")


def test_an_order_taken_but_unanswered_is_found_by_its_id_not_sent_again():
    v = Venue()
    v.send_faults = [True]
    assert place(v) == "found c1"
    assert v.orders == {"c1": 1} and (v.sends, v.lookups) == (1, 1)


def test_an_order_the_venue_does_not_know_is_sent_again_after_the_look_up():
    v = Venue()
    v.send_faults = [False]
    assert place(v) == "sent c1"
    assert v.orders == {"c1": 1} and (v.sends, v.lookups) == (2, 1)


def test_a_failing_look_up_is_asked_again_never_sent_blind():
    v = Venue()
    v.send_faults = [True]
    v.lookup_faults = 1
    assert place(v) == "found c1"
    assert v.orders == {"c1": 1} and (v.sends, v.lookups) == (1, 2)


def test_when_the_tries_are_spent_the_outcome_is_reported_unknown_and_sends_are_bounded():
    v = Venue()
    v.send_faults = [False] * 10
    with pytest.raises(TemporaryBrokerError, match="order c1 may or may not have arrived after 3 tries"):
        place(v)
    assert (v.sends, v.lookups) == (3, 2) and v.orders == {}
    v = Venue()
    v.send_faults = [True]
    v.lookup_faults = 10  # the venue stops answering after taking the order: never sent a second time
    with pytest.raises(TemporaryBrokerError, match="may or may not have arrived"):
        place(v)
    assert v.orders == {"c1": 1} and (v.sends, v.lookups) == (1, 2)


def test_a_rejected_send_is_raised_at_once_without_a_look_up():
    calls = {"lookup": 0}

    def lookup() -> None:
        calls["lookup"] += 1

    def send() -> str:
        raise OrderRejected("insufficient_funds", "needs 100, has 10")

    with pytest.raises(OrderRejected):
        send_idempotent(send, lookup, policy=FAST, venue="fake", what="order c1")
    assert calls["lookup"] == 0
