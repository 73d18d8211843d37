"""A fake Alpaca API for the real alpaca-py clients: market data and the paper trading endpoints.

Market data: ``/v2/stocks/bars`` (paged: ``page_size`` per answer with ``next_page_token``, so the
client's pagination runs) and ``/v2/stocks/snapshots``.

Trading, in Alpaca's shapes: ``/v2/account``, ``/v2/orders`` (POST with ``client_order_id``, unique;
GET list with ``status``/``nested``), ``/v2/orders/{id}``, ``/v2/orders:by_client_order_id``,
``DELETE /v2/orders/{id}`` (204), ``/v2/positions``, ``/v2/assets[/{symbol}]`` and
``/v2/account/activities/FILL``. Simple market/limit/stop orders and OCO pairs (a take-profit limit
parent with a stop leg). Every call needs ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``; with ``key``
given only that pair passes (401 otherwise). Errors carry Alpaca's bodies: 403 ``40310000``
insufficient buying power / qty, 422 (sub-penny price, unknown asset, duplicate client id, not
cancelable), 404 order not found, 429 and 5xx from ``fail_next``.

The matching engine fills against a settable price (``set_price``/``move``): market orders at once,
limits when marketable, stops when a bar trades through them (stops before limits); ``depth[symbol]``
caps what fills per match (partial fills); cash and positions follow the fills (a cash account: no
shorting, buying power net of open buys).
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid

import pandas as pd

from tests.kit.book import PriceBook
from tests.kit.http_fake import FakeHttp

__all__ = ["FakeAlpaca"]

_OPEN = ("new", "accepted", "partially_filled", "held", "pending_new")


def _iso(t: pd.Timestamp | None = None) -> str:
    return (t or pd.Timestamp.now(tz="UTC")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _e(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, {"code": code, "message": message}


class FakeAlpaca(PriceBook, FakeHttp):
    def __init__(
        self,
        page_size: int = 300,
        delay_s: float = 0.0,
        *,
        key: str | None = None,
        secret: str | None = None,
        cash: float = 100_000.0,
    ):
        super().__init__(delay_s)
        self.page_size = page_size
        self.bars: dict[str, pd.DataFrame] = {}
        self.stale_symbols: set[str] = set()
        self.key, self.secret = key, secret
        self.cash = float(cash)
        self.assets: dict[str, dict] = {}
        self.prices: dict[str, dict] = {}
        self.depth: dict[str, float] = {}
        self.orders: dict[str, dict] = {}
        self.positions: dict[str, dict] = {}  # symbol -> {"qty", "cost"}
        self.activities: list[dict] = []
        self._engine = threading.RLock()
        self._seq = itertools.count(1)
        self._used: dict[str, float] = {}
        r = self.route
        r("GET", r"/v2/stocks/bars", self._bars)
        r("GET", r"/v2/stocks/snapshots", self._snapshots)
        r("GET", r"/v2/account", lambda m, q, b: (200, self.account()))
        r("GET", r"/v2/assets", lambda m, q, b: (200, list(self.assets.values())))
        r("GET", r"/v2/assets/([\w.]+)", self._asset)
        r("POST", r"/v2/orders", self._submit)
        r("GET", r"/v2/orders", self._list)
        r("GET", r"/v2/orders:by_client_order_id", self._by_cid)
        r("GET", r"/v2/orders/([\w-]+)", self._get)
        r("DELETE", r"/v2/orders/([\w-]+)", self._cancel)
        r("GET", r"/v2/positions", self._positions)
        r("GET", r"/v2/account/activities/FILL", self._fills)

    # ---- test controls ----------------------------------------------------------------------------
    def add_asset(
        self, symbol: str, exchange: str = "NASDAQ", price: float | None = None, fractionable: bool = False
    ) -> None:
        self.assets[symbol] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)), "class": "us_equity", "exchange": exchange, "symbol": symbol,
            "name": f"{symbol} Inc.", "status": "active", "tradable": True, "marginable": True, "maintenance_margin_requirement": 30,
            "shortable": True, "easy_to_borrow": True, "fractionable": fractionable, "attributes": [],
        }  # fmt: skip
        if price is not None:
            self.set_price(symbol, price)

    def _book_key(self, key: str) -> str:
        return key.rpartition(":")[2]  # NASDAQ:AAPL → AAPL

    def _fill_on_bar(self, symbol: str, bar: dict) -> None:
        """Stops before limits; an OCO fill cancels its other leg."""
        rank = {"stop": 0, "market": 1, "limit": 2}
        live = [o for o in self._all_orders() if o["symbol"] == symbol and o["status"] in _OPEN]
        for o in sorted(live, key=lambda o: rank[o["type"]]):
            if o["status"] in _OPEN:
                self._match(o, bar)

    def error_body(self, status: int) -> object:
        if status == 429:
            return {"code": 42910000, "message": "rate limit exceeded"}
        return {"code": 50010000, "message": "internal server error occurred"}

    def authorize(self, method, path, headers):
        k, s = (headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")) if headers else (None, None)
        if not k or not s or (self.key is not None and (k, s) != (self.key, self.secret)):
            return _e(401, 40110000, "request is not authorized")
        return None

    # ---- market data --------------------------------------------------------------------------------
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
                {
                    "t": r.ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "o": r.open,
                    "h": r.high,
                    "l": r.low,
                    "c": r.close,
                    "v": r.volume,
                    "n": 1,
                    "vw": r.close,
                }
            )
        nxt = str(offset + self.page_size) if offset + self.page_size < len(rows) else None
        return 200, {"bars": out, "next_page_token": nxt}

    def _snapshots(self, m, q, b):
        symbols = q["symbols"][0].split(",")
        now = pd.Timestamp.now(tz="UTC")
        out = {}
        for i, s in enumerate(symbols):
            t = now - pd.Timedelta(hours=3) if s in self.stale_symbols else now
            stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            px = self.prices.get(s)
            if px is not None:
                p = px["last"]
                bar = {
                    "t": stamp,
                    "o": px["open"],
                    "h": px["high"],
                    "l": px["low"],
                    "c": p,
                    "v": px["volume"],
                    "n": 1,
                    "vw": p,
                }
                prev = {**bar, "c": px["close"]}
            else:
                p = 50.0 + i % 100
                bar = {"t": stamp, "o": p, "h": p + 1, "l": p - 1, "c": p, "v": 1000.0 + i, "n": 1, "vw": p}
                prev = {**bar, "c": p / 1.05}
            out[s] = {
                "latestTrade": {"t": stamp, "x": "V", "p": p, "s": 100, "c": ["@"], "i": i, "z": "C"},
                "latestQuote": {
                    "t": stamp,
                    "ax": "V",
                    "ap": round(p + 0.01, 2),
                    "as": 1,
                    "bx": "V",
                    "bp": round(p - 0.01, 2),
                    "bs": 1,
                    "c": ["R"],
                    "z": "C",
                },
                "minuteBar": bar,
                "dailyBar": bar,
                "prevDailyBar": prev,
            }
        return 200, out

    # ---- account ------------------------------------------------------------------------------------
    def _reserved(self) -> float:
        out = 0.0
        for o in self._all_orders():
            if o["side"] == "buy" and o["status"] in _OPEN:
                px = float(o["limit_price"] or o["stop_price"] or self.prices.get(o["symbol"], {}).get("last", 0.0))
                out += (float(o["qty"]) - float(o["filled_qty"])) * px
        return out

    def account(self) -> dict:
        value = sum(p["qty"] * self.prices.get(s, {}).get("last", 0.0) for s, p in self.positions.items())
        bp = f"{self.cash - self._reserved():.2f}"
        return {
            "id": "a1b2c3d4-0000-4000-8000-000000000001", "account_number": "PA3TEST0001", "status": "ACTIVE", "crypto_status": "ACTIVE",
            "currency": "USD", "cash": f"{self.cash:.2f}", "buying_power": bp, "regt_buying_power": bp, "daytrading_buying_power": "0",
            "non_marginable_buying_power": bp, "effective_buying_power": bp, "portfolio_value": f"{self.cash + value:.2f}",
            "equity": f"{self.cash + value:.2f}", "last_equity": f"{self.cash + value:.2f}", "long_market_value": f"{value:.2f}",
            "short_market_value": "0", "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0",
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "shorting_enabled": False, "multiplier": "1", "daytrade_count": 0,
            "created_at": "2024-01-02T15:00:00Z", "accrued_fees": "0", "pending_transfer_in": "0",
        }  # fmt: skip

    def _asset(self, m, q, b):
        a = self.assets.get(m.group(1))
        return (200, a) if a is not None else _e(404, 40410000, "asset not found")

    def _positions(self, m, q, b):
        out = []
        for s, p in self.positions.items():
            if abs(p["qty"]) < 1e-9:
                continue
            last = self.prices.get(s, {}).get("last", 0.0)
            held = sum(float(o["qty"]) - float(o["filled_qty"]) for o in self._open_sells(s))
            out.append({
                "asset_id": self.assets[s]["id"], "symbol": s, "exchange": self.assets[s]["exchange"], "asset_class": "us_equity",
                "asset_marginable": True, "qty": f"{p['qty']:g}", "qty_available": f"{p['qty'] - held:g}", "side": "long",
                "avg_entry_price": f"{p['cost'] / p['qty']:.4f}", "market_value": f"{p['qty'] * last:.2f}", "cost_basis": f"{p['cost']:.2f}",
                "unrealized_pl": f"{p['qty'] * last - p['cost']:.2f}", "unrealized_plpc": "0", "unrealized_intraday_pl": "0",
                "unrealized_intraday_plpc": "0", "current_price": f"{last}", "lastday_price": f"{last}", "change_today": "0",
            })  # fmt: skip
        return 200, out

    def _fills(self, m, q, b):
        """As Alpaca: at most ``page_size`` (≤ 100) per answer, oldest first with direction=asc; the
        next page starts after the activity id given as ``page_token``."""
        after = pd.Timestamp(q["after"][0]) if "after" in q else None
        rows = [a for a in self.activities if after is None or pd.Timestamp(a["transaction_time"]) > after]
        if q.get("direction", ["desc"])[0] != "asc":
            rows = rows[::-1]
        if "page_token" in q:
            token = q["page_token"][0]
            rows = [
                a for a in rows if (a["id"] > token if q.get("direction", ["desc"])[0] == "asc" else a["id"] < token)
            ]
        size = min(int(q.get("page_size", ["100"])[0]), 100)
        return 200, rows[:size]

    # ---- orders -------------------------------------------------------------------------------------
    def _all_orders(self):
        for o in list(self.orders.values()):
            yield o
            yield from o.get("legs") or []

    def _open_sells(self, symbol: str):
        """Open sells hold shares; an OCO pair holds them once (its parent)."""
        return [
            o for o in self.orders.values() if o["symbol"] == symbol and o["side"] == "sell" and o["status"] in _OPEN
        ]

    def _order(self, body: dict, kind: str, cid: str, parent: bool = True) -> dict:
        now = _iso()
        return {
            "id": str(uuid.uuid4()), "client_order_id": cid, "created_at": now, "updated_at": now, "submitted_at": now,
            "filled_at": None, "expired_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None, "replaced_by": None,
            "replaces": None, "asset_id": self.assets[body["symbol"]]["id"], "symbol": body["symbol"], "asset_class": "us_equity",
            "notional": None, "qty": str(body["qty"]), "filled_qty": "0", "filled_avg_price": None,
            "order_class": body.get("order_class") or "simple" if parent else "oco", "order_type": kind, "type": kind,
            "side": body["side"], "position_intent": "sell_to_close" if body["side"] == "sell" else "buy_to_open",
            "time_in_force": body.get("time_in_force", "day"), "limit_price": None, "stop_price": None, "status": "new",
            "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None, "hwm": None, "subtag": None, "source": None,
        }  # fmt: skip

    def _submit(self, m, q, b):
        body = json.loads(b or b"{}")
        sym = body.get("symbol", "")
        if sym not in self.assets:
            return _e(422, 40010001, f'asset "{sym}" not found')
        cid = body.get("client_order_id") or str(uuid.uuid4())
        with self._engine:
            if any(o["client_order_id"] == cid for o in self._all_orders()):
                return _e(422, 40010001, "client_order_id must be unique")
            try:
                qty = float(body["qty"])
            except (KeyError, TypeError, ValueError):
                return _e(422, 40010001, "qty is required")
            if qty <= 0 or (qty != int(qty) and not self.assets[sym]["fractionable"]):
                return _e(
                    422, 40010001, "fractional orders are not supported for this asset; qty must be a whole number"
                )
            kind, cls = body.get("type"), body.get("order_class") or "simple"
            prices = {k: body.get(k) for k in ("limit_price", "stop_price")}
            if cls == "oco":
                prices["limit_price"] = (body.get("take_profit") or {}).get("limit_price") or body.get("limit_price")
                prices["stop_price"] = (body.get("stop_loss") or {}).get("stop_price")
                if kind != "limit" or not prices["limit_price"] or not prices["stop_price"]:
                    return _e(
                        422, 40010001, "oco orders require type limit, take_profit.limit_price and stop_loss.stop_price"
                    )
            for name, v in prices.items():
                if v is not None:
                    v = float(v)
                    if v >= 1 and abs(v * 100 - round(v * 100)) > 1e-6:
                        return _e(
                            422,
                            42210000,
                            f"invalid {name} {v}. sub-penny increment does not fulfill minimum pricing criteria",
                        )
            last = self.prices.get(sym, {}).get("last")
            if last is None:
                return _e(403, 40310000, "no market price: the market is closed for this asset")
            if body["side"] == "buy":
                cost = qty * float(prices["limit_price"] or prices["stop_price"] or last)
                if cost > self.cash - self._reserved() + 1e-6:
                    return _e(403, 40310000, "insufficient buying power")
            else:
                held = self.positions.get(sym, {}).get("qty", 0.0)
                free = held - sum(float(o["qty"]) - float(o["filled_qty"]) for o in self._open_sells(sym))
                if qty > free + 1e-9:
                    return _e(
                        403,
                        40310000,
                        f"insufficient qty available for order (requested: {qty:g}, available: {max(free, 0):g})",
                    )
            o = self._order(body, kind, cid)
            o["limit_price"] = None if prices["limit_price"] is None else str(prices["limit_price"])
            o["stop_price"] = None if prices["stop_price"] is None or cls == "oco" else str(prices["stop_price"])
            if cls == "oco":
                leg = self._order({**body, "order_class": "oco"}, "stop", str(uuid.uuid4()), parent=False)
                leg.update(stop_price=str(prices["stop_price"]), time_in_force=o["time_in_force"], order_class="oco")
                o["legs"] = [leg]
                o["order_class"] = "oco"
            self.orders[o["id"]] = o
            if kind in ("market", "limit"):
                self._match(o, {"open": last, "high": last, "low": last, "last": last})
            return 200, self._view(o)

    @staticmethod
    def _view(o: dict, nested: bool = True) -> dict:
        v = dict(o)
        v["legs"] = [dict(x) for x in o["legs"]] if o.get("legs") and nested else None
        return v

    def _match(self, o: dict, bar: dict) -> None:
        buy, kind, px = o["side"] == "buy", o["type"], bar["open"]
        if kind == "stop" and float(o["filled_qty"]) == 0:
            hit = self._stop_fill(buy, float(o["stop_price"]), bar)
            if hit is None:
                return
            px = hit
        elif kind == "limit":
            limit = float(o["limit_price"])
            if buy and bar["low"] <= limit:
                px = min(limit, px)
            elif not buy and bar["high"] >= limit:
                px = max(limit, px)
            else:
                return
        sym = o["symbol"]
        qty = float(o["qty"]) - float(o["filled_qty"])
        if sym in self.depth:
            qty = min(qty, max(self.depth[sym] - self._used.get(sym, 0.0), 0.0))
        if qty <= 0:
            return
        self._used[sym] = self._used.get(sym, 0.0) + qty
        done = float(o["filled_qty"]) + qty
        avg = (float(o["filled_avg_price"] or 0) * float(o["filled_qty"]) + qty * px) / done
        now = _iso()
        o.update(filled_qty=f"{done:g}", filled_avg_price=f"{avg:.4f}", updated_at=now)
        o["status"] = "filled" if done >= float(o["qty"]) - 1e-9 else "partially_filled"
        if o["status"] == "filled":
            o["filled_at"] = now
        pos = self.positions.setdefault(sym, {"qty": 0.0, "cost": 0.0})
        if buy:
            pos["qty"] += qty
            pos["cost"] += qty * px
            self.cash -= qty * px
        else:
            pos["cost"] *= (pos["qty"] - qty) / pos["qty"] if pos["qty"] else 0.0
            pos["qty"] -= qty
            self.cash += qty * px
        self.activities.append({
            "id": f"{pd.Timestamp.now(tz='UTC'):%Y%m%d%H%M%S%f}::{uuid.uuid4()}", "activity_type": "FILL", "transaction_time": now,
            "type": "fill" if o["status"] == "filled" else "partial_fill", "price": f"{px}", "qty": f"{qty:g}", "side": o["side"],
            "symbol": sym, "leaves_qty": f"{float(o['qty']) - done:g}", "order_id": o["id"], "cum_qty": f"{done:g}", "order_status": o["status"],
        })  # fmt: skip
        for other in self._oco_family(o):
            if other is not o and other["status"] in _OPEN:
                other.update(status="canceled", canceled_at=now, updated_at=now)

    def _oco_family(self, o: dict) -> list[dict]:
        if o.get("order_class") != "oco":
            return []
        for p in self.orders.values():
            if p is o or o in (p.get("legs") or []):
                return [p, *(p.get("legs") or [])]
        return []

    def _find(self, oid: str) -> dict | None:
        return next((o for o in self._all_orders() if o["id"] == oid), None)

    def _get(self, m, q, b):
        o = self._find(m.group(1))
        return (
            (200, self._view(o, q.get("nested", ["false"])[0].lower() == "true"))
            if o is not None
            else _e(404, 40410000, "order not found")
        )

    def _by_cid(self, m, q, b):
        cid = q.get("client_order_id", [""])[0]
        o = next((o for o in self._all_orders() if o["client_order_id"] == cid), None)
        return (200, self._view(o)) if o is not None else _e(404, 40410000, "order not found")

    def _list(self, m, q, b):
        status = q.get("status", ["open"])[0]
        nested = q.get("nested", ["false"])[0].lower() == "true"
        rows = [o for o in self.orders.values() if status == "all" or (o["status"] in _OPEN) == (status == "open")]
        return 200, [self._view(o, nested) for o in sorted(rows, key=lambda o: o["created_at"], reverse=True)]

    def _cancel(self, m, q, b):
        with self._engine:
            o = self._find(m.group(1))
            if o is None:
                return _e(404, 40410000, "order not found")
            if o["status"] not in _OPEN:
                return _e(422, 42210000, "order is not cancelable")
            now = _iso()
            for x in self._oco_family(o) or [o]:
                if x["status"] in _OPEN:
                    x.update(status="canceled", canceled_at=now, updated_at=now)
        return 204, b""
