"""Runs the broker conformance suite (``conformance.py``) against every adapter in ``HARNESSES``."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.venues.conformance import *
from tests.unit.venues.conformance import Harness
from workbench.trading.store import Store
from workbench.venues.base import Market, Quote
from workbench.venues.paper.broker import PaperBroker

T0 = pd.Timestamp("2024-05-01", tz="UTC")


def paper_harness(tmp_path) -> Harness:
    store = Store(f"sqlite:///{tmp_path / 'venue.db'}").create()
    markets = {"XYZ/USD": Market("XYZ/USD", "XYZ", "USD", lot_size=0.001, tick_size=0.01, min_notional=10.0)}
    broker = PaperBroker(store, starting_cash=10_000.0, fee_rate=0.001, slippage_bps=5.0, markets=markets)

    def move(symbol: str, **bar) -> None:
        broker.on_bar({symbol: Quote(symbol, bar.pop("last"), T0, **bar)})

    move("XYZ/USD", last=100.0)
    return Harness(broker=broker, symbol="XYZ/USD", unknown="NOPE/USD", currency="USD", move=move)


HARNESSES = {"paper": paper_harness}


@pytest.fixture(params=sorted(HARNESSES))
def venue(request, tmp_path) -> Harness:
    return HARNESSES[request.param](tmp_path)
