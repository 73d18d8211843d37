"""The paper broker: a simulated venue, a first-class adapter (not a mock) that the loop cannot tell
from a real one.

Why its books live in the store's ``paper_*`` tables: a venue remembers balances and orders across
our restarts, so crash-recovery code is exercised against paper exactly as it will be against a
real exchange. Prices come only from the bars the loop feeds through ``on_bar`` — the simulation
never looks ahead. Market orders fill at once at last ± slippage and pay ``fee_rate`` of notional;
limit orders rest and fill when a later bar crosses their price. One cash currency per account:
every instrument is priced in it (cross-currency books arrive with the real brokers).
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

import pandas as pd
from sqlalchemy import and_, insert, select, update

from workbench.brokers.base import (
    FINAL_STATUSES,
    Balance,
    BrokerOrder,
    BrokerStatus,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    Quote,
)
from workbench.trading.store import Store, iso, utcnow

__all__ = ["PaperBroker"]

_EPS = 1e-9


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        store: Store,
        account: str = "paper",
        currency: str = "USD",
        starting_cash: float = 100_000.0,
        fee_rate: float = 0.001,
        slippage_bps: float = 5.0,
        markets: dict[str, Market] | None = None,
    ):
        if starting_cash <= 0 or fee_rate < 0 or slippage_bps < 0:
            raise ValueError("paper broker needs starting_cash > 0, fee_rate ≥ 0 and slippage_bps ≥ 0")
        self.store, self.account, self.currency = store, account, currency
        self.fee_rate, self.slippage = float(fee_rate), float(slippage_bps) / 1e4
        self._markets = dict(markets) if markets is not None else None
        self._quotes: dict[str, Quote] = {}
        self._t = store.t
        store.create()
        with store.begin() as c:
            key = and_(self._t.paper_balances.c.account == account, self._t.paper_balances.c.asset == currency)
            if c.execute(select(self._t.paper_balances.c.total).where(key)).first() is None:
                c.execute(insert(self._t.paper_balances).values(account=account, asset=currency, total=float(starting_cash)))

    # ---- protocol: status and reference data ----------------------------------------------------
    @property
    def environment(self) -> Literal["paper", "testnet", "live"]:
        return "paper"

    def check(self) -> BrokerStatus:
        cash = self._cash()
        held = self.positions()
        return BrokerStatus(
            ok=True,
            environment="paper",
            message=(
                f"paper account '{self.account}': {cash:,.2f} {self.currency} cash, {len(held)} open position(s); "
                f"fills simulated at last price ± {self.slippage * 1e4:g} bps, fee {self.fee_rate:.4%} of notional"
            ),
        )

    def market(self, symbol: str) -> Market | None:
        if self._markets is not None:
            return self._markets.get(symbol)
        base, _, quote = symbol.partition("/")
        return Market(symbol=symbol, base=base, quote=quote or self.currency)

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        return {s: m for s in symbols if (m := self.market(s)) is not None}

    def balances(self) -> dict[str, Balance]:
        total = self._cash()
        return {self.currency: Balance(self.currency, free=total - self._reserved_cash(), total=total)}

    def positions(self) -> dict[str, float]:
        t = self._t.paper_balances
        with self.store.engine.connect() as c:
            rows = c.execute(select(t.c.asset, t.c.total).where(and_(t.c.account == self.account, t.c.asset != self.currency))).all()
        return {a: float(q) for a, q in rows if abs(q) > _EPS}

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        return {s: self._quotes[s] for s in symbols if s in self._quotes}

    # ---- protocol: orders -----------------------------------------------------------------------
    def place(self, order: OrderRequest) -> BrokerOrder:
        existing = self._row(order.client_order_id)
        if existing is not None:  # idempotent: a re-send gets the same answer as the first send
            if existing["status"] == "REJECTED":
                raise OrderRejected(existing["reason"].split(":")[0], f"order {order.client_order_id} was rejected: {existing['reason']}")
            return self._to_order(existing)
        reason = self._validate(order)
        now = iso(utcnow())
        base = dict(
            account=self.account, client_order_id=order.client_order_id, broker_order_id=self._broker_id(order.client_order_id),
            symbol=order.symbol, side=order.side, type=order.type, quantity=float(order.quantity),
            limit_price=order.limit_price, filled_quantity=0.0, fee=0.0, created_at=now, updated_at=now,
        )
        if reason is not None:
            code, message = reason
            with self.store.begin() as c:
                c.execute(insert(self._t.paper_orders).values(**base, status="REJECTED", reason=f"{code}: {message}"))
            raise OrderRejected(code, message)
        with self.store.begin() as c:
            c.execute(insert(self._t.paper_orders).values(**base, status="SUBMITTED"))
            quote = self._quotes[order.symbol]
            price = self._marketable_price(order, quote)
            if price is not None:
                self._fill(c, order.client_order_id, order.symbol, order.side, float(order.quantity), price)
        return self.order_status(order.client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        row = self._require(client_order_id)
        if row["status"] not in FINAL_STATUSES:
            with self.store.begin() as c:
                c.execute(self._update(client_order_id).values(status="CANCELLED", updated_at=iso(utcnow())))
            row = self._require(client_order_id)
        return self._to_order(row)

    def order_status(self, client_order_id: str) -> BrokerOrder:
        return self._to_order(self._require(client_order_id))

    def open_orders(self) -> list[BrokerOrder]:
        return [self._to_order(r) for r in self._open_rows()]

    def fills(self, since: pd.Timestamp | None = None) -> list[Fill]:
        t = self._t.paper_fills
        stmt = select(t).where(t.c.account == self.account)
        if since is not None:
            stmt = stmt.where(t.c.ts >= iso(since))
        with self.store.engine.connect() as c:
            rows = c.execute(stmt.order_by(t.c.ts, t.c.fill_id)).mappings().all()
        return [
            Fill(r["fill_id"], r["client_order_id"], r["symbol"], r["side"], r["quantity"], r["price"], r["fee"], r["fee_currency"], pd.Timestamp(r["ts"]))
            for r in rows
        ]

    # ---- the simulation -------------------------------------------------------------------------
    def on_bar(self, quotes: dict[str, Quote]) -> list[BrokerOrder]:
        """Take the newest prices; resting limit orders whose price the bar crossed fill now (at
        their limit, or at the open when the bar gapped through it). Returns the orders that filled."""
        self._quotes.update(quotes)
        filled = []
        for row in self._open_rows():
            q = quotes.get(row["symbol"])
            if q is None or row["type"] != "limit":
                continue
            limit = float(row["limit_price"])
            low = q.low if q.low is not None else q.last
            high = q.high if q.high is not None else q.last
            opened = q.open if q.open is not None else q.last
            if row["side"] == "buy" and low <= limit:
                price = min(limit, opened)
            elif row["side"] == "sell" and high >= limit:
                price = max(limit, opened)
            else:
                continue
            remaining = float(row["quantity"]) - float(row["filled_quantity"])
            with self.store.begin() as c:
                self._fill(c, row["client_order_id"], row["symbol"], row["side"], remaining, price)
            filled.append(self.order_status(row["client_order_id"]))
        return filled

    def _marketable_price(self, order: OrderRequest, quote: Quote) -> float | None:
        sign = 1.0 if order.side == "buy" else -1.0
        slipped = quote.last * (1.0 + sign * self.slippage)
        if order.type == "market":
            return slipped
        limit = float(order.limit_price)
        if order.side == "buy":
            return min(limit, slipped) if limit >= quote.last else None
        return max(limit, slipped) if limit <= quote.last else None

    def _validate(self, order: OrderRequest) -> tuple[str, str] | None:
        market = self.market(order.symbol)
        if market is None:
            return "unknown_symbol", f"{order.symbol} is not a market of this paper account; known: {sorted(self._markets or [])[:10]}"
        quote = self._quotes.get(order.symbol)
        if quote is None or not (quote.last and math.isfinite(quote.last) and quote.last > 0):
            return "no_price", f"no price for {order.symbol} yet: the paper broker prices only from bars fed through on_bar()"
        lots = order.quantity / market.lot_size
        if abs(lots - round(lots)) > 1e-6 * max(1.0, abs(lots)):
            return "lot_size", f"quantity {order.quantity:g} of {order.symbol} is not a multiple of the lot size {market.lot_size:g}"
        ref = float(order.limit_price) if order.type == "limit" else quote.last
        if order.quantity * ref < market.min_notional:
            return "min_notional", f"order notional {order.quantity * ref:,.2f} is below {order.symbol}'s minimum {market.min_notional:,.2f}"
        if order.side == "buy":
            price = self._marketable_price(order, quote) or float(order.limit_price)
            cost = order.quantity * price * (1.0 + self.fee_rate)
            free = self._cash() - self._reserved_cash()
            if cost > free + 1e-9:
                return "insufficient_funds", f"buying {order.quantity:g} {order.symbol} needs {cost:,.2f} {self.currency}; {free:,.2f} is free"
        else:
            held = self.positions().get(order.symbol, 0.0) - self._reserved_qty(order.symbol)
            if order.quantity > held * (1 + 1e-12) + _EPS:
                return "insufficient_position", f"selling {order.quantity:g} {order.symbol} but only {held:g} is held and free (spot: no short sales)"
        return None

    def _fill(self, c, cid: str, symbol: str, side: str, quantity: float, price: float) -> None:
        """One fill, booked atomically: order, cash, holding, fill row (inside the caller's transaction)."""
        t = self._t.paper_orders
        notional = quantity * price
        fee = notional * self.fee_rate
        sign = 1.0 if side == "buy" else -1.0
        row = c.execute(select(t).where(and_(t.c.account == self.account, t.c.client_order_id == cid))).mappings().first()
        filled0, avg0 = float(row["filled_quantity"]), float(row["average_price"] or 0.0)
        filled1 = filled0 + quantity
        status = "FILLED" if filled1 >= float(row["quantity"]) - _EPS else "PARTIALLY_FILLED"
        now = iso(utcnow())
        c.execute(
            self._update(cid).values(
                status=status, filled_quantity=filled1, average_price=(filled0 * avg0 + notional) / filled1,
                fee=float(row["fee"]) + fee, updated_at=now,
            )
        )
        self._add_balance(c, self.currency, -sign * notional - fee)
        self._add_balance(c, symbol, sign * quantity)
        n = c.execute(select(self._t.paper_fills.c.fill_id).where(self._t.paper_fills.c.client_order_id == cid)).all()
        c.execute(
            insert(self._t.paper_fills).values(
                fill_id=f"{self._broker_id(cid)}-{len(n) + 1}", account=self.account, client_order_id=cid, symbol=symbol,
                side=side, quantity=quantity, price=price, fee=fee, fee_currency=self.currency, ts=now,
            )
        )

    def _add_balance(self, c, asset: str, delta: float) -> None:
        b = self._t.paper_balances
        key = and_(b.c.account == self.account, b.c.asset == asset)
        cur = c.execute(select(b.c.total).where(key)).first()
        if cur is None:
            c.execute(insert(b).values(account=self.account, asset=asset, total=delta))
        else:
            value = float(cur[0]) + delta
            dust = _EPS + 1e-12 * abs(float(cur[0]))  # selling a whole holding leaves exactly zero
            c.execute(update(b).where(key).values(total=0.0 if abs(value) < dust else value))

    # ---- rows -----------------------------------------------------------------------------------
    def _broker_id(self, cid: str) -> str:
        return "P" + hashlib.sha1(f"{self.account}|{cid}".encode()).hexdigest()[:15]

    def _update(self, cid: str):
        t = self._t.paper_orders
        return update(t).where(and_(t.c.account == self.account, t.c.client_order_id == cid))

    def _row(self, cid: str) -> dict | None:
        t = self._t.paper_orders
        with self.store.engine.connect() as c:
            r = c.execute(select(t).where(and_(t.c.account == self.account, t.c.client_order_id == cid))).mappings().first()
        return dict(r) if r is not None else None

    def _require(self, cid: str) -> dict:
        row = self._row(cid)
        if row is None:
            raise OrderRejected("unknown_order", f"the paper account '{self.account}' has no order {cid}")
        return row

    def _open_rows(self) -> list[dict]:
        t = self._t.paper_orders
        stmt = select(t).where(and_(t.c.account == self.account, t.c.status.in_(["SUBMITTED", "PARTIALLY_FILLED"])))
        with self.store.engine.connect() as c:
            return [dict(r) for r in c.execute(stmt.order_by(t.c.created_at)).mappings().all()]

    def _cash(self) -> float:
        b = self._t.paper_balances
        with self.store.engine.connect() as c:
            v = c.execute(select(b.c.total).where(and_(b.c.account == self.account, b.c.asset == self.currency))).scalar()
        return float(v or 0.0)

    def _reserved_cash(self) -> float:
        return sum(
            (float(r["quantity"]) - float(r["filled_quantity"])) * float(r["limit_price"]) * (1.0 + self.fee_rate)
            for r in self._open_rows()
            if r["side"] == "buy" and r["limit_price"] is not None
        )

    def _reserved_qty(self, symbol: str) -> float:
        return sum(float(r["quantity"]) - float(r["filled_quantity"]) for r in self._open_rows() if r["side"] == "sell" and r["symbol"] == symbol)

    @staticmethod
    def _to_order(r: dict) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=r["client_order_id"], symbol=r["symbol"], side=r["side"], quantity=float(r["quantity"]),
            status=r["status"], filled_quantity=float(r["filled_quantity"]), average_price=r["average_price"],
            fee=float(r["fee"]), broker_order_id=r["broker_order_id"], reason=r["reason"], type=r["type"], limit_price=r["limit_price"],
        )
