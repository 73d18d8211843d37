"""The live loop: Phase 1 (checks, in the spec's order, each recorded as it completes) and the Phase 2
cycle (market data → signals → risk → orders → portfolio).

Everything the loop touches is injected — broker, feed, signal engine, store — so the same code
runs against the paper broker on a replay in tests and against a real venue live. A failure on one
signal is logged and the cycle goes on; only errors that make trading unsafe (bad keys, venue down)
escape to the runner. Nothing here retries: the venue adapters are the one retry layer
(``workbench.venues.retry``), so a call is tried at most as often as its adapter says.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from workbench.config import CostModel, RiskLimits, Settings, SignalParams
from workbench.data.panel import Panel
from workbench.errors import ModelError, NoModelError, WorkbenchError
from workbench.signals import Signal
from workbench.trading.feeds import FeedTick, MarketFeed
from workbench.trading.orders import OrderIntent, OrderManager, client_order_id
from workbench.trading.portfolio import PortfolioSnapshot, after_fill, snapshot
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
)

__all__ = [
    "CheckResult",
    "SignalEngine",
    "ModelSignalEngine",
    "registry_engine_factory",
    "BACKUP_CHOICE",
    "BACKUP_LABEL",
    "cached",
    "PendingBroker",
    "phase1",
    "needed_permission",
    "LiveContext",
    "CycleResult",
    "run_cycle",
    "exit_orders",
    "emergency_stop",
]

CHECKS = ("authentication", "api_keys", "exchange", "models", "risk")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    message: str


@runtime_checkable
class SignalEngine(Protocol):
    """Panel in, the current signals out (one per symbol). ``describe()`` and ``universe`` are optional."""

    def signals(self, panel: Panel) -> list[Signal]: ...


class ModelSignalEngine:
    """A registered model behind the ``SignalEngine`` seam: the same ``signals_for_panel`` the
    backtest uses, then the last row — so live and backtest cannot disagree about a signal."""

    def __init__(self, model: Any, params: SignalParams, note: str | None = None, backup: bool = False):
        self.model, self.params, self.note, self.backup = model, params, note, backup

    @property
    def no_edge(self) -> bool:
        """The model's stored out-of-sample verdict says it lost to its baselines."""
        m = getattr(self.model, "metrics", None) or {}
        return "beats_baselines" in m and not m["beats_baselines"]

    @property
    def universe(self) -> dict | None:
        return getattr(self.model, "universe", None)

    @property
    def ref(self) -> str:
        r = getattr(self.model, "ref", None)
        return "model" if r is None else str(r)

    def describe(self) -> str:
        if self.note:
            return self.note
        metrics = getattr(self.model, "metrics", None) or {}
        shown = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:6])
        kind = getattr(self.model, "kind", "?")
        flag = "NO EDGE: it lost to its baselines out of sample (its stored verdict); " if self.no_edge else ""
        return (
            f"{flag}{kind} model {self.ref}; features {getattr(self.model, 'feature_set', '?')}, horizon {getattr(self.model, 'horizon', '?')}"
            + (f"; out-of-sample: {shown}" if shown else "; no out-of-sample metrics recorded")
        )

    def signals(self, panel: Panel) -> list[Signal]:
        from workbench.models.inference import signals_for_panel
        from workbench.signals import latest_signals

        return latest_signals(signals_for_panel(self.model, panel, self.params), panel.exchange)


BACKUP_CHOICE = "backup"
BACKUP_LABEL = "BACKUP rule-based model (untrained)"


def registry_engine_factory(
    settings: Settings, ref: str = "champion", allow_backup: bool = False
) -> Callable[[], SignalEngine]:
    """The registered model named by ``ref`` (alias, NAME@ALIAS, NAME/VERSION or a version), strictly:
    a name that is not registered fails Phase 1 listing what is (a typo must never trade another model).
    The rule-based backup runs only when chosen (``ref == "backup"``) or, on a paper run
    (``allow_backup``), when nothing at all is registered; it is labelled BACKUP in Phase 1's message,
    the run row and the status."""

    def load() -> SignalEngine:
        from workbench.models.backup import BackupModel
        from workbench.models.registry import Registry

        if ref.strip().lower() == BACKUP_CHOICE:
            return _backup_engine(settings, BackupModel(), "chosen with --model backup")
        registry = Registry(settings)
        try:
            model = registry.load(ref)
        except NoModelError as e:
            registered = _registered(registry)
            if registered:
                raise NoModelError(
                    f"{e}. Registered: {registered}. Pass one of them with --model, or `--model backup` "
                    "for the untrained rule-based model"
                ) from e
            if not allow_backup:
                raise NoModelError(
                    f"{e}. Nothing is registered; the untrained backup model runs on paper only, "
                    "or when chosen with `--model backup`"
                ) from e
            return _backup_engine(settings, BackupModel(), f"nothing is registered ({e})")
        return ModelSignalEngine(model, settings.signals)

    return load


def _registered(registry: Any) -> str:
    """What ``--model`` may name, in words ("" when nothing is registered)."""
    table = registry.list()
    if table.empty:
        return ""
    aliases = [
        f"{a.strip()} (version {int(v)})"
        for v, names in zip(table["version"], table["aliases"], strict=True)
        for a in str(names).split(",")
        if a.strip()
    ]
    versions = ", ".join(f"{registry.name}/{int(v)}" for v in sorted(table["version"]))
    return f"{', '.join(aliases) or 'no aliases'}; versions {versions}"


def _backup_engine(settings: Any, model: Any, why: str) -> ModelSignalEngine:
    """The backup rule model on the lake's demo universe, labelled as such."""
    note = f"{BACKUP_LABEL}, {why}: {model.meta['description']}; it is not trained and has no out-of-sample record"
    if not getattr(model, "universe", None):
        from workbench.data.demo import demo_universe_in_lake

        demo = demo_universe_in_lake(settings)
        if demo is None:
            raise NoModelError(f"{note}. But the lake holds no data to run it on: run `workbench init --demo`.")
        model.universe = {"exchange": demo.exchange, "timeframe": demo.timeframe, "symbols": list(demo.symbols)}
    return ModelSignalEngine(model, settings.signals, note=note, backup=True)


def cached(factory: Callable[[], Any]) -> Callable[[], Any]:
    """The factory's first successful result, returned again on later calls (Phase 1 loads, the loop uses)."""
    box: list = []

    def get():
        if not box:
            box.append(factory())
        return box[0]

    return get


def _describe_engine(engine: Any) -> str:
    d = getattr(engine, "describe", None)
    return d() if callable(d) else type(engine).__name__


def _risk_text(limits: RiskLimits) -> str:
    return (
        f"max {limits.max_position_pct:.0%} of equity per position · no new entries after a {limits.max_daily_loss_pct:.0%} "
        f"daily loss · trade only when strength > {limits.min_strength:.2f} · size risks {limits.risk_per_trade_pct:.1%} of "
        f"equity to the stop · buying power and exchange status checked per order · emergency stop "
        f"{'cancels open orders and flattens positions' if limits.flatten_on_emergency else 'cancels open orders (positions kept)'}"
    )


class PendingBroker:
    """A real broker before anything has talked to its venue: Phase 1 decides whether it may
    (authentication: testnet, or live with the permission), then checks its keys (present in the
    vault, or found by the adapter in the environment, and accepted by the venue), and only then
    connects. ``get()`` connects once and returns the same broker afterwards."""

    def __init__(
        self,
        name: str,
        environment: str,
        connect: Callable[[], Broker],
        key_names: tuple[str, ...] = (),
        vault: Any = None,
        hint: str | None = None,
    ):
        self.name, self.environment, self.key_names, self.vault = name, environment, tuple(key_names), vault
        self.hint = hint or f"run `workbench keys set {name}`"
        self._connect = connect
        self._broker: Broker | None = None

    def missing_keys(self) -> list[str]:
        """Vault names this broker reads that the vault does not hold (``VaultError`` if unreadable)."""
        if not self.key_names:
            return []
        if self.vault is None:
            return list(self.key_names)
        return [n for n in self.key_names if self.vault.get(n) is None]

    def get(self) -> Broker:
        if self._broker is None:
            self._broker = self._connect()
        return self._broker

    def __repr__(self) -> str:
        return f"PendingBroker({self.name!r}, {self.environment!r}, connected={self._broker is not None})"


def needed_permission(env: str) -> str:
    """What a run in ``env`` needs: simulated or test money ``trade_paper``; anything with real money ``trade_live``."""
    return "trade_paper" if env in ("paper", "testnet") else "trade_live"


def _authenticate(user: Any, name: str, env: str, refusal: str | None = None) -> CheckResult:
    """Session → user id → permission. ``user`` is the run's owner (None when no valid session was
    presented: ``refusal`` says why)."""
    if user is None:
        return CheckResult(
            "authentication", False, refusal or "not logged in: run `workbench login` (or set WORKBENCH_TOKEN)"
        )
    need = needed_permission(env)
    money = {"paper": "simulated money", "testnet": "the venue's test money"}.get(env, "REAL MONEY")
    who = f"user {user.username} (id {user.id})"
    if getattr(user, "disabled", False):
        return CheckResult("authentication", False, f"{who} is disabled: ask an admin")
    if not user.can(need):
        extra = (
            " Otherwise keep broker.testnet on (where the venue has a testnet), or use --broker paper."
            if need == "trade_live"
            else ""
        )
        return CheckResult(
            "authentication",
            False,
            f"{who} lacks the {need!r} permission that broker '{name}' ({env}, {money}) needs: ask an admin "
            f"(`workbench users grant {user.username} {need}`).{extra}",
        )
    return CheckResult("authentication", True, f"{who}, permission {need!r}: broker '{name}' on {env} ({money})")


def _check_keys(user: Any, broker: Broker | PendingBroker) -> tuple[CheckResult, Broker | None]:
    """Keys present (vault, or the environment as the adapter reads it) and accepted by the venue:
    a private call (balances) must succeed. Connects a pending broker."""
    name = broker.name
    hint = broker.hint if isinstance(broker, PendingBroker) else f"run `workbench keys set {name}`"
    try:
        missing = broker.missing_keys() if isinstance(broker, PendingBroker) else []
    except WorkbenchError as e:  # the vault cannot decrypt
        return CheckResult("api_keys", False, f"the keys of {name} cannot be read: {e}"), None
    lacking = f"no API keys for {name} in your vault (missing {', '.join(missing)}): {hint}" if missing else ""
    try:
        brk = broker.get() if isinstance(broker, PendingBroker) else broker
    except Exception as e:  # a check must report, not crash
        text = (
            f"{lacking}. The adapter says: {e}"
            if lacking
            else f"connecting to {name} failed: {e}. If the keys are wrong: {hint}"
        )
        return CheckResult("api_keys", False, text), None
    env = brk.environment
    if env == "live" and not (user is not None and user.can("trade_live")):
        return CheckResult(
            "api_keys",
            False,
            f"broker '{name}' reports a live (real-money) venue although testnet was asked for: it has no testnet, so "
            "it needs the 'trade_live' permission (ask an admin), or use --broker paper",
        ), brk
    try:
        balances = brk.balances()
    except AuthenticationError as e:
        text = (
            f"{lacking}; the venue refused access: {e}"
            if lacking
            else f"{name} refused the API keys: {e}. Store working keys: {hint}"
        )
        return CheckResult("api_keys", False, text), brk
    except Exception as e:
        text = f"the keys of {name} could not be verified ({type(e).__name__}): {e}"
        return CheckResult("api_keys", False, f"{lacking}; {text}" if lacking else text), brk
    where = "found by the adapter in the environment" if missing else "from your vault"
    return CheckResult(
        "api_keys", True, f"keys for {name} ({where}) accepted by the {env} venue: {len(balances)} balance(s) readable"
    ), brk


def phase1(
    settings: Settings,
    broker: Broker | PendingBroker,
    engine_factory: Callable[[], SignalEngine],
    store: Store | None = None,
    run_id: int | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    *,
    user: Any = None,
    refusal: str | None = None,
    limits: RiskLimits | None = None,
) -> list[CheckResult]:
    """The five checks of the spec in order; stops at the first failure. Each result is written to
    the store with its duration (and passed to ``on_result``) as soon as it is known, so the dashboard
    shows progress. ``user`` is the run's owner (``workbench.security.users.User``; None → authentication
    fails with ``refusal``); a ``PendingBroker`` is connected only once authentication allows it, with
    the owner's vault. ``limits``: the owner's risk limits (default ``settings.risk``)."""
    results: list[CheckResult] = []
    clock = [time.perf_counter()]

    def record(r: CheckResult) -> bool:
        now = time.perf_counter()
        took, clock[0] = now - clock[0], now
        results.append(r)
        if store is not None and run_id is not None:
            store.add_check(run_id, len(results), r.name, r.ok, r.message, duration_s=round(took, 6))
        if on_result is not None:
            on_result(r)
        return r.ok

    env = broker.environment
    if not record(_authenticate(user, broker.name, env, refusal)):
        return results
    brk: Broker | None
    if env == "paper" and not isinstance(broker, PendingBroker):
        keys, brk = CheckResult("api_keys", True, "paper trading needs no API keys"), broker
    else:
        keys, brk = _check_keys(user, broker)
    if not record(keys) or brk is None:
        return results
    try:
        st = brk.check()
        ex = CheckResult("exchange", bool(st.ok), f"{st.environment}: {st.message}")
    except Exception as e:  # a check must report, not crash
        ex = CheckResult("exchange", False, f"connecting to {broker.name} failed: {e}")
    if not record(ex):
        return results
    try:
        engine = engine_factory()
        mod = CheckResult("models", True, _describe_engine(engine))
    except NoModelError as e:
        mod = CheckResult("models", False, str(e))
    except ModelError as e:
        mod = CheckResult("models", False, f"the model could not be loaded: {e}")
    if not record(mod):
        return results
    record(CheckResult("risk", True, _risk_text(limits if limits is not None else settings.risk)))
    return results


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


def _markets(ctx: LiveContext, symbols: list[str]) -> dict[str, Market]:
    missing = [s for s in symbols if s not in ctx.markets]
    if missing:
        ctx.markets.update(ctx.broker.markets(missing))
    return ctx.markets


def _snap(ctx: LiveContext, tick: FeedTick) -> PortfolioSnapshot:
    return snapshot(ctx.broker, ctx.store, ctx.account, tick.now, tick.quotes, ctx.fx_rates)


def exit_orders(ctx: LiveContext, tick: FeedTick, snap: PortfolioSnapshot) -> int:
    """The fallback for longs whose stops do not rest at the broker (the venue refused the exit
    pair, e.g. a stop the price had already crossed): low ≤ stop → sell, high ≥ take-profit → sell,
    at market. A leg that rests at the broker is left to do its job."""
    resting = {(r["symbol"], r["type"]) for r in ctx.store.open_orders(ctx.account) if r["type"] in EXIT_TYPES}
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
        except (AuthenticationError, ExchangeUnavailable):
            raise
        except Exception as e:
            ctx.store.log_event("exit_error", f"exit of {sym} failed: {type(e).__name__}: {e}", "ERROR", ctx.run_id)
    return n


def _sync_exits(ctx: LiveContext) -> None:
    try:
        ctx.orders.sync_exits(ctx.cycle)
    except (AuthenticationError, ExchangeUnavailable):
        raise
    except Exception as e:  # the market-sell fallback still guards the position
        ctx.store.log_event(
            "exit_error", f"cycle {ctx.cycle}: placing exit orders failed: {type(e).__name__}: {e}", "ERROR", ctx.run_id
        )


def run_cycle(ctx: LiveContext) -> CycleResult:
    """One Phase 2 cycle; writes signals, orders, fills, positions, an equity row, a cycle row and a heartbeat."""
    t0 = time.perf_counter()
    started = utcnow()
    ctx.cycle += 1
    tick = ctx.feed.next()
    on_bar = getattr(ctx.broker, "on_bar", None)
    if callable(on_bar):
        on_bar(tick.quotes)
    ctx.orders.refresh_open()
    status = ctx.broker.check()
    ctx.last_status = status
    _markets(ctx, tick.panel.symbols)
    ctx.last_sync = sync_portfolio(ctx.store, ctx.broker, ctx.account, ctx.run_id, f"cycle {ctx.cycle}", ctx.markets)

    n_exits = 0
    if status.ok:
        _sync_exits(ctx)
        n_exits = exit_orders(ctx, tick, _snap(ctx, tick))
    snap = _snap(ctx, tick)

    sigs = ctx.engine.signals(tick.panel)
    ctx.store.add_signals(ctx.run_id, ctx.cycle, tick.now, sigs)
    sides: dict[str, list[str]] = defaultdict(list)
    for s in sigs:
        sides[s.symbol].append(s.signal)
    rctx = RiskContext(
        snapshot=snap,
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
    for s in sigs:
        if s.signal == "HOLD":
            continue
        try:
            d = evaluate(s, rctx)
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
            req = OrderRequest(client_order_id(ctx.run_id, ctx.cycle, s.symbol, side), s.symbol, side, d.quantity)
            buy = d.side == "buy"
            intent = OrderIntent(
                req,
                ctx.run_id,
                ctx.cycle,
                f"{s.signal} strength {s.strength:.2f} confidence {s.confidence:.2f}",
                stop_loss=s.stop_loss if buy else None,
                take_profit=s.take_profit if buy else None,
            )
            ans = ctx.orders.submit(intent)
            n_orders += 1
            if ans.filled_quantity > 0:  # exact arithmetic from the fill, no new round of broker calls
                m = ctx.markets.get(s.symbol)
                rctx = replace(
                    rctx,
                    snapshot=after_fill(
                        rctx.snapshot,
                        s.symbol,
                        ans.side,
                        ans.filled_quantity,
                        ans.average_price if ans.average_price is not None else tick.quotes[s.symbol].last,
                        ans.fee,
                        tick.quotes[s.symbol].last,
                        m.quote if m is not None else None,
                    ),
                )
        except (AuthenticationError, ExchangeUnavailable):
            raise
        except Exception as e:  # one bad signal must not stop the others
            rejected.append(
                ("signal_error", f"cycle {ctx.cycle}: {s.signal} {s.symbol} failed: {type(e).__name__}: {e}", "ERROR")
            )
    ctx.store.log_events(rejected, ctx.run_id)
    if status.ok:
        _sync_exits(ctx)

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
    ctx.store.add_cycle(
        ctx.run_id,
        ctx.cycle,
        started,
        utcnow(),
        tick.now,
        len(sigs),
        n_orders,
        post.equity,
        f"{n_orders} order(s), {n_exits} exit(s), {n_rej} rejection(s); daily P&L {post.daily_pnl_pct:+.2%}",
    )
    ctx.store.heartbeat(ctx.run_id, cycle=ctx.cycle, cursor=getattr(ctx.feed, "cursor", None))
    return CycleResult(
        ctx.cycle, tick.now, len(sigs), n_orders, n_rej, n_exits, post.equity, tick.exhausted, time.perf_counter() - t0
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
