"""A tiny in-memory spot venue that needs API keys: the test double for real brokers (testnet or
live), a small real implementation of the ``Broker`` protocol rather than a mock.

- keys: built with the keys the venue accepts and the keys the client presents; a private call
  (balances, positions, orders) with wrong or missing keys raises ``AuthenticationError`` in the
  venue's own words, as ccxt/Kite/Alpaca adapters do.
- trading: market orders only, filled on ``on_bar`` at the bar's last price, at most
  ``fill_per_bar`` units per order per bar (a thin book: partial fills across cycles); fees in the
  quote currency at ``fee_rate``.
- what a person does on the venue's website: ``deposit(currency, amount)`` and ``credit(symbol, qty)``.

``KeyedVenue.from_vault(vault, name, ...)`` reads the client's keys the way adapters do (vault names
``<name>/api_key`` and ``<name>/secret``).
"""

from __future__ import annotations

import itertools

import pandas as pd

from workbench.venues.base import (
    AuthenticationError,
    Balance,
    BrokerOrder,
    BrokerStatus,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    Quote,
)

__all__ = ["KeyedVenue"]


class KeyedVenue:
    def __init__(
        self,
        name: str = "ccxt:kitx",
        environment: str = "testnet",
        accepted: tuple[str, str] = ("key-1", "secret-1"),
        presented: tuple[str | None, str | None] = (None, None),
        cash: dict[str, float] | None = None,
        symbols: tuple[str, ...] = ("S000", "S001", "S002"),
        currency: str = "USD",
        lot_size: float = 1e-6,
        fill_per_bar: float | None = None,
        fee_rate: float = 0.001,
    ):
        self.name, self._env, self.accepted, self.presented = name, environment, accepted, presented
        self.currency, self.fill_per_bar, self.fee_rate = currency, fill_per_bar, fee_rate
        self._cash = dict(cash if cash is not None else {currency: 100_000.0})
        self._held: dict[str, float] = {}
        self._markets = {s: Market(s, s, currency, lot_size=lot_size, tick_size=1e-4) for s in symbols}
        self._quotes: dict[str, Quote] = {}
        self._orders: dict[str, dict] = {}
        self._fills: list[Fill] = []
        self._ids = itertools.count(1)

    @classmethod
    def from_vault(cls, vault, name: str = "ccxt:kitx", **kw) -> KeyedVenue:
        got = [vault.get(f"{name}/{f}") for f in ("api_key", "secret")]
        return cls(name=name, presented=tuple(s.value if s is not None else None for s in got), **kw)

    # ---- what happens on the venue outside the API ------------------------------------------------
    def deposit(self, currency: str, amount: float) -> None:
        self._cash[currency] = self._cash.get(currency, 0.0) + amount

    def credit(self, symbol: str, quantity: float) -> None:
        self._held[symbol] = self._held.get(symbol, 0.0) + quantity

    # ---- protocol -----------------------------------------------------------------------------------
    @property
    def environment(self) -> str:
        return self._env

    def _auth(self) -> None:
        if self.presented[0] is None:
            raise AuthenticationError(f"{self.name}: this request requires an API key; none was sent")
        if tuple(self.presented) != tuple(self.accepted):
            raise AuthenticationError(f"{self.name}: Invalid API-key, IP, or permissions for action (code -2015)")

    def check(self) -> BrokerStatus:
        self._auth()
        return BrokerStatus(True, self._env, f"{self.name} {self._env} up; {len(self._markets)} markets")

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        return {s: self._markets[s] for s in symbols if s in self._markets}

    def balances(self) -> dict[str, Balance]:
        self._auth()
        reserved = sum(
            o["q"] * self._quotes[o["symbol"]].last * (1 + self.fee_rate) for o in self._open() if o["side"] == "buy"
        )
        return {k: Balance(k, v - (reserved if k == self.currency else 0.0), v) for k, v in self._cash.items()}

    def positions(self) -> dict[str, float]:
        self._auth()
        return {s: q for s, q in self._held.items() if abs(q) > 1e-12}

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        return {s: self._quotes[s] for s in symbols if s in self._quotes}

    def place(self, order: OrderRequest) -> BrokerOrder:
        self._auth()
        if order.client_order_id in self._orders:
            return self.order_status(order.client_order_id)
        if order.symbol not in self._markets:
            raise OrderRejected("unknown_symbol", f"{order.symbol} is not listed on {self.name}")
        if order.type != "market":
            raise OrderRejected("bad_order", f"{self.name} (test venue) takes market orders only")
        if order.symbol not in self._quotes:
            raise OrderRejected("no_price", f"no price for {order.symbol} yet")
        self._orders[order.client_order_id] = {
            "cid": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side,
            "quantity": float(order.quantity),
            "filled": 0.0,
            "cost": 0.0,
            "fee": 0.0,
            "status": "SUBMITTED",
            "id": f"V{next(self._ids)}",
        }
        self._fill(self._orders[order.client_order_id])
        return self.order_status(order.client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        o = self._get(client_order_id)
        if o["status"] in ("SUBMITTED", "PARTIALLY_FILLED"):
            o["status"] = "CANCELLED"
        return self.order_status(client_order_id)

    def order_status(self, client_order_id: str) -> BrokerOrder:
        o = self._get(client_order_id)
        avg = o["cost"] / o["filled"] if o["filled"] > 0 else None
        return BrokerOrder(
            o["cid"], o["symbol"], o["side"], o["quantity"], o["status"], o["filled"], avg, o["fee"], o["id"]
        )

    def open_orders(self) -> list[BrokerOrder]:
        self._auth()
        return [self.order_status(o["cid"]) for o in self._open()]

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]:
        self._auth()
        return [f for f in self._fills if since is None or f.ts >= since]

    def on_bar(self, quotes: dict[str, Quote]) -> None:
        self._quotes.update(quotes)
        for o in self._open():
            self._fill(o)

    # ---- internals -------------------------------------------------------------------------------------
    def _get(self, cid: str) -> dict:
        self._auth()
        if cid not in self._orders:
            raise OrderRejected("unknown_order", f"{self.name} has no order {cid}")
        return self._orders[cid]

    def _open(self) -> list[dict]:
        return [o for o in self._orders.values() if o["status"] in ("SUBMITTED", "PARTIALLY_FILLED")]

    def _fill(self, o: dict) -> None:
        q = o["quantity"] - o["filled"]
        if self.fill_per_bar is not None:
            q = min(q, self.fill_per_bar)
        if o["side"] == "sell":
            q = min(q, self._held.get(o["symbol"], 0.0))
        if q <= 1e-12:
            return
        px = self._quotes[o["symbol"]].last
        fee = q * px * self.fee_rate
        sign = 1.0 if o["side"] == "buy" else -1.0
        self._cash[self.currency] -= sign * q * px + fee
        self._held[o["symbol"]] = self._held.get(o["symbol"], 0.0) + sign * q
        o["filled"] += q
        o["cost"] += q * px
        o["fee"] += fee
        o["status"] = "FILLED" if o["quantity"] - o["filled"] <= 1e-12 else "PARTIALLY_FILLED"
        n = sum(1 for f in self._fills if f.client_order_id == o["cid"])
        self._fills.append(
            Fill(
                f"{o['id']}-{n + 1}",
                o["cid"],
                o["symbol"],
                o["side"],
                q,
                px,
                fee,
                self.currency,
                pd.Timestamp.now(tz="UTC"),
            )
        )


class VenueFollowsTheFeed:
    """A replay feed whose bar also moves a fake venue's book (``fake.move(symbol, last=, low=, high=)``),
    so orders fill where the loop priced them: live-run tests against FakeBinance, FakeAlpaca, FakeKite."""

    def __init__(self, feed, fake):
        self.feed, self.fake = feed, fake

    @property
    def cursor(self):
        return self.feed.cursor

    def next(self):
        tick = self.feed.next()
        for sym, q in tick.quotes.items():
            self.fake.move(sym, last=q.last, low=q.low, high=q.high)
        return tick
