"""The venues refuse an off-grid price instead of rounding it: a stop at 24000.004 on a 0.01 tick
never goes out as 24000.00 (the paper broker and the ccxt adapter against a local fake Binance)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.kit.fake_binance import FakeBinance
from workbench.market import Market, OrderRequest, Quote
from workbench.trading.store import Store
from workbench.venues.base import OrderRejected
from workbench.venues.ccxt.broker import CcxtBroker
from workbench.venues.paper.broker import PaperBroker

SYM = "XYZ/USDT"


def test_paper_refuses_an_off_grid_stop(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'p.db'}").create()
    m = {SYM: Market(SYM, "XYZ", "USDT", lot_size=0.001, tick_size=0.01)}
    b = PaperBroker(store, currency="USDT", starting_cash=1e6, markets=m, slippage_bps=0.0)
    b.on_bar({SYM: Quote(SYM, 24100.0, pd.Timestamp("2024-05-01", tz="UTC"))})
    b.place(OrderRequest("buy", SYM, "buy", 1.0))
    with pytest.raises(OrderRejected) as e:
        b.place(OrderRequest("sl", SYM, "sell", 1.0, "stop_loss", stop_price=24000.004))
    assert e.value.reason == "tick_size" and "24000.004" in str(e.value)
    ok = b.place(OrderRequest("sl2", SYM, "sell", 1.0, "stop_loss", stop_price=24000.01))
    assert ok.stop_price == 24000.01


def test_ccxt_refuses_an_off_grid_stop_before_sending():
    with FakeBinance(symbols=("BTC/USDT",)) as fake:
        fake.add_market(SYM, step="0.001", tick="0.01", min_notional="10", price=24100.0)
        fake.set_balance("USDT", 100_000.0)
        fake.set_balance("XYZ", 2.0)
        b = CcxtBroker("binance", api_key=fake.api_key, secret=fake.secret, urls=fake.ccxt_config()["urls"], currency="USDT",
                       ccxt_config={"enableRateLimit": False}, backoff_s=0.01)  # fmt: skip
        sent = len(fake.orders(SYM))
        with pytest.raises(OrderRejected) as e:
            b.place(OrderRequest("sl", SYM, "sell", 1.0, "stop_loss", stop_price=24000.004))
        assert e.value.reason == "tick_size" and len(fake.orders(SYM)) == sent  # nothing went out
        ok = b.place(OrderRequest("sl2", SYM, "sell", 1.0, "stop_loss", stop_price=24000.01))
        assert ok.stop_price == pytest.approx(24000.01) and len(fake.orders(SYM)) == sent + 1
