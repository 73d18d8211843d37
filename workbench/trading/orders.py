"""Orders: the state machine, deterministic client order ids, and the manager that writes before it sends.

The rule that makes restarts safe: an order is recorded NEW in the store *before* the broker hears
of it, under a client order id derived from (run, cycle, symbol, side). After a crash, ``reconcile``
asks the broker what became of every non-final order by that id — it never sends one again.

    NEW ──► SUBMITTED ──► PARTIALLY_FILLED ──► FILLED
     │          │                │
     │          ├──► FILLED      ├──► CANCELLED / EXPIRED
     │          └──► CANCELLED / REJECTED / EXPIRED
     └──► REJECTED / CANCELLED  (refused or withdrawn before the venue accepted it)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from workbench.brokers.base import FINAL_STATUSES, Broker, BrokerOrder, Fill, OrderRejected, OrderRequest, TemporaryBrokerError
from workbench.trading.store import Store, iso

__all__ = [
    "STATUSES",
    "InvalidTransition",
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


class InvalidTransition(ValueError):
    """An order status change the state machine forbids (e.g. FILLED → CANCELLED)."""

    def __init__(self, current: str, new: str):
        self.current, self.new = current, new
        allowed = ", ".join(sorted(_NEXT.get(current, ()))) or "nothing (final)"
        super().__init__(f"order cannot go from {current} to {new}; from {current} it may go to {allowed}")


def transition(current: str, new: str) -> str:
    """The new status if the move is legal; re-stating the same non-final status is a no-op."""
    for s in (current, new):
        if s not in _NEXT:
            raise InvalidTransition(current, new) if s == current else ValueError(f"unknown order status {new!r}; one of {STATUSES}")
    if new == current and current not in FINAL_STATUSES:
        return new
    if new not in _NEXT[current]:
        raise InvalidTransition(current, new)
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
    raise InvalidTransition(current, new)


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
    book (average price, stops, realised P&L) in step with fills. One per (store, broker, account)."""

    def __init__(self, store: Store, broker: Broker, account: str, retries: int = 3, backoff_s: float = 0.2, run_id: int | None = None):
        self.store, self.broker, self.account = store, broker, account
        self.run_id = run_id
        self._retrying = dict(
            retry=retry_if_exception_type(TemporaryBrokerError),
            stop=stop_after_attempt(max(1, retries)),
            wait=wait_exponential(multiplier=backoff_s, max=2.0),
            reraise=True,
        )

    def _call(self, fn, *args):
        for attempt in Retrying(**self._retrying):
            with attempt:
                return fn(*args)

    # ---- placing --------------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> BrokerOrder:
        """Record NEW, send, record the answer. A broker rejection is recorded (REJECTED + event) and
        returned, not raised; a temporary error that outlasts the retries leaves the order NEW for
        ``reconcile`` and is raised."""
        req = intent.request
        existing = self.store.get_order(req.client_order_id)
        if existing is not None:
            # Known id: never send twice — ask what became of it.
            return self.refresh(req.client_order_id)
        self.store.insert_order(
            {
                "client_order_id": req.client_order_id, "run_id": intent.run_id, "cycle": intent.cycle,
                "account": self.account, "symbol": req.symbol, "side": req.side, "type": req.type,
                "quantity": req.quantity, "limit_price": req.limit_price, "status": "NEW", "reason": intent.reason,
                "stop_loss": intent.stop_loss, "take_profit": intent.take_profit,
            }
        )
        try:
            answer = self._call(self.broker.place, req)
        except OrderRejected as e:
            self.store.update_order(req.client_order_id, status="REJECTED", reason=f"{intent.reason}; rejected: {e.reason}", event_detail=str(e))
            self.store.log_event("order_rejected", f"{req.side} {req.quantity:g} {req.symbol} rejected by broker: {e}", "WARNING", self.run_id)
            return BrokerOrder(req.client_order_id, req.symbol, req.side, req.quantity, "REJECTED", reason=e.reason, type=req.type, limit_price=req.limit_price)
        self._apply(answer)
        return answer

    def refresh(self, cid: str) -> BrokerOrder:
        """Ask the broker about one order and bring the store up to date."""
        answer = self._call(self.broker.order_status, cid)
        self._apply(answer)
        return answer

    def refresh_open(self) -> list[BrokerOrder]:
        """Every non-final order of this account, refreshed (fills of resting limit orders land here)."""
        return self._refresh_all("a refresh")

    def reconcile(self) -> list[BrokerOrder]:
        """Start-up: ask the broker about every non-final order in the store, by client id, and update
        the store. Orders the broker never heard of are marked REJECTED (never re-sent)."""
        return self._refresh_all("a restart")

    def _refresh_all(self, when: str) -> list[BrokerOrder]:
        out = []
        for row in self.store.open_orders(self.account):
            cid = row["client_order_id"]
            try:
                out.append(self.refresh(cid))
            except OrderRejected as e:
                if e.reason != "unknown_order":
                    raise
                # The send failed before the venue took it (we write before we send): it is dead.
                self.store.update_order(cid, status="REJECTED", reason=f"not found at the broker on {when}; not re-sent", event_detail=str(e))
                self.store.log_event("reconcile", f"order {cid} ({row['side']} {row['symbol']}) never reached the broker: marked REJECTED, not re-sent", "WARNING", self.run_id)
        return out

    def cancel(self, cid: str) -> BrokerOrder:
        answer = self._call(self.broker.cancel, cid)
        self._apply(answer)
        return answer

    def cancel_all(self) -> list[BrokerOrder]:
        """Cancel every open order the broker or the store knows of for this account."""
        ids = {o.client_order_id for o in self._call(self.broker.open_orders)}
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
                    "client_order_id": cid, "run_id": self.run_id, "account": self.account, "symbol": answer.symbol,
                    "side": answer.side, "type": answer.type, "quantity": answer.quantity, "limit_price": answer.limit_price,
                    "status": "NEW", "reason": "adopted from broker",
                }
            )
            row = self.store.get_order(cid)
        self._record_fills(cid, row)
        try:
            steps = path(row["status"], answer.status)
        except InvalidTransition as e:
            # The venue is the source of truth, but a report that breaks the state machine is a bug
            # somewhere: keep the store as it is and say so loudly.
            self.store.log_event("order_state", f"{cid}: broker reports {answer.status}: {e}", "ERROR", self.run_id)
            return
        common = dict(
            broker_order_id=answer.broker_order_id, filled_quantity=float(answer.filled_quantity),
            average_price=answer.average_price, fee=float(answer.fee),
        )
        if not steps:
            return
        for i, status in enumerate(steps):
            last = i == len(steps) - 1
            fields = dict(common) if last else {}
            if last and answer.reason and status in ("REJECTED", "CANCELLED", "EXPIRED"):
                fields["reason"] = f"{row['reason'] or ''}; {answer.reason}".strip("; ")
            self.store.update_order(cid, status=status, event_detail=answer.reason if last else None, **fields)

    def _record_fills(self, cid: str, row: dict) -> None:
        since = pd.Timestamp(row["created_at"]) - pd.Timedelta(seconds=1) if row.get("created_at") else None
        for fill in self._call(self.broker.fills, since):
            if fill.client_order_id != cid:
                continue
            if self.store.add_fill(fill, self.account):
                self._apply_fill(fill, row)

    def _apply_fill(self, fill: Fill, order_row: dict) -> None:
        """Average price carries the buy fees (cost basis), so unrealised P&L = equity change exactly;
        realised P&L on a sell = (price − average) × quantity − sell fee."""
        pos = self.store.get_position(self.account, fill.symbol) or {"quantity": 0.0, "average_price": None, "realized_pnl": 0.0}
        q0, avg0 = float(pos["quantity"] or 0.0), float(pos["average_price"] or 0.0)
        realized = float(pos["realized_pnl"] or 0.0)
        fields: dict = {}
        if fill.side == "buy":
            q1 = q0 + fill.quantity
            fields["average_price"] = (q0 * avg0 + fill.quantity * fill.price + fill.fee) / q1
            if order_row.get("stop_loss") is not None:
                fields["stop_loss"] = order_row["stop_loss"]
            if order_row.get("take_profit") is not None:
                fields["take_profit"] = order_row["take_profit"]
        else:
            sold = min(fill.quantity, q0) if q0 > 0 else fill.quantity
            realized += (fill.price - avg0) * sold - fill.fee
            q1 = q0 - fill.quantity
            if abs(q1) < 1e-12:
                q1 = 0.0
            if q1 == 0.0:
                fields.update(average_price=None, stop_loss=None, take_profit=None)
        fields.update(quantity=q1, realized_pnl=realized)
        self.store.upsert_position(self.account, fill.symbol, **fields)
        self.store.log_event(
            "fill", f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:.6g} fee {fill.fee:.4g} ({fill.client_order_id}) at {iso(fill.ts)}",
            "INFO", self.run_id,
        )

