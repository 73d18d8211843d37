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

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from workbench.errors import InvalidTransition
from workbench.trading.exits import PAIR_NUMBERS, Wanted, exit_intents, plan_exits
from workbench.trading.order_state import STATUSES, OrderIntent, client_order_id, path, transition
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
    order_statuses,
)

# Pair numbers tried for one symbol in one ``sync_exits`` before it is given up for the cycle: the ids
# of a (run, cycle, symbol) hold ``PAIR_NUMBERS`` distinct numbers, so after that many every one is taken.
_PAIR_PROBES = PAIR_NUMBERS

__all__ = [
    "STATUSES",
    "transition",
    "path",
    "client_order_id",
    "OrderIntent",
    "OrderManager",
]


class OrderManager:
    """Writes every order and fill to the store, talks to the broker, keeps the store's position
    book (average price, stops, realised P&L) in step with fills. One per (store, broker, account).

    ``on_point``, when given, is called with the name of each crash-sensitive point ``submit_many``
    passes ("after_new": the batch is recorded NEW, the venue not yet called; "after_place": the
    venue answered — the whole batch, or one more order of it when the venue takes them one by one —
    and the store is not yet updated; "after_apply": the answers are booked), and of the batched
    reads and cancels ("after_status": the venue said what became of the orders that left its book,
    not yet booked; "after_cancel": the venue cancelled a batch, not yet booked), so a crash test can
    kill the process at a known instant.
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
        self._caching = False  # inside ``cycle_cache``
        self._open: dict[str, dict] | None = None  # the account's open order rows while caching (None: read next time)
        self._book: dict[str, dict] | None = None  # the account's position rows while caching (None: read next time)
        self._pairs: dict[str, int] | None = None  # exit pairs numbered so far per symbol (None: ask the store)

    def _point(self, name: str) -> None:
        if self._on_point is not None:
            self._on_point(name)

    # ---- the open orders, read once per cycle ------------------------------------------------------
    @contextmanager
    def cycle_cache(self) -> Iterator[None]:
        """While inside, the account's open orders and its position book are read from the store once
        and then kept in step with the writes this manager makes (rows inserted NEW, answers booked,
        the positions those answers leave), instead of being read again by every stage (refresh, the
        portfolio sync, exit sync, the snapshots, the stop fallback, the entries' exit sync). Why this
        is safe only here: inside a cycle this manager is the only writer of the account's orders and
        fills (one run per account is enforced), and the one other writer of its positions, the
        portfolio sync, says so (``forget_positions``); outside, every read goes to the store."""
        self._caching, self._open, self._book = True, None, None
        try:
            yield
        finally:
            self._caching, self._open, self._book = False, None, None

    def position_book(self) -> dict[str, dict]:
        """The account's position rows by symbol (``Store.position_book``; from the cycle's copy inside
        ``cycle_cache``). The mapping is the caller's; the rows must not be changed."""
        if not self._caching:
            return self.store.position_book(self.account)
        if self._book is None:
            self._book = self.store.position_book(self.account)
        return dict(self._book)

    def forget_positions(self) -> None:
        """Someone else wrote the account's positions (the portfolio sync's adjustments): the next
        read goes to the store."""
        self._book = None

    def _note_positions(self, rows: Mapping[str, dict]) -> None:
        """Position rows just committed (every column, as stored) replace the copy's (new dicts: a
        mapping handed out earlier keeps what it saw)."""
        if self._book is not None:
            self._book.update(rows)

    def open_rows(self) -> list[dict]:
        """The account's non-final orders, oldest first (``Store.open_orders``; from the cycle's cache
        inside ``cycle_cache``). Callers must not change the rows."""
        if not self._caching:
            return self.store.open_orders(self.account)
        if self._open is None:
            self._open = {r["client_order_id"]: r for r in self.store.open_orders(self.account)}
        return list(self._open.values())

    def _note_inserted(self, rows: Sequence[dict]) -> None:
        """Rows just committed NEW (every column, as written; dicts no one changes after) join the cache."""
        if self._open is None:
            return
        for r in rows:
            if r.get("account") != self.account:
                self._open = None  # not this account's: let the next read decide
                return
            if r["status"] not in FINAL_STATUSES:
                self._open[r["client_order_id"]] = r  # the store's own copy as written: never changed after

    def _note_updated(self, updates: Sequence[Mapping], now: str | None) -> None:
        """Rows just booked: an order gone final leaves the cache, another takes the new columns (a new
        dict: a list handed out earlier keeps what it saw). An open order the cache does not hold
        (another account's, or adopted without a row here) drops the cache: the next read is the store's."""
        if self._open is None:
            return
        for u in updates:
            cid = u["client_order_id"]
            if u["status"] in FINAL_STATUSES:
                self._open.pop(cid, None)
            elif cid in self._open:
                self._open[cid] = {**self._open[cid], **u, **({"updated_at": now} if now else {})}
            else:
                self._open = None
                return

    # ---- placing --------------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> BrokerOrder:
        """Record NEW, send, record the answer. A broker rejection is recorded (REJECTED + event) and
        returned, not raised; a temporary error that outlasts the adapter's retries leaves the order NEW for
        ``reconcile`` and is raised. A known id is never sent as a new order: it is asked about.
        A closing sell first withdraws the symbol's resting exit orders (they hold the position)."""
        answer = self.submit_many([intent])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def submit_many(
        self, intents: Sequence[OrderIntent], known: Mapping[str, dict] | None = None
    ) -> list[BrokerOrder | Exception]:
        """``submit`` for a batch, in one pass per stage: known ids asked about, the resting exits of
        closing sells withdrawn, every NEW row committed in one transaction (the venue hears of none
        of them before), the orders sent (one venue call when the broker has ``place_many``), and
        every answer booked in one transaction. Answers come back in the intents' order; one order's
        trouble is its entry (an exception), not the batch's. An error that stops trading
        (authentication, exchange down) is raised after the answers already received are booked:
        the orders not sent stay NEW for ``reconcile`` and the next cycle. ``known``: the store rows of
        these ids when the caller has just read them (an id left out is not in the store)."""
        out: dict[str, BrokerOrder | Exception] = {}
        cids = [i.request.client_order_id for i in intents]
        known = self.store.get_orders(cids) if known is None else known
        for cid in dict.fromkeys(c for c in cids if c in known):
            try:
                out[cid] = self._resume(known[cid])
            except (AuthenticationError, ExchangeUnavailable):
                raise
            except Exception as e:
                out[cid] = e
        fresh = list({i.request.client_order_id: i for i in intents if i.request.client_order_id not in known}.values())
        closing = {i.request.symbol for i in fresh if i.request.side == "sell" and i.request.type not in EXIT_TYPES}
        if closing:
            self.cancel_exits(closing)
        written: list[dict] = []
        if fresh:
            written = self.store.insert_orders([self._new_row(i) for i in fresh])
            self._note_inserted(written)
            self._point("after_new")
        reasons = {i.request.client_order_id: i.reason for i in fresh}
        out.update(self._send_many([i.request for i in fresh], reasons, {r["client_order_id"]: r for r in written}))
        return [out[c] for c in cids]

    def _new_row(self, intent: OrderIntent) -> dict:
        req = intent.request
        return {
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

    def _send_many(
        self, reqs: Sequence[OrderRequest], reasons: Mapping[str, str], rows: Mapping[str, Mapping] | None = None
    ) -> dict[str, BrokerOrder | Exception]:
        """Send orders already recorded NEW and book the answers in one batch. A venue with
        ``place_many`` takes them in one call; otherwise one by one, each failure kept to its order.
        ``rows``: their store rows when the caller holds them (just written or just read)."""
        if not reqs:
            return {}
        out: dict[str, BrokerOrder | Exception] = {}
        fatal: Exception | None = None
        # Only a venue whose own class batches (a wrapper that overrides ``place`` must not be bypassed).
        many = getattr(self.broker, "place_many", None) if hasattr(type(self.broker), "place_many") else None
        if callable(many):
            try:
                for req, ans in zip(reqs, many(list(reqs)), strict=True):
                    out[req.client_order_id] = ans
            except (AuthenticationError, ExchangeUnavailable) as e:
                fatal = e
            except Exception as e:  # nothing is known of any of them: they stay NEW for reconcile
                out.update({r.client_order_id: e for r in reqs})
            self._point("after_place")
        else:
            for req in reqs:
                try:
                    out[req.client_order_id] = self.broker.place(req)
                except OrderRejected as e:
                    out[req.client_order_id] = e
                except (AuthenticationError, ExchangeUnavailable) as e:
                    fatal = e
                    break
                except Exception as e:
                    out[req.client_order_id] = e
                self._point("after_place")
        by_id = {r.client_order_id: r for r in reqs}
        rejected = {c: e for c, e in out.items() if isinstance(e, OrderRejected)}
        answers = [a for a in out.values() if isinstance(a, BrokerOrder)]
        self._apply_many(
            answers, rejected={c: (by_id[c], reasons.get(c) or "", e) for c, e in rejected.items()}, known=rows
        )
        for c, err in rejected.items():
            r = by_id[c]
            out[c] = BrokerOrder(c, r.symbol, r.side, r.quantity, "REJECTED", reason=err.reason, type=r.type,
                                 limit_price=r.limit_price, stop_price=r.stop_price, oco_group=r.oco_group)  # fmt: skip
        self._point("after_apply")
        if fatal is not None:
            raise fatal
        return out

    def _send(self, req: OrderRequest, reason: str) -> BrokerOrder:
        answer = self._send_many([req], {req.client_order_id: reason})[req.client_order_id]
        if isinstance(answer, Exception):
            raise answer
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

    def _in_grace(self, row: Mapping) -> bool:
        """Young enough that the venue's not knowing it may still mean "not yet" (venues are eventually
        consistent), not "never"."""
        return self._age_s(row) <= self.unknown_grace_s

    def _resendable(self, row: Mapping) -> bool:
        """An order the venue does not know that may be sent again under its own id (the venue
        deduplicates): still NEW (the crash came between our write and the venue's answer) and within
        the grace period. The one statement of that rule (``_unknown`` and ``_refresh_all``)."""
        return row["status"] == "NEW" and self._in_grace(row)

    def _resume(self, row: dict, resend: bool = True) -> BrokerOrder:
        """A known order: ask the venue. Unknown there: NEW within the grace period → send again under
        the same id (idempotent) when ``resend``; a younger SUBMITTED → wait; past the grace period → REJECTED."""
        try:
            return self.refresh(row["client_order_id"])
        except OrderRejected as e:
            if e.reason != "unknown_order":
                raise
            return self._unknown(row, e, resend)

    def _unknown(self, row: dict, e: OrderRejected, resend: bool) -> BrokerOrder:
        """A known order the venue says it does not know (``_resume``'s rule)."""
        cid = row["client_order_id"]
        if row["status"] in FINAL_STATUSES:
            return self._from_row(row)
        if self._in_grace(row):
            if not (resend and self._resendable(row)):
                return self._from_row(row)  # the venue has not caught up yet, or not now
            self.store.log_event(
                "resend",
                f"order {cid} ({row['side']} {row['symbol']}) never reached the broker: sent again under the same id",
                "WARNING",
                self.run_id,
            )
            return self._send(self.request_of(row), row["reason"] or "")
        self._open = None  # a write the cache does not follow: read the store next time
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
        self._apply_many([answer])
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
        """One ``open_orders`` call answers for every order still resting; orders that left the book
        (filled, cancelled, unknown) are asked about together (``order_statuses``: one call where the
        venue can answer for many, else one each). Everything that moved is booked in
        one batch. One order's trouble (a temporary error, an adapter bug) is logged and the others
        go on; only errors that stop trading escape."""
        rows = self.open_rows()
        if not rows:
            return []
        venue_open = {o.client_order_id: o for o in self.broker.open_orders()}
        out = []
        moved = []
        for row in rows:
            o = venue_open.get(row["client_order_id"])
            if o is None:
                continue
            out.append(o)
            if o.status != row["status"] or abs(o.filled_quantity - float(row["filled_quantity"] or 0.0)) > 1e-12:
                moved.append(o)
        by_cid = {row["client_order_id"]: row for row in rows}  # as they are in the store: not read again
        try:
            self._apply_many(moved, known=by_cid)  # every order that moved while resting, booked in one batch
        except Exception as e:
            self.store.log_event(
                "refresh_failed", f"{len(moved)} order(s): {type(e).__name__}: {e}", "ERROR", self.run_id
            )
        gone: list[BrokerOrder] = []  # no longer resting: booked in one batch
        resends: list[dict] = []  # never reached the venue: sent again together, under their own ids
        failed: list[tuple[str, str, str]] = []
        left = [row for row in rows if row["client_order_id"] not in venue_open]
        answers = order_statuses(self.broker, [row["client_order_id"] for row in left])
        if left:
            self._point("after_status")
        for row in left:
            cid = row["client_order_id"]
            a = answers[cid]
            try:
                if isinstance(a, BrokerOrder):
                    gone.append(a)
                    continue
                if not isinstance(a, OrderRejected) or a.reason != "unknown_order":
                    raise a
                if resend and self._resendable(row):
                    resends.append(row)
                else:
                    out.append(self._unknown(row, a, resend=False))  # not yet at the venue, or never
            except (AuthenticationError, ExchangeUnavailable):
                raise
            except Exception as e:
                failed.append(("refresh_failed", f"order {cid}: {type(e).__name__}: {e}", "ERROR"))
        if failed:
            self.store.log_events(failed, self.run_id)
        try:
            self._apply_many(gone, known=by_cid)
            out += gone
        except Exception as e:
            self.store.log_event(
                "refresh_failed", f"{len(gone)} order(s): {type(e).__name__}: {e}", "ERROR", self.run_id
            )
        return out + self._resend_many(resends)

    def _resend_many(self, rows: Sequence[dict]) -> list[BrokerOrder]:
        """Orders recorded NEW that the venue never got, sent again under their own ids (the venue
        deduplicates) as one batch, like ``submit_many``: one event row per order saying so, one venue
        call, one booking. An order's own failure is logged and it stays NEW for the next cycle; an
        error that stops trading is raised after the answers received are booked."""
        if not rows:
            return []
        self.store.log_events(
            [("resend", f"order {r['client_order_id']} ({r['side']} {r['symbol']}) never reached the broker: "
              "sent again under the same id", "WARNING") for r in rows],
            self.run_id,
        )  # fmt: skip
        answers = self._send_many(
            [self.request_of(r) for r in rows],
            {r["client_order_id"]: r["reason"] or "" for r in rows},
            {r["client_order_id"]: r for r in rows},
        )
        failed = [(c, a) for c, a in answers.items() if not isinstance(a, BrokerOrder)]
        if failed:
            self.store.log_events(
                [("refresh_failed", f"order {c}: {type(a).__name__}: {a}", "ERROR") for c, a in failed], self.run_id
            )
        return [a for a in answers.values() if isinstance(a, BrokerOrder)]

    def cancel(self, cid: str) -> BrokerOrder:
        answer = self.broker.cancel(cid)
        self._apply_many([answer])
        return answer

    def cancel_many(self, cids: Sequence[str]) -> list[BrokerOrder]:
        """Cancel orders (one venue call when the venue's class has ``cancel_many``, else one each),
        book every answer in one batch; a refused cancel is logged (in the same batch) and the
        others go on."""
        answers: list[BrokerOrder] = []
        failed: list[tuple[str, str, str]] = []
        many = getattr(self.broker, "cancel_many", None) if hasattr(type(self.broker), "cancel_many") else None
        for cid, ans in zip(cids, many(list(cids)) if callable(many) and cids else [], strict=False):
            if isinstance(ans, OrderRejected):
                failed.append(("cancel_failed", f"cancel {cid}: {ans}", "WARNING"))
            else:
                answers.append(ans)
        for cid in [] if callable(many) else cids:
            try:
                answers.append(self.broker.cancel(cid))
            except OrderRejected as e:
                failed.append(("cancel_failed", f"cancel {cid}: {e}", "WARNING"))
        if cids:
            self._point("after_cancel")
        self._apply_many(answers, events=failed)
        return answers

    def cancel_exits(self, symbol: str | Iterable[str]) -> list[BrokerOrder]:
        """Withdraw the resting stop-loss/take-profit orders of one symbol (or of several)."""
        symbols = {symbol} if isinstance(symbol, str) else set(symbol)
        rows = self.open_rows()
        return self.cancel_many(
            [r["client_order_id"] for r in rows if r["symbol"] in symbols and r["type"] in EXIT_TYPES]
        )

    def _market(self, symbol: str) -> Market | None:
        if symbol not in self._markets:
            self._markets.update(self.broker.markets([symbol]))
        return self._markets.get(symbol)

    def _lot_size(self, symbol: str) -> float:
        market = self._market(symbol)
        return market.lot_size if market is not None else 0.0

    def _tick_size(self, symbol: str) -> float:
        market = self._market(symbol)
        return market.tick_size if market is not None else 0.0

    def sync_exits(self, cycle: int | None) -> int:
        """Keep one resting OCO exit pair per long that has stops (``exits``: the plan and the legs):
        pairs of the wrong size are cancelled (booked in one batch) and their replacements and the
        new pairs go out as one ``submit_many``. One symbol's failing legs are logged once and tried
        again next cycle; the others' stand. Returns orders placed."""
        stale, wanted = plan_exits(self.position_book(), self.open_rows(), self._lot_size)
        if stale:
            self.cancel_many(stale)
        if not wanted:
            return 0
        intents, stuck = self._exit_intents(wanted, cycle)
        answers = self.submit_many(intents, known={})  # every id is fresh: ``_exit_intents`` asked the store
        first: dict[str, Exception] = {}  # per symbol, its first failed leg
        for sym in stuck:
            first[sym] = LookupError(f"no unused exit-pair id is left in cycle {cycle}")
        for i, a in zip(intents, answers, strict=True):
            if isinstance(a, AuthenticationError) or (isinstance(a, Exception) and _store_fault(a)):
                raise a
            if isinstance(a, Exception):
                first.setdefault(i.request.symbol, a)
        if first:  # each symbol's trouble is logged once; the others' exits stand; its NEW legs are resent next cycle
            self.store.log_events(
                [("exit_error", f"cycle {cycle}: exit orders of {sym} failed: {type(a).__name__}: {a}; "
                  "tried again next cycle", "ERROR") for sym, a in first.items()],
                self.run_id,
            )  # fmt: skip
        return sum(isinstance(a, BrokerOrder) and a.status != "REJECTED" for a in answers)

    def _exit_intents(self, wanted: Sequence[Wanted], cycle: int | None) -> tuple[list[OrderIntent], list[str]]:
        """The legs of the wanted pairs under ids the store does not hold, and the symbols for which no
        such id was found (see ``_PAIR_PROBES``).

        Why the pair numbers are counted here and not in the store: counting the exit orders of the run
        every cycle read its whole history. The store is asked once (the pairs this run placed per
        symbol; after a restart it holds every pair the venue may have seen, since a NEW row is committed
        before the venue hears of an order); after that each pair made takes the next number, whether or
        not it is then written, so a number is never handed out twice by this manager. A number skipped
        is harmless. A number whose ids the store already holds (a count that lags what was used, a
        second writer, ids that share a prefix) is passed over: its legs would be taken for the orders
        already recorded under them, and the new pair never sent. The check is one read of the new ids,
        O(pairs wanted), not O(history)."""
        if self._pairs is None:
            self._pairs = self.store.oco_group_counts(self.account, self.run_id)
        pairs = self._pairs
        out: list[OrderIntent] = []
        todo = list(wanted)
        for _ in range(_PAIR_PROBES):
            if not todo:
                break
            legs = exit_intents(todo, pairs, self.run_id, cycle, self._tick_size)
            for w in todo:
                pairs[w.symbol] = pairs.get(w.symbol, 0) + 1
            taken = self.store.get_orders([i.request.client_order_id for i in legs])
            clash = {i.request.symbol for i in legs if i.request.client_order_id in taken}
            out += [i for i in legs if i.request.symbol not in clash]
            todo = [w for w in todo if w.symbol in clash]
        return out, [w.symbol for w in todo]

    def cancel_all(self) -> list[BrokerOrder]:
        """Cancel every open order the broker or the store knows of for this account."""
        ids = {o.client_order_id for o in self.broker.open_orders()}
        ids |= {o["client_order_id"] for o in self.store.open_orders(self.account)}
        return self.cancel_many(sorted(ids))

    # ---- bookkeeping ----------------------------------------------------------------------------
    def _apply_many(
        self,
        answers: Sequence[BrokerOrder],
        rejected: Mapping[str, tuple[OrderRequest, str, OrderRejected]] | None = None,
        events: Sequence[tuple[str, str, str]] = (),
        known: Mapping[str, Mapping] | None = None,
    ) -> None:
        """Book venue answers in one transaction: order rows and their status events, new fills, the
        positions and cash they move, and the events that say so. An order the venue reports that the
        store does not know (placed by hand on the venue) is adopted first. Fills are taken once per
        batch (``fills_for_many`` when the broker has it) and a fill already recorded is skipped, so a
        replayed answer books nothing twice. ``known``: store rows the caller already holds, as they
        are in the store now (the rows it just wrote), so they are not read again."""
        rejected = rejected or {}
        evs = list(events)
        if not answers and not rejected and not evs:
            return
        known = known or {}
        rows: dict[str, Mapping] = {
            a.client_order_id: known[a.client_order_id] for a in answers if a.client_order_id in known
        }
        rows.update(self.store.get_orders([a.client_order_id for a in answers if a.client_order_id not in rows]))
        strays = [a for a in answers if a.client_order_id not in rows]
        if strays:
            self._note_inserted(self.store.insert_orders([self._adopted_row(a) for a in strays]))
            rows.update(self.store.get_orders([a.client_order_id for a in strays]))
        filling = [
            a for a in answers
            if float(a.filled_quantity) > float(rows[a.client_order_id]["filled_quantity"] or 0.0) + 1e-12 or a.is_final
        ]  # fmt: skip
        fills = self._fills_of([a.client_order_id for a in filling], rows)
        recorded = self.store.recorded_fills(f.fill_id for fs in fills.values() for f in fs)
        touched_syms = {f.symbol for fs in fills.values() for f in fs}
        if self._book is not None:  # the cycle's copy holds every row of the account's book
            book = {s: self._book[s] for s in touched_syms if s in self._book}
        else:
            book = self.store.positions_of(self.account, touched_syms)
        cash_book = self.store.cash_book(self.account) if fills else {}
        touched: dict[str, dict] = {}
        new_fills: list[Fill] = []
        cash: dict[str, float] = {}
        stamps: dict[Any, str] = {}  # ``iso`` of each fill time, once per distinct time
        for a in filling:
            for fill in fills.get(a.client_order_id, []):
                if fill.fill_id in recorded or fill.client_order_id != a.client_order_id:
                    continue
                recorded.add(fill.fill_id)
                pos = touched.get(fill.symbol) or dict(book.get(fill.symbol) or {})
                moves, base_fee, quote_fee = self._cash_moves(fill, cash_book)
                touched[fill.symbol] = _position_after(pos, fill, rows[a.client_order_id], base_fee, quote_fee)
                for k, v in moves.items():
                    cash[k] = cash.get(k, 0.0) + v
                new_fills.append(fill)
                at = stamps[fill.ts] if fill.ts in stamps else stamps.setdefault(fill.ts, iso(fill.ts))
                evs.append(("fill", f"{fill.side} {fill.quantity:g} {fill.symbol} @ {fill.price:.6g} fee {fill.fee:.4g} "
                                    f"({fill.client_order_id}) at {at}", "INFO"))  # fmt: skip
        updates: list[dict] = []
        steps_out: list[tuple[str, str, str | None]] = []
        for a in answers:
            row = rows[a.client_order_id]
            try:
                steps = path(row["status"], a.status)
            except InvalidTransition as e:
                # The venue is the source of truth, but a report that breaks the state machine is a bug
                # somewhere: keep the store as it is and say so loudly.
                evs.append(("order_state", f"{a.client_order_id}: broker reports {a.status}: {e}", "ERROR"))
                continue
            if not steps:
                continue
            reason = row["reason"]
            if a.reason and steps[-1] in ("REJECTED", "CANCELLED", "EXPIRED"):
                reason = f"{row['reason'] or ''}; {a.reason}".strip("; ")
            updates.append({
                "client_order_id": a.client_order_id, "status": steps[-1], "broker_order_id": a.broker_order_id,
                "filled_quantity": float(a.filled_quantity), "average_price": a.average_price, "fee": float(a.fee),
                "reason": reason,
            })  # fmt: skip
            steps_out.extend((a.client_order_id, st, None) for st in steps[:-1])  # passed through (NEW → SUBMITTED → …)
            steps_out.append((a.client_order_id, steps[-1], a.reason))
        for cid, (req, why, err) in rejected.items():
            updates.append({"client_order_id": cid, "status": "REJECTED", "broker_order_id": None, "filled_quantity": 0.0,
                            "average_price": None, "fee": 0.0, "reason": f"{why}; rejected: {err.reason}"})  # fmt: skip
            steps_out.append((cid, "REJECTED", str(err)))
            evs.append(
                ("order_rejected", f"{req.side} {req.quantity:g} {req.symbol} rejected by broker: {err}", "WARNING")
            )
        booked = self.store.apply_batch(
            self.account, updates, steps_out, new_fills, touched, cash, evs, run_id=self.run_id
        )
        self._note_updated(updates, booked.now)
        self._note_positions(booked.positions)

    def _adopted_row(self, answer: BrokerOrder) -> dict:
        return {
            "client_order_id": answer.client_order_id, "run_id": self.run_id, "account": self.account,
            "symbol": answer.symbol, "side": answer.side, "type": answer.type, "quantity": answer.quantity,
            "limit_price": answer.limit_price, "stop_price": answer.stop_price, "oco_group": answer.oco_group,
            "status": "NEW", "reason": "adopted from broker",
        }  # fmt: skip

    def _fills_of(self, cids: Sequence[str], rows: Mapping[str, Mapping]) -> dict[str, list[Fill]]:
        """New fills of these orders: one call for all (``fills_for_many``), else one per order
        (``fills_for``), else the broker's fills since the oldest of them was created."""
        out: dict[str, list[Fill]] = {}
        if not cids:
            return out
        many = getattr(self.broker, "fills_for_many", None)
        one = getattr(self.broker, "fills_for", None)
        if callable(many):
            found: Iterable[Fill] = many(list(cids))
        elif callable(one):
            found = [f for c in cids for f in one(c)]
        else:
            made = [pd.Timestamp(rows[c]["created_at"]) for c in cids if rows[c].get("created_at")]
            found = self.broker.fills(min(made) - pd.Timedelta(seconds=1) if made else None)
        wanted = set(cids)
        for f in found:
            if f.client_order_id in wanted:
                out.setdefault(f.client_order_id, []).append(f)
        return out

    def _cash_moves(self, fill: Fill, book: Mapping[str, float]) -> tuple[dict[str, float], float, float]:
        """Cash movements of a fill for the local cash book, and its fee split into the part paid in
        the traded asset (changes the quantity held) and the part in the settlement currency (the
        cost basis). The settlement currency follows the brokers' rule: the instrument's quote
        currency when the account holds it, else the account currency. A fee in a third currency
        (e.g. BNB) moves that currency's cash only."""
        market = self._market(fill.symbol)
        quote = market.quote if market is not None else None
        ccy: str = (
            quote if quote is not None and quote in book else getattr(self.broker, "currency", None) or quote or ""
        )
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


def _position_after(pos: Mapping, fill: Fill, order_row: Mapping, base_fee: float, quote_fee: float) -> dict:
    """The position row after one fill. Average price carries the buy fees (cost basis), so
    unrealised P&L = equity change exactly; realised P&L on a sell = (price − average) × quantity −
    sell fee; a buy takes the entry's stops, a position sold flat loses them."""
    q0, avg0 = float(pos.get("quantity") or 0.0), float(pos.get("average_price") or 0.0)
    realized = float(pos.get("realized_pnl") or 0.0)
    out: dict[str, Any] = {
        "quantity": q0,
        "average_price": pos.get("average_price"),
        "realized_pnl": float(pos.get("realized_pnl") or 0.0),
        "stop_loss": pos.get("stop_loss"),
        "take_profit": pos.get("take_profit"),
    }
    if fill.side == "buy":
        q1 = q0 + fill.quantity - base_fee  # a venue that takes its fee in the bought asset delivers less
        out["average_price"] = (q0 * avg0 + fill.quantity * fill.price + quote_fee) / q1 if q1 > 0 else None
        if order_row.get("stop_loss") is not None:
            out["stop_loss"] = order_row["stop_loss"]
        if order_row.get("take_profit") is not None:
            out["take_profit"] = order_row["take_profit"]
    else:
        sold = min(fill.quantity, q0) if q0 > 0 else fill.quantity
        out["realized_pnl"] = realized + (fill.price - avg0) * sold - quote_fee
        q1 = q0 - fill.quantity - base_fee
        if abs(q1) < 1e-12:
            q1 = 0.0
        if q1 == 0.0:
            out.update(average_price=None, stop_loss=None, take_profit=None)
    out["quantity"] = q1
    return out
