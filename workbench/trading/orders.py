"""Orders: the state machine, deterministic client order ids, and the manager that writes before it sends.

The rule that makes restarts safe: an order is recorded NEW in the store *before* the broker hears
of it, under a client order id derived from (run, cycle, symbol, side). After a crash, ``reconcile``
asks the broker what became of every non-final order by that id. An order the venue does not know
yet is not declared dead at once — venues are eventually consistent — but given ``unknown_grace_s``;
within it a NEW order (the crash came between our write and the venue's answer) is sent again under
the *same* id, which the venue deduplicates, so a re-send can never make a second order. Past the
grace period it is REJECTED, never re-sent.

Entries that carry a stop-loss and a take-profit get them as resting exit orders at the broker, an
OCO pair (a fill of one cancels the other), kept in step with the position by ``sync_exits``.

    NEW ──► SUBMITTED ──► PARTIALLY_FILLED ──► FILLED
     │          │                │
     │          ├──► FILLED      ├──► CANCELLED / EXPIRED
     │          └──► CANCELLED / REJECTED / EXPIRED
     └──► REJECTED / CANCELLED  (refused or withdrawn before the venue accepted it)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from workbench.errors import InvalidTransition
from workbench.trading.store import Store, iso, utcnow
from workbench.venues.base import (
    EXIT_TYPES,
    FINAL_STATUSES,
    AuthenticationError,
    Broker,
    BrokerOrder,
    ExchangeUnavailable,
    Fill,
    Market,
    OrderRejected,
    OrderRequest,
    floor_to_lot,
)

__all__ = [
    "STATUSES",
    "transition",
    "path",
    "client_order_id",
    "OrderIntent",
    "OrderManager",
]

STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED")
_NEXT: dict[str, frozenset[str]] = {
    "NEW": frozenset({"SUBMITTED", "REJECTED", "CANCELLED"}),
    "SUBMITTED": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"}),
    "PARTIALLY_FILLED": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED"}),
    "FILLED": frozenset(),
    "CANCELLED": frozenset(),
    "REJECTED": frozenset(),
    "EXPIRED": frozenset(),
}


def transition(current: str, new: str) -> str:
    """The new status if the move is legal; re-stating the same non-final status is a no-op."""
    for s in (current, new):
        if s not in _NEXT:
            raise (
                InvalidTransition(current, new, ())
                if s == current
                else ValueError(f"unknown order status {new!r}; one of {STATUSES}")
            )
    if new == current and current not in FINAL_STATUSES:
        return new
    if new not in _NEXT[current]:
        raise InvalidTransition(current, new, _NEXT[current])
    return new


def path(current: str, new: str) -> list[str]:
    """Statuses to pass through from ``current`` to ``new`` (a venue may report FILLED for an order we
    still hold as NEW: that is NEW → SUBMITTED → FILLED). Raises ``InvalidTransition`` if no path."""
    if new == current:
        return [] if current in FINAL_STATUSES else [transition(current, new)]
    if new in _NEXT.get(current, ()):
        return [new]
    if current == "NEW" and new in _NEXT["SUBMITTED"]:
        return ["SUBMITTED", new]
    raise InvalidTransition(current, new, _NEXT.get(current, ()))


_SAFE = re.compile(r"[^A-Za-z0-9]")


def client_order_id(run_id: int, cycle: int, symbol: str, side: str, purpose: str = "") -> str:
    """Deterministic, ≤ 36 ASCII chars (Binance's limit), unique per (run, cycle, symbol, side, purpose).

    Readable when it fits (``wb-12-7-AAPL-b``); symbols that lose characters to sanitising or are
    long get a short hash of the original, so "BTC/USDT" and "BTCUSDT" never collide.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    clean = _SAFE.sub("", symbol)
    tag = side[0] + _SAFE.sub("", purpose)[:3]
    cid = f"wb-{run_id}-{cycle}-{clean}-{tag}"
    if clean != symbol or len(cid) > 36:
        h = hashlib.sha1(symbol.encode()).hexdigest()[:6]
        cid = f"wb-{run_id}-{cycle}-{clean[:8]}{h}-{tag}"
    if len(cid) > 36:
        cid = "wb-" + hashlib.sha1(f"{run_id}|{cycle}|{symbol}|{side}|{purpose}".encode()).hexdigest()[:30]
    return cid


@dataclass(frozen=True)
class OrderIntent:
    """What the loop wants, with the context the store keeps next to the order."""

    request: OrderRequest
    run_id: int | None
    cycle: int | None
    reason: str
    stop_loss: float | None = None
    take_profit: float | None = None


class OrderManager:
    """Writes every order and fill to the store, talks to the broker, keeps the store's position
    book (average price, stops, realised P&L) in step with fills. One per (store, broker, account).

    ``on_point``, when given, is called with the name of each crash-sensitive point ``submit`` passes
    ("after_new": the order is recorded NEW, the broker not yet called; "after_place": the broker
    answered, the store not yet updated), so a crash test can kill the process at a known instant.
    """

    def __init__(
        self,
        store: Store,
        broker: Broker,
        account: str,
        run_id: int | None = None,
        unknown_grace_s: float = 60.0,
        on_point: Callable[[str], None] | None = None,
    ):
        self.store, self.broker, self.account = store, broker, account
        self._on_point = on_point
        self.run_id = run_id
        self.unknown_grace_s = float(unknown_grace_s)
        self._markets: dict[str, Market] = {}

    def _point(self, name: str) -> None:
        if self._on_point is not None:
            self._on_point(name)

    # ---- placing --------------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> BrokerOrder:
        """Record NEW, send, record the answer. A broker rejection is recorded (REJECTED + event) and
        returned, not raised; a temporary error that outlasts the adapter's retries leaves the order NEW for
        ``reconcile`` and is raised. A known id is never sent as a new order: it is asked about.
        A closing sell first withdraws the symbol's resting exit orders (they hold the position)."""
        req = intent.request
        existing = self.store.get_order(req.client_order_id)
        if existing is not None:
            return self._resume(existing)
        if req.side == "sell" and req.type not in EXIT_TYPES:
            self.cancel_exits(req.symbol)
        self.store.insert_order(
            {
                "client_order_id": req.client_order_id,
                "run_id": intent.run_id,
                "cycle": intent.cycle,
                "account": self.account,
                "symbol": req.symbol,
                "side": req.side,
                "type": req.type,
                "quantity": req.quantity,
                "limit_price": req.limit_price,
                "stop_price": req.stop_price,
                "oco_group": req.oco_group,
                "status": "NEW",
                "reason": intent.reason,
                "stop_loss": intent.stop_loss,
                "take_profit": intent.take_profit,
            }
        )
        self._point("after_new")
        return self._send(req, intent.reason)

    def _send(self, req: OrderRequest, reason: str) -> BrokerOrder:
        try:
            answer = self.broker.place(req)
        except OrderRejected as e:
            self.store.update_order(
                req.client_order_id, status="REJECTED", reason=f"{reason}; rejected: {e.reason}", event_detail=str(e)
            )
            self.store.log_event(
                "order_rejected",
                f"{req.side} {req.quantity:g} {req.symbol} rejected by broker: {e}",
                "WARNING",
                self.run_id,
            )
            return BrokerOrder(
                req.client_order_id,
                req.symbol,
                req.side,
                req.quantity,
                "REJECTED",
                reason=e.reason,
                type=req.type,
                limit_price=req.limit_price,
                stop_price=req.stop_price,
                oco_group=req.oco_group,
            )
        self._point("after_place")
        self._apply(answer)
        return answer

    @staticmethod
    def request_of(row: Mapping) -> OrderRequest:
        """The request an order row was sent as (to re-send it under the same id)."""
        return OrderRequest(
            row["client_order_id"],
            row["symbol"],
            row["side"],
            float(row["quantity"]),
            row["type"],
            limit_price=row.get("limit_price"),
            stop_price=row.get("stop_price"),
            oco_group=row.get("oco_group"),
        )

    def _age_s(self, row: Mapping) -> float:
        return (utcnow() - pd.Timestamp(row["created_at"])).total_seconds()

    def _resume(self, row: dict, resend: bool = True) -> BrokerOrder:
        """A known order: ask the venue. Unknown there: NEW within the grace period → send again under
        the same id (idempotent) when ``resend``; a younger SUBMITTED → wait; past the grace period → REJECTED."""
        cid = row["client_order_id"]
        try:
            return self.refresh(cid)
        except OrderRejected as e:
            if e.reason != "unknown_order":
                raise
            if row["status"] in FINAL_STATUSES:
                return self._from_row(row)
            if self._age_s(row) <= self.unknown_grace_s:
                if row["status"] != "NEW" or not resend:
                    return self._from_row(row)  # the venue has not caught up yet, or not now
                self.store.log_event(
                    "resend",
                    f"order {cid} ({row['side']} {row['symbol']}) never reached the broker: sent again under the same id",
                    "WARNING",
                    self.run_id,
                )
                return self._send(self.request_of(row), row["reason"] or "")
            self.store.update_order(
                cid,
                status="REJECTED",
                reason=f"not found at the broker after {self.unknown_grace_s:g}s; not re-sent",
                event_detail=str(e),
            )
            self.store.log_event(
                "reconcile",
                f"order {cid} ({row['side']} {row['symbol']}) never reached the broker: marked REJECTED, not re-sent",
                "WARNING",
                self.run_id,
            )
            return self._from_row(self.store.require_order(cid))

    @staticmethod
    def _from_row(row: Mapping) -> BrokerOrder:
        return BrokerOrder(
            row["client_order_id"],
            row["symbol"],
            row["side"],
            float(row["quantity"]),
            row["status"],
            filled_quantity=float(row["filled_quantity"] or 0.0),
            average_price=row["average_price"],
            fee=float(row["fee"] or 0.0),
            broker_order_id=row["broker_order_id"],
            reason=row["reason"],
            type=row["type"],
            limit_price=row["limit_price"],
            stop_price=row.get("stop_price"),
            oco_group=row.get("oco_group"),
        )

    def refresh(self, cid: str) -> BrokerOrder:
        """Ask the broker about one order and bring the store up to date."""
        answer = self.broker.order_status(cid)
        self._apply(answer)
        return answer

    def refresh_open(self) -> list[BrokerOrder]:
        """Every non-final order of this account, refreshed (fills of resting orders land here); an
        order that never reached the venue is sent again here, in a cycle, with fresh prices."""
        return self._refresh_all(resend=True)

    def reconcile(self) -> list[BrokerOrder]:
        """Start-up: ask the broker about every non-final order in the store, by client id, and bring
        the store up to date. Nothing is sent here: an order the venue never got waits for the next
        cycle (``refresh_open`` or the re-run of its own cycle), within its grace period."""
        return self._refresh_all(resend=False)

    def _refresh_all(self, resend: bool) -> list[BrokerOrder]:
        """One ``open_orders`` call answers for every order still resting unchanged; only orders that
        moved (new fills, final, unknown) are looked at one by one. One order's trouble (a temporary
        error, an adapter bug) is logged and the others go on; only errors that stop trading escape."""
        rows = self.store.open_orders(self.account)
        if not rows:
            return []
        venue_open = {o.client_order_id: o for o in self.broker.open_orders()}
        out = []
        for row in rows:
            try:
                o = venue_open.get(row["client_order_id"])
                if (
                    o is not None
                    and o.status == row["status"]
                    and abs(o.filled_quantity - float(row["filled_quantity"] or 0.0)) <= 1e-12
                ):
                    out.append(o)  # resting, nothing new
                elif o is not None:
                    self._apply(o)
                    out.append(o)
                else:
                    out.append(self._resume(row, resend))
            except (AuthenticationError, ExchangeUnavailable):
                raise
            except Exception as e:
                self.store.log_event(
                    "refresh_failed", f"order {row['client_order_id']}: {type(e).__name__}: {e}", "ERROR", self.run_id
                )
        return out

    def cancel(self, cid: str) -> BrokerOrder:
        answer = self.broker.cancel(cid)
        self._apply(answer)
        return answer

    def cancel_exits(self, symbol: str) -> list[BrokerOrder]:
        """Withdraw the resting stop-loss/take-profit orders of one symbol."""
        out = []
        for row in self.store.open_orders(self.account):
            if row["symbol"] == symbol and row["type"] in EXIT_TYPES:
                try:
                    out.append(self.cancel(row["client_order_id"]))
                except OrderRejected as e:
                    self.store.log_event(
                        "cancel_failed", f"cancel exit {row['client_order_id']}: {e}", "WARNING", self.run_id
                    )
        return out

    def _market(self, symbol: str) -> Market | None:
        if symbol not in self._markets:
            self._markets.update(self.broker.markets([symbol]))
        return self._markets.get(symbol)

    def sync_exits(self, cycle: int | None) -> int:
        """Keep one resting OCO exit pair (stop-loss + take-profit sells) per long that has stops, sized
        to the position less other open sells. A pair of the wrong size is cancelled and replaced; the
        ids are deterministic in (run, cycle, symbol, how many pairs this run placed for it), so a
        re-run of a crashed cycle finds its own orders instead of sending new ones. Returns orders placed."""
        book = self.store.position_book(self.account)
        by_symbol: dict[str, list[dict]] = {}
        for r in self.store.open_orders(self.account):
            by_symbol.setdefault(r["symbol"], []).append(r)
        placed = 0
        for sym, pos in book.items():
            try:  # one symbol's trouble must not leave the later symbols unprotected
                placed += self._sync_symbol_exits(sym, pos, by_symbol.get(sym, []), cycle)
            except AuthenticationError:
                raise
            except Exception as e:
                if _store_fault(e):
                    raise
                self.store.log_event(
                    "exit_error",
                    f"cycle {cycle}: exit orders of {sym} failed: {type(e).__name__}: {e}; tried again next cycle",
                    "ERROR",
                    self.run_id,
                )
        return placed

    def _sync_symbol_exits(self, sym: str, pos: Mapping, mine: list[dict], cycle: int | None) -> int:
        """``sync_exits`` for one symbol: its exit pair brought to the position's size and stops."""
        placed = 0
        qty = float(pos["quantity"] or 0.0)
        sl, tp = pos.get("stop_loss"), pos.get("take_profit")
        exits = [r for r in mine if r["type"] in EXIT_TYPES]
        if qty <= 0 and not exits:
            return 0
        market = self._market(sym)
        lot = market.lot_size if market is not None else 0.0
        tick = market.tick_size if market is not None else 0.0
        other = sum(
            float(r["quantity"]) - float(r["filled_quantity"] or 0)
            for r in mine
            if r["side"] == "sell" and r["type"] not in EXIT_TYPES
        )
        want = floor_to_lot(qty - other, lot) if qty > 0 and (sl is not None or tp is not None) else 0.0
        groups = {r["oco_group"] for r in exits}
        have = max((float(r["quantity"]) - float(r["filled_quantity"] or 0) for r in exits), default=0.0)
        if len(groups) <= 1 and abs(have - want) <= 1e-9 * max(1.0, want):
            return 0
        for r in exits:
            try:
                self.cancel(r["client_order_id"])
            except OrderRejected as e:
                self.store.log_event(
                    "cancel_failed", f"cancel exit {r['client_order_id']}: {e}", "WARNING", self.run_id
                )
        if want <= 0:
            return 0
        k = self.store.count_oco_groups(self.account, sym, self.run_id)
        run = self.run_id if self.run_id is not None else 0
        stop_id = client_order_id(run, cycle or 0, sym, "sell", f"s{k}")
        group = "g" + stop_id
        legs = []
        if sl is not None:
            legs.append(
                OrderRequest(stop_id, sym, "sell", want, "stop_loss", stop_price=_to_tick(sl, tick), oco_group=group)
            )
        if tp is not None:
            legs.append(
                OrderRequest(
                    client_order_id(run, cycle or 0, sym, "sell", f"t{k}"),
                    sym,
                    "sell",
                    want,
                    "take_profit",
                    limit_price=_to_tick(tp, tick),
                    oco_group=group,
                )
            )
        failed: Exception | None = None
        for req in legs:  # each leg on its own: a failed stop must not keep the take-profit from being recorded
            why = f"exit {req.type} {req.stop_price or req.limit_price:.6g} for {want:g} {sym}"
            try:
                ans = self.submit(OrderIntent(req, self.run_id, cycle, why))
            except AuthenticationError:
                raise
            except Exception as e:  # recorded NEW: ``refresh_open`` sends it again under its id next cycle
                if _store_fault(e):
                    raise
                failed = failed or e
                continue
            placed += ans.status != "REJECTED"
        if failed is not None:
            raise failed
        return placed

    def cancel_all(self) -> list[BrokerOrder]:
        """Cancel every open order the broker or the store knows of for this account."""
        ids = {o.client_order_id for o in self.broker.open_orders()}
        ids |= {o["client_order_id"] for o in self.store.open_orders(self.account)}
        out = []
        for cid in sorted(ids):
            try:
                out.append(self.cancel(cid))
            except OrderRejected as e:
                self.store.log_event("cancel_failed", f"cancel {cid}: {e}", "WARNING", self.run_id)
        return out

    # ---- bookkeeping ----------------------------------------------------------------------------
    def _apply(self, answer: BrokerOrder) -> None:
        cid = answer.client_order_id
        row = self.store.get_order(cid)
        if row is None:  # an order placed outside this manager (e.g. by hand on the venue): adopt it
            self.store.insert_order(
                {
                    "client_order_id": cid,
                    "run_id": self.run_id,
                    "account": self.account,
                    "symbol": answer.symbol,
                    "side": answer.side,
                    "type": answer.type,
                    "quantity": answer.quantity,
                    "limit_price": answer.limit_price,
                    "stop_price": answer.stop_price,
                    "oco_group": answer.oco_group,
                    "status": "NEW",
                    "reason": "adopted from broker",
                }
            )
            row = self.store.require_order(cid)
        if float(answer.filled_quantity) > float(row["filled_quantity"] or 0.0) + 1e-12 or answer.is_final:
            self._record_fills(cid, row)
        try:
            steps = path(row["status"], answer.status)
        except InvalidTransition as e:
            # The venue is the source of truth, but a report that breaks the state machine is a bug
            # somewhere: keep the store as it is and say so loudly.
            self.store.log_event("order_state", f"{cid}: broker reports {answer.status}: {e}", "ERROR", self.run_id)
            return
        common = dict(
            broker_order_id=answer.broker_order_id,
            filled_quantity=float(answer.filled_quantity),
            average_price=answer.average_price,
            fee=float(answer.fee),
        )
        if not steps:
            return
        if answer.reason and steps[-1] in ("REJECTED", "CANCELLED", "EXPIRED"):
            common["reason"] = f"{row['reason'] or ''}; {answer.reason}".strip("; ")
        self.store.advance_order(cid, steps, answer.reason, **common)

    def _record_fills(self, cid: str, row: dict) -> None:
        """New fills of one order. A broker that can list one order's fills (``fills_for``, optional)
        is asked for those; otherwise its fills since the order was created are filtered."""
        by_order = getattr(self.broker, "fills_for", None)
        if callable(by_order):
            fills = by_order(cid)
        else:
            since = pd.Timestamp(row["created_at"]) - pd.Timedelta(seconds=1) if row.get("created_at") else None
            fills = self.broker.fills(since)
        for fill in fills:
            if fill.client_order_id == cid:
                self._apply_fill(fill, row)  # a fill already recorded is skipped inside, atomically

    def _apply_fill(self, fill: Fill, order_row: dict) -> None:
        """Average price carries the buy fees (cost basis), so unrealised P&L = equity change exactly;
        realised P&L on a sell = (price − average) × quantity − sell fee. Fill, position and event
        are written in one transaction, so a crash never books a fill without its position."""
        pos = self.store.get_position(self.account, fill.symbol) or {
            "quantity": 0.0,
            "average_price": None,
            "realized_pnl": 0.0,
        }
        q0, avg0 = float(pos["quantity"] or 0.0), float(pos["average_price"] or 0.0)
        realized = float(pos["realized_pnl"] or 0.0)
        fields: dict = {}
        cash, base_fee, quote_fee = self._cash_moves(fill)
        if fill.side == "buy":
            q1 = q0 + fill.quantity - base_fee  # a venue that takes its fee in the bought asset delivers less
            fields["average_price"] = (q0 * avg0 + fill.quantity * fill.price + quote_fee) / q1 if q1 > 0 else None
            if order_row.get("stop_loss") is not None:
                fields["stop_loss"] = order_row["stop_loss"]
            if order_row.get("take_profit") is not None:
                fields["take_profit"] = order_row["take_profit"]
        else:
            sold = min(fill.quantity, q0) if q0 > 0 else fill.quantity
            realized += (fill.price - avg0) * sold - quote_fee
            q1 = q0 - fill.quantity - base_fee
            if abs(q1) < 1e-12:
                q1 = 0.0
            if q1 == 0.0:
                fields.update(average_price=None, stop_loss=None, take_profit=None)
        fields.update(quantity=q1, realized_pnl=realized)
        msg = f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:.6g} fee {fill.fee:.4g} ({fill.client_order_id}) at {iso(fill.ts)}"
        self.store.book_fill(fill, self.account, fields, msg, self.run_id, cash=cash)

    def _cash_moves(self, fill: Fill) -> tuple[dict[str, float], float, float]:
        """Cash movements of a fill for the local cash book, and its fee split into the part paid in
        the traded asset (changes the quantity held) and the part in the settlement currency (the
        cost basis). The settlement currency follows the brokers' rule: the instrument's quote
        currency when the account holds it, else the account currency. A fee in a third currency
        (e.g. BNB) moves that currency's cash only."""
        market = self._market(fill.symbol)
        book = self.store.cash_book(self.account)
        quote = market.quote if market is not None else None
        ccy = quote if quote in book else getattr(self.broker, "currency", None) or quote or ""
        sign = 1.0 if fill.side == "buy" else -1.0
        cash = {ccy: -sign * fill.quantity * fill.price}
        fee_ccy = fill.fee_currency
        base_fee = quote_fee = 0.0
        if market is not None and fee_ccy and fee_ccy == market.base and fee_ccy != ccy:
            base_fee = float(fill.fee)
        elif not fee_ccy or fee_ccy in (ccy, quote):
            quote_fee = float(fill.fee)
            cash[ccy] -= quote_fee
        else:
            cash[fee_ccy] = cash.get(fee_ccy, 0.0) - float(fill.fee)
        return cash, base_fee, quote_fee


def _store_fault(e: BaseException) -> bool:
    from workbench.trading.cycle import is_store_error

    return is_store_error(e)


def _to_tick(price: float, tick: float) -> float:
    if not tick or tick <= 0:
        return float(price)
    digits = max(0, -math.floor(math.log10(tick))) + 3
    return round(round(price / tick) * tick, digits)
