"""``CcxtBroker``: any ccxt exchange behind the ``Broker`` protocol; Binance spot first, testnet by default.

Why it is shaped this way:
- **Never a duplicate order.** Every order goes out with the caller's client order id, and ``place``
  first asks the venue about that id: on Binance ids are unique only among *open* orders, so re-sending
  the id of a filled order would buy twice. When a send fails in a way that leaves its fate unknown
  (network error, timeout, 429, 5xx, Binance's -1000/-1001/-1006 "execution status unknown") the id is
  looked up again before any re-send (``workbench.venues.retry``, the one retry layer).
- **The venue's rules are checked before sending.** Lot size, tick size and minimum notional come from
  ccxt's markets; an order off the grid is rejected here with the same ``REJECT_REASONS`` code the
  paper broker uses (silently rounding would change what the caller asked for), and quantities and
  prices go out through ``amount_to_precision``/``price_to_precision`` so no float noise is sent.
- **Exits rest at the venue where it can hold them.** A stop-loss is the venue's stop order (Binance:
  ``STOP_LOSS_LIMIT`` with a limit ``stop_limit_buffer`` beyond the stop, or ``STOP_LOSS`` where the
  market allows it), a take-profit its take-profit-limit. The loop sends an exit pair one leg at a
  time; on Binance the second leg of a pair turns both into one OCO order list (the first leg is
  withdrawn and re-sent inside the list under its own id), because two separate sells of the whole
  position would need the position twice. A venue without native stops answers
  ``OrderRejected("bad_order")`` and the loop's market-sell fallback guards the position.
- **Errors say what to do** (``workbench.errors``): authentication → the key is wrong or lacks trade
  permission; insufficient funds, filter failures, prices that would trigger at once → ``OrderRejected``
  with the reason; rate limits, DDoS protection, timeouts, 5xx and the rest of ccxt's ``OperationFailed``
  family (the venue's outcome is unknown) → retried with backoff, then ``TemporaryBrokerError``;
  maintenance → ``ExchangeUnavailable``.
- **What a venue cannot remember for us** (which symbol a client order id trades, which OCO group an
  order list is) is written to the ``OrderLedger`` before the order is sent.

Secrets never reach a log or an exception message (``redact``); error texts are stripped of signed
query strings.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import ccxt
import pandas as pd

from workbench.errors import ConfigError
from workbench.security.vault import redact, secret_env_name, secret_value, vault_of
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
    grid_error,
)
from workbench.venues.ccxt.config import CcxtConfig
from workbench.venues.ccxt.data import deep_merge
from workbench.venues.ledger import OrderLedger
from workbench.venues.retry import RetryPolicy, retry_call, send_idempotent

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = ["CcxtBroker", "make_broker"]

_RAW_STATUS: dict[str, OrderStatus] = {
    "NEW": "SUBMITTED", "PARTIALLY_FILLED": "PARTIALLY_FILLED", "FILLED": "FILLED", "CANCELED": "CANCELLED",
    "CANCELLED": "CANCELLED", "PENDING_CANCEL": "CANCELLED", "REJECTED": "REJECTED", "EXPIRED": "EXPIRED",
    "EXPIRED_IN_MATCH": "EXPIRED",
}  # fmt: skip
_UNIFIED_STATUS: dict[str, OrderStatus] = {
    "open": "SUBMITTED",
    "closed": "FILLED",
    "canceled": "CANCELLED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
}
_RAW_TYPE: dict[str, OrderType] = {
    "MARKET": "market", "LIMIT": "limit", "STOP_LOSS": "stop_loss", "STOP_LOSS_LIMIT": "stop_loss",
    "TAKE_PROFIT": "take_profit", "TAKE_PROFIT_LIMIT": "take_profit", "LIMIT_MAKER": "take_profit",
}  # fmt: skip
_SIGNED_QUERY = re.compile(r"\?\S*")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


class CcxtBroker:
    """A ccxt exchange as a ``Broker``. See the module doc for why it behaves as it does."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None,
        secret: str | None,
        password: str | None = None,
        testnet: bool = True,
        options: dict | None = None,
        urls: dict | None = None,
        timeout_s: float = 10.0,
        account: str | None = None,
        ccxt_config: dict | None = None,
        currency: str | None = None,
        ledger: OrderLedger | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        stop_limit_buffer: float = 0.01,
    ):
        if not hasattr(ccxt, exchange_id):
            raise ConfigError(f"ccxt has no exchange '{exchange_id}'; pick one of ccxt.exchanges, e.g. 'binance'")
        if retries < 1 or backoff_s < 0 or not (0 <= stop_limit_buffer < 0.5):
            raise ValueError("retries must be ≥ 1, backoff_s ≥ 0 and stop_limit_buffer in [0, 0.5)")
        self.exchange_id = exchange_id
        self.name = f"ccxt:{exchange_id}"
        self.account = account or exchange_id
        self.currency = currency
        self.testnet = bool(testnet)
        self.retries, self.backoff_s, self.stop_limit_buffer = int(retries), float(backoff_s), float(stop_limit_buffer)
        self.retry = RetryPolicy(attempts=self.retries, backoff_s=self.backoff_s, max_wait_s=5.0)
        self.ledger = ledger if ledger is not None else OrderLedger(None, venue=self.name, account=self.account)
        self._has_keys = bool(api_key and secret)
        self._key_hint = redact(api_key)
        config = deep_merge({"enableRateLimit": True, "timeout": int(timeout_s * 1000)}, ccxt_config or {})
        # a spot broker needs neither the currencies' nor the margin pairs' endpoints (testnets have neither)
        spot = {"fetchCurrencies": False, "fetchMargins": False, "warnOnFetchOpenOrdersWithoutSymbol": False}
        config = deep_merge(config, {"options": {**spot, **(options or {})}})
        config.update({k: v for k, v in (("apiKey", api_key), ("secret", secret), ("password", password)) if v})
        url_overrides = deep_merge(config.pop("urls", {}), urls or {})
        self.exchange: ccxt.Exchange = getattr(ccxt, exchange_id)(config)
        fm = self.exchange.options.get("fetchMarkets")
        if isinstance(fm, dict) and "types" in fm and "fetchMarkets" not in (options or {}):
            fm["types"] = ["spot"]  # a spot broker: derivatives' markets are neither needed nor on every testnet
        if self.testnet:
            try:
                self.exchange.set_sandbox_mode(True)
            except ccxt.NotSupported as e:
                raise ConfigError(
                    f"{exchange_id} has no testnet in ccxt; to trade it for real set broker.testnet = false (and ask an admin for the trade_live permission)"
                ) from e
        if url_overrides:  # after sandbox mode: in sandbox the client talks to what 'test' names
            self.exchange.urls = deep_merge(self.exchange.urls, url_overrides)
            if self.testnet and "test" in url_overrides:
                self.exchange.urls["api"] = deep_merge(self.exchange.urls["api"], url_overrides["test"])
        self._names: dict[str, str] = {}  # ccxt symbol -> the caller's spelling
        self._fees: dict[tuple[str, float], float] = {}  # (order id, filled) -> fee in quote currency
        self._rejected: dict[str, OrderRejected] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        exchange_id: str,
        vault: Vault | None = None,
        config: CcxtConfig | None = None,
        **overrides: Any,
    ) -> CcxtBroker:
        """The broker the settings describe (``[broker]`` and ``[venues.ccxt]``), keys from the vault
        (``ccxt:<id>/api_key``, ``/secret``, ``/password``) or else their one environment variable each
        (``WORKBENCH_KEY_CCXT_<ID>_API_KEY``, ...)."""
        b = settings.broker
        if config is None:
            from workbench.venues import venue_config

            config = venue_config(settings, "ccxt", CcxtConfig)
        vault = vault_of(settings, vault)

        def name(field: str) -> str:
            return f"ccxt:{exchange_id}/{field}"

        def read(field: str) -> str | None:
            return secret_value(vault, name(field))

        api_key, secret = read("api_key"), read("secret")
        if not api_key or not secret:
            raise AuthenticationError(
                f"no API key for {exchange_id}: store it with `workbench keys set ccxt:{exchange_id}` "
                f"(or set {secret_env_name(name('api_key'))} and {secret_env_name(name('secret'))}); "
                f"use a {'testnet' if b.testnet else 'live'} key with spot trading enabled"
            )
        store_url = getattr(settings, "store_url", None)
        kw: dict[str, Any] = dict(
            api_key=api_key,
            secret=secret,
            password=read("password"),
            testnet=b.testnet,
            options=config.options.get(exchange_id),
            urls=config.urls.get(exchange_id),
            timeout_s=b.timeout_s,
            currency=getattr(b, "currency", None) or "USDT",
            stop_limit_buffer=config.stop_limit_buffer,
            ccxt_config={"enableRateLimit": config.rate_limit},
        )
        kw.update(overrides)
        if "ledger" not in kw:
            kw["ledger"] = OrderLedger(store_url, venue=f"ccxt:{exchange_id}", account=kw.get("account") or exchange_id)
        return cls(exchange_id, **kw)

    def __repr__(self) -> str:
        return f"CcxtBroker({self.exchange_id!r}, environment={self.environment!r}, api_key={self._key_hint})"

    # ---- protocol: status and reference data ----------------------------------------------------
    @property
    def environment(self) -> Literal["paper", "testnet", "live"]:
        return "testnet" if self.testnet else "live"

    def check(self) -> BrokerStatus:
        """Markets load (the venue answers) and a signed balance request passes (the key works).
        A key the venue refuses raises ``AuthenticationError``; a venue that does not answer is ok=False."""
        where = f"{self.exchange_id} {self.environment}"
        if not self._has_keys:
            raise AuthenticationError(
                f"no API key for {self.exchange_id}: store it with `workbench keys set ccxt:{self.exchange_id}`"
            )
        try:
            self._load_markets()
            bal = self._call("fetch_balance", self.exchange.fetch_balance)
        except (TemporaryBrokerError, ExchangeUnavailable) as e:
            return BrokerStatus(ok=False, environment=self.environment, message=f"{where} is not reachable: {e}")
        info = bal.get("info") if isinstance(bal.get("info"), dict) else {}
        if info.get("canTrade") is False:
            return BrokerStatus(False, self.environment, f"{where}: the key {self._key_hint} reads the account but lacks trade permission; "
                                                         "enable spot trading for it, then store it again")  # fmt: skip
        cash = ", ".join(f"{v:,.2f} {k}" for k, v in sorted((bal.get("total") or {}).items()) if v)
        return BrokerStatus(
            True,
            self.environment,
            f"{where}: key {self._key_hint} accepted, {len(self.exchange.markets)} markets; balances: {cash or 'none'}",
        )

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        out = {}
        for s in symbols:
            m = self._market_or_none(s)
            if m is not None:
                out[s] = Market(
                    symbol=s, base=m["base"], quote=m["quote"], lot_size=self._step(m, "amount"), tick_size=self._step(m, "price"),
                    min_notional=float(((m.get("limits") or {}).get("cost") or {}).get("min") or 0.0), exchange=self.exchange_id,
                )  # fmt: skip
        return out

    def balances(self) -> dict[str, Balance]:
        bal = self._call("fetch_balance", self.exchange.fetch_balance)
        totals, frees = bal.get("total") or {}, bal.get("free") or {}
        out = {c: Balance(c, free=float(frees.get(c) or 0.0), total=float(t or 0.0)) for c, t in totals.items() if t}
        if self.currency and self.currency not in out:
            out[self.currency] = Balance(self.currency, 0.0, 0.0)
        return out

    def buying_power(self, currency: str | None = None) -> float:
        """Free cash in ``currency`` (default: the account currency): what a new buy may spend."""
        ccy = currency or self.currency
        if ccy is None:
            raise ConfigError("buying_power needs a currency: pass one or construct the broker with currency=")
        b = self.balances().get(ccy)
        return b.free if b is not None else 0.0

    def positions(self) -> dict[str, float]:
        """Spot: the base-currency balance of each market this broker has been asked about (a base
        shared by several quotes counts once, under the account currency's market when there is
        one); dust below the lot size is not a position (it cannot be sold)."""
        totals = self._call("fetch_balance", self.exchange.fetch_balance).get("total") or {}
        out: dict[str, float] = {}
        seen: dict[str, str] = {}
        for sym in sorted(self._names, key=lambda s: (self.exchange.markets[s]["quote"] != self.currency, s)):
            m = self.exchange.markets[sym]
            qty = float(totals.get(m["base"]) or 0.0)
            if m["base"] in seen or qty < max(self._step(m, "amount"), 1e-12):
                continue
            seen[m["base"]] = sym
            out[self._names[sym]] = qty
        return out

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        wanted = {self._ccxt_symbol(s): s for s in symbols if self._market_or_none(s) is not None}
        if not wanted:
            return {}
        tickers = self._call("fetch_tickers", self.exchange.fetch_tickers, list(wanted))
        out = {}
        for sym, caller in wanted.items():
            t = tickers.get(sym)
            last = t and (t.get("last") or t.get("close"))
            if not last:
                continue
            ts = pd.Timestamp(t["timestamp"], unit="ms", tz="UTC") if t.get("timestamp") else pd.Timestamp.now(tz="UTC")
            out[caller] = Quote(caller, float(last), ts, bid=t.get("bid"), ask=t.get("ask"), volume=t.get("baseVolume"),
                                high=t.get("high"), low=t.get("low"), open=t.get("open"))  # fmt: skip
        return out

    # ---- protocol: orders -----------------------------------------------------------------------
    def place(self, order: OrderRequest) -> BrokerOrder:
        cid = order.client_order_id
        if cid in self._rejected:  # idempotent: a re-send gets the answer the first send got
            raise self._rejected[cid]
        try:
            return self._place(order)
        except OrderRejected as e:
            if e.reason != "unknown_order":
                self._rejected[cid] = e
            raise

    def _place(self, order: OrderRequest) -> BrokerOrder:
        cid = order.client_order_id
        m = self._market_or_none(order.symbol)
        if m is None:
            raise OrderRejected(
                "unknown_symbol", f"{order.symbol} is not a market of {self.exchange_id}; check the symbol (BASE/QUOTE)"
            )
        existing = self._lookup(cid, m["symbol"])
        if existing is not None:
            return existing
        self._validate(order, m)
        group = order.oco_group
        pair = self._pair_for(order) if group else None
        self.ledger.put(cid, kind="order", symbol=order.symbol, side=order.side, type=order.type, quantity=float(order.quantity),
                        limit_price=order.limit_price, stop_price=order.stop_price, oco_group=group, leg=None)  # fmt: skip
        if pair is not None:
            return self._place_oco(pair, order, m)
        return self._send_verified(cid, m["symbol"], lambda: self._create(order, m))

    def cancel(self, client_order_id: str) -> BrokerOrder:
        current = self.order_status(client_order_id)
        if current.is_final:
            return current
        sym = self._ccxt_symbol(current.symbol)
        try:
            self._call(
                "cancel_order",
                self.exchange.cancel_order,
                None,
                sym,
                {"origClientOrderId": client_order_id, "clientOrderId": client_order_id},
            )
        except OrderRejected as e:  # it became final (filled) between the two requests
            if e.reason != "unknown_order":
                raise
        return self.order_status(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder:
        row = self.ledger.get(client_order_id)
        candidates = [self._ccxt_symbol(row["symbol"])] if row and row.get("symbol") else []
        candidates += [s for s in self._names if s not in candidates]
        for sym in candidates:
            found = self._lookup(client_order_id, sym)
            if found is not None:
                return found
        raise OrderRejected(
            "unknown_order", f"{self.exchange_id} has no order {client_order_id} (searched {len(candidates)} market(s))"
        )

    def open_orders(self) -> list[BrokerOrder]:
        rows = self._call("fetch_open_orders", self.exchange.fetch_open_orders)
        return [self._to_order(o) for o in rows]

    def fills_for(self, client_order_id: str) -> list[Fill]:
        """One order's fills (the optional per-order extension of the protocol)."""
        o = self.order_status(client_order_id)
        if o.filled_quantity <= 0 or o.broker_order_id is None:
            return []
        sym = self._ccxt_symbol(o.symbol)
        trades = self._call(
            "fetch_my_trades", self.exchange.fetch_my_trades, sym, None, None, {"orderId": o.broker_order_id}
        )
        return [self._to_fill(t, client_order_id) for t in trades if str(t.get("order")) == str(o.broker_order_id)]

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]:
        """Fills on every market this broker has been asked about (Binance lists trades per symbol)."""
        since_ms = int(pd.Timestamp(since).value // 1_000_000) if since is not None else None
        out: list[Fill] = []
        for sym in sorted(self._names):
            for t in self._call("fetch_my_trades", self.exchange.fetch_my_trades, sym, since_ms):
                out.append(self._to_fill(t, self._cid_of(str(t.get("order")), sym)))
        return sorted(out, key=lambda f: (f.ts, f.fill_id))

    # ---- sending --------------------------------------------------------------------------------
    def _validate(self, order: OrderRequest, m: dict) -> None:
        lot, tick = self._step(m, "amount"), self._step(m, "price")
        off_grid = grid_error(order, lot, tick)
        if off_grid is not None:
            raise OrderRejected(*off_grid)
        min_qty = float(((m.get("limits") or {}).get("amount") or {}).get("min") or 0.0)
        if order.quantity < min_qty - 1e-12:
            raise OrderRejected(
                "lot_size", f"quantity {order.quantity:g} of {order.symbol} is below the minimum {min_qty:g}"
            )
        min_cost = float(((m.get("limits") or {}).get("cost") or {}).get("min") or 0.0)
        ref = order.limit_price or order.stop_price
        if ref is None and min_cost > 0:
            t = self._call("fetch_ticker", self.exchange.fetch_ticker, m["symbol"])
            ref = t.get("ask" if order.side == "buy" else "bid") or t.get("last")
        if ref and order.quantity * ref < min_cost:
            raise OrderRejected(
                "min_notional",
                f"order notional {order.quantity * ref:,.2f} is below {order.symbol}'s minimum {min_cost:,.2f}",
            )
        if order.type in ("stop_loss", "take_profit") and not self._native(order.type, m):
            raise OrderRejected(
                "bad_order",
                f"{self.exchange_id} takes no {order.type.replace('_', '-')} orders on {order.symbol}: the exit is managed by the loop",
            )

    def _native(self, kind: str, m: dict) -> bool:
        allowed = (m.get("info") or {}).get("orderTypes")
        if kind == "stop_loss":
            ok = self.exchange.has.get("createStopLossOrder") or self.exchange.has.get("createStopOrder")
            return bool(ok) and (allowed is None or bool({"STOP_LOSS", "STOP_LOSS_LIMIT"} & set(allowed)))
        ok = self.exchange.has.get("createTakeProfitOrder")
        return bool(ok) and (allowed is None or bool({"TAKE_PROFIT", "TAKE_PROFIT_LIMIT"} & set(allowed)))

    def _stop_limit(self, side: str, stop: float, m: dict) -> float:
        """The limit of a stop-limit: ``stop_limit_buffer`` beyond the stop, on the tick grid, so the
        triggered order still fills in a fast market (a stop is no promise of its price)."""
        tick = self._step(m, "price") or 1e-8
        raw = stop * (1 - self.stop_limit_buffer) if side == "sell" else stop * (1 + self.stop_limit_buffer)
        n = math.floor(raw / tick + 1e-9) if side == "sell" else math.ceil(raw / tick - 1e-9)
        return float(self.exchange.price_to_precision(m["symbol"], n * tick))

    def _create(self, order: OrderRequest, m: dict) -> dict:
        sym = m["symbol"]
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        amount = float(self.exchange.amount_to_precision(sym, order.quantity))

        def px(p: float) -> float:
            return float(self.exchange.price_to_precision(sym, p))

        if order.type == "market":
            return self.exchange.create_order(sym, "market", order.side, amount, None, params)
        if order.type == "limit":
            return self.exchange.create_order(sym, "limit", order.side, amount, px(order.limit_level), params)
        if order.type == "stop_loss":
            params["stopLossPrice"] = px(order.stop_level)
            if "STOP_LOSS" in ((m.get("info") or {}).get("orderTypes") or ["STOP_LOSS"]):
                return self.exchange.create_order(sym, "market", order.side, amount, None, params)
            return self.exchange.create_order(
                sym, "limit", order.side, amount, self._stop_limit(order.side, order.stop_level, m), params
            )
        params["takeProfitPrice"] = px(order.limit_level)
        return self.exchange.create_order(sym, "limit", order.side, amount, px(order.limit_level), params)

    def _send_verified(self, cid: str, sym: str, send: Callable[[], Any], stale: str | None = None) -> BrokerOrder:
        """Send; when the outcome is unknown (network, timeout, 429, 5xx, -1000/-1001/-1006) ask whether
        the order arrived before sending it again, so a retry never duplicates it. ``stale``: the venue
        id of an earlier, final order under the same client id (a re-sent OCO leg), which is not an answer."""

        def lookup() -> BrokerOrder | None:
            found = self._lookup(cid, sym, retry=False)
            return found if found is not None and found.broker_order_id != stale else None

        try:
            out = send_idempotent(
                send,
                lookup,
                policy=self.retry,
                venue=self.name,
                what=f"order {cid}",
                translate=lambda e: self._translate(e, f"placing {cid}", side=self._side_of(cid)),
                catch=ccxt.BaseError,
            )
        except OrderRejected as e:
            if e.reason != "duplicate_order":
                raise
            # "Duplicate order": the venue holds an open order under this id (an earlier send arrived, the
            # look-up did not see it yet). It is ours: asked for, never booked as a rejection.
            found = lookup()
            if found is None:
                raise TemporaryBrokerError(
                    f"{self.exchange_id} calls order {cid} a duplicate but does not list it yet; "
                    "order_status() will tell once it does"
                ) from e
            return found
        return out if isinstance(out, BrokerOrder) else self._answer(out, cid, sym)

    def _answer(self, answer: Any, cid: str, sym: str) -> BrokerOrder:
        if isinstance(answer, dict) and answer.get("id") is not None and answer.get("amount") is not None:
            self.ledger.put(cid, ref=str(answer["id"]))
            return self._to_order(answer)
        found = self._lookup(cid, sym)  # an answer without the order in it: ask
        if found is None:
            raise TemporaryBrokerError(
                f"{self.exchange_id} accepted order {cid} but does not list it yet; ask order_status() shortly"
            )
        return found

    # ---- OCO exit pairs (Binance order lists) --------------------------------------------------------
    def _pair_for(self, order: OrderRequest) -> dict | None:
        """The open, untouched first leg of this order's exit pair, when the venue can join them."""
        if order.type not in ("stop_loss", "take_profit") or not hasattr(self.exchange, "privatePostOrderListOco"):
            return None
        for row in self.ledger.find(oco_group=order.oco_group):
            if (row["client_order_id"] != order.client_order_id and row["type"] in ("stop_loss", "take_profit") and row["type"] != order.type
                    and row["side"] == order.side and abs(float(row["quantity"]) - order.quantity) <= 1e-12 and row["symbol"] == order.symbol):  # fmt: skip
                return row
        return None

    def _place_oco(self, first: dict, order: OrderRequest, m: dict) -> BrokerOrder:
        sym = m["symbol"]
        try:
            cur = self._lookup(first["client_order_id"], sym)
        except TemporaryBrokerError:
            cur = None
        if cur is None or cur.status != "SUBMITTED" or cur.filled_quantity > 0:
            return self._send_verified(order.client_order_id, sym, lambda: self._create(order, m))
        first_req = OrderRequest(first["client_order_id"], order.symbol, first["side"], float(first["quantity"]), first["type"],
                                 limit_price=first["limit_price"], stop_price=first["stop_price"], oco_group=order.oco_group)  # fmt: skip
        self.cancel(first_req.client_order_id)
        stop, take = (first_req, order) if first_req.type == "stop_loss" else (order, first_req)
        group = order.oco_group
        assert group is not None, "_pair_for pairs only orders of one oco_group"
        list_id = group if _SAFE_ID.match(group) else "wb-" + hashlib.sha1(group.encode()).hexdigest()[:30]

        def px(p: float) -> str:
            return str(self.exchange.price_to_precision(sym, p))

        stop_leg = {"Type": "STOP_LOSS_LIMIT", "StopPrice": px(stop.stop_level), "Price": px(self._stop_limit(stop.side, stop.stop_level, m)),
                    "TimeInForce": "GTC", "ClientOrderId": stop.client_order_id}  # fmt: skip
        if "STOP_LOSS" in ((m.get("info") or {}).get("orderTypes") or []):
            stop_leg = {"Type": "STOP_LOSS", "StopPrice": px(stop.stop_level), "ClientOrderId": stop.client_order_id}
        take_leg = {"Type": "LIMIT_MAKER", "Price": px(take.limit_level), "ClientOrderId": take.client_order_id}
        above, below = (take_leg, stop_leg) if order.side == "sell" else (stop_leg, take_leg)
        request = {"symbol": m["id"], "side": order.side.upper(), "quantity": self.exchange.amount_to_precision(sym, order.quantity),
                   "listClientOrderId": list_id, "newOrderRespType": "FULL",
                   **{f"above{k}": v for k, v in above.items()}, **{f"below{k}": v for k, v in below.items()}}  # fmt: skip
        try:
            self._send_verified(order.client_order_id, sym, lambda: self.exchange.privatePostOrderListOco(request))
        except BrokerError:
            try:  # put the first leg's protection back on its own
                self._send_verified(
                    first_req.client_order_id, sym, lambda: self._create(first_req, m), stale=cur.broker_order_id
                )
            except BrokerError:
                pass
            raise
        for leg in (stop, take):
            self.ledger.put(leg.client_order_id, kind="oco", leg="stop" if leg is stop else "take")
        return self.order_status(order.client_order_id)

    # ---- reading --------------------------------------------------------------------------------
    def _lookup(self, cid: str, sym: str, retry: bool = True) -> BrokerOrder | None:
        """The venue's newest order with this client order id on ``sym``, or None when it has none
        (``retry=False``: asked once, for a caller that does its own retrying)."""
        call = self._call if retry else self._once
        try:
            by_cid = {"origClientOrderId": cid, "clientOrderId": cid}
            o = call("fetch_order", self.exchange.fetch_order, None, sym, by_cid)
        except OrderRejected as e:
            if e.reason == "unknown_order":
                return None
            raise
        if o.get("id") is not None:
            self.ledger.put(cid, ref=str(o["id"]))
        return self._to_order(o)

    def _cid_of(self, order_id: str, sym: str) -> str:
        rows = self.ledger.find(ref=order_id)
        if rows:
            return rows[0]["client_order_id"]
        o = self._call("fetch_order", self.exchange.fetch_order, order_id, sym)
        cid = o.get("clientOrderId") or f"venue-{order_id}"
        self.ledger.put(cid, kind="order", ref=order_id, symbol=self._names.get(sym, sym))
        return cid

    def _to_order(self, o: dict) -> BrokerOrder:
        info = o.get("info") or {}
        sym = str(o["symbol"])
        self._names.setdefault(sym, sym)
        cid = o.get("clientOrderId") or info.get("clientOrderId") or ""
        row = self.ledger.get(cid) if cid else None
        filled = float(o.get("filled") or 0.0)
        in_list = str(info.get("orderListId", "-1")) not in ("-1", "None")
        status: OrderStatus = _RAW_STATUS.get(str(info.get("status"))) or _UNIFIED_STATUS.get(
            str(o.get("status")), "SUBMITTED"
        )
        if status == "SUBMITTED" and filled > 0:
            status = "PARTIALLY_FILLED"
        reason = None
        if status == "EXPIRED" and in_list:
            status, reason = "CANCELLED", "oco: the other leg of the order list traded"
        elif status == "EXPIRED":
            reason = f"expired: {filled:g} of {o.get('amount')} filled, the venue did not fill the rest"
        kind: OrderType = _RAW_TYPE.get(str(info.get("type"))) or self._unified_type(o)
        if row and row.get("type") in ("stop_loss", "take_profit", "limit", "market"):
            kind = row["type"]
        trigger = o.get("triggerPrice") or o.get("stopPrice") or info.get("stopPrice")
        price = o.get("price")
        avg = o.get("average") or ((o.get("cost") or 0.0) / filled if filled else None)
        group = row.get("oco_group") if row else None
        if group is None and in_list:
            group = f"list-{info.get('orderListId')}"
        return BrokerOrder(
            client_order_id=cid, symbol=self._names.get(sym, sym), side=o["side"], quantity=float(o.get("amount") or 0.0),
            status=status, filled_quantity=filled, average_price=float(avg) if avg else None, fee=self._fee(o, filled, avg),
            broker_order_id=str(o["id"]) if o.get("id") is not None else None, reason=reason, type=kind,
            limit_price=float(price) if kind in ("limit", "take_profit") and price else None,
            stop_price=float(trigger) if kind == "stop_loss" and trigger and float(trigger) > 0 else None, oco_group=group,
        )  # fmt: skip

    @staticmethod
    def _unified_type(o: dict) -> OrderType:
        if o.get("stopLossPrice") or (o.get("triggerPrice") and not o.get("takeProfitPrice")):
            return "stop_loss"
        if o.get("takeProfitPrice"):
            return "take_profit"
        return "limit" if o.get("type") == "limit" else "market"

    def _fee(self, o: dict, filled: float, avg: float | None) -> float:
        """The order's fees in its quote currency (a fee taken in the base asset is valued at the
        average price; one in a third currency, e.g. BNB, is in the fills only). Binance's order
        query carries no fees, so they come from the order's trades, once per filled quantity."""
        if filled <= 0:
            return 0.0
        m = self.exchange.markets.get(o.get("symbol")) or {}
        fees = o.get("fees") or ([o["fee"]] if o.get("fee") else [])
        key = (str(o.get("id")), filled)
        if not fees:
            if key in self._fees:
                return self._fees[key]
            try:
                trades = self.exchange.fetch_my_trades(o["symbol"], None, None, {"orderId": o["id"]})
            except ccxt.BaseError:
                return 0.0
            fees = [t["fee"] for t in trades if t.get("fee")]
        total = 0.0
        for f in fees:
            cost = float(f.get("cost") or 0.0)
            if f.get("currency") == m.get("quote"):
                total += cost
            elif f.get("currency") == m.get("base"):
                total += cost * float(avg or 0.0)
        self._fees[key] = total
        return total

    def _to_fill(self, t: dict, cid: str) -> Fill:
        fee = t.get("fee") or {}
        sym = str(t["symbol"])
        m = self.exchange.markets.get(sym) or {}
        return Fill(
            fill_id=f"{m.get('id', sym)}-{t['id']}", client_order_id=cid, symbol=self._names.get(sym, sym), side=t["side"],
            quantity=float(t["amount"]), price=float(t["price"]), fee=float(fee.get("cost") or 0.0), fee_currency=fee.get("currency") or "",
            ts=pd.Timestamp(t["timestamp"], unit="ms", tz="UTC"), extra={"order_id": str(t.get("order")), "taker_or_maker": t.get("takerOrMaker")},
        )  # fmt: skip

    # ---- markets, symbols, errors ---------------------------------------------------------------------
    def _load_markets(self) -> dict:
        if not self.exchange.markets:
            self._call("load_markets", self.exchange.load_markets)
        return self.exchange.markets

    def _ccxt_symbol(self, symbol: str) -> str:
        prefix = f"{self.exchange_id}:"
        return symbol.removeprefix(prefix)

    def _market_or_none(self, symbol: str) -> dict | None:
        """ccxt's market for a symbol written ``BASE/QUOTE`` or ``<exchange id>:BASE/QUOTE`` (the
        caller's spelling is what comes back in orders, fills and positions)."""
        sym = self._ccxt_symbol(symbol)
        m = self._load_markets().get(sym)
        if m is None or m.get("active") is False:
            return None
        self._names[sym] = symbol
        return m

    @staticmethod
    def _step(m: dict, field: str) -> float:
        return float((m.get("precision") or {}).get(field) or 0.0)

    def _side_of(self, cid: str) -> str | None:
        row = self.ledger.get(cid)
        return row["side"] if row else None

    def _call(self, what: str, fn: Callable, *args: Any) -> Any:
        """One ccxt call: temporary failures retried with exponential backoff, every ccxt error
        translated; a clock drift (-1021) resynchronises the client's clock before the retry."""

        def translate(e: Exception) -> BrokerError:
            return self._translate(e, what)

        return retry_call(
            lambda: fn(*args), policy=self.retry, venue=self.name, what=what, translate=translate, catch=ccxt.BaseError
        )

    def _once(self, what: str, fn: Callable, *args: Any) -> Any:
        """One ccxt call, not retried, its error translated."""
        try:
            return fn(*args)
        except ccxt.BaseError as e:
            raise self._translate(e, what) from e

    def _translate(self, e: Exception, what: str, side: str | None = None) -> BrokerError:
        text = _SIGNED_QUERY.sub("?…", str(e))
        if self.exchange.apiKey:
            text = text.replace(self.exchange.apiKey, redact(self.exchange.apiKey))
        where = f"{self.exchange_id} ({self.environment}) {what}"
        if isinstance(e, ccxt.AuthenticationError) or "-2015" in text or "-2014" in text:
            return AuthenticationError(
                f"{where}: the key is wrong or lacks trade permission ({text}). Check that the key {self._key_hint} belongs to the "
                f"{self.environment} and has spot trading enabled, then store it again: `workbench keys set ccxt:{self.exchange_id}`"
            )
        if isinstance(e, ccxt.OnMaintenance):
            return ExchangeUnavailable(f"{where}: the venue is in maintenance ({text}); no new orders until it is back")
        if isinstance(e, ccxt.InvalidNonce) or "-1021" in text:
            try:
                self.exchange.load_time_difference()
            except ccxt.BaseError:
                pass
            return TemporaryBrokerError(
                f"{where}: the request's timestamp was outside the venue's window; the clock was resynchronised ({text})"
            )
        if isinstance(e, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
            return TemporaryBrokerError(f"{where}: rate limited ({text}); backing off")
        if isinstance(e, ccxt.OperationFailed):  # network, 5xx, bad answers, Binance -1000/-1001/-1006: outcome unknown
            return TemporaryBrokerError(
                f"{where}: the venue did not answer cleanly ({type(e).__name__}: {text}); retry later"
            )
        if isinstance(e, ccxt.InsufficientFunds) or "insufficient balance" in text:
            code = "insufficient_position" if side == "sell" else "insufficient_funds"
            return OrderRejected(code, f"{where}: {text}")
        if isinstance(e, ccxt.OrderImmediatelyFillable) or "relationship of the prices" in text:
            return OrderRejected("bad_price", f"{where}: the price would trigger at once ({text})")
        if isinstance(e, ccxt.OrderNotFound):
            return OrderRejected("unknown_order", f"{where}: {text}")
        if isinstance(e, ccxt.BadSymbol):
            return OrderRejected("unknown_symbol", f"{where}: {text}")
        for needle, code in (
            ("LOT_SIZE", "lot_size"),
            ("PRICE_FILTER", "tick_size"),
            ("NOTIONAL", "min_notional"),
            ("Duplicate order", "duplicate_order"),
        ):
            if needle in text:
                return OrderRejected(code, f"{where}: {text}")
        if isinstance(e, (ccxt.InvalidOrder, ccxt.BadRequest, ccxt.ArgumentsRequired)):
            return OrderRejected("bad_order", f"{where}: {text}")
        return BrokerError(f"{where}: {type(e).__name__}: {text}")


def make_broker(
    settings: Settings,
    config: CcxtConfig | None = None,
    *,
    instance: str | None = None,
    vault: Vault | None = None,
    store=None,
) -> CcxtBroker:
    """The registry's factory: ``instance`` is the exchange id of ``ccxt:<id>``."""
    if not instance:
        raise ConfigError("a ccxt broker needs an exchange id: use ccxt:<exchange id>, e.g. ccxt:binance")
    return CcxtBroker.from_settings(settings, instance, vault=vault, config=config)
