"""A fake Kite Connect REST API for the real ``kiteconnect.KiteConnect`` client (``root=fake.url``).

Serves ``/instruments`` (CSV), ``/instruments/historical/<token>/<interval>`` (candles, refusing
ranges longer than Kite's per-interval limit like the real API) and ``/quote`` (at most 500 ``i``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.kit.http_fake import FakeHttp

__all__ = ["FakeKite"]

_MAX_DAYS = {"minute": 60, "3minute": 100, "5minute": 100, "10minute": 100, "15minute": 200, "30minute": 200, "60minute": 400, "day": 2000}


class FakeKite(FakeHttp):
    def __init__(self, instruments_csv: Path | str | bytes | None = None, delay_s: float = 0.0):
        super().__init__(delay_s)
        if isinstance(instruments_csv, (str, Path)):
            instruments_csv = Path(instruments_csv).read_bytes()
        self.instruments_csv = instruments_csv or (
            b"instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n"
            b"738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE\n"
            b"2953217,11536,TCS,TATA CONSULTANCY SERV LT,0,,0,0.05,1,EQ,NSE,NSE\n"
        )
        self.candles: dict[int, pd.DataFrame] = {}  # token -> ts (IST-aware), open..volume
        self.route("GET", r"/instruments", lambda m, q, b: (200, self.instruments_csv, "text/csv"))
        self.route("GET", r"/instruments/historical/(\d+)/(\w+)", self._historical)
        self.route("GET", r"/quote", self._quote)

    def error_body(self, status: int) -> object:
        kind = "NetworkException" if status in (429, 502, 503, 504) else "GeneralException"
        return {"status": "error", "message": f"HTTP {status}", "error_type": kind}

    def set_candles(self, token: int, df: pd.DataFrame) -> None:
        self.candles[int(token)] = df.reset_index(drop=True)

    def _historical(self, m, q, b):
        token, interval = int(m.group(1)), m.group(2)
        lo, hi = pd.Timestamp(q["from"][0]), pd.Timestamp(q["to"][0])
        if (hi - lo) > pd.Timedelta(days=_MAX_DAYS[interval]):
            return 400, {"status": "error", "message": "interval exceeds max limit", "error_type": "InputException"}
        df = self.candles.get(token)
        if df is None:
            return 400, {"status": "error", "message": "invalid token", "error_type": "InputException"}
        local = df["ts"].dt.tz_convert("Asia/Kolkata").dt.tz_localize(None)
        sel = df[(local >= lo) & (local <= hi)]
        stamps = sel["ts"].dt.tz_convert("Asia/Kolkata").dt.strftime("%Y-%m-%dT%H:%M:%S+0530")
        rows = [[s, *vals] for s, vals in zip(stamps, sel[["open", "high", "low", "close", "volume"]].to_numpy().tolist())]
        return 200, {"status": "success", "data": {"candles": rows}}

    def _quote(self, m, q, b):
        keys = q.get("i", [])
        if len(keys) > 500:
            return 400, {"status": "error", "message": "Too many instruments", "error_type": "InputException"}
        now = pd.Timestamp.now(tz="Asia/Kolkata").tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
        data = {}
        for i, k in enumerate(keys):
            price = 100.0 + (hash(k) % 1000) / 10.0
            data[k] = {
                "instrument_token": i, "timestamp": now, "last_trade_time": now, "last_price": price, "volume": 1000 + i,
                "ohlc": {"open": price, "high": price * 1.01, "low": price * 0.99, "close": price / 1.02},
                "net_change": 0, "depth": {"buy": [{"price": price - 0.05, "quantity": 10, "orders": 1}], "sell": [{"price": price + 0.05, "quantity": 10, "orders": 1}]},
            }  # fmt: skip
        return 200, {"status": "success", "data": data}
