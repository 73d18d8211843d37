"""The paper broker: a simulated venue, a first-class adapter (not a mock) that the loop cannot tell
from a real one.

Why its books live in the store's ``paper_*`` tables (read and written by ``PaperBook`` in
``workbench.venues.paper.book``): a venue remembers balances and orders across our restarts, so
crash-recovery code is exercised against paper exactly as it will be against a real exchange. Prices
come only from the bars the loop feeds through ``on_bar`` — the simulation never looks ahead.

How it fills, and why:
- market orders fill at once at last ± slippage; limit orders rest and fill when a bar crosses them;
  stop-loss orders become market orders when a bar trades through the stop (at the stop, or at the
  open when the bar gapped through it — a stop is no promise of its price); take-profit orders are
  resting limits. Orders in one ``oco_group`` are one-cancels-other: any fill of one cancels the rest.
- a bar's volume is finite: fills on a symbol are capped at ``max_volume_share`` of the bar's volume,
  so a large order fills partially and keeps filling on later bars, as a thin book would.
- fees and slippage are per exchange (``exchange_costs``), falling back to the account's defaults.
- cash is kept per currency; an instrument settles in its quote currency when the account holds that
  currency, else in the account currency (the demo's USD account trading ``X/USDT``).
- rejections carry the codes of ``REJECT_REASONS``: unknown symbol, no/bad price, lot size, tick
  size, minimum notional, insufficient funds or position, an exit that would trigger at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from sqlalchemy.engine import Engine

from workbench.store.engine import engine_for
from workbench.venues.base import (
    FINAL_STATUSES,
    Balance,
    BrokerOrder,
    BrokerStatus,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    Quote,
    cost_exchange,
    floor_to_lot,
    grid_error,
)
from workbench.venues.paper.book import OPEN_STATUSES as _OPEN
from workbench.venues.paper.book import BookSession, HasEngine, PaperBook

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault
    from workbench.venues.paper.config import PaperConfig

__all__ = ["PaperBroker", "make_broker"]

_EPS = 1e-9
_INF = math.inf


def _clean(q: Quote) -> Quote | None:
    """The quote with unusable high/low/open replaced by last; None when last itself is unusable.
    (``0 < x < inf`` is "finite and positive": NaN fails every comparison. Inline, as a bar brings
    one quote per instrument.)"""
    last, high, low, opened = q.last, q.high, q.low, q.open
    if last is None or not 0 < last < _INF:
        return None
    if (high is None or 0 < high < _INF) and (low is None or 0 < low < _INF) and (opened is None or 0 < opened < _INF):
        return q
    return dataclasses.replace(
        q,
        high=high if high is not None and 0 < high < _INF else None,
        low=low if low is not None and 0 < low < _INF else None,
        open=opened if opened is not None and 0 < opened < _INF else None,
    )


# ``BrokerOrder``s are made by the thousand a cycle (every answer, every open order). A frozen dataclass's
# ``__init__`` sets each of its 14 fields through ``object.__setattr__``; filling the instance's
# ``__dict__`` directly, as ``copy`` and ``pickle`` do, makes the same object at half the cost. Only while
# ``BrokerOrder`` is a plain frozen dataclass (no ``__slots__``, no ``__post_init__``, every field a plain
# attribute); otherwise its own constructor is called.
_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(BrokerOrder))
_ORDER_VALUES = itemgetter(*_ORDER_FIELDS)
_ORDER_DIRECT = not hasattr(BrokerOrder, "__slots__") and not hasattr(BrokerOrder, "__post_init__")


def _order_of(values: Sequence[Any]) -> BrokerOrder:
    """A ``BrokerOrder`` of its field values, in ``_ORDER_FIELDS`` order (a row read in that order)."""
    if not _ORDER_DIRECT:
        return BrokerOrder(*values)
    o = object.__new__(BrokerOrder)
    o.__dict__.update(zip(_ORDER_FIELDS, values, strict=True))
    return o


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        store: HasEngine,
        account: str = "paper",
        currency: str = "USD",
        starting_cash: float | Mapping[str, float] = 100_000.0,
        fee_rate: float = 0.001,
        slippage_bps: float = 5.0,
        markets: dict[str, Market] | None = None,
        max_volume_share: float | None = None,
        exchange_costs: Mapping[str, tuple[float, float]] | None = None,
    ):
        cash = dict(starting_cash) if isinstance(starting_cash, Mapping) else {currency: float(starting_cash)}
        cash.setdefault(currency, 0.0)
        if any(v < 0 for v in cash.values()) or sum(cash.values()) <= 0 or fee_rate < 0 or slippage_bps < 0:
            raise ValueError("paper broker needs starting cash > 0 (none negative), fee_rate ≥ 0 and slippage_bps ≥ 0")
        if max_volume_share is not None and not (0 < max_volume_share <= 1):
            raise ValueError(f"max_volume_share must be in (0, 1], got {max_volume_share}")
        self.store, self.account, self.currency = store, account, currency
        self.fee_rate, self.slippage = float(fee_rate), float(slippage_bps) / 1e4
        self.max_volume_share = max_volume_share
        self.exchange_costs = {k: (float(f), float(s) / 1e4) for k, (f, s) in (exchange_costs or {}).items()}
        self._markets = dict(markets) if markets is not None else None
        self._named: dict[str, Market] = {}
        self._quotes: dict[str, Quote] = {}
        self._used: dict[str, float] = {}  # volume already taken from the current bar, per symbol
        self._cost_memo: dict[tuple[str, float, float], tuple[float, float]] = {}
        self._id_key = f"{account}|".encode()  # what ``_broker_id`` hashes before the client id
        self.book = PaperBook(store.engine, account)
        self.book.open_account(cash)

    # ---- protocol: status and reference data ----------------------------------------------------
    @property
    def environment(self) -> Literal["paper", "testnet", "live"]:
        return "paper"

    def check(self) -> BrokerStatus:
        cash = ", ".join(f"{v.total:,.2f} {k}" for k, v in self.balances().items())
        cap = f"; fills capped at {self.max_volume_share:.0%} of bar volume" if self.max_volume_share else ""
        return BrokerStatus(
            ok=True,
            environment="paper",
            message=(
                f"paper account '{self.account}': {cash} cash, {len(self.positions())} open position(s); "
                f"fills simulated at last price ± {self.slippage * 1e4:g} bps, fee {self.fee_rate:.4%} of notional{cap}"
            ),
        )

    def market(self, symbol: str) -> Market | None:
        if self._markets is not None:
            return self._markets.get(symbol)
        m = self._named.get(symbol)
        if m is None:  # any name is a market here: made from the name once, then remembered
            exch, _, rest = symbol.rpartition(":")
            base, _, quote = rest.partition("/")
            m = self._named[symbol] = Market(
                symbol=symbol, base=base, quote=quote or self.currency, exchange=exch or None
            )
        return m

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        return {s: m for s in symbols if (m := self.market(s)) is not None}

    def balances(self) -> dict[str, Balance]:
        with self.book.engine.connect() as c:
            session = BookSession(self.book, c, open_side="buy", symbols=())  # only buys reserve cash; no holdings
            cash, reserved = session.cash, self._reserved_cash(session)
        return {k: Balance(k, free=v - reserved.get(k, 0.0), total=v) for k, v in cash.items()}

    def positions(self) -> dict[str, float]:
        return self.book.holdings()

    def quotes(self, symbols: list[str]) -> dict[str, Quote]:
        return {s: self._quotes[s] for s in symbols if s in self._quotes}

    # ---- protocol: orders -----------------------------------------------------------------------
    def place(self, order: OrderRequest) -> BrokerOrder:
        answer = self.place_many([order])[0]
        if isinstance(answer, OrderRejected):
            raise answer
        return answer

    def place_many(self, orders: Sequence[OrderRequest]) -> list[BrokerOrder | OrderRejected]:
        """Many orders in one venue transaction, as an exchange's batch endpoint takes them: each is
        validated against the cash, holdings and reservations the earlier ones left, market orders
        fill at once, and the answers come back in order — a rejection as an ``OrderRejected`` in its
        place, not raised. Idempotent per client order id: a re-send gets the first send's answer."""
        out: list[BrokerOrder | OrderRejected] = []
        with self.book.begin() as c:
            # Not every resting exit: the holdings and open orders of the batch's symbols, and only where a
            # sell (what other sells hold back) or an OCO leg (its siblings) needs them, a symbol's sells.
            s = BookSession(
                self.book,
                c,
                symbols={o.symbol for o in orders},
                orders_of={o.symbol for o in orders if o.side != "buy" or o.oco_group},
            )
            known = s.orders([o.client_order_id for o in orders], probe=True)
            reserved = self._reserved_cash(s)
            for order in orders:
                row = known.get(order.client_order_id)
                if row is None:
                    row = self._accept(s, order, reserved)
                    known[order.client_order_id] = row
                    if row["status"] == "REJECTED":
                        code, _, message = row["reason"].partition(": ")
                        out.append(OrderRejected(code, message))
                        continue
                if row["status"] == "REJECTED":
                    code = row["reason"].split(":")[0]
                    out.append(OrderRejected(code, f"order {order.client_order_id} was rejected: {row['reason']}"))
                else:
                    out.append(self._to_order(row))
            s.flush()
        return out

    def _accept(self, s: BookSession, order: OrderRequest, reserved: dict[str, float]) -> dict[str, Any]:
        """Validate one new order in the session and book it (filled at once when marketable)."""
        reason = self._validate(order, s, reserved)
        cid, now = order.client_order_id, s.now
        row: dict[str, Any] = {
            "account": self.account, "client_order_id": cid, "broker_order_id": self._broker_id(cid),
            "symbol": order.symbol, "side": order.side, "type": order.type, "quantity": float(order.quantity),
            "limit_price": order.limit_price, "stop_price": order.stop_price, "oco_group": order.oco_group,
            "status": "SUBMITTED", "filled_quantity": 0.0, "average_price": None, "fee": 0.0, "reason": None,
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        if reason is not None:
            row["status"], row["reason"] = "REJECTED", f"{reason[0]}: {reason[1]}"
            s.add_order(row)
            return row
        s.add_order(row)
        self._reserve(s, row, reserved, +1)
        price = self._marketable_price(order, self._quotes[order.symbol])
        if price is not None:
            self._fill(s, row, float(order.quantity), price, reserved)
        return row

    def cancel(self, client_order_id: str) -> BrokerOrder:
        answer = self.cancel_many([client_order_id])[0]
        if isinstance(answer, OrderRejected):
            raise answer
        return answer

    def cancel_many(self, client_order_ids: Sequence[str]) -> list[BrokerOrder | OrderRejected]:
        """Cancel many orders in one venue transaction; an unknown id is an ``OrderRejected`` in its
        place, a final order is answered as it is."""
        out: list[BrokerOrder | OrderRejected] = []
        with self.book.begin() as c:
            s = BookSession(self.book, c, symbols=())  # the orders themselves are read by client id
            rows = s.orders(list(client_order_ids))
            for cid in client_order_ids:
                row = rows.get(cid)
                if row is None:
                    out.append(OrderRejected("unknown_order", f"the paper account '{self.account}' has no order {cid}"))
                    continue
                if row["status"] not in FINAL_STATUSES:
                    s.update(row, status="CANCELLED", updated_at=s.now)
                out.append(self._to_order(row))
            s.flush()
        return out

    def order_status(self, client_order_id: str) -> BrokerOrder:
        return self._to_order(self._require(client_order_id))

    def order_status_many(self, client_order_ids: Sequence[str]) -> list[BrokerOrder | OrderRejected]:
        """``order_status`` for many orders in one query per 500 ids (the optional batch extension of
        the protocol): an unknown id is an ``OrderRejected('unknown_order')`` in its place."""
        rows = self.book.orders_by_ids(client_order_ids)
        return [
            self._to_order(r)
            if (r := rows.get(cid)) is not None
            else OrderRejected("unknown_order", f"the paper account '{self.account}' has no order {cid}")
            for cid in client_order_ids
        ]

    def open_orders(self) -> list[BrokerOrder]:
        # Read in BrokerOrder's field order: no dict per row. The float columns come back as floats
        # (SQLite's REAL affinity and PostgreSQL's double precision), as ``_to_order`` makes them.
        return [_order_of(r) for r in self.book.open_order_rows(_ORDER_FIELDS)]

    def fills_for(self, client_order_id: str) -> list[Fill]:
        """One order's fills (the optional per-order extension of the protocol)."""
        return self.fills(client_order_id=client_order_id)

    def fills_for_many(self, client_order_ids: Sequence[str]) -> list[Fill]:
        """The fills of many orders in one query per 500 ids (the order manager books a batch so)."""
        return self.fills(client_order_ids=client_order_ids)

    def fills(
        self,
        since: pd.Timestamp | None = None,
        client_order_id: str | None = None,
        client_order_ids: Sequence[str] | None = None,
    ) -> list[Fill]:
        rows = self.book.fill_rows(since=since, client_order_id=client_order_id, client_order_ids=client_order_ids)
        stamps: dict[str, pd.Timestamp] = {}  # a batch's fills share their time: parse each text once
        out = []
        for r in rows:  # (fill_id, client_order_id, symbol, side, quantity, price, fee, fee_currency, ts)
            ts = r[8]
            stamp = stamps.get(ts)
            if stamp is None:
                stamp = stamps[ts] = pd.Timestamp(ts)
            out.append(Fill(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], stamp))
        return out

    # ---- the simulation -------------------------------------------------------------------------
    def on_bar(self, quotes: dict[str, Quote]) -> list[BrokerOrder]:
        """Take the newest bar: resting orders it triggers fill now (limits at their price or the open
        when the bar gapped through; stops at the stop or the open, less slippage; the unfilled rest
        of market orders at the open), each capped by the bar's volume. Stops are tried before
        take-profits, so a wide bar touching both exits at the stop. Returns the orders that filled."""
        clean: dict[str, Quote] = {}
        for s, q in quotes.items():  # a bad print is no price
            ok = _clean(q)
            if ok is not None:
                clean[s] = ok
        quotes = clean
        self._quotes.update(quotes)
        self._used.update(dict.fromkeys(quotes, 0.0))
        rank = {"market": 0, "stop_loss": 1, "limit": 2, "take_profit": 3}
        filled: list[dict[str, Any]] = []
        with self.book.begin() as c:
            names, table = self.book.open_table(c)  # every open order, oldest first, as tuples
            at = {k: names.index(k) for k in ("client_order_id", "symbol", "side", "type")}
            cid_, sym_, side_, type_ = at["client_order_id"], at["symbol"], at["side"], at["type"]
            fq_, sp_, lp_ = names.index("filled_quantity"), names.index("stop_price"), names.index("limit_price")
            # What triggers depends on each order and the bar alone (a fill changes only its own order
            # and cancels siblings), so the triggered are known before any fill: only they, the open
            # buys (the cash they reserve) and their symbols' other orders (OCO siblings) become rows,
            # and their fill counts (the next fill ids) are read in one query, not one per order.
            hits: list[tuple[str, float]] = []
            touched: set[str] = set()
            for r in table:
                bar = quotes.get(r[sym_])
                if bar is not None:
                    price = self._trigger(r[type_], r[side_], r[sym_], r[fq_], r[sp_], r[lp_], bar)
                    if price is not None:
                        hits.append((r[cid_], price))
                        touched.add(r[sym_])
            rows = [dict(zip(names, r, strict=True)) for r in table if r[side_] == "buy" or r[sym_] in touched]
            bs = BookSession(self.book, c, symbols=touched, open_rows=rows)
            reserved = self._reserved_cash(bs)
            todo = [(bs.open[cid], price) for cid, price in hits]  # in the order read: oldest first
            todo.sort(key=lambda h: (rank.get(h[0]["type"], 9), h[0]["created_at"]))  # stable: as before
            bs.prefetch_fill_counts([row["client_order_id"] for row, _ in todo])
            for row, price in todo:
                if row["status"] not in _OPEN:  # an OCO sibling filled earlier in this bar
                    continue
                if self._fill(bs, row, float(row["quantity"]) - float(row["filled_quantity"]), price, reserved) > 0:
                    filled.append(row)
            bs.flush()
        # The session's rows are what was just committed: no read back per filled order.
        return [self._to_order(r) for r in filled]

    def _costs(self, symbol: str) -> tuple[float, float]:
        """(fee rate, slippage) of a symbol's exchange. Kept per symbol for the life of the broker: the
        costs and markets are fixed at construction, and a batch asks for them several times an order."""
        key = (symbol, self.fee_rate, self.slippage)
        got = self._cost_memo.get(key)
        if got is None:
            got = self._cost_memo[key] = self.exchange_costs.get(
                cost_exchange(symbol, self.market(symbol)), (self.fee_rate, self.slippage)
            )
        return got

    def _trigger(
        self,
        kind: str,
        side: str,
        symbol: str,
        filled: float,
        stop_price: float | None,
        limit_price: float | None,
        q: Quote,
    ) -> float | None:
        """The price a resting order fills at on this bar, None when the bar does not reach it."""
        low = q.low if q.low is not None else q.last
        high = q.high if q.high is not None else q.last
        opened = q.open if q.open is not None else q.last
        buy = side == "buy"
        _, slip = self._costs(symbol)
        if kind == "market" or (kind == "stop_loss" and float(filled) > 0):  # a triggered stop keeps filling
            return opened * (1 + slip) if buy else opened * (1 - slip)
        if kind == "stop_loss":
            stop = float(stop_price)  # type: ignore[arg-type]  # a stop_loss row has its stop price
            if buy and high >= stop:
                return max(stop, opened) * (1 + slip)
            if not buy and low <= stop:
                return min(stop, opened) * (1 - slip)
            return None
        limit = float(limit_price)  # type: ignore[arg-type]  # limit and take_profit rest at their price
        if buy and low <= limit:
            return min(limit, opened)
        if not buy and high >= limit:
            return max(limit, opened)
        return None

    def _marketable_price(self, order: OrderRequest, quote: Quote) -> float | None:
        if order.type not in ("market", "limit"):  # exits rest until a later bar triggers them
            return None
        _, slip = self._costs(order.symbol)
        sign = 1.0 if order.side == "buy" else -1.0
        slipped = quote.last * (1.0 + sign * slip)
        if order.type == "market":
            return slipped
        limit = order.limit_level
        if order.side == "buy":
            return min(limit, slipped) if limit >= quote.last else None
        return max(limit, slipped) if limit <= quote.last else None

    def _capacity(self, symbol: str) -> float:
        q = self._quotes.get(symbol)
        if self.max_volume_share is None or q is None or q.volume is None or not math.isfinite(q.volume):
            return math.inf
        return max(self.max_volume_share * q.volume - self._used.get(symbol, 0.0), 0.0)

    def _settlement(self, symbol: str, cash: Mapping[str, float]) -> str:
        m = self.market(symbol)
        return m.quote if m is not None and m.quote in cash else self.currency

    def _validate(self, order: OrderRequest, s: BookSession, reserved: Mapping[str, float]) -> tuple[str, str] | None:
        market = self.market(order.symbol)
        if market is None:
            return (
                "unknown_symbol",
                f"{order.symbol} is not a market of this paper account; known: {sorted(self._markets or [])[:10]}",
            )
        quote = self._quotes.get(order.symbol)
        if quote is None or not (quote.last and math.isfinite(quote.last) and quote.last > 0):
            return (
                "no_price",
                f"no price for {order.symbol} yet: the paper broker prices only from bars fed through on_bar()",
            )
        off_grid = grid_error(order, market.lot_size, market.tick_size)
        if off_grid is not None:
            return off_grid
        sell = order.side == "sell"
        if order.type == "stop_loss" and (order.stop_level >= quote.last if sell else order.stop_level <= quote.last):
            return (
                "bad_price",
                f"a {order.side} stop at {order.stop_price:g} would trigger at once ({order.symbol} last {quote.last:g})",
            )
        if order.type == "take_profit" and (
            order.limit_level <= quote.last if sell else order.limit_level >= quote.last
        ):
            return (
                "bad_price",
                f"a {order.side} take-profit at {order.limit_price:g} would trigger at once ({order.symbol} last {quote.last:g})",
            )
        kind = order.type
        ref = (
            order.limit_price if kind in ("limit", "take_profit") else order.stop_price if kind == "stop_loss" else None
        ) or quote.last
        if order.quantity * ref < market.min_notional:
            return (
                "min_notional",
                f"order notional {order.quantity * ref:,.2f} is below {order.symbol}'s minimum {market.min_notional:,.2f}",
            )
        if not sell:
            fee, _ = self._costs(order.symbol)
            price = self._marketable_price(order, quote) or float(order.limit_price or order.stop_price or quote.last)
            cost = order.quantity * price * (1.0 + fee)
            ccy = self._settlement(order.symbol, s.cash)
            free = s.cash.get(ccy, 0.0) - reserved.get(ccy, 0.0)
            if cost > free + 1e-9:
                return (
                    "insufficient_funds",
                    f"buying {order.quantity:g} {order.symbol} needs {cost:,.2f} {ccy}; {free:,.2f} is free",
                )
        else:
            held = s.holdings.get(order.symbol, 0.0) - self._reserved_qty(s, order.symbol, order.oco_group)
            if order.quantity > held * (1 + 1e-12) + _EPS:
                return (
                    "insufficient_position",
                    f"selling {order.quantity:g} {order.symbol} but only {held:g} is held and free (spot: no short sales)",
                )
        return None

    def _fill(
        self, s: BookSession, row: dict[str, Any], wanted: float, price: float, reserved: dict[str, float]
    ) -> float:
        """Fill up to ``wanted`` of an order at ``price``, capped by the bar's volume (and, for buys, by
        the cash at hand), booked in the session: order, cash, holding, fill row; an OCO fill cancels
        its siblings. Returns the quantity filled (0 when the bar has no volume left)."""
        cid, symbol, side = row["client_order_id"], row["symbol"], row["side"]
        market = self.market(symbol)
        lot = market.lot_size if market is not None else 0.0
        fee_rate, _ = self._costs(symbol)
        ccy = self._settlement(symbol, s.cash)
        qty = min(wanted, self._capacity(symbol))
        if side == "buy":
            qty = min(qty, max(s.cash.get(ccy, 0.0), 0.0) / (price * (1.0 + fee_rate)))
        if qty < wanted - _EPS:
            qty = floor_to_lot(qty, lot)
        if qty <= _EPS:
            return 0.0
        self._used[symbol] = self._used.get(symbol, 0.0) + qty
        notional = qty * price
        fee = notional * fee_rate
        sign = 1.0 if side == "buy" else -1.0
        filled0, avg0 = float(row["filled_quantity"]), float(row["average_price"] or 0.0)
        filled1 = filled0 + qty
        status = "FILLED" if filled1 >= float(row["quantity"]) - _EPS else "PARTIALLY_FILLED"
        self._reserve(s, row, reserved, -1)
        s.update(
            row,
            status=status,
            filled_quantity=filled1,
            average_price=(filled0 * avg0 + notional) / filled1,
            fee=float(row["fee"]) + fee,
            updated_at=s.now,
        )
        self._reserve(s, row, reserved, +1)
        s.move(ccy, -sign * notional - fee, "cash")
        s.move(symbol, sign * qty, "holding")
        prefix = row["broker_order_id"] if cid in s.new else self._broker_id(cid)  # the same text: made once
        s.add_fill(fill_prefix=prefix, client_order_id=cid, symbol=symbol, side=side, quantity=qty,
                   price=price, fee=fee, fee_currency=ccy, ts=s.now)  # fmt: skip
        if row.get("oco_group"):  # one-cancels-other
            for other in s.open_of(symbol):
                if other["oco_group"] == row["oco_group"] and other["client_order_id"] != cid:
                    self._reserve(s, other, reserved, -1)
                    s.update(other, status="CANCELLED", reason=f"oco: {cid} filled", updated_at=s.now)
        return qty

    # ---- rows -----------------------------------------------------------------------------------
    def _broker_id(self, cid: str) -> str:
        """``P`` and 15 hex digits of sha1("<account>|<client id>"): stable, so a re-send finds the same id."""
        return "P" + hashlib.sha1(self._id_key + cid.encode()).hexdigest()[:15]

    def _row(self, cid: str) -> dict[str, Any] | None:
        return self.book.order(cid)

    def _require(self, cid: str) -> dict[str, Any]:
        row = self._row(cid)
        if row is None:
            raise OrderRejected("unknown_order", f"the paper account '{self.account}' has no order {cid}")
        return row

    def _open_rows(self, side: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
        return self.book.open_orders(side=side, symbol=symbol)

    def _reserved_cash(self, s: BookSession) -> dict[str, float]:
        """Cash that open buy orders hold back, per settlement currency (kept up to date by ``_reserve``)."""
        out: dict[str, float] = {}
        for r in s.open.values():
            self._reserve(s, r, out, +1)
        return out

    def _reserve(self, s: BookSession, r: dict[str, Any], reserved: dict[str, float], sign: int) -> None:
        """Add (``sign`` +1) or take back (−1) what one open buy order holds of the cash."""
        if r["side"] != "buy" or r["status"] not in _OPEN:
            return
        fee, slip = self._costs(r["symbol"])
        q = self._quotes.get(r["symbol"])
        px = r["limit_price"] or r["stop_price"] or (q.last * (1 + slip) if q is not None else 0.0)
        ccy = self._settlement(r["symbol"], s.cash)
        left = float(r["quantity"]) - float(r["filled_quantity"])
        reserved[ccy] = reserved.get(ccy, 0.0) + sign * left * float(px) * (1.0 + fee)

    def _reserved_qty(self, s: BookSession, symbol: str, oco_group: str | None = None) -> float:
        """Quantity open sell orders hold back; an OCO group reserves once (only one of it can fill),
        and the group a new order joins does not count against it."""
        groups: dict[str, float] = {}
        total = 0.0
        for r in s.open_of(symbol):
            if r["side"] != "sell":
                continue
            left = float(r["quantity"]) - float(r["filled_quantity"])
            if r["oco_group"]:
                if r["oco_group"] != oco_group:
                    groups[r["oco_group"]] = max(groups.get(r["oco_group"], 0.0), left)
            else:
                total += left
        return total + sum(groups.values())

    @staticmethod
    def _to_order(r: dict[str, Any]) -> BrokerOrder:
        """The answer of a session or store row. Its quantities and fee are floats already: the store's
        float columns read back as floats, and the session makes them so (``_accept``, ``_fill``)."""
        return _order_of(_ORDER_VALUES(r))


class _EngineHolder:
    """The smallest ``HasEngine``: a paper broker made without the trading ``Store``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


def make_broker(
    settings: Settings,
    config: PaperConfig | None = None,
    *,
    instance: str | None = None,
    vault: Vault | None = None,
    store: HasEngine | None = None,
    account: str = "paper",
) -> PaperBroker:
    """The paper account ``settings.paper`` and ``settings.costs`` describe, booked in ``store``
    (without one, in the database ``settings.store_url`` names: the venue never imports ``trading``)
    under the name ``account`` (the live runner gives each user their own: ``paper:<username>``)."""
    if store is None:
        store = _EngineHolder(engine_for(settings.store_url))
    pa = settings.paper
    return PaperBroker(
        store,
        account=account,
        currency=pa.currency,
        starting_cash={**pa.extra_cash, pa.currency: pa.starting_cash},
        fee_rate=settings.costs.fee_rate,
        slippage_bps=settings.costs.slippage_bps,
        max_volume_share=pa.max_volume_share,
        exchange_costs=pa.exchange_costs,
    )
