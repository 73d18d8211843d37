"""``fetch_quotes`` for 5,000 instruments: Kite ``quote`` (500 a call) and Alpaca snapshots against local fakes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.kit holds the fake servers

from alpaca.data.historical import StockHistoricalDataClient
from kiteconnect import KiteConnect

from tests.kit.fake_alpaca import FakeAlpaca
from tests.kit.fake_kite import FakeKite
from workbench.data.quotes import fetch_quotes
from workbench.venues.alpaca.data import AlpacaQuotes
from workbench.venues.kite.data import KiteQuotes


def main() -> None:
    nse = [f"NSE:S{i:04d}" for i in range(3000)]
    us = [f"NASDAQ:U{i:04d}" for i in range(2000)]
    with FakeKite() as kite_fake, FakeAlpaca() as alpaca_fake:
        sources = [
            KiteQuotes(KiteConnect(api_key="k", access_token="t", root=kite_fake.url), per_second=1000, timeout_s=10),
            AlpacaQuotes(
                StockHistoricalDataClient("k", "s", raw_data=True, url_override=alpaca_fake.url),
                timeout_s=10,
                batch=500,
            ),
        ]
        fetch_quotes(nse[:10] + us[:10], sources)  # warm up connections
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            q = fetch_quotes(nse + us, sources)
            times.append(time.perf_counter() - t0)
        ok = int(q["last"].notna().sum())
        print(
            f"   fetch_quotes 5,000 instruments (3,000 Kite in 6 calls + 2,000 Alpaca in 4 calls): best {min(times):.2f} s, {ok} quoted, {int(q['stale'].sum())} stale"
        )
