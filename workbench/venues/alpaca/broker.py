"""Alpaca as a ``Broker``: US equities on NYSE and NASDAQ, the paper endpoint by default.

Why it looks the way it does:
- **Paper first.** ``paper=True`` (``settings.broker.testnet``) talks to paper-api.alpaca.markets,
  reported as ``environment == "testnet"``; live needs ``paper=False`` explicitly.
- **Whole shares.** OCO exit pairs (how stops and take-profits protect a position here) take whole
  shares only, so markets report lot 1 and tick $0.01; a fractional quantity is refused locally
  with ``lot_size`` rather than half-protected later.
- **Client order ids are Alpaca's ``client_order_id``**, so ``order_status`` and the check after a
  lost answer (before anything is sent again) ask Alpaca directly. An OCO pair is one Alpaca order
  (the take-profit limit, with the stop as its leg); the first exit of a group rests alone, and its
  sibling replaces it by the pair. The ledger (``workbench.venues.ledger``) remembers which client
  ids live in which pair.
- **No short sales**: a sell beyond the free position is refused locally (a margin account would
  open a short), as the paper broker does.
- alpaca-py's own retry sleeps 3 s per 429 and its requests carry no timeout: the client here sends
  each request once with ``timeout_s`` and this adapter retries temporary errors with backoff, through
  the venues' one retry layer (``workbench.venues.retry``).
- Commission-free: ``fee`` is 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import pandas as pd

from workbench.security.vault import secret_env_name, secret_value, vault_of
from workbench.venues.alpaca.config import AlpacaConfig
from workbench.venues.base import (
    AuthenticationError,
    Balance,
    BrokerError,
    BrokerOrder,
    BrokerStatus,
    ExchangeUnavailable,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    TemporaryBrokerError,
    reason_of,
)
from workbench.venues.ledger import OrderLedger
from workbench.venues.retry import RetryPolicy, retry_call, send_idempotent

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = ["AlpacaBroker", "alpaca_keys", "make_broker"]

_ACTIVITY_PAGE = 100  # the most activities Alpaca returns per request
_STATUS: dict[str, OrderStatus] = {
    "filled": "FILLED",
    "canceled": "CANCELLED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
    "replaced": "CANCELLED",
    "done_for_day": "EXPIRED",
}
_REASONS = [
    (re.compile(r"buying power|insufficient (funds|balance)", re.IGNORECASE), "insufficient_funds"),
    (re.compile(r"insufficient qty|qty available|position", re.IGNORECASE), "insufficient_position"),
    (re.compile(r"sub-penny|increment|tick", re.IGNORECASE), "tick_size"),
    (re.compile(r"fractional|whole number|qty must", re.IGNORECASE), "lot_size"),
    (re.compile(r"asset .*not found|not tradable|invalid symbol", re.IGNORECASE), "unknown_symbol"),
    (re.compile(r"client_order_id must be unique", re.IGNORECASE), "duplicate_order"),
    (re.compile(r"order not found", re.IGNORECASE), "unknown_order"),
    (re.compile(r"not cancelable|not cancellable", re.IGNORECASE), "not_cancellable"),
    (re.compile(r"stop price|limit price|market is closed", re.IGNORECASE), "bad_price"),
]


def _reason(message: str) -> str:
    return reason_of(message, _REASONS)


def _message(e) -> tuple[int | None, str]:
    status = getattr(e, "status_code", None)
    text = str(e)
    try:
        body = json.loads(text)
        text = body.get("message", text) if isinstance(body, dict) else text
    except (TypeError, ValueError):
        pass
    return status, text


def _translate(e: Exception, what: str) -> Exception:
    import requests
    from alpaca.common.exceptions import APIError

    if isinstance(e, BrokerError):
        return e
    if isinstance(e, APIError):
        status, text = _message(e)
        if status == 401 or (status == 403 and "40310000" not in str(e)):
            return AuthenticationError(
                f"Alpaca refused the keys for {what} (HTTP {status}: {text}): check alpaca/api_key and alpaca/secret, and that paper keys go with the paper endpoint"
            )
        if status in (429,) or (status is not None and status >= 500 and status != 503):
            return TemporaryBrokerError(f"Alpaca did not complete {what} (HTTP {status}: {text}); retry later")
        if status == 503:
            return ExchangeUnavailable(
                f"Alpaca is unavailable for {what} (HTTP 503: {text}); no new orders until it is back"
            )
        return OrderRejected(_reason(text), f"Alpaca refused {what} (HTTP {status}): {text}")
    if isinstance(e, (requests.Timeout, requests.ConnectionError)):
        return TemporaryBrokerError(f"Alpaca did not answer {what} ({type(e).__name__}); retry later")
    return BrokerError(f"Alpaca failed {what}: {type(e).__name__}: {e}")


def _timed(base, timeout_s: float):
    """An alpaca-py client class whose requests carry a timeout and are sent once (we retry)."""

    class Timed(base):
        def _one_request(self, method, url, opts, retry):
            return super()._one_request(method, url, {**opts, "timeout": timeout_s}, 0)

    return Timed


def _f(x) -> float:
    return float(x) if x not in (None, "") else 0.0


class AlpacaBroker:
    """The ``Broker`` protocol over alpaca-py. Symbols are ``"NASDAQ:AAPL"``/``"NYSE:IBM"`` (the
    instrument master's keys) or bare tickers; positions come back as ``EXCHANGE:TICKER``."""

    name = "alpaca"

    def __init__(
        self,
        api_key: str,
        secret: str,
        *,
        paper: bool = True,
        url_override: str | None = None,
        timeout_s: float = 10,
        account: str | None = None,
        data_url_override: str | None = None,
        store_url: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
    ):
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        if not api_key or not secret:
            raise AuthenticationError(
                "Alpaca needs an API key and secret: store alpaca/api_key and alpaca/secret in the vault"
            )
        self.paper = bool(paper)
        self.trading = _timed(TradingClient, timeout_s)(
            api_key, secret, paper=self.paper, raw_data=True, url_override=url_override
        )
        data_url = data_url_override or url_override
        self.data = _timed(StockHistoricalDataClient, timeout_s)(api_key, secret, raw_data=True, url_override=data_url)
        self.account = account or ("alpaca-paper" if self.paper else "alpaca")
        self.retries, self.backoff_s = max(1, int(retries)), float(backoff_s)
        self.retry = RetryPolicy(attempts=self.retries, backoff_s=self.backoff_s, max_wait_s=2.0)
        self.ledger = OrderLedger(store_url, "alpaca", self.account)
        self._assets: dict[str, dict | None] = {}
        self._names: dict[str, str] = {}  # ticker -> the caller's name for it ("AAPL" or "NASDAQ:AAPL")
        self._cids: dict[str, str] = {}  # venue order id -> client order id

    @classmethod
    def from_settings(
        cls, settings: Settings, vault: Vault | None = None, config: AlpacaConfig | None = None
    ) -> AlpacaBroker:
        key, sec = alpaca_keys(settings, vault_of(settings, vault))
        if config is None:
            from workbench.venues import venue_config

            config = venue_config(settings, "alpaca", AlpacaConfig)
        return cls(key, sec, paper=settings.broker.testnet, url_override=config.url, data_url_override=config.data_url,
                   timeout_s=settings.broker.timeout_s, store_url=settings.store_url)  # fmt: skip

    def __repr__(self) -> str:
        return f"AlpacaBroker(account={self.account!r}, paper={self.paper})"  # never the keys

    # ---- plumbing -----------------------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kw):
        def translate(e: Exception) -> Exception:
            return _translate(e, what)

        return retry_call(lambda: fn(*args, **kw), policy=self.retry, venue=self.name, what=what, translate=translate)

    @staticmethod
    def _ticker(symbol: str) -> str:
        return symbol.rpartition(":")[2].upper()

    def _asset(self, symbol: str) -> dict | None:
        t = self._ticker(symbol)
        if t not in self._assets:
            try:
                self._assets[t] = self._call(f"asset {t}", self.trading.get_asset, t)
            except OrderRejected:  # 404: Alpaca does not list it
                self._assets[t] = None
        a = self._assets[t]
        ex = symbol.rpartition(":")[0].upper()
        if a is None or not a.get("tradable") or a.get("status") != "active" or (ex and a.get("exchange") != ex):
            return None
        return a

    # ---- protocol: status and reference data --------------------------------------------------------
    @property
    def environment(self) -> Literal["paper", "testnet", "live"]:
        return "testnet" if self.paper else "live"

    def check(self) -> BrokerStatus:
        env = self.environment
        try:
            acct = self._call("the account", self.trading.get_account)
        except AuthenticationError as e:
            return BrokerStatus(False, env, str(e))
        except BrokerError as e:
            return BrokerStatus(False, env, f"Alpaca is not reachable: {e}")
        if acct.get("trading_blocked") or acct.get("account_blocked") or acct.get("status") != "ACTIVE":
            return BrokerStatus(
                False,
                env,
                f"Alpaca account {acct.get('account_number')} cannot trade (status {acct.get('status')}, trading_blocked={acct.get('trading_blocked')})",
            )
        where = "paper trading (no real money)" if self.paper else "LIVE trading with real money"
        return BrokerStatus(True, env, f"Alpaca account {acct.get('account_number')}: ${_f(acct.get('cash')):,.2f} cash, "
                                       f"${_f(acct.get('non_marginable_buying_power')):,.2f} free; {where}; NYSE/NASDAQ whole shares")  # fmt: skip

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        out = {}
        for s in symbols:
            a = self._asset(s)
            if a is not None:
                self._names.setdefault(self._ticker(s), s)
                tick = _f(a.get("price_increment")) or 0.01
                out[s] = Market(
                    s, a["symbol"], "USD", lot_size=1.0, tick_size=tick, min_notional=0.0, exchange=a.get("exchange")
                )
        return out

    def balances(self) -> dict[str, Balance]:
        """Total = cash; free = cash buying power net of open buy orders (never margin)."""
        a = self._call("the account", self.trading.get_account)
        cash = _f(a.get("cash"))
        return {
            a.get("currency") or "USD": Balance(
                a.get("currency") or "USD", free=min(_f(a.get("non_marginable_buying_power")), cash), total=cash
            )
        }

    def positions(self) -> dict[str, float]:
        out = {}
        for p in self._call("the positions", self.trading.get_all_positions):
            q = _f(p.get("qty")) * (-1.0 if p.get("side") == "short" else 1.0)
            if abs(q) > 1e-12:
                # named as the caller names the symbol (positions must match orders and the book)
                out[self._names.get(p["symbol"]) or f"{p.get('exchange')}:{p['symbol']}"] = q
        return out

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        from alpaca.data.requests import StockSnapshotRequest

        want = {s: self._ticker(s) for s in dict.fromkeys(symbols)}
        tickers = sorted(set(want.values()))
        snaps: dict[str, dict] = {}
        for i in range(0, len(tickers), 500):
            snaps.update(
                self._call(
                    "quotes", self.data.get_stock_snapshot, StockSnapshotRequest(symbol_or_symbols=tickers[i : i + 500])
                )
                or {}
            )
        out = {}
        for s, t in want.items():
            d = snaps.get(t) or {}
            trade = d.get("latestTrade") or {}
            last = _f(trade.get("p"))
            if not (last > 0 and math.isfinite(last)):
                continue
            q, bar = d.get("latestQuote") or {}, d.get("dailyBar") or {}
            out[s] = Quote(s, last, pd.Timestamp(trade.get("t") or pd.Timestamp.now(tz="UTC")).tz_convert("UTC"), bid=_f(q.get("bp")) or None,
                           ask=_f(q.get("ap")) or None, volume=_f(bar.get("v")) or None, high=_f(bar.get("h")) or None, low=_f(bar.get("l")) or None,
                           open=_f(bar.get("o")) or None)  # fmt: skip
        return out

    # ---- protocol: orders ---------------------------------------------------------------------------
    def place(self, order: OrderRequest) -> BrokerOrder:
        known = self._lookup(order.client_order_id)
        if known is not None:
            return self._raise_if_rejected(known)
        market = self.markets([order.symbol]).get(order.symbol)
        self._validate(order, market)
        if order.side == "sell":
            self._check_position(order)
        if order.type in ("stop_loss", "take_profit"):
            return self._place_exit(order)
        return self._send(order, self._request(order))

    def cancel(self, client_order_id: str) -> BrokerOrder:
        o = self._require(client_order_id)
        if o.is_final:
            return o
        row = self.ledger.get(client_order_id)
        if row is not None and row["kind"] == "oco":  # withdraw the pair, keep the other leg resting alone
            self._cancel_id(row["ref"])
            for other in self.ledger.find(kind="oco", ref=row["ref"]):
                if other["client_order_id"] != client_order_id:
                    self._resubmit_alone(other)
            self.ledger.put(client_order_id, state="CANCELLED")
            return self._require(client_order_id)
        if o.broker_order_id is not None:  # else it never reached Alpaca: nothing to withdraw there
            self._cancel_id(o.broker_order_id)
        return self._require(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder:
        return self._require(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        rows = self._call(
            "open orders",
            self.trading.get_orders,
            GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True, limit=500),
        )
        out = []
        for v in rows:
            pair = self.ledger.find(kind="oco", ref=v["id"])
            if pair:
                out += [self._pair_order(r, v) for r in pair if r["state"] is None]
            else:
                mine = self.ledger.find(kind="order", ref=v["id"])
                out.append(self._to_order(v, mine[0] if mine else None))
        return [o for o in out if not o.is_final]

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]:
        params = {"direction": "asc", "page_size": _ACTIVITY_PAGE}
        if since is not None:
            params["after"] = (pd.Timestamp(since) - pd.Timedelta(microseconds=1)).tz_convert("UTC").isoformat()
        acts: list[dict] = []
        while True:  # Alpaca answers ≤ 100 activities; the next page starts after the last one's id
            page = self._call("fill activities", self.trading.get, "/account/activities/FILL", params) or []
            acts += page
            if len(page) < _ACTIVITY_PAGE:
                break
            params["page_token"] = page[-1]["id"]
        out = []
        for a in acts:
            cid = self._cid_of(a["order_id"])
            ts = pd.Timestamp(a["transaction_time"]).tz_convert("UTC")
            row = self.ledger.get(cid)
            symbol = (
                row["symbol"]
                if row is not None
                else f"{(self._assets.get(a['symbol']) or {}).get('exchange', '')}:{a['symbol']}".lstrip(":")
            )
            out.append(
                Fill(
                    a["id"],
                    cid,
                    symbol,
                    a["side"],
                    _f(a["qty"]),
                    _f(a["price"]),
                    0.0,
                    "USD",
                    ts,
                    extra={"order_id": a["order_id"]},
                )
            )
        return [f for f in out if since is None or f.ts >= since]

    # ---- orders -------------------------------------------------------------------------------------
    def _validate(self, order: OrderRequest, market: Market | None) -> None:
        if market is None:
            raise OrderRejected(
                "unknown_symbol",
                f"{order.symbol} is not a tradable Alpaca asset (use NASDAQ:AAPL, NYSE:IBM or a bare ticker)",
            )
        if order.quantity != int(order.quantity):
            raise OrderRejected(
                "lot_size",
                f"quantity {order.quantity:g} of {order.symbol} is not a whole number of shares (exit pairs need whole shares)",
            )
        for name in ("limit_price", "stop_price"):
            px = getattr(order, name)
            if px is not None and abs(px / market.tick_size - round(px / market.tick_size)) > 1e-6:
                raise OrderRejected(
                    "tick_size",
                    f"{name} {px:g} of {order.symbol} is not a multiple of the tick size {market.tick_size:g}",
                )

    def _check_position(self, order: OrderRequest) -> None:
        held = next((q for s, q in self.positions().items() if self._ticker(s) == self._ticker(order.symbol)), 0.0)
        reserved = sum(o.remaining for o in self.open_orders() if o.side == "sell" and self._ticker(o.symbol) == self._ticker(order.symbol)
                       and not (order.oco_group and o.oco_group == order.oco_group))  # fmt: skip
        if order.quantity > held - reserved + 1e-9:
            raise OrderRejected(
                "insufficient_position",
                f"selling {order.quantity:g} {order.symbol} but only {held - reserved:g} is held and free (no short sales)",
            )

    def _request(self, order: OrderRequest, cid: str | None = None):
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import (
            LimitOrderRequest,
            MarketOrderRequest,
            StopOrderRequest,
        )

        common = {
            "symbol": self._ticker(order.symbol),
            "qty": int(order.quantity),
            "side": OrderSide(order.side),
            "client_order_id": cid or order.client_order_id,
        }
        if order.type == "market":
            return MarketOrderRequest(**common, time_in_force=TimeInForce.DAY)
        if order.type == "stop_loss":
            return StopOrderRequest(**common, time_in_force=TimeInForce.GTC, stop_price=order.stop_price)
        return LimitOrderRequest(**common, time_in_force=TimeInForce.GTC, limit_price=order.limit_price)

    def _submit(self, what: str, request) -> dict:
        """Submit; after a temporary error ask for the client order id before sending again."""
        cid = request.client_order_id

        def send() -> dict:
            try:
                return self.trading.submit_order(request)
            except Exception as e:
                err = _translate(e, what)
                if isinstance(err, OrderRejected) and err.reason == "duplicate_order":  # an earlier try did arrive
                    return self._call(f"order {cid}", self.trading.get_order_by_client_id, cid)
                raise err from e

        def lookup() -> dict | None:
            try:
                return self.trading.get_order_by_client_id(cid)
            except Exception as e:
                err = _translate(e, f"order {cid}")
                if isinstance(err, OrderRejected) and err.reason == "unknown_order":
                    return None  # it did not arrive: it may be sent again
                raise err from e

        return send_idempotent(send, lookup, policy=self.retry, venue=self.name, what=what)

    def _send(self, order: OrderRequest, request) -> BrokerOrder:
        v = self._submit(f"order {order.client_order_id}", request)
        self.ledger.put(order.client_order_id, kind="order", ref=v["id"], oco_group=order.oco_group, symbol=order.symbol, side=order.side,
                        type=order.type, quantity=float(order.quantity), limit_price=order.limit_price, stop_price=order.stop_price)  # fmt: skip
        return self._raise_if_rejected(self._to_order(v, self.ledger.require(order.client_order_id)))

    def _place_exit(self, order: OrderRequest) -> BrokerOrder:
        last = self._last(order.symbol)
        sell = order.side == "sell"
        trig = order.stop_level if order.type == "stop_loss" else order.limit_level
        at_once = (
            (trig >= last if sell else trig <= last)
            if order.type == "stop_loss"
            else (trig <= last if sell else trig >= last)
        )
        if at_once:
            raise OrderRejected(
                "bad_price",
                f"a {order.side} {order.type.replace('_', '-')} at {trig:g} would trigger at once ({order.symbol} last {last:g})",
            )
        sibling = None
        if order.oco_group:
            for r in self.ledger.find(kind="order", oco_group=order.oco_group):
                o = self._status_of_row(r)
                if (
                    r["client_order_id"] != order.client_order_id
                    and r["type"] != order.type
                    and o.status == "SUBMITTED"
                ):
                    sibling = r
                    break
        if sibling is None or not sell:
            return self._send(order, self._request(order))
        # the pair becomes one OCO order: the take-profit limit with the stop as its leg
        self._cancel_id(sibling["ref"])
        if self._status_of_row(sibling).filled_quantity > 0:
            raise OrderRejected(
                "bad_order",
                f"the other exit of {order.oco_group} filled while pairing: {order.client_order_id} not placed",
            )
        rows = {sibling["type"]: sibling, order.type: {"client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side,
                "type": order.type, "quantity": float(order.quantity), "limit_price": order.limit_price, "stop_price": order.stop_price}}  # fmt: skip
        tp, sl = rows["take_profit"], rows["stop_loss"]
        v = self._submit(f"OCO pair {order.oco_group}", self._oco_request(order, tp["limit_price"], sl["stop_price"]))
        stop_id = ((v.get("legs") or [{}])[0]).get("id")
        for leg, r in (("parent", tp), ("stop", sl)):
            self.ledger.put(r["client_order_id"], kind="oco", ref=v["id"], leg=leg, state=None, tag=stop_id if leg == "stop" else None, oco_group=order.oco_group, symbol=r["symbol"],
                            side=r["side"], type=r["type"], quantity=float(r["quantity"]), limit_price=r["limit_price"], stop_price=r["stop_price"])  # fmt: skip
        return self._require(order.client_order_id)

    def _oco_request(self, order: OrderRequest, tp: float, sl: float):
        from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
        from alpaca.trading.requests import (
            LimitOrderRequest,
            StopLossRequest,
            TakeProfitRequest,
        )

        cid = "oco-" + hashlib.sha1(f"{order.oco_group}|{tp}|{sl}|{order.quantity}".encode()).hexdigest()[:28]
        return LimitOrderRequest(symbol=self._ticker(order.symbol), qty=int(order.quantity), side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                 order_class=OrderClass.OCO, limit_price=tp, take_profit=TakeProfitRequest(limit_price=tp),
                                 stop_loss=StopLossRequest(stop_price=sl), client_order_id=cid)  # fmt: skip

    def _resubmit_alone(self, row: dict) -> None:
        req = OrderRequest(row["client_order_id"], row["symbol"], row["side"], float(row["quantity"]), row["type"],
                           limit_price=row["limit_price"], stop_price=row["stop_price"], oco_group=row["oco_group"])  # fmt: skip
        n = len(self.ledger.find(oco_group=row["oco_group"]))
        v = self._submit(f"order {req.client_order_id}", self._request(req, cid=f"{req.client_order_id}-r{n}"))
        self.ledger.put(req.client_order_id, kind="order", ref=v["id"], leg=None, state=None)

    def _cancel_id(self, oid: str) -> None:
        try:
            self._call(f"cancel of {oid}", self.trading.cancel_order_by_id, oid)
        except OrderRejected as e:
            if e.reason != "not_cancellable":
                raise

    def _last(self, symbol: str) -> float:
        q = self.quotes([symbol]).get(symbol)
        if q is None:
            raise OrderRejected(
                "no_price", f"Alpaca has no last trade for {symbol}: an exit needs one to check its price"
            )
        return q.last

    # ---- reading orders back ------------------------------------------------------------------------
    def _lookup(self, cid: str) -> BrokerOrder | None:
        row = self.ledger.get(cid)
        if row is not None:
            return self._status_of_row(row)
        try:
            v = self._call(f"order {cid}", self.trading.get_order_by_client_id, cid)
        except OrderRejected as e:
            if e.reason == "unknown_order":
                return None
            raise
        return self._to_order(v)

    def _require(self, cid: str) -> BrokerOrder:
        o = self._lookup(cid)
        if o is None:
            raise OrderRejected("unknown_order", f"Alpaca has no order with client_order_id {cid}")
        return o

    def _status_of_row(self, row: dict) -> BrokerOrder:
        from alpaca.trading.requests import GetOrderByIdRequest

        v = self._call(
            f"order {row['client_order_id']}",
            self.trading.get_order_by_id,
            row["ref"],
            GetOrderByIdRequest(nested=True),
        )
        if row["kind"] == "oco":
            return self._pair_order(row, v)
        return self._to_order(v, row)

    def _pair_order(self, row: dict, parent: dict) -> BrokerOrder:
        v = parent if row["leg"] == "parent" else (parent.get("legs") or [parent])[0]
        o = self._to_order(v, row)
        if row["state"] == "CANCELLED" and not o.is_final:
            o = replace(o, status="CANCELLED")
        return o

    def _cid_of(self, oid: str) -> str:
        """Client order id of a venue order id (fills name venue ids; an OCO stop leg has its own)."""
        if oid not in self._cids:
            rows = [
                r for r in self.ledger.find(ref=oid) if r["kind"] == "order" or r["leg"] == "parent"
            ] or self.ledger.find(tag=oid)
            self._cids[oid] = (
                rows[0]["client_order_id"]
                if rows
                else self._call(f"order {oid}", self.trading.get_order_by_id, oid)["client_order_id"]
            )
        return self._cids[oid]

    def _to_order(self, v: dict, row: dict | None = None) -> BrokerOrder:
        filled = _f(v.get("filled_qty"))
        status: OrderStatus = _STATUS.get(v["status"]) or ("PARTIALLY_FILLED" if filled > 0 else "SUBMITTED")
        kinds: dict[str, OrderType] = {"market": "market", "limit": "limit", "stop": "stop_loss"}
        kind = kinds.get(str(v.get("type") or v.get("order_type")), "market")
        cid = row["client_order_id"] if row is not None else v["client_order_id"]
        symbol = (
            row["symbol"]
            if row is not None
            else f"{(self._assets.get(v['symbol']) or {}).get('exchange', '')}:{v['symbol']}".lstrip(":")
        )
        return BrokerOrder(
            cid, symbol, v["side"], _f(v.get("qty")), status, filled_quantity=filled, average_price=_f(v.get("filled_avg_price")) or None,
            broker_order_id=v["id"], reason=f"alpaca: {v['status']}" if status in ("REJECTED", "CANCELLED", "EXPIRED") else None,
            type=row["type"] if row is not None else kind, limit_price=row["limit_price"] if row is not None else (_f(v.get("limit_price")) or None),
            stop_price=row["stop_price"] if row is not None else (_f(v.get("stop_price")) or None), oco_group=row["oco_group"] if row is not None else None,
        )  # fmt: skip

    @staticmethod
    def _raise_if_rejected(o: BrokerOrder) -> BrokerOrder:
        if o.status == "REJECTED":
            raise OrderRejected("bad_order", f"Alpaca rejected order {o.client_order_id}: {o.reason}")
        return o


def alpaca_keys(settings: Settings | None, vault: Vault | None) -> tuple[str, str]:
    """(api key, secret) from the vault (``alpaca/api_key``, ``alpaca/secret``) or their environment
    variables (``WORKBENCH_KEY_ALPACA_API_KEY``, ``WORKBENCH_KEY_ALPACA_SECRET``)."""
    key, sec = secret_value(vault, "alpaca/api_key"), secret_value(vault, "alpaca/secret")
    if not key or not sec:
        raise AuthenticationError(
            f"no Alpaca keys: store them with `workbench keys set alpaca` (or set {secret_env_name('alpaca/api_key')} and "
            f"{secret_env_name('alpaca/secret')}); use paper-trading keys unless broker.testnet is off"
        )
    return key, sec


def make_broker(
    settings: Settings,
    config: AlpacaConfig | None = None,
    *,
    instance: str | None = None,
    vault: Vault | None = None,
    store=None,
) -> AlpacaBroker:
    """The registry's factory."""
    return AlpacaBroker.from_settings(settings, vault=vault, config=config)
