"""Zerodha Kite Connect as a ``Broker``: NSE and BSE equities, delivery (CNC) or intraday (MIS).

Why it looks the way it does:
- **Sessions are daily.** Kite has no long-lived API token: the user logs in on Kite's page, which
  redirects with a ``request_token``; we trade it (with the API secret, checksum sha256(api_key +
  request_token + api_secret)) for an ``access_token`` that dies at 06:00 IST the next morning.
  ``kite_login_url`` / ``complete_kite_login`` run that flow and keep the token encrypted in the vault
  with its expiry; an expired or refused token is ``AuthenticationError`` telling the user to log in again.
- **No sandbox.** Every order is real money (``environment == "live"``); ``check()`` says so.
- **Client order ids become tags.** Kite's ``tag`` holds 20 alphanumerics, so the tag is
  ``"wb" + sha1(client id)[:18]``: from an id we can always find its order by listing the order book
  (that is how a lost answer is recovered before anything is sent again); the ledger
  (``workbench.venues.ledger``) names tags back to ids in listings.
- **Exits are GTT triggers** (CNC): a stop-loss or take-profit becomes a single-leg GTT, and its OCO
  sibling turns it into one two-leg GTT (Kite's native one-cancels-other). GTTs place LIMIT orders
  only, so a stop's order is priced ``stop_limit_pct`` beyond its trigger (a marketable limit).
  Intraday (MIS) exits are day SL-M / LIMIT orders instead (GTTs do not take MIS), whose OCO rule
  this adapter enforces: a fill of one leg cancels the others when the group is next looked at.
- **Kite's RMS rejects after accepting**: ``place_order`` returns an id and the order turns REJECTED
  with a message ("Insufficient funds. …"); that becomes ``OrderRejected`` with a stable reason.
- Charges (brokerage, STT, stamp duty) are not reported per order by the API; ``fee`` is 0 and the
  margins show them once Zerodha debits them.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from workbench.errors import ConfigError
from workbench.security.vault import secret_env_name, secret_value, vault_of
from workbench.venues.base import (
    AuthenticationError,
    Balance,
    BrokerError,
    BrokerOrder,
    BrokerStatus,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Quote,
    TemporaryBrokerError,
    reason_of,
)
from workbench.venues.kite.config import KiteConfig
from workbench.venues.ledger import OrderLedger
from workbench.venues.retry import RetryPolicy, retry_call, send_idempotent

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = [
    "LOGIN_HINT",
    "KiteBroker",
    "complete_kite_login",
    "kite_login_url",
    "kite_session",
    "kite_session_expiry",
    "kite_tag",
    "make_broker",
]

_IST = "Asia/Kolkata"
LOGIN_HINT = "log in again with `workbench keys kite-login`"
_STATUS: dict[str, OrderStatus] = {"COMPLETE": "FILLED", "CANCELLED": "CANCELLED", "REJECTED": "REJECTED"}
_GTT_FINAL: dict[str, OrderStatus] = {
    "cancelled": "CANCELLED",
    "deleted": "CANCELLED",
    "disabled": "CANCELLED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
}
_REASONS = [
    (re.compile(r"insufficient (funds|margin)|required margin", re.IGNORECASE), "insufficient_funds"),
    (re.compile(r"holding|insufficient (stock|quantity)|to sell", re.IGNORECASE), "insufficient_position"),
    (re.compile(r"tick size", re.IGNORECASE), "tick_size"),
    (re.compile(r"lot size|`quantity`", re.IGNORECASE), "lot_size"),
    (re.compile(r"instrument|tradingsymbol|does not exist", re.IGNORECASE), "unknown_symbol"),
    (re.compile(r"circuit|price band|price range|trigger", re.IGNORECASE), "bad_price"),
    (re.compile(r"find that `order_id`|invalid trigger id", re.IGNORECASE), "unknown_order"),
    (re.compile(r"cannot be (cancelled|modified)|not active", re.IGNORECASE), "not_cancellable"),
]


def kite_tag(client_order_id: str) -> str:
    """The order tag standing for a client order id: alphanumeric, 20 characters, deterministic."""
    return "wb" + hashlib.sha1(client_order_id.encode()).hexdigest()[:18]


def kite_session_expiry(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """When a session opened at ``now`` ends: the next 06:00 IST (in UTC)."""
    local = (now or pd.Timestamp.now(tz="UTC")).tz_convert(_IST)
    six = local.normalize() + pd.Timedelta(hours=6)
    return (six if local < six else six + pd.Timedelta(days=1)).tz_convert("UTC")


def _last_six(now: pd.Timestamp | None = None) -> pd.Timestamp:
    return kite_session_expiry(now) - pd.Timedelta(days=1)


def _config(settings: Settings) -> KiteConfig:
    from workbench.venues import venue_config

    return venue_config(settings, "kite", KiteConfig)


def _reason(message: str) -> str:
    return reason_of(message, _REASONS)


def _app_keys(settings: Settings, vault: Vault | None) -> tuple[str, str | None]:
    key = secret_value(vault, "kite/api_key")
    if not key:
        raise AuthenticationError(
            f"no Kite API key: store it in the vault as kite/api_key (`workbench keys set kite`) or set {secret_env_name('kite/api_key')}"
        )
    return key, secret_value(vault, "kite/api_secret")


def kite_session(settings: Settings, vault: Vault | None) -> tuple[str, str, pd.Timestamp | None]:
    """(api key, today's access token, its expiry): the token from the vault (``kite/access_token``,
    with its expiry) or else ``WORKBENCH_KEY_KITE_ACCESS_TOKEN`` (no expiry known)."""
    key, _ = _app_keys(settings, vault)
    token = vault.get("kite/access_token") if vault is not None else None
    if token is not None and token.value:
        if token.expired():
            raise AuthenticationError(_expired_message(token.expires_at))
        return key, token.value, token.expires_at
    env = secret_value(None, "kite/access_token")
    if not env:
        raise AuthenticationError(f"no Kite session stored: {LOGIN_HINT}")
    return key, env, None


def kite_login_url(settings: Settings, vault: Vault | None = None) -> str:
    """The Kite page where the user logs in; it redirects to the app's URL with ``request_token``."""
    from kiteconnect import KiteConnect

    key, _ = _app_keys(settings, vault_of(settings, vault))
    return KiteConnect(api_key=key).login_url()


def complete_kite_login(settings: Settings, request_token: str, vault: Vault | None = None) -> pd.Timestamp:
    """Trade the ``request_token`` from the login redirect for today's access token, store it
    encrypted (``kite/access_token``) with its expiry, and return the expiry (UTC)."""
    from kiteconnect import KiteConnect

    vault = vault_of(settings, vault)
    key, secret = _app_keys(settings, vault)
    if not secret:
        raise AuthenticationError(
            f"no Kite API secret: store it in the vault as kite/api_secret or set {secret_env_name('kite/api_secret')}"
        )
    if not request_token or not request_token.strip():
        raise AuthenticationError(
            "no request token: copy `request_token` from the URL Kite redirected to after the login"
        )
    kite = KiteConnect(api_key=key, root=_config(settings).root, timeout=settings.broker.timeout_s)
    try:
        session = kite.generate_session(request_token.strip(), api_secret=secret)
    except Exception as e:
        err = _translate(e, "the Kite login", None)
        if isinstance(err, AuthenticationError):
            raise AuthenticationError(
                f"Kite refused the request token ({e}): it is single-use and lives a few minutes. Open the login URL again and use the new token"
            ) from e
        raise err from e
    expiry = kite_session_expiry()
    if vault is None:
        raise ConfigError("no vault to keep the Kite access token in: log in first (`workbench login`)")
    vault.put("kite/access_token", session["access_token"], expires_at=expiry)
    return expiry


def _expired_message(expires_at: pd.Timestamp | None) -> str:
    at = expires_at if expires_at is not None and expires_at <= pd.Timestamp.now(tz="UTC") else _last_six()
    return f"Kite session expired at {at.tz_convert(_IST):%Y-%m-%d %H:%M} IST: {LOGIN_HINT}"


def _token_message(e: Exception, what: str, expires_at: pd.Timestamp | None) -> str:
    """Kite's own words first: a refused token is not always the 06:00 expiry (a login elsewhere
    revokes it, a token of another API key is refused), so the message says which is likely."""
    said = str(e).strip() or type(e).__name__
    if expires_at is not None and expires_at > pd.Timestamp.now(tz="UTC"):
        why = (
            f"the session should have lasted until {expires_at.tz_convert(_IST):%Y-%m-%d %H:%M} IST, so it was "
            "revoked (a newer login to the same app, or a logout) or the token belongs to another API key"
        )
    else:
        why = f"Kite sessions end at 06:00 IST (the last ended {_last_six().tz_convert(_IST):%Y-%m-%d %H:%M} IST)"
    return f'Kite refused the access token for {what}: "{said}"; {why}: {LOGIN_HINT}'


def _translate(e: Exception, what: str, expires_at: pd.Timestamp | None) -> Exception:
    """Kite's and requests' exceptions → the broker error tree (the message names the call)."""
    import requests
    from kiteconnect import exceptions as kx

    if isinstance(e, BrokerError):
        return e
    if isinstance(e, kx.TokenException):
        return AuthenticationError(_token_message(e, what, expires_at))
    if isinstance(e, kx.PermissionException):
        return AuthenticationError(
            f"Kite denied {what}: {e}. The API app lacks this permission; enable it on developers.kite.trade"
        )
    if isinstance(e, (kx.NetworkException, kx.DataException)) or (
        isinstance(e, kx.GeneralException) and getattr(e, "code", 500) >= 500
    ):
        return TemporaryBrokerError(
            f"Kite did not complete {what} ({type(e).__name__} {getattr(e, 'code', '')}: {e}); retry later"
        )
    if isinstance(e, (kx.InputException, kx.OrderException)):
        return OrderRejected(_reason(str(e)), f"Kite refused {what}: {e}")
    if isinstance(e, (requests.Timeout, requests.ConnectionError)):
        return TemporaryBrokerError(f"Kite did not answer {what} ({type(e).__name__}); retry later")
    return BrokerError(f"Kite failed {what}: {type(e).__name__}: {e}")


def _ist_to_utc(value) -> pd.Timestamp:
    if value is None or value == "":
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(value)
    return (ts.tz_localize(_IST) if ts.tzinfo is None else ts).tz_convert("UTC")


def _to_tick(price: float, tick: float, up: bool) -> float:
    n = price / tick
    n = math.ceil(n - 1e-9) if up else math.floor(n + 1e-9)
    return round(n * tick, 6)


class KiteBroker:
    """The ``Broker`` protocol over ``kiteconnect.KiteConnect``. Symbols are ``"NSE:INFY"`` /
    ``"BSE:INFY"`` (the instrument master's keys, Kite's own spelling)."""

    name = "kite"

    def __init__(
        self,
        api_key: str,
        access_token: str,
        *,
        root: str | None = None,
        timeout_s: float = 10,
        product: str = "CNC",
        account: str | None = None,
        expires_at: pd.Timestamp | None = None,
        store_url: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        stop_limit_pct: float = 1.0,
        exchange: str = "NSE",
    ):
        from kiteconnect import KiteConnect

        if product not in ("CNC", "MIS"):
            raise ConfigError(
                f"Kite product must be CNC (delivery) or MIS (intraday), not {product!r}: fix venues.kite.product"
            )
        if not api_key or not access_token:
            raise AuthenticationError(f"Kite needs an API key and today's access token: {LOGIN_HINT}")
        self.kite = KiteConnect(api_key=api_key, access_token=access_token, root=root, timeout=timeout_s)
        self.product, self.account = product, account or "kite"
        self.expires_at = pd.Timestamp(expires_at).tz_convert("UTC") if expires_at is not None else None
        self.retries, self.backoff_s = max(1, int(retries)), float(backoff_s)
        self.retry = RetryPolicy(attempts=self.retries, backoff_s=self.backoff_s, max_wait_s=2.0)
        self.stop_limit_pct = float(stop_limit_pct)
        self.ledger = OrderLedger(store_url, "kite", self.account)
        self._instruments: dict[str, dict[str, dict]] = {}
        # Bare symbols (the lake's NSE/BSE tradingsymbols) trade on ``exchange``; positions come back
        # under the name the caller used, so the book, the orders and the venue agree.
        self.exchange = exchange.upper()
        self._names: dict[str, str] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, vault: Vault | None = None, config: KiteConfig | None = None
    ) -> KiteBroker:
        vault = vault_of(settings, vault)
        key, token, expires_at = kite_session(settings, vault)
        c = config if config is not None else _config(settings)
        return cls(key, token, root=c.root, timeout_s=settings.broker.timeout_s, product=c.product, exchange=c.exchange,
                   expires_at=expires_at, store_url=settings.store_url)  # fmt: skip

    def __repr__(self) -> str:
        return f"KiteBroker(account={self.account!r}, product={self.product!r})"  # never the keys

    # ---- plumbing -----------------------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kw):
        """One Kite call with bounded retries of temporary errors (only for calls safe to repeat)."""
        if self.expires_at is not None and pd.Timestamp.now(tz="UTC") >= self.expires_at:
            raise AuthenticationError(_expired_message(self.expires_at))

        def translate(e: Exception) -> Exception:
            return _translate(e, what, self.expires_at)

        return retry_call(lambda: fn(*args, **kw), policy=self.retry, venue=self.name, what=what, translate=translate)

    def _once(self, what: str, fn, *args, **kw):
        """One Kite call that must not be repeated blindly (it may have arrived)."""
        if self.expires_at is not None and pd.Timestamp.now(tz="UTC") >= self.expires_at:
            raise AuthenticationError(_expired_message(self.expires_at))
        try:
            return fn(*args, **kw)
        except Exception as e:
            raise _translate(e, what, self.expires_at) from e

    def _split(self, symbol: str) -> tuple[str, str] | None:
        ex, sep, sym = symbol.partition(":")
        if not sep:
            return (self.exchange, symbol) if symbol else None
        return (ex.upper(), sym) if ex and sym else None

    def _parts(self, symbol: str) -> tuple[str, str]:
        """(exchange, tradingsymbol) of a symbol already validated (an order's, a held position's)."""
        parts = self._split(symbol)
        if parts is None:
            raise OrderRejected("unknown_symbol", f"{symbol!r} is not an EXCHANGE:SYMBOL name Kite knows")
        return parts

    def _instrument(self, symbol: str) -> dict | None:
        parts = self._split(symbol)
        if parts is None:
            return None
        ex, sym = parts
        if ex not in self._instruments:
            rows = self._call(f"the {ex} instrument list", self.kite.instruments, ex)
            self._instruments[ex] = {r["tradingsymbol"]: r for r in rows}
        return self._instruments[ex].get(sym)

    # ---- protocol: status and reference data --------------------------------------------------------
    @property
    def environment(self) -> Literal["paper", "testnet", "live"]:
        return "live"

    def check(self) -> BrokerStatus:
        try:
            prof = self._call("the profile", self.kite.profile)
            bal = self.balances()["INR"]
        except AuthenticationError as e:
            return BrokerStatus(False, "live", str(e))
        except BrokerError as e:
            return BrokerStatus(False, "live", f"Kite is not reachable: {e}")
        until = (
            f", session valid until {self.expires_at.tz_convert(_IST):%Y-%m-%d %H:%M} IST"
            if self.expires_at is not None
            else ""
        )
        return BrokerStatus(
            True, "live",
            f"Kite account {prof.get('user_id')} ({prof.get('user_name')}): ₹{bal.free:,.2f} available, product {self.product}{until}. "
            f"Kite has no sandbox: orders are real and trade real money on NSE/BSE",
        )  # fmt: skip

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        out = {}
        for s in symbols:
            row = self._instrument(s)
            if row is not None:
                ex, sym = self._parts(s)
                self._names.setdefault(f"{ex}:{sym}", s)
                out[s] = Market(
                    s,
                    sym,
                    "INR",
                    lot_size=float(row["lot_size"]),
                    tick_size=float(row["tick_size"]),
                    min_notional=0.0,
                    exchange=ex,
                )
        return out

    def balances(self) -> dict[str, Balance]:
        """Free = Kite's ``equity.net`` (what new orders may use); total adds back what open buy
        orders block, so an open order does not look like money spent."""
        eq = self._call("the margins", self.kite.margins)["equity"]
        blocked = 0.0
        for o in self._orders():
            if o["status"] not in _STATUS and o["transaction_type"] == "BUY":
                px = (
                    float(o.get("price") or 0)
                    or float(o.get("trigger_price") or 0)
                    or float(o.get("average_price") or 0)
                )
                blocked += float(o.get("pending_quantity") or 0) * px * (1.0 if o.get("product") == "CNC" else 0.2)
        net = float(eq["net"])
        return {"INR": Balance("INR", free=net, total=net + blocked)}

    def positions(self) -> dict[str, float]:
        """Settled holdings (incl. T1) plus today's net positions (CNC and MIS): one entry per
        instrument, under the name the caller first used for it (``SBIN`` or ``NSE:SBIN``)."""
        return {self._names.get(k, k): v for k, v in self._held().items()}

    def _canonical(self, symbol: str) -> str:
        """The one spelling of an instrument (``EXCHANGE:TRADINGSYMBOL``): ``SBIN`` and ``NSE:SBIN``
        are one position, whichever the caller names."""
        ex, sym = self._parts(symbol)
        return f"{ex}:{sym}"

    def _held(self) -> dict[str, float]:
        """Quantities held, keyed by the canonical spelling."""
        held: dict[str, float] = {}
        for h in self._call("the holdings", self.kite.holdings):
            k = f"{h['exchange']}:{h['tradingsymbol']}"
            held[k] = held.get(k, 0.0) + float(h.get("quantity") or 0) + float(h.get("t1_quantity") or 0)
        for p in self._call("the positions", self.kite.positions)["net"]:
            k = f"{p['exchange']}:{p['tradingsymbol']}"
            held[k] = held.get(k, 0.0) + float(p.get("quantity") or 0)
        return {k: v for k, v in held.items() if abs(v) > 1e-9}

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        """Full quotes, at most 500 instruments a call (Kite's limit)."""
        # Asked by the canonical spelling (Kite keys quotes by EXCHANGE:SYMBOL), answered under the caller's.
        names: dict[str, list[str]] = {}
        for s in dict.fromkeys(symbols):
            if self._split(s) is not None:
                names.setdefault(self._canonical(s), []).append(s)
        keys = list(names)
        out: dict[str, Quote] = {}
        for i in range(0, len(keys), 500):
            data = self._call("quotes", self.kite.quote, keys[i : i + 500])
            for key, d in data.items():
                last = float(d.get("last_price") or 0)
                if not (last > 0 and math.isfinite(last)):
                    continue
                depth, ohlc = d.get("depth") or {}, d.get("ohlc") or {}
                bid = next((float(x["price"]) for x in depth.get("buy", []) if x.get("price")), None)
                ask = next((float(x["price"]) for x in depth.get("sell", []) if x.get("price")), None)
                ts = _ist_to_utc(d.get("last_trade_time") or d.get("timestamp"))
                for k in names.get(key, [key]):
                    out[k] = Quote(k, last, ts, bid=bid, ask=ask, volume=float(d.get("volume") or 0),
                               high=ohlc.get("high") or None, low=ohlc.get("low") or None, open=ohlc.get("open") or None)  # fmt: skip
        return out

    # ---- protocol: orders ---------------------------------------------------------------------------
    def place(self, order: OrderRequest) -> BrokerOrder:
        known = self._known(order.client_order_id)
        if known is not None:  # idempotent: a re-send gets the answer of the first send
            return self._raise_if_rejected(known)
        market = self._validate(order, self.markets([order.symbol]).get(order.symbol))
        if order.type in ("stop_loss", "take_profit"):
            return self._place_exit(order, market) if self.product == "CNC" else self._place_day_exit(order, market)
        if order.side == "sell":
            self._check_position(order)
        return self._send(order, "MARKET" if order.type == "market" else "LIMIT", price=order.limit_price)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        row = self._require(client_order_id)
        if row["kind"] == "gtt":
            return self._gtt_cancel(row)
        o = self._order_state(row)
        if o.is_final:
            return o
        try:
            self._call(f"cancel of {client_order_id}", self.kite.cancel_order, "regular", row["ref"])
        except OrderRejected as e:
            if e.reason != "not_cancellable":
                raise
        return self._order_state(row)

    def order_status(self, client_order_id: str) -> BrokerOrder:
        o = self._state(self._require(client_order_id))
        if o.oco_group and o.filled_quantity > 0:
            self._enforce_oco(o)
        return o

    def open_orders(self) -> list[BrokerOrder]:
        out = []
        for o in self._orders():
            if o["status"] in _STATUS or not str(o.get("tag") or "").startswith("wb"):
                continue
            rows = self.ledger.find(tag=o["tag"])
            if rows:
                out.append(self._to_order(rows[0], o))
        gtt_rows = [r for r in self.ledger.find(kind="gtt") if r["state"] is None]
        if gtt_rows:
            gtts = {str(g["id"]): g for g in self._call("the GTT list", self.kite.get_gtts)}
            for r in gtt_rows:
                g = gtts.get(r["ref"])
                if g is not None and g["status"] == "active":
                    out.append(self._from_row(r, "SUBMITTED"))
        return out

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]:
        """Today's trades of our orders (Kite's trade book holds the current day only)."""
        ids = self._order_ids()
        out = [
            self._fill(t, ids[t["order_id"]])
            for t in self._call("the trade book", self.kite.trades)
            if t["order_id"] in ids
        ]
        return sorted((f for f in out if since is None or f.ts >= since), key=lambda f: (f.ts, f.fill_id))

    def fills_for(self, client_order_id: str) -> list[Fill]:
        row = self._require(client_order_id)
        oid = row["ref"] if row["kind"] == "order" else self._gtt_order_id(row)
        if oid is None:
            return []
        return [self._fill(t, row) for t in self._call(f"the trades of {client_order_id}", self.kite.order_trades, oid)]

    # ---- regular orders -----------------------------------------------------------------------------
    def _validate(self, order: OrderRequest, market: Market | None) -> Market:
        """``market``, once ``order`` fits it (lot and tick); else the order is rejected."""
        if market is None:
            raise OrderRejected(
                "unknown_symbol",
                f"{order.symbol} is not a Kite instrument: use EXCHANGE:TRADINGSYMBOL, e.g. NSE:INFY or BSE:INFY",
            )
        n = order.quantity / market.lot_size
        if abs(n - round(n)) > 1e-9 or order.quantity != int(order.quantity):
            raise OrderRejected(
                "lot_size",
                f"quantity {order.quantity:g} of {order.symbol} is not a whole multiple of the lot size {market.lot_size:g}",
            )
        for name in ("limit_price", "stop_price"):
            px = getattr(order, name)
            if px is not None and abs(px / market.tick_size - round(px / market.tick_size)) > 1e-6:
                raise OrderRejected(
                    "tick_size",
                    f"{name} {px:g} of {order.symbol} is not a multiple of the tick size {market.tick_size:g}",
                )
        return market

    def _check_position(self, order: OrderRequest) -> None:
        """No short sales (spot semantics, as the paper broker): Kite would short an MIS sell."""
        held = self._held().get(self._canonical(order.symbol), 0.0)
        ex, sym = self._parts(order.symbol)
        reserved = sum(float(o.get("pending_quantity") or 0) for o in self._orders()
                       if o["status"] not in _STATUS and o["transaction_type"] == "SELL" and o["exchange"] == ex and o["tradingsymbol"] == sym
                       and not (order.oco_group and self._group_of(o) == order.oco_group))  # fmt: skip
        if order.quantity > held - reserved + 1e-9:
            raise OrderRejected(
                "insufficient_position",
                f"selling {order.quantity:g} {order.symbol} but only {held - reserved:g} is held and free (no short sales)",
            )

    def _group_of(self, o: dict) -> str | None:
        rows = self.ledger.find(tag=o.get("tag")) if o.get("tag") else []
        return rows[0]["oco_group"] if rows else None

    def _send(
        self, order: OrderRequest, kind: str, price: float | None = None, trigger: float | None = None
    ) -> BrokerOrder:
        """Place once; after a temporary error, look the order up by its tag before sending again."""
        ex, sym = self._parts(order.symbol)
        tag = kite_tag(order.client_order_id)
        params = {"variety": "regular", "exchange": ex, "tradingsymbol": sym, "transaction_type": order.side.upper(), "quantity": int(order.quantity),
                      "product": self.product, "order_type": kind, "price": price, "trigger_price": trigger, "validity": "DAY", "tag": tag}  # fmt: skip
        fields = {"kind": "order", "tag": tag, "oco_group": order.oco_group, "symbol": order.symbol, "side": order.side, "type": order.type,
                      "quantity": float(order.quantity), "limit_price": order.limit_price, "stop_price": order.stop_price}  # fmt: skip

        def lookup() -> str | None:
            found = next((o for o in self._once("the order book", self.kite.orders) if o.get("tag") == tag), None)
            return found["order_id"] if found is not None else None

        what = f"order {order.client_order_id}"

        def send() -> Any:
            return self._once(what, self.kite.place_order, **params)

        oid = send_idempotent(send, lookup, policy=self.retry, venue=self.name, what=what)
        self.ledger.put(order.client_order_id, ref=str(oid), **fields)
        return self._raise_if_rejected(self._order_state(self.ledger.require(order.client_order_id)))

    def _orders(self) -> list[dict]:
        return self._call("the order book", self.kite.orders)

    def _by_tag(self, tag: str) -> dict | None:
        return next((o for o in self._orders() if o.get("tag") == tag), None)

    def _known(self, cid: str) -> BrokerOrder | None:
        row = self.ledger.get(cid)
        if row is None:
            found = self._by_tag(kite_tag(cid))  # the ledger may be gone (another machine): the tag is enough
            if found is None:
                return None
            kind = {"MARKET": "market", "LIMIT": "limit"}.get(found["order_type"], "stop_loss")
            self.ledger.put(cid, kind="order", ref=found["order_id"], tag=found["tag"], symbol=f"{found['exchange']}:{found['tradingsymbol']}",
                            side=found["transaction_type"].lower(), type=kind, quantity=float(found["quantity"]),
                            limit_price=float(found["price"] or 0) or None, stop_price=float(found["trigger_price"] or 0) or None)  # fmt: skip
            row = self.ledger.require(cid)
        return self._state(row)

    def _require(self, cid: str) -> dict:
        if self._known(cid) is None:
            raise OrderRejected(
                "unknown_order", f"Kite has no order {cid} (tag {kite_tag(cid)}) in today's order book or GTT list"
            )
        return self.ledger.require(cid)

    def _state(self, row: dict) -> BrokerOrder:
        return self._gtt_state(row) if row["kind"] == "gtt" else self._order_state(row)

    def _order_state(self, row: dict, venue: dict | None = None) -> BrokerOrder:
        if venue is None:
            venue = self._call(f"the history of {row['client_order_id']}", self.kite.order_history, row["ref"])[-1]
        return self._to_order(row, venue)

    def _to_order(self, row: dict, o: dict) -> BrokerOrder:
        filled = float(o.get("filled_quantity") or 0)
        status: OrderStatus = _STATUS.get(o["status"]) or ("PARTIALLY_FILLED" if filled > 0 else "SUBMITTED")
        avg = float(o.get("average_price") or 0) or None
        return BrokerOrder(
            row["client_order_id"], row["symbol"], row["side"], float(row["quantity"]), status, filled_quantity=filled, average_price=avg,
            broker_order_id=str(o["order_id"]), reason=o.get("status_message") if status in ("REJECTED", "CANCELLED") else None,
            type=row["type"], limit_price=row["limit_price"], stop_price=row["stop_price"], oco_group=row["oco_group"],
        )  # fmt: skip

    @staticmethod
    def _from_row(row: dict, status: OrderStatus, reason: str | None = None) -> BrokerOrder:
        return BrokerOrder(row["client_order_id"], row["symbol"], row["side"], float(row["quantity"]), status, broker_order_id=f"gtt:{row['ref']}",
                           reason=reason, type=row["type"], limit_price=row["limit_price"], stop_price=row["stop_price"], oco_group=row["oco_group"])  # fmt: skip

    @staticmethod
    def _raise_if_rejected(o: BrokerOrder) -> BrokerOrder:
        if o.status == "REJECTED":
            raise OrderRejected(_reason(o.reason or ""), f"Kite rejected order {o.client_order_id}: {o.reason}")
        return o

    def _order_ids(self) -> dict[str, dict]:
        """Venue order id → ledger row, for our regular orders and the orders our GTTs placed."""
        ids = {r["ref"]: r for r in self.ledger.find(kind="order")}
        gtt_rows = self.ledger.find(kind="gtt")
        if gtt_rows:
            gtts = {str(g["id"]): g for g in self._call("the GTT list", self.kite.get_gtts)}
            for r in gtt_rows:
                oid = self._gtt_order_id(r, gtts.get(r["ref"]))
                if oid is not None:
                    ids[oid] = r
        return ids

    def _fill(self, t: dict, row: dict) -> Fill:
        return Fill(str(t["trade_id"]), row["client_order_id"], row["symbol"], t["transaction_type"].lower(), float(t["quantity"]),
                    float(t["average_price"]), 0.0, "INR", _ist_to_utc(t.get("fill_timestamp") or t.get("exchange_timestamp")),
                    extra={"order_id": t["order_id"], "product": t.get("product")})  # fmt: skip

    # ---- exits: GTT (CNC) ---------------------------------------------------------------------------
    def _last(self, symbol: str) -> float:
        q = self.quotes([symbol]).get(symbol)
        if q is None:
            raise OrderRejected(
                "no_price", f"Kite has no last price for {symbol}: an exit needs one to place its trigger"
            )
        return q.last

    def _check_exit(self, order: OrderRequest, last: float) -> float:
        sell = order.side == "sell"
        trig = order.stop_level if order.type == "stop_loss" else order.limit_level
        at_once = (
            (trig >= last if sell else trig <= last)
            if order.type == "stop_loss"
            else (trig <= last if sell else trig >= last)
        )
        if at_once:
            kind = "stop" if order.type == "stop_loss" else "take-profit"
            raise OrderRejected(
                "bad_price", f"a {order.side} {kind} at {trig:g} would trigger at once ({order.symbol} last {last:g})"
            )
        return trig

    def _leg(self, row_or_order, market: Market) -> dict:
        """The LIMIT order a GTT leg places: a take-profit at its price, a stop a little beyond."""
        typ, side = row_or_order["type"], row_or_order["side"]
        if typ == "take_profit":
            price = row_or_order["limit_price"]
        else:
            stop = row_or_order["stop_price"]
            pct = self.stop_limit_pct / 100
            price = (
                _to_tick(stop * (1 - pct), market.tick_size, up=False)
                if side == "sell"
                else _to_tick(stop * (1 + pct), market.tick_size, up=True)
            )
        return {
            "transaction_type": side.upper(),
            "quantity": int(row_or_order["quantity"]),
            "order_type": "LIMIT",
            "product": "CNC",
            "price": price,
        }

    @staticmethod
    def _trigger(row: dict) -> float:
        return row["stop_price"] if row["type"] == "stop_loss" else row["limit_price"]

    def _place_exit(self, order: OrderRequest, market: Market) -> BrokerOrder:
        last = self._last(order.symbol)
        self._check_exit(order, last)
        ex, sym = self._parts(order.symbol)
        mine = {"client_order_id": order.client_order_id, "kind": "gtt", "oco_group": order.oco_group, "symbol": order.symbol, "side": order.side,
                    "type": order.type, "quantity": float(order.quantity), "limit_price": order.limit_price, "stop_price": order.stop_price}  # fmt: skip
        sibling = None
        if order.oco_group:
            for r in self.ledger.find(kind="gtt", oco_group=order.oco_group):
                if r["state"] is None and r["client_order_id"] != order.client_order_id:
                    g = self._call("a GTT", self.kite.get_gtt, int(r["ref"]))
                    if g["status"] == "active" and g["type"] == "single":
                        sibling = r
                        break
        if sibling is None:
            args: tuple[Any, ...] = ("single", sym, ex, [self._trigger(mine)], last, [self._leg(mine, market)])
            gid = self._gtt_send(order, lambda: self.kite.place_gtt(*args)["trigger_id"], args)
            self.ledger.put(
                order.client_order_id,
                ref=str(gid),
                leg="0",
                **{k: v for k, v in mine.items() if k != "client_order_id"},
            )
        else:  # the pair becomes one two-leg GTT: Kite cancels the other leg when one triggers
            legs = sorted([sibling, mine], key=self._trigger)
            trig = [self._trigger(r) for r in legs]
            if not (trig[0] < last < trig[1]):
                raise OrderRejected(
                    "bad_price",
                    f"an OCO pair needs one trigger below and one above the last price {last:g}; got {trig}",
                )
            gid = int(sibling["ref"])
            args = (gid, "two-leg", sym, ex, trig, last, [self._leg(r, market) for r in legs])
            self._gtt_send(order, lambda: self.kite.modify_gtt(*args), None, modify=gid)
            for i, r in enumerate(legs):
                fields = {
                    k: v
                    for k, v in r.items()
                    if k in ("kind", "oco_group", "symbol", "side", "type", "quantity", "limit_price", "stop_price")
                }
                self.ledger.put(r["client_order_id"], ref=str(gid), leg=str(i), **fields)
        return self._state(self.ledger.require(order.client_order_id))

    def _gtt_send(self, order: OrderRequest, send, args, modify: int | None = None):
        """Send a GTT change; after a temporary error, look at the GTTs before sending again."""

        def lookup():
            if modify is not None:
                g = self._once("a GTT", self.kite.get_gtt, modify)
                return modify if g["type"] == "two-leg" else None
            taken = {r["ref"] for r in self.ledger.find(kind="gtt")}
            ex, sym = self._parts(order.symbol)
            for g in self._once("the GTT list", self.kite.get_gtts):
                c, legs = g["condition"], g["orders"]
                same = c["exchange"] == ex and c["tradingsymbol"] == sym and c["trigger_values"] == args[3]
                same = same and legs[0]["quantity"] == int(order.quantity)
                if same and g["status"] == "active" and str(g["id"]) not in taken:
                    return g["id"]
            return None

        what = f"the GTT for {order.client_order_id}"
        return send_idempotent(lambda: self._once(what, send), lookup, policy=self.retry, venue=self.name, what=what)

    def _gtt_order_id(self, row: dict, g: dict | None = None) -> str | None:
        """The regular order a triggered GTT placed for this row's leg (None: not this leg, not yet)."""
        g = g if g is not None else self._call("a GTT", self.kite.get_gtt, int(row["ref"]))
        legs = g.get("orders") or []
        i = int(row["leg"] or 0)
        res = legs[i].get("result") if i < len(legs) else None
        if g.get("status") == "triggered" and res and (res.get("order_result") or {}).get("order_id"):
            return str(res["order_result"]["order_id"])
        return None

    def _gtt_state(self, row: dict) -> BrokerOrder:
        g = self._call(f"the GTT of {row['client_order_id']}", self.kite.get_gtt, int(row["ref"]))
        if row["state"] == "CANCELLED":
            return self._from_row(row, "CANCELLED", "cancelled: leg withdrawn from its GTT")
        status = g["status"]
        if status == "active":
            return self._from_row(row, "SUBMITTED")
        if status == "triggered":
            oid = self._gtt_order_id(row, g)
            if oid is None:
                return self._from_row(row, "CANCELLED", "oco: the other leg of the GTT triggered")
            o = self._order_state(
                row, self._call(f"the history of {row['client_order_id']}", self.kite.order_history, oid)[-1]
            )
            return o
        return self._from_row(row, _GTT_FINAL.get(status, "CANCELLED"), f"GTT {status}")

    def _gtt_cancel(self, row: dict) -> BrokerOrder:
        o = self._gtt_state(row)
        if o.status != "SUBMITTED":
            return o if o.is_final or row["state"] is not None else self.cancel_triggered(row, o)
        g = self._call("a GTT", self.kite.get_gtt, int(row["ref"]))
        if g["type"] == "two-leg":  # keep the other leg as a single GTT
            other = next(
                r
                for r in self.ledger.find(kind="gtt", ref=row["ref"])
                if r["client_order_id"] != row["client_order_id"] and r["state"] is None
            )
            market = self.markets([other["symbol"]])[other["symbol"]]
            ex, sym = self._parts(other["symbol"])
            self._call(
                "a GTT change",
                self.kite.modify_gtt,
                int(row["ref"]),
                "single",
                sym,
                ex,
                [self._trigger(other)],
                self._last(other["symbol"]),
                [self._leg(other, market)],
            )
            self.ledger.put(other["client_order_id"], leg="0")
        else:
            try:
                self._call("a GTT delete", self.kite.delete_gtt, int(row["ref"]))
            except OrderRejected as e:
                if e.reason != "not_cancellable":
                    raise
                return self._gtt_state(row)
        self.ledger.put(row["client_order_id"], state="CANCELLED")
        return self._gtt_state(self.ledger.require(row["client_order_id"]))

    def cancel_triggered(self, row: dict, o: BrokerOrder) -> BrokerOrder:
        """A triggered leg's order is a regular order: cancel that one."""
        oid = self._gtt_order_id(row)
        if oid is not None and not o.is_final:
            try:
                self._call(f"cancel of {row['client_order_id']}", self.kite.cancel_order, "regular", oid)
            except OrderRejected as e:
                if e.reason != "not_cancellable":
                    raise
        return self._gtt_state(row)

    # ---- exits: day orders (MIS) --------------------------------------------------------------------
    def _place_day_exit(self, order: OrderRequest, market: Market) -> BrokerOrder:
        self._check_exit(order, self._last(order.symbol))
        self._check_position(order)
        if order.type == "stop_loss":
            return self._send(order, "SL-M", trigger=order.stop_price)
        return self._send(order, "LIMIT", price=order.limit_price)

    def _enforce_oco(self, filled: BrokerOrder) -> None:
        """MIS exit pairs are two day orders: once one fills, withdraw the rest of its group."""
        for r in self.ledger.find(kind="order", oco_group=filled.oco_group):
            if r["client_order_id"] != filled.client_order_id:
                o = self._order_state(r)
                if not o.is_final:
                    self._call(f"cancel of {r['client_order_id']}", self.kite.cancel_order, "regular", r["ref"])


def make_broker(
    settings: Settings,
    config: KiteConfig | None = None,
    *,
    instance: str | None = None,
    vault: Vault | None = None,
    store=None,
) -> KiteBroker:
    """The registry's factory."""
    return KiteBroker.from_settings(settings, vault=vault, config=config)
