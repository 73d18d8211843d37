"""Runs the broker conformance suite (``conformance.py``) against ``CcxtBroker``: a real ccxt.binance
client, in testnet mode, signing real requests to the local ``FakeBinance`` exchange."""

from __future__ import annotations

import pytest

from tests.kit.fake_binance import FakeBinance
from tests.unit.venues.conformance import *
from tests.unit.venues.conformance import Harness
from workbench.venues.ccxt.broker import CcxtBroker


@pytest.fixture
def venue():
    # Commission 0 (as on Binance's spot testnet): the suite books cash and positions to the unit; the
    # commission taken in the received asset is covered in test_ccxt_broker.py.
    with FakeBinance(symbols=("BTC/USDT",), fee_rate=0.0) as fake:
        fake.add_market("XYZ/USDT", step="0.001", tick="0.01", min_notional="10", price=100.0)
        fake.set_balance("USDT", 10_000.0)
        broker = CcxtBroker(
            "binance",
            api_key=fake.api_key,
            secret=fake.secret,
            urls=fake.ccxt_config()["urls"],
            currency="USDT",
            ccxt_config={"enableRateLimit": False},
            backoff_s=0.01,
        )
        yield Harness(broker=broker, symbol="XYZ/USDT", unknown="NOPE/USDT", currency="USDT", move=fake.move)
