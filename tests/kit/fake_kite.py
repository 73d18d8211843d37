"""A fake Kite Connect REST API for the real ``kiteconnect.KiteConnect`` client (``root=fake.url``).

Market data: ``/instruments`` (CSV, all or per exchange), ``/instruments/historical/<token>/<interval>``
(candles, refusing ranges longer than Kite's per-interval limit like the real API) and ``/quote`` (at
most 500 ``i``).

Trading, in Kite's shapes: the login exchange ``/session/token`` (checksum = sha256(api_key +
request_token + api_secret) verified), ``/user/profile``, ``/user/margins``, ``/orders`` (book),
``/orders/{variety}`` (place), ``/orders/{variety}/{id}`` (modify, cancel), ``/orders/{id}`` (history),
``/orders/{id}/trades``, ``/trades``, ``/portfolio/positions``, ``/portfolio/holdings`` and GTT
triggers ``/gtt/triggers[/{id}]``. Every call but the token exchange needs the header
``Authorization: token <api_key>:<access_token>`` (403 ``TokenException`` otherwise, and after
``expire_sessions()``, the 06:00 IST logout). Without ``api_key`` the fake accepts any well-formed
header (the market-data tests); with it, only its own key and the tokens it issued.

The matching engine fills against a settable price (``set_price``/``move``): MARKET orders at once,
LIMIT orders when marketable, SL/SL-M when the bar trades through the trigger, GTTs when a bar
crosses a trigger (placing their LIMIT leg as a regular order). ``depth[key]`` caps what fills per
match (partial fills). The RMS rejects like Kite does — after accepting the order: a REJECTED order
with ``status_message`` "Insufficient funds. …" or a CNC sell beyond the holdings. Input errors are
HTTP 400 ``InputException`` bodies; ``fail_next(429)`` gives a ``NetworkException``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
from pathlib import Path
from urllib.parse import parse_qs

import pandas as pd

from tests.kit.book import PriceBook
from tests.kit.http_fake import FakeHttp

__all__ = ["TRADING_INSTRUMENTS", "FakeKite"]

_MAX_DAYS = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}
_IST = "Asia/Kolkata"
_OPEN = ("OPEN", "TRIGGER PENDING")
TRADING_INSTRUMENTS = (
    b"instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n"
    b"408065,1594,INFY,INFOSYS,0,,0,0.05,1,EQ,NSE,NSE\n"
    b"128053508,500209,INFY,INFOSYS,0,,0,0.05,1,EQ,BSE,BSE\n"
    b"738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE\n"
    b"2953217,11536,TCS,TATA CONSULTANCY SERV LT,0,,0,0.05,1,EQ,NSE,NSE\n"
    b"13368834,52222,NIFTY24MAYFUT,NIFTY,0,2024-05-30,0,0.05,25,FUT,NFO-FUT,NFO\n"
)


def _now() -> str:
    return pd.Timestamp.now(tz=_IST).strftime("%Y-%m-%d %H:%M:%S")


def _ok(data) -> tuple[int, dict]:
    return 200, {"status": "success", "data": data}


def _err(status: int, kind: str, message: str) -> tuple[int, dict]:
    return status, {"status": "error", "message": message, "data": None, "error_type": kind}


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode()).items()}


class FakeKite(PriceBook, FakeHttp):
    def __init__(
        self,
        instruments_csv: Path | str | bytes | None = None,
        delay_s: float = 0.0,
        *,
        api_key: str | None = None,
        api_secret: str = "kite-secret",
        access_token: str | None = None,
        cash: float = 1_000_000.0,
    ):
        super().__init__(delay_s)
        if isinstance(instruments_csv, (str, Path)):
            instruments_csv = Path(instruments_csv).read_bytes()
        self.instruments_csv = instruments_csv or (
            b"instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n"
            b"738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.05,1,EQ,NSE,NSE\n"
            b"2953217,11536,TCS,TATA CONSULTANCY SERV LT,0,,0,0.05,1,EQ,NSE,NSE\n"
        )
        self._instruments = pd.read_csv(io.BytesIO(self.instruments_csv), dtype=str, keep_default_na=False)
        self.api_key, self.api_secret = api_key, api_secret
        self.sessions: set[str] = {access_token} if access_token else set()
        self.request_tokens: set[str] = set()
        self.candles: dict[int, pd.DataFrame] = {}  # token -> ts (IST-aware), open..volume
        # the venue's book
        self.cash = float(cash)
        self.spent = 0.0  # cash used by today's fills (buys − sells)
        self.prices: dict[str, dict] = {}
        self.depth: dict[str, float] = {}  # key -> most quantity that fills per match (partial fills)
        self.orders: dict[str, dict] = {}
        self.history: dict[str, list[dict]] = {}
        self.trades: list[dict] = []
        self.holdings: dict[str, float] = {}  # settled CNC holdings from earlier days
        self.net: dict[tuple[str, str], dict] = {}  # (key, product) -> today's buys/sells
        self.gtts: dict[int, dict] = {}
        self._ids = itertools.count(1)
        self._engine = threading.RLock()
        self._used: dict[str, float] = {}
        r = self.route
        r("GET", r"/instruments", lambda m, q, b: (200, self.instruments_csv, "text/csv"))
        r("GET", r"/instruments/(\w+)", self._instruments_of)
        r("GET", r"/instruments/historical/(\d+)/(\w+)", self._historical)
        r("GET", r"/quote", self._quote)
        r("POST", r"/session/token", self._session)
        r("GET", r"/user/profile", self._profile)
        r("GET", r"/user/margins", lambda m, q, b: _ok(self.margins()))
        r("GET", r"/orders", lambda m, q, b: _ok([dict(o) for o in self.orders.values()]))
        r("POST", r"/orders/(\w+)", self._place)
        r("GET", r"/orders/(\w+)", self._order_history)
        r("GET", r"/orders/(\w+)/trades", lambda m, q, b: _ok([t for t in self.trades if t["order_id"] == m.group(1)]))
        r("PUT", r"/orders/(\w+)/(\w+)", self._modify)
        r("DELETE", r"/orders/(\w+)/(\w+)", self._cancel)
        r("GET", r"/trades", lambda m, q, b: _ok(list(self.trades)))
        r("GET", r"/portfolio/positions", self._positions)
        r("GET", r"/portfolio/holdings", self._holdings)
        r("GET", r"/gtt/triggers", lambda m, q, b: _ok([dict(g) for g in self.gtts.values()]))
        r("POST", r"/gtt/triggers", self._gtt_place)
        r("GET", r"/gtt/triggers/(\d+)", self._gtt_get)
        r("PUT", r"/gtt/triggers/(\d+)", self._gtt_modify)
        r("DELETE", r"/gtt/triggers/(\d+)", self._gtt_delete)

    # ---- test controls ----------------------------------------------------------------------------
    def issue_request_token(self) -> str:
        """What Kite's login page appends to the redirect URL after the user logs in."""
        tok = f"rt{next(self._ids):06d}"
        self.request_tokens.add(tok)
        return tok

    def expire_sessions(self) -> None:
        """06:00 IST: every access token stops working."""
        self.sessions.clear()

    def _fill_on_bar(self, key: str, bar: dict) -> None:
        """Resting orders and GTTs the bar reaches fill (stops before limits)."""
        rank = {"SL-M": 0, "SL": 0, "MARKET": 1, "LIMIT": 2}
        for o in sorted(
            (o for o in self.orders.values() if self._key(o) == key and o["status"] in _OPEN),
            key=lambda o: rank[o["order_type"]],
        ):
            self._match(o, bar)
        for g in [g for g in self.gtts.values() if g["status"] == "active" and self._gkey(g) == key]:
            self._gtt_check(g, bar)

    def set_holding(self, key: str, quantity: float) -> None:
        self.holdings[key] = float(quantity)

    def error_body(self, status: int) -> object:
        if status == 403:
            return {
                "status": "error",
                "message": "Incorrect `api_key` or `access_token`.",
                "data": None,
                "error_type": "TokenException",
            }
        if status == 429:
            return {"status": "error", "message": "Too many requests", "data": None, "error_type": "NetworkException"}
        kind = "NetworkException" if status in (502, 503, 504) else "GeneralException"
        return {
            "status": "error",
            "message": f"HTTP {status}: the OMS did not answer",
            "data": None,
            "error_type": kind,
        }

    # ---- auth ---------------------------------------------------------------------------------------
    def authorize(self, method, path, headers):
        if path == "/session/token":
            return None
        auth = headers.get("Authorization", "") if headers else ""
        kind, _, cred = auth.partition(" ")
        key, _, token = cred.partition(":")
        if kind != "token" or not key or not token:
            return _err(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if self.api_key is not None and (key != self.api_key or token not in self.sessions):
            return _err(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        return None

    def _session(self, m, q, b):
        f = _form(b)
        key, rt, checksum = f.get("api_key", ""), f.get("request_token", ""), f.get("checksum", "")
        if self.api_key is not None and key != self.api_key:
            return _err(403, "TokenException", "Invalid `api_key`.")
        want = hashlib.sha256((key + rt + self.api_secret).encode()).hexdigest()
        if rt not in self.request_tokens or checksum != want:
            return _err(403, "TokenException", "Token is invalid or has expired.")
        self.request_tokens.discard(rt)
        token = hashlib.sha1(f"access|{rt}".encode()).hexdigest()[:32]
        self.sessions.add(token)
        return _ok({**self._user(), "api_key": key, "access_token": token, "public_token": token[:8], "refresh_token": "",
                    "enctoken": "x", "login_time": _now(), "meta": {"demat_consent": "consent"}})  # fmt: skip

    @staticmethod
    def _user() -> dict:
        return {"user_id": "AB1234", "user_type": "individual", "email": "quant@example.com", "user_name": "Test Quant",
                "user_shortname": "Quant", "broker": "ZERODHA", "exchanges": ["NSE", "BSE", "NFO"], "products": ["CNC", "MIS", "NRML"],
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"], "avatar_url": None}  # fmt: skip

    def _profile(self, m, q, b):
        return _ok({**self._user(), "meta": {"demat_consent": "consent"}})

    # ---- market data --------------------------------------------------------------------------------
    def _instruments_of(self, m, q, b):
        rows = self._instruments[self._instruments["exchange"] == m.group(1)]
        return 200, rows.to_csv(index=False).encode(), "text/csv"

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
        local = df["ts"].dt.tz_convert(_IST).dt.tz_localize(None)
        sel = df[(local >= lo) & (local <= hi)]
        stamps = sel["ts"].dt.tz_convert(_IST).dt.strftime("%Y-%m-%dT%H:%M:%S+0530")
        rows = [
            [s, *vals] for s, vals in zip(stamps, sel[["open", "high", "low", "close", "volume"]].to_numpy().tolist())
        ]
        return 200, {"status": "success", "data": {"candles": rows}}

    def _quote(self, m, q, b):
        keys = q.get("i", [])
        if len(keys) > 500:
            return 400, {"status": "error", "message": "Too many instruments", "error_type": "InputException"}
        now = _now()
        data = {}
        for i, k in enumerate(keys):
            p = self.prices.get(k)
            if p is not None:
                price, ohlc, vol = (
                    p["last"],
                    {"open": p["open"], "high": p["high"], "low": p["low"], "close": p["close"]},
                    p["volume"],
                )
            else:
                price = 100.0 + (hash(k) % 1000) / 10.0
                ohlc, vol = {"open": price, "high": price * 1.01, "low": price * 0.99, "close": price / 1.02}, 1000 + i
            data[k] = {
                "instrument_token": i, "timestamp": now, "last_trade_time": now, "last_price": price, "volume": vol, "ohlc": ohlc,
                "net_change": 0, "depth": {"buy": [{"price": round(price - 0.05, 2), "quantity": 10, "orders": 1}], "sell": [{"price": round(price + 0.05, 2), "quantity": 10, "orders": 1}]},
            }  # fmt: skip
        return 200, {"status": "success", "data": data}

    # ---- orders -------------------------------------------------------------------------------------
    def _instrument(self, exchange: str, symbol: str) -> dict | None:
        t = self._instruments
        rows = t[(t["exchange"] == exchange) & (t["tradingsymbol"] == symbol)]
        return None if rows.empty else rows.iloc[0].to_dict()

    @staticmethod
    def _key(o: dict) -> str:
        return f"{o['exchange']}:{o['tradingsymbol']}"

    def _gkey(self, g: dict) -> str:
        return f"{g['condition']['exchange']}:{g['condition']['tradingsymbol']}"

    def margins(self) -> dict:
        blocked = sum(
            self._block(o) for o in self.orders.values() if o["status"] in _OPEN and o["transaction_type"] == "BUY"
        )
        net = self.cash - self.spent - blocked
        eq = {
            "enabled": True, "net": round(net, 2),
            "available": {"adhoc_margin": 0, "cash": self.cash, "opening_balance": self.cash, "live_balance": round(net, 2),
                          "collateral": 0, "intraday_payin": 0},
            "utilised": {"debits": round(self.spent + blocked, 2), "exposure": 0, "m2m_realised": 0, "m2m_unrealised": 0,
                         "option_premium": 0, "payout": 0, "span": 0, "holding_sales": 0, "turnover": 0, "liquid_collateral": 0,
                         "stock_collateral": 0, "delivery": 0},
        }  # fmt: skip
        return {
            "equity": eq,
            "commodity": {
                "enabled": True,
                "net": 0,
                "available": {"cash": 0, "live_balance": 0},
                "utilised": {"debits": 0},
            },
        }

    def _block(self, o: dict) -> float:
        px = (
            float(o["price"] or 0)
            or float(o["trigger_price"] or 0)
            or self.prices.get(self._key(o), {}).get("last", 0.0)
        )
        share = 1.0 if o["product"] == "CNC" else 0.2
        return float(o["pending_quantity"]) * px * share

    def _record(self, o: dict) -> None:
        o["exchange_update_timestamp"] = o["order_timestamp"] = _now()
        self.history.setdefault(o["order_id"], []).append(dict(o))

    def _new_order(self, f: dict, variety: str, tag: str | None) -> dict:
        oid = f"2405{next(self._ids):011d}"
        qty = float(f["quantity"])
        o = {
            "account_id": "AB1234", "placed_by": "AB1234", "order_id": oid, "exchange_order_id": None, "parent_order_id": None,
            "status": "PUT ORDER REQ RECEIVED", "status_message": None, "status_message_raw": None, "order_timestamp": _now(),
            "exchange_update_timestamp": None, "exchange_timestamp": None, "variety": variety, "modified": False,
            "exchange": f["exchange"], "tradingsymbol": f["tradingsymbol"], "instrument_token": 0, "order_type": f["order_type"],
            "transaction_type": f["transaction_type"], "validity": f.get("validity", "DAY"), "validity_ttl": 0, "product": f["product"],
            "quantity": qty, "disclosed_quantity": 0, "price": float(f.get("price") or 0), "trigger_price": float(f.get("trigger_price") or 0),
            "average_price": 0.0, "filled_quantity": 0.0, "pending_quantity": qty, "cancelled_quantity": 0.0, "market_protection": 0,
            "meta": {}, "tag": tag, "tags": [tag] if tag else [], "guid": f"guid-{oid}",
        }  # fmt: skip
        self.orders[oid] = o
        self._record(o)
        for st in ("VALIDATION PENDING", "OPEN PENDING"):
            o["status"] = st
            self._record(o)
        return o

    def _place(self, m, q, b):
        variety, f = m.group(1), _form(b)
        if variety not in ("regular", "amo", "co", "iceberg", "auction"):
            return _err(400, "InputException", "Invalid `variety`.")
        for need in ("exchange", "tradingsymbol", "transaction_type", "quantity", "product", "order_type"):
            if not f.get(need):
                return _err(400, "InputException", f"Missing or empty field `{need}`.")
        inst = self._instrument(f["exchange"], f["tradingsymbol"])
        if inst is None:
            return _err(
                400,
                "InputException",
                "The instrument you are placing an order for has either expired or does not exist.",
            )
        tag = f.get("tag")
        if tag is not None and (len(tag) > 20 or not tag.isalnum()):
            return _err(400, "InputException", "Invalid `tag`: alphanumeric, at most 20 characters.")
        try:
            qty = float(f["quantity"])
        except ValueError:
            return _err(400, "InputException", "Invalid `quantity`.")
        lot = float(inst["lot_size"])
        if qty <= 0 or qty != int(qty) or int(qty) % int(lot):
            return _err(400, "InputException", f"Quantity should be a multiple of the lot size {lot:g}.")
        kind = f["order_type"]
        if kind not in ("MARKET", "LIMIT", "SL", "SL-M") or f["product"] not in ("CNC", "MIS", "NRML"):
            return _err(400, "InputException", "Invalid `order_type` or `product`.")
        tick = float(inst["tick_size"])
        for name in ("price", "trigger_price"):
            v = f.get(name)
            if v is not None and float(v) != 0 and abs(float(v) / tick - round(float(v) / tick)) > 1e-6:
                return _err(
                    400,
                    "InputException",
                    f"Tick size for this script is {tick:g}. Kindly enter {name.replace('_', ' ')} in the multiple of tick size for this script",
                )
        if kind in ("LIMIT", "SL") and not float(f.get("price") or 0):
            return _err(400, "InputException", "Missing or empty field `price`.")
        if kind in ("SL", "SL-M") and not float(f.get("trigger_price") or 0):
            return _err(400, "InputException", "Missing or empty field `trigger_price`.")
        key = f"{f['exchange']}:{f['tradingsymbol']}"
        with self._engine:
            o = self._new_order(f, variety, tag)
            self._risk_and_open(o, key)
        return _ok({"order_id": o["order_id"]})

    def _risk_and_open(self, o: dict, key: str, ref: float | None = None) -> None:
        """The RMS checks after acceptance (a REJECTED order with Kite's message), then the book."""
        last = ref if ref is not None else self.prices.get(key, {}).get("last")
        if last is None:
            return self._finish(o, "REJECTED", "RMS:Blocked: no market price for this instrument")
        qty = float(o["quantity"])
        if o["transaction_type"] == "BUY":
            px = float(o["price"] or 0) or float(o["trigger_price"] or 0) or last
            need = qty * px * (1.0 if o["product"] == "CNC" else 0.2)
            avail = self.margins()["equity"]["net"]  # this order is not open yet, so not blocked
            if need > avail + 1e-6:
                return self._finish(
                    o,
                    "REJECTED",
                    f"Insufficient funds. Required margin is {need:.2f} but available margin is {avail:.2f}.",
                )
        elif o["product"] == "CNC":
            have = self.holdings.get(key, 0.0) + self._net_qty(key, "CNC")
            have -= sum(float(x["pending_quantity"]) for x in self.orders.values()
                        if x is not o and x["status"] in _OPEN and x["transaction_type"] == "SELL" and x["product"] == "CNC" and self._key(x) == key)  # fmt: skip
            if qty > have + 1e-9:
                return self._finish(
                    o,
                    "REJECTED",
                    f"Insufficient holdings: {have:g} of {o['tradingsymbol']} available to sell, {qty:g} ordered.",
                )
        o["status"] = "TRIGGER PENDING" if o["order_type"] in ("SL", "SL-M") else "OPEN"
        o["exchange_order_id"] = f"1100000{o['order_id'][-9:]}"
        self._record(o)
        self._match(
            o,
            {"open": last, "high": last, "low": last, "last": last}
            if ref is None
            else {**self.prices[key], "open": ref},
        )

    def _finish(self, o: dict, status: str, message: str | None = None) -> None:
        o["status"], o["status_message"], o["status_message_raw"] = status, message, message
        if status in ("CANCELLED", "REJECTED"):
            o["cancelled_quantity"] = o["pending_quantity"]
            o["pending_quantity"] = 0.0
        self._record(o)

    def _net_qty(self, key: str, product: str | None = None) -> float:
        return sum(
            v["buy_quantity"] - v["sell_quantity"]
            for (k, p), v in self.net.items()
            if k == key and (product is None or p == product)
        )

    def _match(self, o: dict, bar: dict) -> None:
        buy = o["transaction_type"] == "BUY"
        kind, px = o["order_type"], bar["open"]
        if o["status"] == "TRIGGER PENDING":
            hit = self._stop_fill(buy, float(o["trigger_price"]), bar)
            if hit is None:
                return
            px = hit
            o["status"] = "OPEN"
            self._record(o)
        if kind in ("LIMIT", "SL"):
            limit = float(o["price"])
            if buy and bar["low"] <= limit:
                px = min(limit, px)
            elif not buy and bar["high"] >= limit:
                px = max(limit, px)
            else:
                return
        key = self._key(o)
        cap = self.depth.get(key)
        qty = float(o["pending_quantity"])
        if cap is not None:
            qty = min(qty, max(cap - self._used.get(key, 0.0), 0.0))
        if qty <= 0:
            return
        self._used[key] = self._used.get(key, 0.0) + qty
        filled = float(o["filled_quantity"]) + qty
        o["average_price"] = round((float(o["average_price"]) * float(o["filled_quantity"]) + qty * px) / filled, 4)
        o["filled_quantity"], o["pending_quantity"] = filled, float(o["quantity"]) - filled
        o["status"] = "COMPLETE" if o["pending_quantity"] <= 1e-9 else "OPEN"
        o["exchange_timestamp"] = _now()
        self._record(o)
        self.trades.append({
            "trade_id": f"{next(self._ids):08d}", "order_id": o["order_id"], "exchange": o["exchange"], "tradingsymbol": o["tradingsymbol"],
            "instrument_token": 0, "product": o["product"], "average_price": px, "quantity": qty, "exchange_order_id": o["exchange_order_id"],
            "transaction_type": o["transaction_type"], "fill_timestamp": _now(), "order_timestamp": o["order_timestamp"][11:], "exchange_timestamp": _now(),
        })  # fmt: skip
        pos = self.net.setdefault(
            (key, o["product"]), {"buy_quantity": 0.0, "buy_value": 0.0, "sell_quantity": 0.0, "sell_value": 0.0}
        )
        side = "buy" if buy else "sell"
        pos[f"{side}_quantity"] += qty
        pos[f"{side}_value"] += qty * px
        self.spent += qty * px if buy else -qty * px

    def _order_history(self, m, q, b):
        oid = m.group(1)
        if oid not in self.history:
            return _err(400, "InputException", "Couldn't find that `order_id`.")
        return _ok([dict(h) for h in self.history[oid]])

    def _modify(self, m, q, b):
        oid, f = m.group(2), _form(b)
        with self._engine:
            o = self.orders.get(oid)
            if o is None:
                return _err(400, "InputException", "Couldn't find that `order_id`.")
            if o["status"] not in _OPEN:
                return _err(400, "InputException", f"Order cannot be modified as it is {o['status'].lower()}.")
            for k in ("price", "trigger_price", "quantity"):
                if f.get(k):
                    o[k] = float(f[k])
            o["pending_quantity"] = float(o["quantity"]) - float(o["filled_quantity"])
            o["order_type"] = f.get("order_type", o["order_type"])
            o["modified"] = True
            self._record(o)
            key = self._key(o)
            if key in self.prices:
                last = self.prices[key]["last"]
                self._match(o, {"open": last, "high": last, "low": last, "last": last})
        return _ok({"order_id": oid})

    def _cancel(self, m, q, b):
        oid = m.group(2)
        with self._engine:
            o = self.orders.get(oid)
            if o is None:
                return _err(400, "InputException", "Couldn't find that `order_id`.")
            if o["status"] not in _OPEN:
                return _err(400, "InputException", f"Order cannot be cancelled as it is {o['status'].lower()}.")
            self._finish(o, "CANCELLED", "Cancelled by user")
        return _ok({"order_id": oid})

    # ---- portfolio ----------------------------------------------------------------------------------
    def _positions(self, m, q, b):
        rows = []
        for (key, product), v in self.net.items():
            ex, sym = key.split(":", 1)
            last = self.prices.get(key, {}).get("last", 0.0)
            qty = v["buy_quantity"] - v["sell_quantity"]
            rows.append({
                "tradingsymbol": sym, "exchange": ex, "instrument_token": 0, "product": product, "quantity": qty, "overnight_quantity": 0,
                "multiplier": 1, "average_price": v["buy_value"] / v["buy_quantity"] if v["buy_quantity"] else 0.0, "close_price": 0,
                "last_price": last, "value": v["sell_value"] - v["buy_value"], "pnl": v["sell_value"] - v["buy_value"] + qty * last,
                "m2m": 0, "unrealised": 0, "realised": 0, "buy_quantity": v["buy_quantity"], "buy_price": v["buy_value"] / v["buy_quantity"] if v["buy_quantity"] else 0,
                "buy_value": v["buy_value"], "buy_m2m": v["buy_value"], "sell_quantity": v["sell_quantity"],
                "sell_price": v["sell_value"] / v["sell_quantity"] if v["sell_quantity"] else 0, "sell_value": v["sell_value"], "sell_m2m": v["sell_value"],
                "day_buy_quantity": v["buy_quantity"], "day_buy_price": 0, "day_buy_value": v["buy_value"],
                "day_sell_quantity": v["sell_quantity"], "day_sell_price": 0, "day_sell_value": v["sell_value"],
            })  # fmt: skip
        return _ok({"net": rows, "day": [dict(r) for r in rows]})

    def _holdings(self, m, q, b):
        rows = []
        for key, qty in self.holdings.items():
            ex, sym = key.split(":", 1)
            sold = max(-self._net_qty(key, "CNC"), 0.0)
            last = self.prices.get(key, {}).get("last", 0.0)
            rows.append({
                "tradingsymbol": sym, "exchange": ex, "instrument_token": 0, "isin": "INE009A01021", "product": "CNC", "price": 0,
                "quantity": qty, "used_quantity": sold, "t1_quantity": 0, "realised_quantity": qty, "authorised_quantity": 0,
                "authorised_date": None, "opening_quantity": qty, "collateral_quantity": 0, "collateral_type": "", "discrepancy": False,
                "average_price": last, "last_price": last, "close_price": last, "pnl": 0, "day_change": 0, "day_change_percentage": 0,
            })  # fmt: skip
        return _ok(rows)

    # ---- GTT ----------------------------------------------------------------------------------------
    def _gtt_parse(self, f: dict):
        try:
            cond, legs, kind = json.loads(f["condition"]), json.loads(f["orders"]), f["type"]
        except (KeyError, ValueError):
            return None, _err(400, "InputException", "Invalid `condition` or `orders`.")
        if self._instrument(cond.get("exchange", ""), cond.get("tradingsymbol", "")) is None:
            return None, _err(400, "InputException", "Invalid instrument.")
        trig = [float(x) for x in cond.get("trigger_values", [])]
        last = float(cond.get("last_price") or 0)
        if kind == "single" and (len(trig) != 1 or len(legs) != 1):
            return None, _err(400, "InputException", "Invalid `trigger_values` for a single-leg GTT.")
        if kind == "two-leg" and (len(trig) != 2 or len(legs) != 2 or not (trig[0] < last < trig[1])):
            return None, _err(
                400, "InputException", "Trigger values of a two-leg GTT must be below and above the last price."
            )
        if kind not in ("single", "two-leg"):
            return None, _err(400, "InputException", "Invalid `type`.")
        return (cond, legs, kind), None

    def _gtt_place(self, m, q, b):
        parsed, err = self._gtt_parse(_form(b))
        if err:
            return err
        cond, legs, kind = parsed
        with self._engine:
            gid = next(self._ids)
            now = _now()
            self.gtts[gid] = {
                "id": gid, "user_id": "AB1234", "parent_trigger": None, "type": kind, "created_at": now, "updated_at": now,
                "expires_at": (pd.Timestamp.now(tz=_IST) + pd.Timedelta(days=365)).strftime("%Y-%m-%d %H:%M:%S"), "status": "active",
                "condition": {**cond, "instrument_token": 0}, "orders": [{**leg, "result": None} for leg in legs], "meta": None,
            }  # fmt: skip
        return _ok({"trigger_id": gid})

    def _gtt_get(self, m, q, b):
        g = self.gtts.get(int(m.group(1)))
        return _ok(dict(g)) if g is not None else _err(404, "InputException", "Invalid trigger id.")

    def _gtt_modify(self, m, q, b):
        gid = int(m.group(1))
        with self._engine:
            g = self.gtts.get(gid)
            if g is None or g["status"] != "active":
                return _err(400, "InputException", "Trigger is not active.")
            parsed, err = self._gtt_parse(_form(b))
            if err:
                return err
            cond, legs, kind = parsed
            g.update(
                type=kind,
                condition={**cond, "instrument_token": 0},
                orders=[{**leg, "result": None} for leg in legs],
                updated_at=_now(),
            )
        return _ok({"trigger_id": gid})

    def _gtt_delete(self, m, q, b):
        gid = int(m.group(1))
        with self._engine:
            g = self.gtts.get(gid)
            if g is None or g["status"] != "active":
                return _err(400, "InputException", "Trigger is not active.")
            g.update(status="deleted", updated_at=_now())
        return _ok({"trigger_id": gid})

    def _gtt_check(self, g: dict, bar: dict) -> None:
        trig = g["condition"]["trigger_values"]
        if g["type"] == "two-leg":
            if bar["low"] <= trig[0]:
                i, ref = 0, min(trig[0], bar["open"])
            elif bar["high"] >= trig[1]:
                i, ref = 1, max(trig[1], bar["open"])
            else:
                return
        else:
            t, above = trig[0], trig[0] >= float(g["condition"]["last_price"])
            if above and bar["high"] >= t:
                i, ref = 0, max(t, bar["open"])
            elif not above and bar["low"] <= t:
                i, ref = 0, min(t, bar["open"])
            else:
                return
        leg = g["orders"][i]
        f = {k: leg[k] for k in ("exchange", "tradingsymbol", "transaction_type", "quantity", "product")}
        o = self._new_order({**f, "order_type": leg["order_type"], "price": leg["price"]}, "regular", None)
        g["status"], g["updated_at"] = "triggered", _now()
        leg["result"] = {
            "account_id": "AB1234", "exchange": leg["exchange"], "tradingsymbol": leg["tradingsymbol"], "validity": "DAY",
            "product": leg["product"], "order_type": leg["order_type"], "transaction_type": leg["transaction_type"],
            "quantity": leg["quantity"], "price": leg["price"], "meta": "", "timestamp": _now(), "triggered_at": ref,
            "order_result": {"status": "success", "order_id": o["order_id"], "rejection_reason": ""},
        }  # fmt: skip
        self._risk_and_open(o, self._gkey(g), ref=ref)
