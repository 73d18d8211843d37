"""A tiny real Binance spot REST server for tests: real ccxt clients talk HTTP to it on 127.0.0.1.

Serves ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo`` and ``/api/v3/klines`` the way
Binance does (klines capped at ``max_limit`` per request, so pagination is exercised), fails on
demand (``fail_next(429)``) and can be extended with more routes (``route``) by the trading tests::

    with FakeBinance() as fake:
        ex = ccxt.binance(fake.ccxt_config())      # or CcxtSource("binance", config=fake.ccxt_config())
        fake.set_candles("BTC/USDT", candles)      # else deterministic generated candles up to now
        fake.fail_next(429)                        # the next request gets HTTP 429

Nothing here is mocked: ccxt builds the real URLs, parses the real JSON and maps the real HTTP
status codes to its exceptions.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

__all__ = ["FakeBinance", "DEFAULT_SYMBOLS"]

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "ETH/BTC")
_BASE_PRICE = {"BTC": 30000.0, "ETH": 2000.0, "BNB": 300.0, "SOL": 25.0, "XRP": 0.5, "ADA": 0.3}
_ORIGIN_MS = int(pd.Timestamp("2020-01-01", tz="UTC").value // 1_000_000)
_INTERVAL = re.compile(r"^(\d+)([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_ERRORS = {
    400: (-1100, "Illegal characters found in a parameter."),
    418: (-1003, "Way too many requests; IP banned."),
    429: (-1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE."),
}
# 5xx answers from Binance's front end carry no API error code; ccxt then maps the HTTP status.

Handler = Callable[[dict[str, str], bytes], tuple[int, object]]


def _market(symbol: str) -> dict:
    """One exchangeInfo entry in Binance's real shape (filters drive lot size/tick/min notional)."""
    base, quote = symbol.split("/")
    price = _BASE_PRICE.get(base, 1.0) if quote == "USDT" else 0.05
    tick = f"{10 ** np.floor(np.log10(price) - 4):.8f}"
    step = f"{10 ** -min(8, max(0, int(5 - np.log10(max(price, 1e-8))))):.8f}"
    return {
        "symbol": base + quote,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100000.00000000", "stepSize": "0.00000000"},
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000" if quote == "USDT" else "0.00010000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": ["SPOT"],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _generated(market_id: str, first: int, last: int, step: int) -> np.ndarray:
    """Deterministic candles for bar numbers first..last (a pure function of the bar number)."""
    i = np.arange(first - 1, last + 1, dtype="float64")
    level = (zlib.crc32(market_id.encode()) % 1000) / 10.0 + 10.0
    for base, price in _BASE_PRICE.items():
        if market_id.startswith(base) and market_id.endswith("USDT"):
            level = price
    close = level * np.exp(0.15 * np.sin(i / 17.0) + 0.05 * np.sin(i / 5.3) + 0.02 * np.cos(i / 2.1))
    o, c = close[:-1], close[1:]
    high = np.maximum(o, c) * 1.004
    low = np.minimum(o, c) * 0.996
    vol = 1000.0 + (np.arange(first, last + 1) % 97) * 3.0
    ts = _ORIGIN_MS + np.arange(first, last + 1, dtype="int64") * step
    return np.column_stack([ts, o, high, low, c, vol])


class FakeBinance:
    """Context manager running the fake exchange in a background thread; see the module doc."""

    def __init__(self, symbols: tuple[str, ...] = DEFAULT_SYMBOLS, exchange_info: Path | str | None = None, max_limit: int = 500):
        self.max_limit = max_limit
        if exchange_info is not None:
            self.exchange_info = json.loads(Path(exchange_info).read_text())
        else:
            self.exchange_info = {
                "timezone": "UTC",
                "serverTime": 0,
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
                "exchangeFilters": [],
                "symbols": [_market(s) for s in symbols],
            }
        self._ids = {m["symbol"] for m in self.exchange_info["symbols"]}
        self._candles: dict[str, np.ndarray] = {}
        self._failures: list[tuple[int, object]] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v3/ping"): lambda q, b: (200, {}),
            ("GET", "/api/v3/time"): lambda q, b: (200, {"serverTime": int(time.time() * 1000)}),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/klines"): self._klines,
            ("GET", "/api/v3/ticker/24hr"): self._tickers,
        }
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- control -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeBinance is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def ccxt_config(self) -> dict:
        """Constructor config pointing every Binance API family of a ccxt client at this server."""
        import ccxt

        urls = ccxt.binance().urls["api"]
        return {
            "urls": {"api": {k: re.sub(r"^https?://[^/]+", self.url, v) for k, v in urls.items()}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add or replace an endpoint: ``handler(query_params, body) -> (status, json_value)``."""
        self._routes[(method.upper(), path)] = handler

    def set_candles(self, symbol: str, df: pd.DataFrame) -> None:
        """Serve these bars for ``symbol`` (any interval): columns ts (datetime or ms) + OHLCV."""
        ts = df["ts"]
        ms = ts.astype("int64").to_numpy() if pd.api.types.is_integer_dtype(ts) else (
            pd.to_datetime(ts, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        )
        arr = np.column_stack([ms, df[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64")])
        with self._lock:
            self._candles[symbol.replace("/", "")] = arr[np.argsort(arr[:, 0], kind="stable")]

    def fail_next(self, status: int, times: int = 1, body: object | None = None) -> None:
        """The next ``times`` requests (any endpoint) answer ``status`` with a Binance error body."""
        if body is None:
            body = {"code": _ERRORS[status][0], "msg": _ERRORS[status][1]} if status in _ERRORS else {}
        with self._lock:
            self._failures += [(status, body)] * times

    def klines_requests(self) -> list[dict[str, str]]:
        return [q for m, p, q in self.requests if p == "/api/v3/klines"]

    # ---- endpoints -----------------------------------------------------------------------------
    def _exchange_info(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        return 200, {**self.exchange_info, "serverTime": int(time.time() * 1000)}

    def _klines(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        market_id = query.get("symbol", "")
        if market_id not in self._ids:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        m = _INTERVAL.match(query.get("interval", ""))
        if not m:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        step = int(m.group(1)) * _UNIT_MS[m.group(2)]
        limit = min(int(query.get("limit", 500)), self.max_limit)
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        now = int(time.time() * 1000)
        with self._lock:
            stored = self._candles.get(market_id)
        if stored is not None:
            keep = np.ones(len(stored), dtype=bool)
            if start is not None:
                keep &= stored[:, 0] >= start
            if end is not None:
                keep &= stored[:, 0] <= end
            rows = stored[keep]
        else:  # bars on a grid from 2020-01-01 up to the one still open now
            hi = (min(now, end) if end is not None else now) - _ORIGIN_MS
            last = hi // step
            first = 0 if start is None else max(0, -(-(start - _ORIGIN_MS) // step))
            if start is None:
                first = max(0, last - limit + 1)
            rows = _generated(market_id, first, min(last, first + limit - 1), step) if last >= first else np.empty((0, 6))
        rows = rows[:limit] if start is not None or stored is None else rows[-limit:]
        return 200, [
            [int(r[0]), f"{r[1]:.8f}", f"{r[2]:.8f}", f"{r[3]:.8f}", f"{r[4]:.8f}", f"{r[5]:.8f}", int(r[0]) + step - 1,
             f"{r[4] * r[5]:.8f}", 100, f"{r[5] / 2:.8f}", f"{r[4] * r[5] / 2:.8f}", "0"]
            for r in rows
        ]

    def _tickers(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        """24h tickers of every TRADING market (or of ``symbols``), priced from the generated candles' level."""
        now = int(time.time() * 1000)
        wanted = json.loads(query["symbols"]) if "symbols" in query else None
        out = []
        for m in self.exchange_info["symbols"]:
            mid = m["symbol"]
            if m.get("status") != "TRADING" or (wanted is not None and mid not in wanted):
                continue
            last = float(_generated(mid, 1, 1, 60_000)[0, 4])
            out.append({
                "symbol": mid, "priceChange": f"{last * 0.02:.8f}", "priceChangePercent": "2.000", "weightedAvgPrice": f"{last:.8f}",
                "prevClosePrice": f"{last / 1.02:.8f}", "lastPrice": f"{last:.8f}", "lastQty": "1.0", "bidPrice": f"{last * 0.9999:.8f}",
                "bidQty": "1.0", "askPrice": f"{last * 1.0001:.8f}", "askQty": "1.0", "openPrice": f"{last / 1.02:.8f}",
                "highPrice": f"{last * 1.03:.8f}", "lowPrice": f"{last * 0.97:.8f}", "volume": "1234.5", "quoteVolume": f"{last * 1234.5:.8f}",
                "openTime": now - 86_400_000, "closeTime": now, "firstId": 1, "lastId": 2, "count": 2,
            })  # fmt: skip
        return 200, out

    # ---- server --------------------------------------------------------------------------------
    def _handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, object]:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        with self._lock:
            self.requests.append((method, parts.path, query))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure
        handler = self._routes.get((method, parts.path))
        if handler is None:
            return 404, {"code": -1, "msg": f"fake binance has no {method} {parts.path}"}
        return handler(query, body)

    def __enter__(self) -> "FakeBinance":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = fake._handle(self.command, self.path, self.rfile.read(length) if length else b"")
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-binance", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
