"""A tiny real Binance spot REST server for tests: real ccxt clients talk HTTP to it on 127.0.0.1.

Public endpoints the way Binance serves them: ``ping``, ``time``, ``exchangeInfo``, ``klines`` (capped
at ``max_limit`` per request, so pagination is exercised) and the tickers (``ticker/24hr``,
``ticker/price``, ``ticker/bookTicker``).

Signed endpoints with Binance's real authentication — ``X-MBX-APIKEY`` checked, the HMAC-SHA256 of
the query string + body verified with the secret, ``timestamp`` checked against ``recvWindow`` — and
Binance's real error codes and bodies: ``account``, ``order`` (POST/GET/DELETE by ``orderId`` or
client order id), ``openOrders``, ``myTrades``, ``orderList/oco``. A small matching engine fills
MARKET orders at the book (bid/ask one basis point around ``last``, on the tick grid), rests LIMIT,
LIMIT_MAKER, STOP_LOSS(_LIMIT) and TAKE_PROFIT(_LIMIT) orders until ``move`` crosses them, locks and
moves balances, charges the commission in the asset received (as Binance does without BNB), and
expires the other leg of an OCO list when one fills. Client order ids are unique among *open*
orders only, as on Binance: a re-send of a filled order's id is accepted as a new order, which is
exactly why a client must ask before it re-sends.

    with FakeBinance() as fake:
        ex = ccxt.binance(fake.ccxt_config())          # public endpoints
        fake.add_market("XYZ/USDT", step="0.001", tick="0.01", min_notional="10", price=100.0)
        fake.set_balance("USDT", 10_000)
        broker = CcxtBroker("binance", api_key=fake.api_key, secret=fake.secret, urls=fake.ccxt_config()["urls"])
        fake.move("XYZ/USDT", last=94.0, low=93.5, high=99.0, open=99.0)   # resting orders it crosses fill
        fake.set_liquidity("XYZ/USDT", 0.4)          # at most 0.4 filled per order per match: partial fills
        fake.partial_fill(0.5)                       # the next market order fills half, the rest expires
        fake.fail_next(429)                          # the next request gets HTTP 429 (-1003), not processed
        fake.delay_next(2.0, path="/api/v3/order")   # processed after 2 s: the client has timed out
        fake.lose_next(503, method="POST")           # processed (order stored), then the answer is a 503
        fake.unknown_next(-1001, accepted=True)      # processed, then Binance's "execution status unknown" -1001

Nothing here is mocked: ccxt builds the real URLs, signs the real requests, parses the real JSON and
maps the real HTTP status codes and Binance error codes to its exceptions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import zlib
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SYMBOLS", "UNKNOWN_STATUS", "FakeBinance"]

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
# Binance's answers whose execution status is unknown (the request may or may not have taken effect);
# ccxt raises ``OperationFailed`` for each, whatever the HTTP status.
UNKNOWN_STATUS = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
}
_SIGNED = {
    "/api/v3/account",
    "/api/v3/order",
    "/api/v3/openOrders",
    "/api/v3/myTrades",
    "/api/v3/orderList/oco",
    "/api/v3/openOrderList",
}
_TRADING = {("POST", "/api/v3/order"), ("DELETE", "/api/v3/order"), ("POST", "/api/v3/orderList/oco")}
_OPEN = ("NEW", "PARTIALLY_FILLED")
_STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_ZERO = Decimal(0)

Handler = Callable[[dict[str, str], bytes], tuple[int, object]]


def _err(code: int, msg: str, status: int = 400) -> tuple[int, dict]:
    return status, {"code": code, "msg": msg}


def _s(x: Decimal | float | None) -> str:
    return f"{Decimal(str(x or 0)):.8f}"


def _market(symbol: str, step: str | None = None, tick: str | None = None, min_notional: str | None = None) -> dict:
    """One exchangeInfo entry in Binance's real shape (filters drive lot size/tick/min notional)."""
    base, quote = symbol.split("/")
    price = _BASE_PRICE.get(base, 1.0) if quote == "USDT" else 0.05
    tick = tick or f"{10 ** np.floor(np.log10(price) - 4):.8f}"
    step = step or f"{10 ** -min(8, max(0, int(5 - np.log10(max(price, 1e-8))))):.8f}"
    min_notional = min_notional or ("5.00000000" if quote == "USDT" else "0.00010000")
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
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100000.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": min_notional,
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


def _on_grid(x: Decimal, step: Decimal) -> bool:
    return step <= 0 or (x % step) == 0


class FakeBinance:
    """Context manager running the fake exchange in a background thread; see the module doc."""

    def __init__(
        self,
        symbols: tuple[str, ...] = DEFAULT_SYMBOLS,
        exchange_info: Path | str | None = None,
        max_limit: int = 500,
        api_key: str = "fake-binance-api-key-0123456789",
        secret: str = "fake-binance-secret-abcdefghijklmnop",
        fee_rate: float = 0.001,
    ):
        self.max_limit = max_limit
        if exchange_info is not None:
            self.exchange_info = json.loads(Path(exchange_info).read_text())
        else:
            self.exchange_info = {
                "timezone": "UTC",
                "serverTime": 0,
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
                ],
                "exchangeFilters": [],
                "symbols": [_market(s) for s in symbols],
            }
        self._ids = {m["symbol"] for m in self.exchange_info["symbols"]}
        self.api_key, self.secret = api_key, secret
        self.fee_rate = Decimal(str(fee_rate))
        self.can_trade = True  # False: the key reads but lacks trade permission (-2015 on trading endpoints)
        self.clock_offset_ms = 0  # the server's clock minus the real one (to provoke -1021)
        self._candles: dict[str, np.ndarray] = {}
        self._faults: list[dict] = []
        self._lock = threading.RLock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # the trading book
        self._balances: dict[str, list[Decimal]] = {}  # asset -> [free, locked]
        self._px: dict[str, dict[str, float]] = {}  # market id -> last, bid, ask, open, high, low, volume
        self._liquidity: dict[str, Decimal] = {}
        self._partial: list[Decimal] = []
        self._orders: dict[int, dict] = {}
        self._lists: dict[int, dict] = {}
        self._trades: list[dict] = []
        self._next_id = 1000
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v3/ping"): lambda q, b: (200, {}),
            ("GET", "/api/v3/time"): lambda q, b: (200, {"serverTime": self._now()}),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/klines"): self._klines,
            ("GET", "/api/v3/ticker/24hr"): self._tickers,
            ("GET", "/api/v3/ticker/price"): self._ticker_price,
            ("GET", "/api/v3/ticker/bookTicker"): self._book_ticker,
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order"): self._new_order,
            ("GET", "/api/v3/order"): self._get_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("POST", "/api/v3/orderList/oco"): self._new_oco,
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
        """Constructor config pointing every Binance API family of a ccxt client — live and testnet
        (``urls['test']``, what ``set_sandbox_mode(True)`` switches to) — at this server."""
        import ccxt

        urls = ccxt.binance().urls
        here = lambda d: {k: re.sub(r"^https?://[^/]+", self.url, v) for k, v in d.items()}
        return {
            "urls": {"api": here(urls["api"]), "test": here(urls["test"])},
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add or replace an endpoint: ``handler(query_params, body) -> (status, json_value)``."""
        self._routes[(method.upper(), path)] = handler

    def set_candles(self, symbol: str, df: pd.DataFrame) -> None:
        """Serve these bars for ``symbol`` (any interval): columns ts (datetime or ms) + OHLCV."""
        ts = df["ts"]
        ms = (
            ts.astype("int64").to_numpy()
            if pd.api.types.is_integer_dtype(ts)
            else (pd.to_datetime(ts, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy())
        )
        arr = np.column_stack([ms, df[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64")])
        with self._lock:
            self._candles[symbol.replace("/", "")] = arr[np.argsort(arr[:, 0], kind="stable")]

    def add_market(self, symbol: str, *, step: str, tick: str, min_notional: str, price: float | None = None,
                   max_qty: str = "90000000000.00000000", order_types: list[str] | None = None) -> None:  # fmt: skip
        """List one more spot market with these filters (before the client loads its markets)."""
        entry = _market(symbol, step=step, tick=tick, min_notional=min_notional)
        if order_types is not None:
            entry["orderTypes"] = list(order_types)
        next(f for f in entry["filters"] if f["filterType"] == "LOT_SIZE")["maxQty"] = max_qty
        with self._lock:
            self.exchange_info["symbols"] = [
                m for m in self.exchange_info["symbols"] if m["symbol"] != entry["symbol"]
            ] + [entry]
            self._ids.add(entry["symbol"])
        if price is not None:
            self.set_price(symbol, price)

    def set_filter(self, symbol: str, filter_type: str, **values: str) -> None:
        """Change a market's filter on the exchange side (e.g. after a client cached its markets)."""
        with self._lock:
            for f in self._info(self._mid(symbol))["filters"]:
                if f["filterType"] == filter_type:
                    f.update(values)

    def set_balance(self, asset: str, free: float, locked: float = 0.0) -> None:
        with self._lock:
            self._balances[asset] = [Decimal(str(free)), Decimal(str(locked))]

    def balance(self, asset: str) -> tuple[float, float]:
        """(free, locked) of one asset, as floats, for assertions."""
        with self._lock:
            free, locked = self._balances.get(asset, [_ZERO, _ZERO])
            return float(free), float(locked)

    def set_price(
        self, symbol: str, last: float, bid: float | None = None, ask: float | None = None, **bar: float
    ) -> None:
        """The book: ``last`` and a one-basis-point spread on the tick grid unless bid/ask are given."""
        mid = self._mid(symbol)
        tick = self._filter(mid, "PRICE_FILTER", "tickSize")
        d = Decimal(str(last))
        b = (
            Decimal(str(bid))
            if bid is not None
            else (d * Decimal("0.9999") / tick).to_integral_value(ROUND_FLOOR) * tick
        )
        a = (
            Decimal(str(ask))
            if ask is not None
            else (d * Decimal("1.0001") / tick).to_integral_value(ROUND_CEILING) * tick
        )
        with self._lock:
            prev = self._px.get(mid, {})
            self._px[mid] = {
                "last": float(last), "bid": float(b), "ask": float(a), "open": float(bar.get("open", prev.get("open", last))),
                "high": float(bar.get("high", last)), "low": float(bar.get("low", last)),
                "volume": float(bar.get("volume", prev.get("volume", 1234.5))),
            }  # fmt: skip

    def move(self, symbol: str, last: float, low: float | None = None, high: float | None = None, open: float | None = None,
             volume: float | None = None) -> None:  # fmt: skip
        """The market trades from ``open`` through ``low``..``high`` to ``last``: resting orders it crosses fill."""
        bar = {"low": low if low is not None else last, "high": high if high is not None else last}
        if open is not None:
            bar["open"] = open
        if volume is not None:
            bar["volume"] = volume
        with self._lock:
            opened = open if open is not None else self._price(self._mid(symbol))["last"]
            self.set_price(symbol, last, **bar)
            self._match(self._mid(symbol), low=bar["low"], high=bar["high"], opened=opened)

    def set_liquidity(self, symbol: str, quantity: float | None) -> None:
        """At most ``quantity`` fills per order per match on this symbol (None: unlimited)."""
        with self._lock:
            if quantity is None:
                self._liquidity.pop(self._mid(symbol), None)
            else:
                self._liquidity[self._mid(symbol)] = Decimal(str(quantity))

    def partial_fill(self, ratio: float, times: int = 1) -> None:
        """The next ``times`` marketable orders fill only ``ratio`` of their quantity; a market
        order's rest expires (Binance: EXPIRED), a limit order's rest rests."""
        with self._lock:
            self._partial += [Decimal(str(ratio))] * times

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: object | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``times`` requests (to ``method``/``path`` when given) answer ``status`` with a
        Binance error body, unprocessed."""
        if body is None:
            body = {"code": _ERRORS[status][0], "msg": _ERRORS[status][1]} if status in _ERRORS else {}
        self._fault(times, method, path, kind="fail", status=status, body=body)

    def delay_next(self, seconds: float, times: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``times`` matching requests are processed after ``seconds`` (a client with a
        shorter timeout gives up, yet the request took effect)."""
        self._fault(times, method, path, kind="delay", seconds=seconds)

    def lose_next(
        self, status: int = 503, times: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``times`` matching requests are processed (an order is stored and may fill) but
        the answer is an HTTP ``status`` with no body: "accepted, but the response was lost"."""
        self._fault(times, method, path, kind="lose", status=status)

    def unknown_next(
        self,
        code: int = -1001,
        *,
        accepted: bool,
        times: int = 1,
        status: int = 500,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``times`` matching requests answer HTTP ``status`` with Binance's "execution status
        unknown" error ``code`` (-1000, -1001 or -1006, see ``UNKNOWN_STATUS``): with ``accepted`` the
        request was processed first (an order is stored and may fill), without it nothing happened."""
        body = {"code": code, "msg": UNKNOWN_STATUS[code]}
        self._fault(times, method, path, kind="lose" if accepted else "fail", status=status, body=body)

    def clear_faults(self) -> int:
        """Drop the injected faults not yet consumed (an outage ends); returns how many there were."""
        with self._lock:
            n, self._faults = len(self._faults), []
        return n

    def faults_left(self) -> int:
        """Injected faults not yet consumed by a request (a test asserts its faults were hit)."""
        with self._lock:
            return len(self._faults)

    def _fault(self, times: int, method: str | None, path: str | None, **fault) -> None:
        with self._lock:
            self._faults += [dict(fault, method=method.upper() if method else None, path=path)] * times

    def klines_requests(self) -> list[dict[str, str]]:
        return [q for m, p, q in self.requests if p == "/api/v3/klines"]

    def orders(self, symbol: str | None = None) -> list[dict]:
        """Every order the exchange holds (Binance's JSON shape), oldest first: for assertions."""
        with self._lock:
            return [self._order_json(o) for o in sorted(self._orders.values(), key=lambda o: o["orderId"])
                    if symbol is None or o["symbol"] == self._mid(symbol)]  # fmt: skip

    # ---- helpers -------------------------------------------------------------------------------
    def _now(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    @staticmethod
    def _mid(symbol: str) -> str:
        return symbol.replace("/", "")

    def _info(self, mid: str) -> dict:
        return next(m for m in self.exchange_info["symbols"] if m["symbol"] == mid)

    def _filter(self, mid: str, kind: str, key: str) -> Decimal:
        for f in self._info(mid)["filters"]:
            if f["filterType"] == kind:
                return Decimal(str(f[key]))
        return _ZERO

    def _price(self, mid: str) -> dict[str, float]:
        px = self._px.get(mid)
        if px is None:
            last = float(_generated(mid, 1, 1, 60_000)[0, 4])
            px = {"last": last, "bid": last * 0.9999, "ask": last * 1.0001, "open": last / 1.02, "high": last * 1.03,
                  "low": last * 0.97, "volume": 1234.5}  # fmt: skip
        return px

    def _bal(self, asset: str) -> list[Decimal]:
        return self._balances.setdefault(asset, [_ZERO, _ZERO])

    # ---- public endpoints ----------------------------------------------------------------------
    def _exchange_info(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        return 200, {**self.exchange_info, "serverTime": self._now()}

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
            rows = (
                _generated(market_id, first, min(last, first + limit - 1), step) if last >= first else np.empty((0, 6))
            )
        rows = rows[:limit] if start is not None or stored is None else rows[-limit:]
        return 200, [
            [
                int(r[0]),
                f"{r[1]:.8f}",
                f"{r[2]:.8f}",
                f"{r[3]:.8f}",
                f"{r[4]:.8f}",
                f"{r[5]:.8f}",
                int(r[0]) + step - 1,
                f"{r[4] * r[5]:.8f}",
                100,
                f"{r[5] / 2:.8f}",
                f"{r[4] * r[5] / 2:.8f}",
                "0",
            ]
            for r in rows
        ]

    def _wanted(self, query: dict[str, str]) -> tuple[list[str], bool] | tuple[int, dict]:
        """Market ids a ticker request asks for (``symbol`` or ``symbols``, else all TRADING ones)."""
        if "symbol" in query:
            if query["symbol"] not in self._ids:
                return _err(-1121, "Invalid symbol.")
            return [query["symbol"]], True
        wanted = json.loads(query["symbols"]) if "symbols" in query else None
        if wanted is not None and any(w not in self._ids for w in wanted):
            return _err(-1121, "Invalid symbol.")
        ids = [
            m["symbol"]
            for m in self.exchange_info["symbols"]
            if m.get("status") == "TRADING" and (wanted is None or m["symbol"] in wanted)
        ]
        return ids, False

    def _tickers(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        """24h tickers of every TRADING market (or of ``symbol``/``symbols``) from the book."""
        now = self._now()
        ids = self._wanted(query)
        if isinstance(ids[0], int):
            return ids
        out = []
        with self._lock:
            for mid in ids[0]:
                p = self._price(mid)
                last, opened = p["last"], p["open"]
                out.append({
                    "symbol": mid, "priceChange": f"{last - opened:.8f}", "priceChangePercent": f"{(last / opened - 1) * 100:.3f}",
                    "weightedAvgPrice": f"{last:.8f}", "prevClosePrice": f"{opened:.8f}", "lastPrice": f"{last:.8f}", "lastQty": "1.0",
                    "bidPrice": f"{p['bid']:.8f}", "bidQty": "1.0", "askPrice": f"{p['ask']:.8f}", "askQty": "1.0", "openPrice": f"{opened:.8f}",
                    "highPrice": f"{p['high']:.8f}", "lowPrice": f"{p['low']:.8f}", "volume": f"{p['volume']:.8f}",
                    "quoteVolume": f"{last * p['volume']:.8f}", "openTime": now - 86_400_000, "closeTime": now, "firstId": 1, "lastId": 2, "count": 2,
                })  # fmt: skip
        return 200, (out[0] if ids[1] else out)

    def _ticker_price(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        ids = self._wanted(query)
        if isinstance(ids[0], int):
            return ids
        with self._lock:
            out = [{"symbol": mid, "price": f"{self._price(mid)['last']:.8f}"} for mid in ids[0]]
        return 200, (out[0] if ids[1] else out)

    def _book_ticker(self, query: dict[str, str], body: bytes) -> tuple[int, object]:
        ids = self._wanted(query)
        if isinstance(ids[0], int):
            return ids
        with self._lock:
            out = [{"symbol": mid, "bidPrice": f"{p['bid']:.8f}", "bidQty": "10.00000000", "askPrice": f"{p['ask']:.8f}", "askQty": "10.00000000"}
                   for mid in ids[0] for p in [self._price(mid)]]  # fmt: skip
        return 200, (out[0] if ids[1] else out)

    # ---- signed endpoints ----------------------------------------------------------------------
    def _authenticate(
        self, method: str, path: str, raw_query: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, object] | None:
        """Binance's checks, in its order: API key, signature (HMAC-SHA256 of query string + body),
        timestamp within recvWindow, trade permission."""
        key = headers.get("x-mbx-apikey")
        if not key:
            return _err(-2014, "API-key format invalid.", 401)
        if key != self.api_key:
            return _err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        total = raw_query + body.decode()
        payload, sep, signature = total.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(signature, expected):
            return _err(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload))
        try:
            ts, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            return _err(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if window > 60_000:
            return _err(-1131, "recvWindow must be less than 60000")
        now = self._now()
        if ts > now + 1000 or now - ts > window:
            return _err(-1021, "Timestamp for this request is outside of the recvWindow.")
        if (method, path) in _TRADING and not self.can_trade:
            return _err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return None

    def _account(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        rate = _s(self.fee_rate)
        with self._lock:
            balances = [{"asset": a, "free": _s(f), "locked": _s(lk)} for a, (f, lk) in sorted(self._balances.items())]
        return 200, {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": self.can_trade, "canWithdraw": False, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self._now(), "accountType": "SPOT",
            "balances": balances, "permissions": ["SPOT"], "uid": 354937868,
        }  # fmt: skip

    def _order_json(self, o: dict, full: bool = False) -> dict:
        out = {
            "symbol": o["symbol"], "orderId": o["orderId"], "orderListId": o["orderListId"], "clientOrderId": o["clientOrderId"],
            "price": _s(o["price"]), "origQty": _s(o["origQty"]), "executedQty": _s(o["executedQty"]),
            "cummulativeQuoteQty": _s(o["cummulativeQuoteQty"]), "status": o["status"], "timeInForce": o["timeInForce"],
            "type": o["type"], "side": o["side"], "stopPrice": _s(o["stopPrice"]), "icebergQty": "0.00000000", "time": o["time"],
            "updateTime": o["updateTime"], "isWorking": o["isWorking"], "workingTime": o["time"] if o["isWorking"] else -1,
            "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "EXPIRE_MAKER",
        }  # fmt: skip
        if full:
            out = {
                k: v
                for k, v in out.items()
                if k not in ("time", "updateTime", "isWorking", "icebergQty", "origQuoteOrderQty")
            }
            out["transactTime"] = o["updateTime"]
            out["fills"] = [{"price": t["price"], "qty": t["qty"], "commission": t["commission"], "commissionAsset": t["commissionAsset"],
                             "tradeId": t["id"]} for t in self._trades if t["orderId"] == o["orderId"]]  # fmt: skip
        return out

    def _find(self, q: dict[str, str]) -> dict | None:
        """An order by ``orderId`` or ``origClientOrderId`` (the newest with that id: ids repeat once final)."""
        mid = q.get("symbol")
        if "orderId" in q:
            o = self._orders.get(int(q["orderId"]))
            return o if o is not None and o["symbol"] == mid else None
        cid = q.get("origClientOrderId")
        found = [o for o in self._orders.values() if o["clientOrderId"] == cid and o["symbol"] == mid]
        return max(found, key=lambda o: o["orderId"]) if found else None

    def _validate(
        self, mid: str, side: str, kind: str, qty: Decimal, price: Decimal | None, stop: Decimal | None
    ) -> tuple[int, dict] | None:
        """Filters, then funds, then "would trigger immediately": Binance's order of checks."""
        if mid not in self._ids:
            return _err(-1121, "Invalid symbol.")
        if kind not in self._info(mid)["orderTypes"]:
            return _err(-1116, "Invalid orderType.")
        tick = self._filter(mid, "PRICE_FILTER", "tickSize")
        for px in (price, stop):
            if px is not None and (px < self._filter(mid, "PRICE_FILTER", "minPrice") or not _on_grid(px, tick)):
                return _err(-1013, "Filter failure: PRICE_FILTER")
        step = self._filter(mid, "LOT_SIZE", "stepSize")
        if (
            qty < self._filter(mid, "LOT_SIZE", "minQty")
            or qty > self._filter(mid, "LOT_SIZE", "maxQty")
            or not _on_grid(qty, step)
        ):
            return _err(-1013, "Filter failure: LOT_SIZE")
        book = self._price(mid)
        ref = price if price is not None else Decimal(str(book["ask"] if side == "BUY" else book["bid"]))
        if qty * ref < self._filter(mid, "NOTIONAL", "minNotional"):
            return _err(-1013, "Filter failure: NOTIONAL")
        info = self._info(mid)
        if side == "BUY":
            if qty * ref > self._bal(info["quoteAsset"])[0]:
                return _err(-2010, "Account has insufficient balance for requested action.")
        elif qty > self._bal(info["baseAsset"])[0]:
            return _err(-2010, "Account has insufficient balance for requested action.")
        last = Decimal(str(book["last"]))
        if kind in ("STOP_LOSS", "STOP_LOSS_LIMIT") and (stop >= last if side == "SELL" else stop <= last):
            return _err(-2010, "Order would trigger immediately.")
        if kind in ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT") and (stop <= last if side == "SELL" else stop >= last):
            return _err(-2010, "Order would trigger immediately.")
        if kind == "LIMIT_MAKER" and (
            price <= Decimal(str(book["bid"])) if side == "SELL" else price >= Decimal(str(book["ask"]))
        ):
            return _err(-2010, "Order would immediately match and take.")
        return None

    def _store(self, mid: str, side: str, kind: str, qty: Decimal, price: Decimal | None, stop: Decimal | None, cid: str,
               list_id: int = -1, reserve: bool = True) -> dict:  # fmt: skip
        now = self._now()
        self._next_id += 1
        o = {
            "symbol": mid, "orderId": self._next_id, "orderListId": list_id, "clientOrderId": cid, "price": price or _ZERO,
            "origQty": qty, "executedQty": _ZERO, "cummulativeQuoteQty": _ZERO, "status": "NEW",
            "timeInForce": "GTC" if kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") else None, "type": kind, "side": side,
            "stopPrice": stop or _ZERO, "time": now, "updateTime": now, "isWorking": kind not in _STOPS, "reserved": _ZERO,
            "reserve_asset": None,
        }  # fmt: skip
        if o["timeInForce"] is None:
            o["timeInForce"] = "GTC"
        self._orders[o["orderId"]] = o
        if reserve and kind != "MARKET":
            info = self._info(mid)
            asset, amount = (info["quoteAsset"], qty * price) if side == "BUY" else (info["baseAsset"], qty)
            bal = self._bal(asset)
            bal[0] -= amount
            bal[1] += amount
            o["reserved"], o["reserve_asset"] = amount, asset
        return o

    def _release(self, o: dict, amount: Decimal | None = None) -> None:
        """Give back ``amount`` (default: all) of what an order reserved."""
        amount = o["reserved"] if amount is None else min(amount, o["reserved"])
        if amount > 0:
            bal = self._bal(o["reserve_asset"])
            bal[1] -= amount
            bal[0] += amount
            o["reserved"] -= amount

    def _end(self, o: dict, status: str) -> None:
        o["status"], o["updateTime"] = status, self._now()
        self._release(o)

    def _fill(self, o: dict, price: Decimal, want: Decimal | None = None) -> Decimal:
        """Fill up to ``want`` (default: the rest) at ``price``, capped by the symbol's liquidity."""
        info = self._info(o["symbol"])
        rest = o["origQty"] - o["executedQty"]
        qty = min(rest, want if want is not None else rest)
        if o["symbol"] in self._liquidity:
            qty = min(qty, self._liquidity[o["symbol"]])
        step = self._filter(o["symbol"], "LOT_SIZE", "stepSize")
        if step > 0:
            qty = (qty / step).to_integral_value(ROUND_FLOOR) * step
        if qty <= 0:
            return _ZERO
        notional = qty * price
        if o["orderListId"] != -1:  # one leg of an OCO trades: the other expires (and frees the pair's reservation)
            for sib in self._orders.values():
                if sib["orderListId"] == o["orderListId"] and sib is not o and sib["status"] in _OPEN:
                    self._end(sib, "EXPIRED")
            self._lists[o["orderListId"]]["listOrderStatus"] = "ALL_DONE"
        base, quote = self._bal(info["baseAsset"]), self._bal(info["quoteAsset"])
        if o["reserved"] > 0:  # what the fill uses of the reservation goes back to free first
            self._release(o, qty * o["price"] if o["side"] == "BUY" else qty)
        if o["side"] == "BUY":
            fee, fee_asset = qty * self.fee_rate, info["baseAsset"]
            quote[0] -= notional
            base[0] += qty - fee
        else:
            fee, fee_asset = notional * self.fee_rate, info["quoteAsset"]
            base[0] -= qty
            quote[0] += notional - fee
        o["executedQty"] += qty
        o["cummulativeQuoteQty"] += notional
        o["status"] = "FILLED" if o["executedQty"] >= o["origQty"] else "PARTIALLY_FILLED"
        o["updateTime"] = self._now()
        o["isWorking"] = True
        self._trades.append({
            "symbol": o["symbol"], "id": len(self._trades) + 5000, "orderId": o["orderId"], "orderListId": o["orderListId"],
            "price": _s(price), "qty": _s(qty), "quoteQty": _s(notional), "commission": _s(fee), "commissionAsset": fee_asset,
            "time": self._now(), "isBuyer": o["side"] == "BUY", "isMaker": o["type"] != "MARKET", "isBestMatch": True,
        })  # fmt: skip
        return qty

    def _marketable(self, o: dict) -> None:
        """At placement: a market order takes the book (its unfillable rest expires); a limit that
        crosses the book fills at the book."""
        book = self._price(o["symbol"])
        px = Decimal(str(book["ask"] if o["side"] == "BUY" else book["bid"]))
        ratio = self._partial.pop(0) if self._partial and o["type"] in ("MARKET", "LIMIT") else None
        want = o["origQty"] * ratio if ratio is not None else None
        if o["type"] == "MARKET":
            self._fill(o, px, want)
            if o["status"] != "FILLED":
                self._end(o, "EXPIRED")
        elif o["type"] == "LIMIT" and (o["price"] >= px if o["side"] == "BUY" else o["price"] <= px):
            self._fill(o, px, want)

    def _match(self, mid: str, low: float, high: float, opened: float) -> None:
        """Resting orders a bar crosses: stops first (a wide bar touching both exits hits the stop)."""
        lo, hi, op = Decimal(str(low)), Decimal(str(high)), Decimal(str(opened))
        rank = {
            "STOP_LOSS": 0,
            "STOP_LOSS_LIMIT": 0,
            "LIMIT": 1,
            "TAKE_PROFIT": 2,
            "TAKE_PROFIT_LIMIT": 2,
            "LIMIT_MAKER": 2,
        }
        for o in sorted(
            (o for o in self._orders.values() if o["symbol"] == mid and o["status"] in _OPEN),
            key=lambda o: (rank[o["type"]], o["orderId"]),
        ):
            if o["status"] not in _OPEN:  # an OCO sibling filled earlier in this bar
                continue
            sell, kind = o["side"] == "SELL", o["type"]
            start = op
            if kind in _STOPS and not o["isWorking"]:
                stop = o["stopPrice"]
                loss = kind.startswith("STOP_LOSS")
                hit = (lo <= stop if sell else hi >= stop) if loss else (hi >= stop if sell else lo <= stop)
                if not hit:
                    continue
                o["isWorking"] = True
                start = (
                    (min(stop, op) if sell else max(stop, op)) if loss else (max(stop, op) if sell else min(stop, op))
                )
                if kind in ("STOP_LOSS", "TAKE_PROFIT"):  # a market order once triggered
                    self._fill(o, start)
                    if o["status"] != "FILLED":
                        self._end(o, "EXPIRED")
                    continue
            limit = o["price"]
            if sell and hi >= limit:
                self._fill(o, max(limit, start))
            elif not sell and lo <= limit:
                self._fill(o, min(limit, start))

    def _new_order(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        q = {**q, **dict(parse_qsl(body.decode()))}
        mid, side, kind = q.get("symbol", ""), q.get("side", ""), q.get("type", "")
        if side not in ("BUY", "SELL"):
            return _err(-1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if "quantity" not in q:
            return _err(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        qty = Decimal(q["quantity"])
        price = Decimal(q["price"]) if "price" in q else None
        stop = Decimal(q["stopPrice"]) if "stopPrice" in q else None
        if kind in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and price is None:
            return _err(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if kind in _STOPS and stop is None:
            return _err(-1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
        cid = q.get("newClientOrderId") or f"fake{self._next_id + 1}"
        with self._lock:
            if any(o["clientOrderId"] == cid and o["status"] in _OPEN for o in self._orders.values()):
                return _err(-2010, "Duplicate order sent.")
            bad = self._validate(mid, side, kind, qty, price, stop)
            if bad is not None:
                return bad
            o = self._store(mid, side, kind, qty, price, stop, cid)
            self._marketable(o)
            answer = self._order_json(o, full=q.get("newOrderRespType", "FULL") == "FULL")
        return 200, answer

    def _get_order(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        with self._lock:
            o = self._find(q)
            return (200, self._order_json(o)) if o is not None else _err(-2013, "Order does not exist.")

    def _cancel_order(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        """Cancel; a leg of an OCO list cancels the whole list (as Binance does)."""
        with self._lock:
            o = self._find(q)
            if o is None or o["status"] not in _OPEN:
                return _err(-2011, "Unknown order sent.")
            for x in [o] + [
                s
                for s in self._orders.values()
                if o["orderListId"] != -1 and s["orderListId"] == o["orderListId"] and s is not o
            ]:
                if x["status"] in _OPEN:
                    self._end(x, "CANCELED")
            if o["orderListId"] != -1:
                self._lists[o["orderListId"]]["listOrderStatus"] = "ALL_DONE"
            out = self._order_json(o)
        out["origClientOrderId"] = out["clientOrderId"]
        out["clientOrderId"] = q.get("newClientOrderId") or f"cancel{o['orderId']}"
        return 200, out

    def _open_orders(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        mid = q.get("symbol")
        if mid is not None and mid not in self._ids:
            return _err(-1121, "Invalid symbol.")
        with self._lock:
            return 200, [self._order_json(o) for o in sorted(self._orders.values(), key=lambda o: o["orderId"])
                         if o["status"] in _OPEN and (mid is None or o["symbol"] == mid)]  # fmt: skip

    def _my_trades(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        mid = q.get("symbol")
        if mid is None:
            return _err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if mid not in self._ids:
            return _err(-1121, "Invalid symbol.")
        start, end = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        with self._lock:
            rows = [t for t in self._trades if t["symbol"] == mid and start <= t["time"] <= end
                    and ("orderId" not in q or t["orderId"] == int(q["orderId"])) and t["id"] >= int(q.get("fromId", 0))]  # fmt: skip
        return 200, rows[: min(int(q.get("limit", 500)), 1000)]

    def _new_oco(self, q: dict[str, str], body: bytes) -> tuple[int, object]:
        """``/api/v3/orderList/oco``: an above and a below leg sharing one quantity and one reservation."""
        q = {**q, **dict(parse_qsl(body.decode()))}
        mid, side = q.get("symbol", ""), q.get("side", "")
        try:
            qty = Decimal(q["quantity"])
            legs = {}
            for pos in ("above", "below"):
                kind = q[f"{pos}Type"]
                price = Decimal(q[f"{pos}Price"]) if f"{pos}Price" in q else None
                stop = Decimal(q[f"{pos}StopPrice"]) if f"{pos}StopPrice" in q else None
                legs[pos] = (kind, price, stop, q.get(f"{pos}ClientOrderId") or f"fake{pos}{self._next_id}")
        except (KeyError, ArithmeticError):
            return _err(-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
        with self._lock:
            for *_, cid in legs.values():
                if any(o["clientOrderId"] == cid and o["status"] in _OPEN for o in self._orders.values()):
                    return _err(-2010, "Duplicate order sent.")
            # one reservation for the pair: validate the funds once, against the costlier leg
            for kind, price, stop, _cid in legs.values():
                bad = self._validate(mid, side, kind, qty, price, stop)
                if bad is not None:
                    return bad
            last = Decimal(str(self._price(mid)["last"]))
            above, below = legs["above"], legs["below"]
            above_px = above[1] if above[1] is not None else above[2]
            below_px = below[2] if below[2] is not None else below[1]
            if not (above_px > last > below_px):
                return _err(-2010, "The relationship of the prices for the orders is not correct.")
            list_id = len(self._lists) + 1
            made = {pos: self._store(mid, side, k, qty, p, s, c, list_id=list_id, reserve=(pos == "below" if side == "SELL" else pos == "above"))
                    for pos, (k, p, s, c) in legs.items()}  # fmt: skip
            self._lists[list_id] = {"listOrderStatus": "EXECUTING"}
            now = self._now()
            reports = [self._order_json(o) for o in made.values()]
        return 200, {
            "orderListId": list_id, "contingencyType": "OCO", "listStatusType": "EXEC_STARTED", "listOrderStatus": "EXECUTING",
            "listClientOrderId": q.get("listClientOrderId") or f"list{list_id}", "transactionTime": now, "symbol": mid,
            "orders": [{"symbol": mid, "orderId": o["orderId"], "clientOrderId": o["clientOrderId"]} for o in made.values()],
            "orderReports": reports,
        }  # fmt: skip

    # ---- server --------------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> dict | None:
        for i, f in enumerate(self._faults):
            if (f["method"] in (None, method)) and (f["path"] in (None, path)):
                return self._faults.pop(i)
        return None

    def _handle(
        self, method: str, raw_path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, object]:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        with self._lock:
            self.requests.append((method, parts.path, query))
            fault = self._take_fault(method, parts.path)
        if fault is not None and fault["kind"] == "fail":
            return fault["status"], fault["body"]
        if fault is not None and fault["kind"] == "delay":
            time.sleep(fault["seconds"])
        handler = self._routes.get((method, parts.path))
        if handler is None:
            return 404, {"code": -1, "msg": f"fake binance has no {method} {parts.path}"}
        if parts.path in _SIGNED:
            denied = self._authenticate(
                method, parts.path, parts.query, body, {k.lower(): v for k, v in (headers or {}).items()}
            )
            if denied is not None:
                return denied
        answer = handler(query, body)
        if fault is not None and fault["kind"] == "lose":
            return fault["status"], fault.get("body", b"")
        return answer

    def __enter__(self) -> FakeBinance:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = fake._handle(self.command, self.path, body, dict(self.headers.items()))
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-binance", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
