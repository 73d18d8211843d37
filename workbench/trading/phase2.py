"""Phase 2: one live cycle — market data → features → inference → signals → risk → orders →
portfolio — and the emergency stop.

Everything the cycle touches is injected (broker, feed, signal engine, store) so the same code runs
against the paper broker on a replay in tests and against a real venue live. Faults stay where they
happen: one signal's failure is logged and the others go on; one symbol's exits fail alone and are
tried again next cycle; a venue that fails temporarily (after its adapter's retries) or is down makes
the cycle skip entries — said once as an event, and in the cycle row — while exits are still managed
where the venue answers and the book is valued from the last sync. Only bad keys and store faults
escape to the runner. Nothing here retries: the venue adapters are the one retry layer
(``workbench.venues.retry``) and the breaker (``workbench.venues.breaker``) sits above them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.signals import Signal
from workbench.trading.cycle import StageClock, gc_paused, is_store_error
from workbench.trading.feeds import FeedTick, MarketFeed, gate_signals
from workbench.trading.orders import OrderIntent, OrderManager, client_order_id
from workbench.trading.portfolio import PortfolioSnapshot, after_fill, owned_copy, snapshot
from workbench.trading.risk import RiskContext, evaluate, floor_to_lot
from workbench.trading.store import Store, utcnow
from workbench.trading.sync import SyncReport, sync_portfolio
from workbench.venues.base import (
    EXIT_TYPES,
    AuthenticationError,
    Broker,
    BrokerStatus,
    ExchangeUnavailable,
    Market,
    OrderRequest,
    TemporaryBrokerError,
)
from workbench.venues.breaker import Breakers

if TYPE_CHECKING:
    from workbench.trading.loop import SignalEngine

__all__ = ["LiveContext", "CycleResult", "run_cycle", "exit_orders", "emergency_stop"]

_VENUE_DOWN = (TemporaryBrokerError, ExchangeUnavailable)


@dataclass
class LiveContext:
    """What one live run carries from cycle to cycle."""

    store: Store
    broker: Broker
    feed: MarketFeed
    engine: SignalEngine
    orders: OrderManager
    run_id: int
    account: str
    limits: RiskLimits
    costs: CostModel
    stale_after_s: float = 120.0
    exchange_costs: dict[str, CostModel] = field(default_factory=dict)  # per exchange, overriding ``costs``
    cycle: int = 0
    markets: dict[str, Market] = field(default_factory=dict)
    last_status: BrokerStatus | None = None
    fx_rates: dict[str, float] = field(default_factory=dict)
    last_sync: SyncReport | None = None
    breakers: Breakers | None = None  # the venues' circuit breakers (``workbench.venues.breaker``)
    entries_paused: bool = False  # every venue down: no new entries, exits managed where possible


@dataclass(frozen=True)
class CycleResult:
    cycle: int
    bar_ts: pd.Timestamp
    n_signals: int
    n_orders: int
    n_rejections: int
    n_exits: int
    equity: float
    exhausted: bool
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (``cycle.STAGES``)
    started: pd.Timestamp | None = None
    note: str | None = None  # what went wrong at the venue this cycle, if anything


def _markets(ctx: LiveContext, symbols: list[str]) -> dict[str, Market]:
    missing = [s for s in symbols if s not in ctx.markets]
    if missing:
        ctx.markets.update(ctx.broker.markets(missing))
    return ctx.markets


class _LastKnown:
    """The venue as the last successful portfolio sync saw it, for the snapshot while the venue does not
    answer: valuing the book and guarding exits must not wait for the venue, and nothing here trades."""

    def __init__(self, broker: Broker, seen: SyncReport, markets: dict[str, Market]) -> None:
        self.name, self.environment = broker.name, broker.environment
        self.currency = getattr(broker, "currency", None)
        self._seen, self._markets = seen, markets

    def balances(self) -> dict[str, Any]:
        return dict(self._seen.balances)

    def positions(self) -> dict[str, float]:
        return dict(self._seen.positions)

    def quotes(self, symbols: list[str]) -> dict[str, Any]:
        return {}

    def markets(self, symbols: list[str]) -> dict[str, Market]:
        return {s: self._markets[s] for s in symbols if s in self._markets}


def _snap(ctx: LiveContext, tick: FeedTick) -> PortfolioSnapshot:
    book = ctx.orders.position_book()  # the cycle's copy (``OrderManager.cycle_cache``)
    try:
        return snapshot(ctx.broker, ctx.store, ctx.account, tick.now, tick.quotes, ctx.fx_rates, book=book)
    except _VENUE_DOWN:
        if ctx.last_sync is None:
            raise
        seen: Any = _LastKnown(ctx.broker, ctx.last_sync, ctx.markets)
        return snapshot(seen, ctx.store, ctx.account, tick.now, tick.quotes, ctx.fx_rates, book=book)


def _sync(ctx: LiveContext) -> SyncReport:
    """The portfolio sync on the cycle's copy of the position book; an adjusted position drops the
    copy (a write the order manager did not make)."""
    try:
        report = sync_portfolio(
            ctx.store, ctx.broker, ctx.account, ctx.run_id, f"cycle {ctx.cycle}", ctx.markets,
            book=ctx.orders.position_book(),
        )  # fmt: skip
    except BaseException:
        ctx.orders.forget_positions()  # it may have failed after writing: read the store next time
        raise
    if any(d.kind == "position" for d in report.differences):
        ctx.orders.forget_positions()
    return report


def exit_orders(ctx: LiveContext, tick: FeedTick, snap: PortfolioSnapshot) -> int:
    """The fallback for longs whose stops do not rest at the broker (the venue refused the exit
    pair, e.g. a stop the price had already crossed): low ≤ stop → sell, high ≥ take-profit → sell,
    at market. A leg that rests at the broker is left to do its job."""
    resting = {(r["symbol"], r["type"]) for r in ctx.orders.open_rows() if r["type"] in EXIT_TYPES}
    n = 0
    for sym, pos in snap.positions.items():
        q = tick.quotes.get(sym)
        if q is None or pos.quantity <= 0:
            continue
        low = q.low if q.low is not None else q.last
        high = q.high if q.high is not None else q.last
        why = None
        if pos.stop_loss is not None and low <= pos.stop_loss and (sym, "stop_loss") not in resting:
            why = f"stop_loss {pos.stop_loss:.6g} hit (bar low {low:.6g})"
        elif pos.take_profit is not None and high >= pos.take_profit and (sym, "take_profit") not in resting:
            why = f"take_profit {pos.take_profit:.6g} hit (bar high {high:.6g})"
        if why is None:
            continue
        market = ctx.markets.get(sym)
        qty = floor_to_lot(pos.quantity, market.lot_size) if market else pos.quantity
        if qty <= 0:
            continue
        req = OrderRequest(client_order_id(ctx.run_id, ctx.cycle, sym, "sell", "x"), sym, "sell", qty)
        try:
            ans = ctx.orders.submit(OrderIntent(req, ctx.run_id, ctx.cycle, why))
            n += ans.status != "REJECTED"
        except AuthenticationError:
            raise
        except Exception as e:  # one symbol's exit must not block the others; retried next cycle
            if _store_fault(e):
                raise
            ctx.store.log_event(
                "exit_error",
                f"cycle {ctx.cycle}: exit of {sym} failed ({why}): {type(e).__name__}: {e}; tried again next cycle",
                "ERROR",
                ctx.run_id,
            )
    return n


def _store_fault(e: BaseException) -> bool:
    return is_store_error(e)


def _sync_exits(ctx: LiveContext) -> None:
    try:
        ctx.orders.sync_exits(ctx.cycle)
    except AuthenticationError:
        raise
    except Exception as e:  # the market-sell fallback still guards the position
        if _store_fault(e):
            raise
        ctx.store.log_event(
            "exit_error", f"cycle {ctx.cycle}: placing exit orders failed: {type(e).__name__}: {e}", "ERROR", ctx.run_id
        )


def _venue_step(ctx: LiveContext, what: str, fn: Callable[[], Any], problems: list[str]) -> Any:
    """One venue read of the data stage; a temporary failure or an outage is noted (the cycle then makes
    no entries) instead of ending the run. Bad keys still end it."""
    try:
        return fn()
    except _VENUE_DOWN as e:
        problems.append(f"{what}: {type(e).__name__}: {e}")
        return None


def _engine_signals(engine: Any, panel: Panel, clock: StageClock) -> list[Signal]:
    """An engine that can split its work (``staged``) books features / inference / signals itself;
    any other engine's whole call counts as inference."""
    if getattr(engine, "staged", False):
        return list(engine.signals(panel, lap=clock.lap))
    out = engine.signals(panel)
    clock.lap("inference")
    return list(out)


def _pause_entries(ctx: LiveContext, problems: list[str]) -> bool:
    """Entries stop while every venue is down (all breakers open, or this cycle's venue reads failed);
    the change is said once, as an event, both ways."""
    down = bool(problems) or (ctx.breakers is not None and ctx.breakers.all_open())
    if down != ctx.entries_paused:
        ctx.entries_paused = down
        if down:
            states = ctx.breakers.states() if ctx.breakers is not None else {}
            why = "; ".join(problems) or f"circuit breaker(s) open: {states}"
            ctx.store.log_event(
                "entries_paused",
                f"cycle {ctx.cycle}: every venue is down ({why}): no new entries; exits are still managed where the "
                "venue answers, and orders in doubt are looked up by client id",
                "ERROR",
                ctx.run_id,
            )
        else:
            ctx.store.log_event(
                "entries_resumed", f"cycle {ctx.cycle}: the venue answers again: entries resume", "WARNING", ctx.run_id
            )
    return down


def run_cycle(ctx: LiveContext, clock: StageClock | None = None) -> CycleResult:
    """One Phase 2 cycle (``_cycle``) with Python's cyclic garbage collector held off until its end
    (``cycle.gc_paused``: a collection in the middle of a big batch walks every live object), and the
    account's open orders read once and kept in step by the order manager (``OrderManager.cycle_cache``)."""
    with gc_paused(), ctx.orders.cycle_cache():
        return _cycle(ctx, clock)


def _cycle(ctx: LiveContext, clock: StageClock | None = None) -> CycleResult:
    """One Phase 2 cycle; writes signals, orders, fills, positions, an equity row, a cycle row and a heartbeat.

    ``clock`` books each stage's time (data, features, inference, signals, risk, orders, portfolio) and
    beats the heartbeat between stages. A venue that fails temporarily (after its adapter's retries) or
    is down does not end the run: the cycle makes no entries, still manages exits where it can, and
    says so; each symbol's exits fail alone and are tried again next cycle."""
    clock = clock if clock is not None else StageClock()
    t0 = time.perf_counter()
    started = utcnow()
    ctx.cycle += 1
    tick = ctx.feed.next()
    on_bar = getattr(ctx.broker, "on_bar", None)
    if callable(on_bar):
        on_bar(tick.quotes)
    problems: list[str] = []
    _venue_step(ctx, "refreshing open orders", ctx.orders.refresh_open, problems)
    status = _venue_step(ctx, "exchange status", ctx.broker.check, problems) or BrokerStatus(
        False, ctx.broker.environment, "; ".join(problems) or "no answer"
    )
    ctx.last_status = status
    _venue_step(ctx, "markets", lambda: _markets(ctx, tick.panel.symbols), problems)
    sync = _venue_step(ctx, "portfolio sync", lambda: _sync(ctx), problems)
    if sync is not None:
        ctx.last_sync = sync
    paused = _pause_entries(ctx, problems)
    clock.lap("data")

    n_exits = 0
    if status.ok and not problems:
        _sync_exits(ctx)
    snap = _snap(ctx, tick)
    n_exits = exit_orders(ctx, tick, snap)  # the fallback guards positions even when the venue wobbles
    if n_exits:  # the fallback sold: the book moved (else the snapshot stands, and is not taken twice)
        snap = _snap(ctx, tick)
    clock.lap("orders")

    sigs, held = gate_signals(_engine_signals(ctx.engine, tick.panel, clock), tick)
    if tick.note:
        ctx.store.log_event(
            "market_data", f"cycle {ctx.cycle}: {tick.note}", "WARNING" if tick.hold else "INFO", ctx.run_id
        )
    ctx.store.log_events([("hold", f"cycle {ctx.cycle}: {h}", "INFO") for h in held], ctx.run_id)
    ctx.store.add_signals(ctx.run_id, ctx.cycle, tick.now, sigs)
    clock.lap("signals")
    sides: dict[str, list[str]] = defaultdict(list)
    for s in sigs:
        sides[s.symbol].append(s.signal)
    rctx = RiskContext(
        snapshot=owned_copy(snap),  # each accepted order updates it in place (``after_fill(owned=True)``)
        quotes=tick.quotes,
        markets=ctx.markets,
        limits=ctx.limits,
        costs=ctx.costs,
        exchange=status,
        now=tick.now,
        stale_after_s=ctx.stale_after_s,
        cycle_sides={k: tuple(v) for k, v in sides.items()},
        exchange_costs=ctx.exchange_costs,
    )
    n_orders, n_rej = n_exits, 0
    rejected: list[tuple[str, str, str]] = []  # written in one batch after the signals
    intents: list[OrderIntent] = []
    sent: list[Signal] = []
    for s in sigs:
        if s.signal == "HOLD":
            continue
        try:
            d = evaluate(s, rctx)
            clock.lap("risk")
            if not d.accepted:
                n_rej += 1
                for r in d.rejections:
                    rejected.append(
                        (
                            "risk_rejection",
                            f"cycle {ctx.cycle}: {s.signal} {s.symbol} rejected by {r.rule}: {r.message}",
                            "INFO",
                        )
                    )
                continue
            side = d.side
            assert side is not None, "an accepted risk decision names its side"
            buy = d.side == "buy"
            if buy and paused:
                n_rej += 1
                rejected.append(
                    ("entry_paused", f"cycle {ctx.cycle}: BUY {s.symbol} not sent: every venue is down", "WARNING")
                )
                continue
            req = OrderRequest(client_order_id(ctx.run_id, ctx.cycle, s.symbol, side), s.symbol, side, d.quantity)
            intent = OrderIntent(
                req,
                ctx.run_id,
                ctx.cycle,
                f"{s.signal} strength {s.strength:.2f} confidence {s.confidence:.2f}",
                stop_loss=s.stop_loss if buy else None,
                take_profit=s.take_profit if buy else None,
            )
            intents.append(intent)
            sent.append(s)
            # Later decisions see this order as filled at the expected price (it reserves its cash
            # and exposure); the venue's answers come in one batch below.
            last = tick.quotes[s.symbol].last
            m = ctx.markets.get(s.symbol)
            cost = rctx.costs_for(m) if m is not None else ctx.costs
            px = last * (1 + (cost.slippage_bps / 1e4) * (1 if buy else -1))
            moved = after_fill(
                rctx.snapshot, s.symbol, side, d.quantity, px, d.quantity * px * cost.fee_rate, last,
                m.quote if m is not None else None, owned=True,
            )  # fmt: skip
            if moved is not rctx.snapshot:  # (in place on the cycle's own copy: no new context per order)
                rctx = replace(rctx, snapshot=moved)
        except AuthenticationError:
            raise
        except Exception as e:  # one bad signal must not stop the others
            if _store_fault(e):
                raise
            rejected.append(
                ("signal_error", f"cycle {ctx.cycle}: {s.signal} {s.symbol} failed: {type(e).__name__}: {e}", "ERROR")
            )
    clock.lap("risk")
    try:  # one batch: NEW rows committed, then sent, then every answer booked in one transaction
        answers: list[Any] = list(ctx.orders.submit_many(intents))
    except AuthenticationError:
        raise
    except Exception as e:  # the venue went down mid-batch: what was answered is booked, the rest waits
        if _store_fault(e):
            raise
        answers = [e] * len(intents)
    for s, ans in zip(sent, answers, strict=True):
        if not isinstance(ans, Exception):
            n_orders += 1
            continue
        if _store_fault(ans):
            raise ans
        rejected.append(
            ("signal_error", f"cycle {ctx.cycle}: {s.signal} {s.symbol} failed: {type(ans).__name__}: {ans}", "ERROR")
        )
        if isinstance(ans, _VENUE_DOWN):
            problems.append(f"order {s.symbol}: {type(ans).__name__}: {ans}")
            paused = _pause_entries(ctx, problems)
    clock.lap("orders")
    ctx.store.log_events(rejected, ctx.run_id)
    clock.lap("risk")
    if status.ok and not problems:
        _sync_exits(ctx)
    clock.lap("orders")

    post = _snap(ctx, tick)
    ctx.store.add_equity(
        ctx.run_id,
        ctx.account,
        tick.now,
        post.cash,
        post.positions_value,
        post.equity,
        post.day_start_equity,
        cycle=ctx.cycle,
    )
    note = "; ".join(problems)[:500] or None
    ctx.store.add_cycle(
        ctx.run_id,
        ctx.cycle,
        started,
        utcnow(),
        tick.now,
        len(sigs),
        n_orders,
        post.equity,
        f"{n_orders} order(s), {n_exits} exit(s), {n_rej} rejection(s); daily P&L {post.daily_pnl_pct:+.2%}"
        + (f"; venue trouble: {note}" if note else "")
        + ("; ENTRIES PAUSED" if ctx.entries_paused else ""),
    )
    ctx.store.heartbeat(ctx.run_id, cycle=ctx.cycle, cursor=getattr(ctx.feed, "cursor", None))
    clock.lap("portfolio")
    return CycleResult(
        ctx.cycle,
        tick.now,
        len(sigs),
        n_orders,
        n_rej,
        n_exits,
        post.equity,
        tick.exhausted,
        time.perf_counter() - t0,
        stages=dict(clock.times),
        started=started,
        note=note,
    )


def close_positions(ctx: LiveContext, symbols: list[str] | None, purpose: str, why: str) -> int:
    """Sell the longs of ``symbols`` (None: every long) at market; returns how many were sent.

    Each symbol's open orders are cancelled first: a resting entry could buy it back, and its
    stop/take-profit pair must not fill after the position is gone. A failure is logged per symbol and
    never stops the others."""
    held = ctx.broker.positions()
    sold = 0
    for sym in sorted(held) if symbols is None else symbols:
        qty = held.get(sym, 0.0)
        if qty <= 0:
            if symbols is not None:
                ctx.store.log_event("close", f"no long position in {sym} to close", "WARNING", ctx.run_id)
            continue
        market = ctx.markets.get(sym)
        q = floor_to_lot(qty, market.lot_size) if market else qty
        if q <= 0:
            continue
        try:
            for row in ctx.store.open_orders(ctx.account):
                if row["symbol"] == sym:
                    ctx.orders.cancel(row["client_order_id"])
            req = OrderRequest(client_order_id(ctx.run_id, ctx.cycle, sym, "sell", purpose), sym, "sell", q)
            ans = ctx.orders.submit(OrderIntent(req, ctx.run_id, ctx.cycle, why))
            sold += ans.status != "REJECTED"
        except Exception as e:
            kind = "emergency" if purpose == "em" else "close"
            ctx.store.log_event(kind, f"closing {sym} failed: {type(e).__name__}: {e}", "ERROR", ctx.run_id)
    return sold


def perform_actions(ctx: LiveContext, actions: list[str]) -> list[str]:
    """Do the dashboard's actions between cycles: 'flatten' sells every long, 'close:<symbol>' one.
    The run keeps going: the model may enter again on a later signal (stop the run to prevent that)."""
    done = []
    for action in actions:
        name, _, sym = action.partition(":")
        if name == "flatten":
            n = close_positions(ctx, None, "flt", "flatten requested from the dashboard")
            msg = f"flatten: {n} position(s) sold at market"
        elif name == "close" and sym:
            n = close_positions(ctx, [sym], "cls", f"close {sym} requested from the dashboard")
            msg = f"close {sym}: {'sold at market' if n else 'nothing sold'}"
        else:
            msg = f"unknown action {action!r} ignored"
        ctx.store.log_event("action", msg, "WARNING", ctx.run_id)
        done.append(msg)
    return done


def emergency_stop(ctx: LiveContext, flatten: bool) -> str:
    """Cancel every open order now; with ``flatten``, sell every long at market. Returns a summary."""
    cancelled = ctx.orders.cancel_all()
    msg = f"emergency stop: {len(cancelled)} open order(s) cancelled"
    if flatten:
        sold = close_positions(ctx, None, "em", "emergency flatten")
        msg += f", {sold} position(s) flattened"
    ctx.store.log_event("emergency", msg, "WARNING", ctx.run_id)
    return msg
