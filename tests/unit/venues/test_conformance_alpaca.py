"""The broker conformance suite against ``AlpacaBroker`` (the real alpaca-py clients → a local fake Alpaca)."""

from __future__ import annotations

import pytest

from tests.kit.fake_alpaca import FakeAlpaca
from tests.unit.venues.conformance import *
from tests.unit.venues.conformance import Harness
from workbench.venues.alpaca.broker import AlpacaBroker


@pytest.fixture
def venue():
    with FakeAlpaca(key="apca-key", secret="apca-secret", cash=10_000.0) as fake:
        fake.add_asset("XYZ", "NASDAQ", price=100.0)
        broker = AlpacaBroker("apca-key", "apca-secret", url_override=fake.url, timeout_s=2, backoff_s=0.01)
        # US equities through OCO exits: whole shares, tick $0.01, no minimum order value
        yield Harness(
            broker, "NASDAQ:XYZ", "NASDAQ:NOPE", "USD", fake.move, lot=1.0, tick=0.01, min_notional=0.0, unit=10.0
        )
