"""Manual, opt-in: the real Binance spot testnet (https://testnet.binance.vision), with keys from the
environment. Skipped unless ``WORKBENCH_REAL_TESTNET=1`` and ``BINANCE_TESTNET_API_KEY`` /
``BINANCE_TESTNET_SECRET`` are set (and the network is open)::

    WORKBENCH_REAL_TESTNET=1 BINANCE_TESTNET_API_KEY=... BINANCE_TESTNET_SECRET=... \\
        .venv/bin/python -m pytest -o addopts="" tests/integration/test_real_testnet.py -q

It runs Phase 1 against the venue, then places one tiny limit buy far below the market (it cannot
fill), finds it by its client order id, cancels it, and checks that the portfolio sync reads the
account. Test money only: the testnet flag stays on.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.kit.models import MomentumEngine
from tests.kit.users import trader
from workbench.config import load_settings
from workbench.trading.loop import phase1
from workbench.trading.runner import plan_broker
from workbench.trading.store import Store
from workbench.trading.sync import sync_portfolio
from workbench.venues.base import OrderRequest, floor_to_lot

_KEY, _SECRET = os.environ.get("BINANCE_TESTNET_API_KEY"), os.environ.get("BINANCE_TESTNET_SECRET")
pytestmark = pytest.mark.skipif(
    os.environ.get("WORKBENCH_REAL_TESTNET") != "1" or not (_KEY and _SECRET),
    reason="opt-in: set WORKBENCH_REAL_TESTNET=1 and BINANCE_TESTNET_API_KEY/BINANCE_TESTNET_SECRET to trade on Binance's testnet",
)
SYMBOL = "BTC/USDT"


def test_phase1_then_place_and_cancel_a_far_limit_order_on_binance_testnet(tmp_path):
    pytest.importorskip("workbench.venues.ccxt.broker")
    settings = load_settings(tmp_path / "home")
    assert settings.broker.testnet, "this test trades test money only"
    settings.ensure_dirs()
    t = trader(settings)
    vault = t.vault
    vault.put("ccxt:binance/api_key", _KEY)
    vault.put("ccxt:binance/secret", _SECRET)
    pending = plan_broker(settings, "ccxt:binance", vault=vault)
    results = phase1(settings, pending, lambda: MomentumEngine(), user=t.user)
    assert all(r.ok for r in results), [(r.name, r.message) for r in results]
    broker = pending.get()
    assert broker.environment == "testnet"

    market = broker.markets([SYMBOL])[SYMBOL]
    last = broker.quotes([SYMBOL])[SYMBOL].last
    price = round(last * 0.5 / market.tick_size) * market.tick_size  # far below the market: it rests
    qty = max(floor_to_lot(max(market.min_notional, 10.0) * 1.2 / price, market.lot_size), market.lot_size)
    cid = f"wb-test-{uuid.uuid4().hex[:12]}"
    placed = broker.place(OrderRequest(cid, SYMBOL, "buy", qty, type="limit", limit_price=price))
    try:
        assert placed.client_order_id == cid and placed.status in ("SUBMITTED", "NEW")
        assert cid in {o.client_order_id for o in broker.open_orders()}
        assert broker.order_status(cid).filled_quantity == 0.0
    finally:
        cancelled = broker.cancel(cid)
    assert cancelled.status == "CANCELLED" and broker.order_status(cid).status == "CANCELLED"

    store = Store(settings.store_url).create()
    report = sync_portfolio(store, broker, "ccxt:binance@testnet", when="testnet check")
    assert (
        "USDT" in report.balances and store.cash_book("ccxt:binance@testnet")["USDT"] == report.balances["USDT"].total
    )
