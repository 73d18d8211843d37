"""A fake Alpaca market-data API (``/v2/stocks/bars``, ``/v2/stocks/snapshots``) for the real alpaca-py client.

Bars are paged (``page_size`` per answer with ``next_page_token``) so the client's pagination runs.
"""

from __future__ import annotations

import pandas as pd

from tests.kit.http_fake import FakeHttp

__all__ = ["FakeAlpaca"]


class FakeAlpaca(FakeHttp):
    def __init__(self, page_size: int = 300, delay_s: float = 0.0):
        super().__init__(delay_s)
        self.page_size = page_size
        self.bars: dict[str, pd.DataFrame] = {}
        self.stale_symbols: set[str] = set()
        self.route("GET", r"/v2/stocks/bars", self._bars)
        self.route("GET", r"/v2/stocks/snapshots", self._snapshots)

    def error_body(self, status: int) -> object:
        return {"message": f"HTTP {status}"}

    def set_bars(self, symbol: str, df: pd.DataFrame) -> None:
        """Bars with UTC ``ts`` (Alpaca stamps daily bars at midnight New York, i.e. 04:00/05:00 UTC)."""
        self.bars[symbol] = df.reset_index(drop=True)

    def _bars(self, m, q, b):
        symbols = q["symbols"][0].split(",")
        lo = pd.Timestamp(q["start"][0]) if "start" in q else None
        hi = pd.Timestamp(q["end"][0]) if "end" in q else None
        offset = int(q.get("page_token", ["0"])[0] or 0)
        rows = []
        for s in symbols:
            df = self.bars.get(s)
            if df is None:
                continue
            sel = df
            if lo is not None:
                sel = sel[sel["ts"] >= (lo if lo.tzinfo else lo.tz_localize("UTC"))]
            if hi is not None:
                sel = sel[sel["ts"] <= (hi if hi.tzinfo else hi.tz_localize("UTC"))]
            rows += [(s, r) for r in sel.itertuples(index=False)]
        page = rows[offset : offset + self.page_size]
        out: dict[str, list] = {}
        for s, r in page:
            out.setdefault(s, []).append(
                {"t": r.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": r.open, "h": r.high, "l": r.low, "c": r.close, "v": r.volume, "n": 1, "vw": r.close}
            )
        nxt = str(offset + self.page_size) if offset + self.page_size < len(rows) else None
        return 200, {"bars": out, "next_page_token": nxt}

    def _snapshots(self, m, q, b):
        symbols = q["symbols"][0].split(",")
        now = pd.Timestamp.now(tz="UTC")
        out = {}
        for i, s in enumerate(symbols):
            t = now - pd.Timedelta(hours=3) if s in self.stale_symbols else now
            p = 50.0 + i % 100
            stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            bar = {"t": stamp, "o": p, "h": p + 1, "l": p - 1, "c": p, "v": 1000.0 + i, "n": 1, "vw": p}
            out[s] = {
                "latestTrade": {"t": stamp, "x": "V", "p": p, "s": 100, "c": ["@"], "i": i, "z": "C"},
                "latestQuote": {"t": stamp, "ax": "V", "ap": p + 0.01, "as": 1, "bx": "V", "bp": p - 0.01, "bs": 1, "c": ["R"], "z": "C"},
                "minuteBar": bar, "dailyBar": bar, "prevDailyBar": {**bar, "c": p / 1.05},
            }
        return 200, out
