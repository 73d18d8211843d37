"""The per-venue circuit breaker: closed → open after consecutive temporary failures, calls refused
without reaching the venue while open, half-open after the cooldown, closed by a good probe, open
again by a bad one; every transition reported; rejections do not count."""

from __future__ import annotations

import pytest

from workbench.errors import ExchangeUnavailable, OrderRejected, TemporaryBrokerError
from workbench.venues.base import BrokerStatus
from workbench.venues.breaker import OPEN_TEXT, Breakers, CircuitBreaker, GuardedBroker


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Flaky:
    """A venue whose calls fail while ``down``; counts the calls that reached it."""

    name, environment = "flaky", "testnet"

    def __init__(self) -> None:
        self.down, self.calls = False, 0

    def balances(self) -> dict:
        self.calls += 1
        if self.down:
            raise TemporaryBrokerError("503 Service Unavailable")
        return {"USDT": 1.0}

    def place(self, order: object) -> None:
        self.calls += 1
        raise OrderRejected("insufficient_funds")

    def check(self) -> BrokerStatus:
        self.calls += 1
        return BrokerStatus(not self.down, "testnet", "down" if self.down else "up")


def guarded(threshold: int = 3, cooldown: float = 10.0) -> tuple[GuardedBroker, Flaky, Clock, list]:
    clock, seen = Clock(), []
    b = CircuitBreaker("flaky", threshold, cooldown, lambda v, o, n, why: seen.append((o, n, why)), clock)
    venue = Flaky()
    return GuardedBroker(venue, b), venue, clock, seen


def test_opens_after_threshold_refuses_without_calling_then_half_open_probe_closes():
    g, venue, clock, seen = guarded()
    venue.down = True
    for _ in range(3):
        with pytest.raises(TemporaryBrokerError):
            g.balances()
    assert g.breaker.state == "open" and venue.calls == 3
    assert seen[-1][:2] == ("closed", "open") and "3 temporary failure(s) in a row" in seen[-1][2]
    with pytest.raises(TemporaryBrokerError, match=OPEN_TEXT):
        g.balances()
    assert venue.calls == 3  # refused locally: nothing reached the venue
    assert not g.check().ok and venue.calls == 3  # check reports it, does not raise
    clock.t = 10.0
    venue.down = False
    assert g.balances() == {"USDT": 1.0}
    assert [s[:2] for s in seen] == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    assert g.breaker.failures == 0


def test_a_failed_probe_opens_again_for_another_cooldown():
    g, venue, clock, seen = guarded(threshold=2, cooldown=5.0)
    venue.down = True
    for _ in range(2):
        with pytest.raises(TemporaryBrokerError):
            g.balances()
    clock.t = 5.0
    with pytest.raises(TemporaryBrokerError):
        g.balances()  # the probe
    assert [s[:2] for s in seen] == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]
    assert "the probe failed" in seen[-1][2]
    clock.t = 9.0
    with pytest.raises(TemporaryBrokerError, match=OPEN_TEXT):
        g.balances()
    assert venue.calls == 3


def test_rejections_do_not_count_and_a_success_resets_the_count():
    g, venue, _, seen = guarded(threshold=2)
    for _ in range(5):
        with pytest.raises(OrderRejected):
            g.place(object())
    assert g.breaker.state == "closed" and g.breaker.failures == 0
    venue.down = True
    with pytest.raises(TemporaryBrokerError):
        g.balances()
    venue.down = False
    g.balances()
    venue.down = True
    with pytest.raises(TemporaryBrokerError):
        g.balances()
    assert g.breaker.state == "closed" and not seen  # never two in a row


def test_a_venue_that_reports_itself_down_opens_the_breaker_through_check():
    g, venue, _, _ = guarded(threshold=2)
    venue.down = True
    assert not g.check().ok and not g.check().ok
    assert g.breaker.state == "open" and g.name == "flaky" and g.environment == "testnet"


def test_breakers_all_open_only_when_every_venue_is_cut_off():
    clock = Clock()
    bs = Breakers(threshold=1, cooldown_s=5.0, clock=clock)
    assert not bs.all_open()  # no venue has failed
    bs.of("a").failure(ExchangeUnavailable("maintenance"))
    bs.of("b")
    assert not bs.all_open() and bs.states() == {"a": "open", "b": "closed"}
    bs.of("b").failure(TemporaryBrokerError("timeout"))
    assert bs.all_open()
    clock.t = 5.0
    assert not bs.all_open()  # cooled down: the next calls probe
