"""The dashboard's broker choice: paper by default, every real broker labelled with what it trades."""

from __future__ import annotations

import os

from tests.kit.users import trader
from workbench.config import BrokerSettings, load_settings
from workbench.dashboard.app import Dashboard, _broker_options


def test_broker_dropdown_defaults_to_paper_and_labels_testnet_and_live(tmp_path, monkeypatch):
    s = load_settings(tmp_path / "home")
    t = trader(s, monkeypatch=monkeypatch)
    opts = dict((v, k) for k, v in _broker_options(s))
    assert next(iter(opts)) == "paper" and "TESTNET" in opts["ccxt:binance"] and "LIVE — REAL MONEY" in opts["kite"]
    assert "needs the trade_live permission" in opts["kite"]
    app = Dashboard(s, token=t.token)
    assert app.broker.value == "paper" and "PAPER TRADING" in app.views.header.value
    app.broker.value = "ccxt:binance"
    assert "TESTNET" in app.views.header.value
    live = load_settings(tmp_path / "h2", broker=BrokerSettings(testnet=False, default="ccxt:kraken"))
    opts = dict((v, k) for k, v in _broker_options(live))
    assert "needs the trade_live permission" in opts["ccxt:binance"]
    allowed = trader(live, permissions=("trade_paper", "trade_live"), monkeypatch=monkeypatch).user
    opts = dict((v, k) for k, v in _broker_options(live, allowed))
    assert "ccxt:kraken" in opts and "LIVE — REAL MONEY" in opts["ccxt:binance"] and "needs" not in opts["ccxt:binance"]
    assert Dashboard(live, token=os.environ["WORKBENCH_TOKEN"]).broker.value == "ccxt:kraken"
