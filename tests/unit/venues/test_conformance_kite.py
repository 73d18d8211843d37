"""The broker conformance suite against ``KiteBroker`` (the real kiteconnect client → a local fake Kite)."""

from __future__ import annotations

import pytest

from tests.kit.fake_kite import TRADING_INSTRUMENTS, FakeKite
from tests.unit.venues.conformance import *
from tests.unit.venues.conformance import Harness
from workbench.venues.kite.broker import KiteBroker


@pytest.fixture
def venue():
    with FakeKite(
        TRADING_INSTRUMENTS, api_key="kite-key", api_secret="kite-secret", access_token="kite-token", cash=100_000.0
    ) as fake:
        fake.set_price("NSE:INFY", 100.0)
        broker = KiteBroker("kite-key", "kite-token", root=fake.url, timeout_s=2, backoff_s=0.01)
        # NSE equities: whole shares, tick 0.05, no minimum order value
        yield Harness(broker, "NSE:INFY", "NSE:NOPE", "INR", fake.move, lot=1.0, tick=0.05, min_notional=0.0, unit=10.0)
