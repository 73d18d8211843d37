"""The live process: one run = a run row, Phase 1, reconciliation, then a cycle every interval until
the cycles are done, the replay ends, or a command (stop / emergency stop) or a signal arrives.

It runs apart from the dashboard (``workbench live run``, or ``start_background`` from the Start
button) and talks to the world only through the store: the dashboard reads the rows it writes and
writes the commands it obeys — within one cycle, because the wait between cycles polls for them.

Every run has an owner: the user of the session that started it (``$WORKBENCH_TOKEN`` or the CLI's
session file). Phase 1 checks that user's permission, reads that user's vault and risk limits.
Accounts are per user, so books never mix: the paper account is ``paper:<username>`` and a real
venue's ``<broker>@<environment>:<username>`` (the book of the exchange account that user's keys
trade). A run whose process died is resumed by the next ``live run`` of its owner on the same broker,
or, without any session, by a ``live run`` on that broker when exactly one user has a crashed run
there, under that stored owner (a supervisor restarts it unattended; the master key unwraps the
owner's data key). Phase 1 runs again, so a permission revoked meanwhile stops the resumed run. A
permission revoked while a run is going does not stop it: stop it (``live stop``) if it must end.
"""

from __future__ import annotations

import os
import signal as _signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import AccessError, ConfigError, WorkbenchError
from workbench.trading.cycle import (
    Stop,
    drive,
    heartbeat_state,
    is_store_error,
    store_failed,
    store_failure_note,
    timing_summary,
    try_finish,
)
from workbench.trading.loop import (
    BACKUP_LABEL,
    LiveContext,
    PendingBroker,
    cached,
    emergency_stop,
    perform_actions,
    phase1,
    registry_engine_factory,
    run_cycle,
)
from workbench.trading.orders import OrderManager
from workbench.trading.runlock import acquire as acquire_account
from workbench.trading.runlock import alive as _alive
from workbench.trading.store import Store, utcnow
from workbench.trading.sync import sync_portfolio
from workbench.trading.universes import Universe, universe_for
from workbench.venues import get_venue, resolve, venue_config, venue_names
from workbench.venues.base import Broker
from workbench.venues.breaker import Breakers, guard

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = [
    "broker_name",
    "broker_environment",
    "key_fields",
    "required_keys",
    "plan_broker",
    "make_broker",
    "run_live",
    "status",
    "request_stop",
    "stop_run",
    "send_action",
    "running",
    "start_background",
    "check_run_args",
    "MIN_INTERVAL_S",
]

STATUS_CYCLES = 20
"""How many recent cycles ``status`` summarises (``Store.cycle_stages`` has them all)."""
MIN_INTERVAL_S = 1.0
"""The shortest wait between cycles a user may ask for: below a second a cycle cannot finish, poll for
commands and write its rows before the next one is due, and a typo like ``--interval 0`` would hammer
the venue. Tests pass ``min_interval_s`` to ``run_live`` explicitly to go lower."""


def check_run_args(interval_s: float | None, cycles: int | None, min_interval_s: float = MIN_INTERVAL_S) -> None:
    """The same rules for the CLI, ``run_live`` and the dashboard's ``start_background``."""
    if interval_s is not None and not (float(interval_s) >= min_interval_s and float(interval_s) < float("inf")):
        raise ConfigError(
            f"interval {interval_s:g}s is too short: the wait between cycles must be at least "
            f"{min_interval_s:g}s (e.g. --interval 30)"
        )
    if cycles is not None and int(cycles) < 1:
        raise ConfigError(
            f"cycles {cycles} is not a number of cycles to run: give 1 or more, or leave it out to run until stopped"
        )


def broker_name(settings: Settings, broker: str | None = None) -> str:
    """The broker to use: the one named, else ``settings.broker.default``; normalised and validated
    against the venue registry (``workbench.venues.VENUES``)."""
    venue, inst = resolve(broker or settings.broker.default or "paper")
    return venue.label(inst)


def broker_environment(settings: Settings, name: str) -> str:
    """What a (normalised) broker name would trade: "paper", its "testnet" (unless ``broker.testnet``
    is off or the venue has none, like Kite), or "live" real money."""
    venue, _ = resolve(name)
    return venue.environment(settings.broker.testnet)


def key_fields(name: str) -> tuple[str, ...]:
    """Fields `workbench keys set NAME` asks for (the venue's own list: a ccxt exchange's required
    credentials, Kite's api_key and api_secret, Alpaca's api_key and secret)."""
    venue, inst = resolve(name)
    fields = venue.fields(inst)
    if venue.simulated or not fields:
        keyed = " | ".join(n for n in venue_names() if _takes_keys(n))
        raise ConfigError(f"broker {name!r} takes no keys: keys are for {keyed}")
    return fields


def _takes_keys(name: str) -> bool:
    try:
        v = get_venue(name.partition(":")[0])
    except (ConfigError, ImportError):
        return False
    return not v.simulated and (callable(v.key_fields) or bool(v.key_fields))


def required_keys(name: str) -> tuple[str, ...]:
    """Vault names trading on ``name`` reads (e.g. ``ccxt:binance/api_key``)."""
    venue, inst = resolve(name)
    return venue.required_keys(inst)


def _connect(settings: Settings, name: str, vault: Any, store: Store | None = None) -> Broker:
    venue, inst = resolve(name)
    try:
        return venue.broker(settings, venue_config(settings, venue.name), instance=inst, vault=vault, store=store)
    except ImportError as e:
        raise ConfigError(
            f"the adapter for broker {name!r} is not available in this installation ({e}): use --broker paper"
        ) from e


def plan_broker(settings: Settings, broker: str | None = None, vault: Vault | None = None) -> PendingBroker:
    """A real broker as Phase 1 needs it: named, its environment known (testnet unless
    ``broker.testnet`` is off or the venue has none, like Kite), its keys listed, not yet connected."""
    venue, inst = resolve(broker or settings.broker.default or "paper")
    name = venue.label(inst)
    if venue.simulated:
        raise ConfigError(f"the {name} broker needs no plan: use make_broker")
    from workbench.security.vault import vault_of

    vault = vault_of(settings, vault)
    env = venue.environment(settings.broker.testnet)
    return PendingBroker(
        name, env, lambda: _connect(settings, name, vault), venue.required_keys(inst), vault, venue.hint(inst)
    )


def make_broker(
    settings: Settings, store: Store, broker: str | Broker | None = None, vault: Vault | None = None
) -> Broker:
    """The broker named (any registered venue: ``paper``, ``ccxt:<id>``, ``kite``, ``alpaca``), else
    ``settings.broker.default``; paper unless told otherwise. A real broker is connected here without
    Phase 1's gates: the live loop uses ``plan_broker`` instead, so nothing talks to a venue before
    authentication allows it."""
    if broker is not None and not isinstance(broker, str):
        return broker
    return _connect(settings, broker_name(settings, broker), vault, store)


def _start(settings: Any, store: Store, name: str, owner: Any = None) -> Broker | PendingBroker:
    """A simulated venue's broker at once, on the owner's own simulated account; a real one planned
    (Phase 1 connects it, with the owner's vault)."""
    venue, inst = resolve(name)
    if not venue.simulated:
        return plan_broker(settings, name)
    account = owned_account(name, None, owner.username if owner is not None else None)
    return venue.broker(settings, venue_config(settings, venue.name), instance=inst, store=store, account=account)


def owned_account(broker: str, environment: str | None, username: str | None) -> str:
    """The store account of a user on a broker: ``paper:<user>`` for the simulated venue (each user
    has their own paper book), else ``<broker>@<environment>:<user>`` (the book of the exchange account
    that user's keys trade; a testnet's book never mixes with real money). Without a user (a run that
    fails authentication) the bare name."""
    base = broker if environment is None else f"{broker}@{environment}"
    return base if not username else f"{base}:{username}"


def _account(brk: Broker | PendingBroker, owner: Any = None) -> str:
    """The store account of a broker for ``owner`` (see ``owned_account``); a connected broker that
    names its own account (a paper broker passed in by a caller) keeps it."""
    named = None if isinstance(brk, PendingBroker) else getattr(brk, "account", None)
    if named:
        return str(named)
    return owned_account(brk.name, brk.environment, owner.username if owner is not None else None)


def _default_feed(
    settings: Settings,
    engine: Any,
    start_cursor: int,
    replay: bool = False,
    broker: str | None = None,
    vault: Any = None,
    universe: Universe | None = None,
) -> Any:
    """Live market data for the model's universe, or the chosen ``universe`` on the model's exchange
    (every broker, paper included); the lake's old bars only when a replay is asked for (``--replay``)."""
    from workbench.data.lake import Lake
    from workbench.trading.feeds import ReplayFeed

    uni = getattr(engine, "universe", None) or {}
    if not uni.get("exchange") or not uni.get("timeframe"):
        raise ConfigError(
            "the model records no universe (exchange, timeframe, symbols): retrain and register it, or pass a feed"
        )
    if universe is not None:
        if universe.exchange and universe.exchange != uni["exchange"]:
            raise ConfigError(
                f"the universe {universe.name!r} is on {universe.exchange}, the model was trained on {uni['exchange']} "
                f"{uni['timeframe']} bars: choose a universe of {uni['exchange']} or a model of {universe.exchange}"
            )
        uni = {**uni, "symbols": list(universe.symbols)}
    if not replay:
        from workbench.live.sources import feed_for

        return feed_for(settings, uni, broker, vault)
    return ReplayFeed(
        Lake(settings.lake_dir),
        uni["exchange"],
        uni["timeframe"],
        list(uni.get("symbols") or []) or None,
        warmup_bars=settings.live.warmup_bars,
        replay_bars=settings.live.replay_bars,
        start_cursor=start_cursor,
    )


def _choose_feed(settings: Settings, engine: Any) -> tuple[bool, str]:
    """(replay?, why) when neither --live nor --replay was given: ``live.feed`` decides; ``auto`` probes."""
    mode = settings.live.feed
    if mode != "auto":
        return mode == "replay", ""
    from workbench.live.probe import live_possible

    ok, why = live_possible(settings, getattr(engine, "universe", None) or {})
    return not ok, f"live.feed = auto: {why}"


def _resume_cursor(store: Store, run_id: int, broker_name: str) -> int:
    """Continue the previous run's replay where it stopped, unless it had played to the end."""
    prev = store.previous_run(run_id, broker=broker_name, with_cursor=True)
    if prev is None or prev.get("cursor") is None:
        return 0
    if prev.get("message") and "replay finished" in prev["message"]:
        return 0
    return int(prev["cursor"])


def run_live(
    settings: Settings,
    broker: str | Broker | None = None,
    model: str = "champion",
    interval_s: float | None = None,
    cycles: int | None = None,
    engine: Any = None,
    feed: Any = None,
    on_point: Callable[[str], None] | None = None,
    min_interval_s: float = MIN_INTERVAL_S,
    session: str | None = None,
    replay: bool | None = None,
    universe: Universe | None = None,
) -> int:
    """Run the live loop in this process and return the run id when it ends. ``broker``: a name
    (default ``settings.broker.default``, i.e. paper) or a Broker object. ``session``: the owner's
    session token (default ``$WORKBENCH_TOKEN`` or the CLI's session file); without a valid one,
    Phase 1 fails at authentication (a crashed run resumes under its stored owner without one). The
    run row's status says how it ended: STOPPED, FAILED (with the failing check's or error's message)
    or EMERGENCY_STOPPED. Unexpected errors are recorded (FAILED) and then raised. ``on_point`` goes
    to the ``OrderManager`` (crash tests stop the process at a named point of an order's life).
    ``min_interval_s`` is for tests only (users get ``MIN_INTERVAL_S``). Without ``feed`` the run trades
    live market data of the model's universe; ``replay=True`` trades the lake's last bars instead
    (recorded as ``runs.feed`` = REPLAY, and shown so); None: as ``live.feed`` says (live by default).
    ``universe`` (``workbench.trading.universes``): trade only these instruments (recorded on the run
    row); None: the model's universe.

    One live run per account: the account's lock (``workbench.trading.runlock``) is held for the
    run's lifetime; when another live run holds it, ``RunActiveError`` names that run and how to stop
    it, and no run row is written."""
    from workbench.security.access import accounts_for

    interval = float(interval_s if interval_s is not None else settings.live.interval_s)
    check_run_args(interval, cycles, min_interval_s)
    settings.ensure_dirs()
    store = Store(settings.store_url).create()
    accounts = accounts_for(settings)
    if isinstance(broker, str) or broker is None:
        label = (broker or settings.broker.default or "paper").strip()
    else:
        label = getattr(broker, "name", type(broker).__name__)
    owner: Any = None
    try:
        if isinstance(broker, str) or broker is None:
            label = broker_name(settings, broker)
            owner, refusal = _owner(accounts, settings, session, store, label)
            brk = _start(settings, store, label, owner)
        else:
            brk = broker
            owner, refusal = _owner(accounts, settings, session, store, label)
        env = brk.environment
    except WorkbenchError as e:
        run_id = store.start_run(
            label, "unknown", None, model, interval, os.getpid(), user_id=owner.id if owner else None
        )
        store.log_event("run", f"run failed to start: {e}", "ERROR", run_id)
        store.finish_run(run_id, "FAILED", str(e))
        return run_id
    account = _account(brk, owner)
    lock = acquire_account(settings.data_dir, store, account)  # RunActiveError: another run holds it
    try:
        crashed = _crashed_run(store, label, account)
        if (
            crashed is not None
            and crashed.get("user_id") is not None
            and (owner is None or owner.id != crashed["user_id"])
        ):
            owner, refusal = _stored_owner(accounts, crashed)  # a legacy shared account: its run's owner
        if (isinstance(broker, str) or broker is None) and isinstance(brk, PendingBroker) and owner is not None:
            from workbench.security.vault import Vault

            brk = plan_broker(settings, label, Vault.open(accounts.engine, settings.home, owner.id))  # the owner's keys
        if crashed is not None:
            run_id = int(crashed["id"])
            store.update_run(run_id, pid=os.getpid(), heartbeat_at=utcnow(), message=None)
            store.clear_checks(run_id)
            if crashed.get("universe_symbols") and universe is None:  # a resumed run keeps what it traded
                universe = Universe(
                    str(crashed.get("universe") or "resumed"), None, tuple(crashed["universe_symbols"].split(","))
                )
            who = f" under its owner {owner.username}" if owner is not None else ""
            note = store_failure_note(settings, run_id, forget=True)
            cause = f": it had stopped because {note}" if note else ""
            store.log_event(
                "run",
                f"run {run_id} resumed{who} after a crash of pid {crashed['pid']} (last complete cycle {crashed['cycle']}){cause}",
                "WARNING",
                run_id,
            )
            if note:
                print(f"run {run_id} resumed; its previous process stopped because {note}", file=sys.stderr)
        else:
            run_id = store.start_run(
                label, env, account, model, interval, os.getpid(), user_id=owner.id if owner else None
            )
        lock.set_run(run_id)
        if universe is not None:
            store.update_run(
                run_id,
                universe=universe.name[:200],
                universe_size=universe.size,
                universe_symbols=",".join(universe.symbols),
            )
        detail = f"run {run_id} on {label} ({env}){' resumed' if crashed is not None else ''}"
        accounts.record(owner, "live_start", owner is not None, detail if owner else f"{detail}: {refusal}")
        stop = Stop()
        restore = _install_signal_handlers(stop)
        try:
            return _run(
                settings,
                store,
                brk,
                account,
                run_id,
                model,
                interval,
                cycles,
                engine,
                feed,
                stop,
                resumed=crashed,
                on_point=on_point,
                owner=owner,
                refusal=refusal,
                accounts=accounts,
                replay=replay,
                universe=universe,
            )
        finally:
            restore()
    finally:
        lock.release()


def _owner(accounts: Any, settings: Any, session: str | None, store: Store, broker_name: str) -> tuple[Any, str | None]:
    """(the run's owner, None) or (None, why there is none). The session presented decides; without a
    valid one, an unattended restart: the one user with a crashed run on this broker (read from the run
    row; the master key unwraps their data key). Crashed runs of several users: none is guessed."""
    from workbench.security.access import require_session

    try:
        return require_session(accounts, settings, token=session).user, None
    except AccessError as e:
        refusal = str(e)
    orphans = [
        r
        for r in store.running_runs()
        if r["broker"] == broker_name and r.get("user_id") is not None and not _alive(r["pid"])
    ]
    owners = {int(r["user_id"]) for r in orphans}
    if len(owners) == 1:
        return _stored_owner(accounts, orphans[0])
    if owners:
        listed = ", ".join(f"run {r['id']} on '{r['account']}'" for r in orphans)
        return (
            None,
            f"{refusal} (crashed runs of {len(owners)} users wait on {broker_name}: {listed}; each resumes with its owner's session)",
        )
    return None, refusal


def _stored_owner(accounts: Any, crashed: dict) -> tuple[Any, str | None]:
    """The owner recorded on a crashed run's row, or why it cannot resume under them."""
    try:
        return accounts.user_by_id(int(crashed["user_id"])), None
    except ConfigError as e:
        return None, f"the crashed run's owner is gone: {e}"


def _crashed_run(store: Store, broker_name: str, account: str) -> dict | None:
    """The account's latest RUNNING run on this broker whose process is gone (killed, machine lost
    power): it is resumed, not replaced, so the cycle it died in is re-run under the same (run, cycle)
    and therefore the same client order ids — nothing is sent twice. Called with the account's lock
    held, so no live process can own such a row."""
    for run in store.running_runs(account):
        if run["broker"] == broker_name and not _alive(run["pid"]):
            return run
    return None


def _run(
    settings,
    store,
    brk,
    account,
    run_id,
    model,
    interval,
    cycles,
    engine,
    feed,
    stop,
    resumed=None,
    on_point=None,
    owner=None,
    refusal=None,
    accounts=None,
    replay: bool | None = None,
    universe: Universe | None = None,
) -> int:
    from workbench.security.access import user_risk_limits

    log = lambda kind, msg, level="INFO": store.log_event(kind, msg, level, run_id)  # noqa: E731
    paper = getattr(brk, "environment", None) == "paper"
    factory = cached(
        (lambda: engine) if engine is not None else registry_engine_factory(settings, model, allow_backup=paper)
    )
    try:
        who = f"user {owner.username}" if owner is not None else "no user"
        log(
            "run",
            f"run {run_id} started (pid {os.getpid()}, {who}, broker {getattr(brk, 'name', brk)}, model {model}, every {interval:g}s)",
        )
        limits = (
            user_risk_limits(accounts.engine, owner, settings.risk)
            if owner is not None and accounts is not None
            else settings.risk
        )
        results = phase1(settings, brk, factory, store=store, run_id=run_id, user=owner, refusal=refusal, limits=limits)
        for r in results:
            if r.name == "calendar":  # a warning that does not stop the run: in the log and on the console
                log("calendar", r.message, "WARNING")
                print(f"run {run_id}: {r.message}", file=sys.stderr)
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            msg = f"Phase 1 failed at '{failed.name}': {failed.message}"
            log("phase1", msg, "ERROR")
            store.finish_run(run_id, "FAILED", msg)
            return run_id
        md_vault = _vault_of(settings, brk, owner, accounts)
        if isinstance(brk, PendingBroker):
            brk = brk.get()  # connected by Phase 1
        breakers = Breakers(
            threshold=settings.live.breaker_failures,
            cooldown_s=settings.live.breaker_cooldown_s,
            on_change=lambda venue, old, new, why: log(
                "breaker", f"{venue} circuit breaker {old} → {new}: {why}", "WARNING" if new != "closed" else "INFO"
            ),
        )
        brk = guard(brk, breakers.of(getattr(brk, "name", "venue")))
        eng = factory()
        ref = getattr(eng, "ref", None)
        if getattr(eng, "backup", False):
            store.update_run(run_id, model_ref=BACKUP_LABEL)
        elif isinstance(ref, str):
            store.update_run(run_id, model_ref=ref)
        last_cycle = int(resumed["cycle"] or 0) if resumed is not None else 0
        if resumed is not None and resumed.get("cursor") is not None:
            start_cursor = int(resumed["cursor"])
        else:
            start_cursor = _resume_cursor(store, run_id, store.run(run_id)["broker"])
        if resumed is not None and resumed.get("feed") == "REPLAY":
            replay = True  # a crashed replay resumes as a replay, whatever the restart said
        if feed is None and replay is None:
            replay, why = _choose_feed(settings, eng)
            if why:
                log("feed", why, "WARNING" if replay else "INFO")
        if feed is None:
            feed = _default_feed(
                settings, eng, start_cursor, bool(replay), store.run(run_id)["broker"], md_vault, universe
            )
        elif resumed is not None and resumed.get("cursor") is not None and hasattr(feed, "cursor"):
            feed.cursor = start_cursor
        store.update_run(run_id, feed=str(getattr(feed, "kind", "LIVE")))
        if getattr(feed, "cursor", None) is not None:
            store.update_run(run_id, cursor=int(feed.cursor))  # a crash in the first cycle resumes here
        if resumed is not None:
            n = store.discard_unfinished_cycle(run_id, last_cycle)
            log(
                "recover",
                f"cycle {last_cycle + 1} was cut short: {n} partial row(s) discarded, the cycle is re-run under the same order ids",
            )
        orders = OrderManager(
            store, brk, account, run_id=run_id, unknown_grace_s=settings.live.unknown_grace_s, on_point=on_point
        )
        reconciled = orders.reconcile()
        if reconciled:
            log("reconcile", f"{len(reconciled)} open order(s) from earlier runs reconciled with the broker")
        # Phase 1's portfolio sync: after the orders' fills are booked, so only real differences show.
        synced = sync_portfolio(store, brk, account, run_id, "phase1")
        log(
            "sync",
            f"portfolio synced with {getattr(brk, 'name', 'the broker')}: {synced.summary()}",
            "INFO" if synced.in_sync else "WARNING",
        )
        ctx = LiveContext(
            store=store,
            broker=brk,
            feed=feed,
            engine=eng,
            orders=orders,
            run_id=run_id,
            account=account,
            limits=limits,
            costs=settings.costs,
            exchange_costs=settings.paper.cost_models(),
            stale_after_s=settings.live.stale_after_s,
            cycle=last_cycle,
            fx_rates=dict(settings.live.fx_rates),
            last_sync=synced,
            breakers=breakers,
        )
        final_status = "STOPPED"
        final_msg = drive(ctx, stop, interval, cycles, run_cycle, act=lambda: _act(store, ctx))
        if stop.reason == "emergency_stop":
            summary = emergency_stop(ctx, limits.flatten_on_emergency)
            store.finish_run(run_id, "EMERGENCY_STOPPED", f"{summary} after cycle {ctx.cycle}")
        else:
            if stop.reason is not None:
                final_msg = f"stopped by {'request' if stop.reason == 'stop' else 'signal'} after cycle {ctx.cycle}"
            store.finish_run(run_id, final_status, final_msg)
        log("run", f"run {run_id} ended: {store.run(run_id)['status']} — {store.run(run_id)['message']}")
        return run_id
    except WorkbenchError as e:
        msg = f"{type(e).__name__}: {e}"
        try:
            log("run", f"run {run_id} failed: {msg}", "ERROR")
            store.finish_run(run_id, "FAILED", msg)
        except Exception as fault:
            if not is_store_error(fault):
                raise
            return store_failed(settings, store, run_id, fault)
        return run_id
    except Exception as e:
        if is_store_error(e):
            return store_failed(settings, store, run_id, e)
        try_finish(store, run_id, f"unexpected {type(e).__name__}: {e}")
        raise
    except BaseException as e:  # KeyboardInterrupt and the like: recorded, then passed on
        try_finish(store, run_id, f"interrupted: {type(e).__name__}: {e}")
        raise
    finally:
        close = getattr(feed, "close", None)
        if callable(close):  # a live feed's streams end with the run
            close()


def _vault_of(settings: Any, brk: Any, owner: Any, accounts: Any) -> Any:
    """The owner's vault, where the live feed finds market-data keys (Kite, Alpaca) on any broker, paper too."""
    got = getattr(brk, "vault", None)
    if got is not None or owner is None or accounts is None:
        return got
    from workbench.security.vault import Vault

    return Vault.open(accounts.engine, settings.home, owner.id)


def _act(store: Store, ctx: LiveContext) -> None:
    """Do the dashboard's pending actions (flatten, close a position) now, between cycles."""
    actions = store.pending_actions(ctx.run_id)
    if actions:
        perform_actions(ctx, actions)


def _install_signal_handlers(stop: Stop):
    """SIGTERM/SIGINT → a clean stop after the current cycle (main thread only; tests run in threads)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for sig in (_signal.SIGTERM, _signal.SIGINT):
        previous[sig] = _signal.getsignal(sig)
        _signal.signal(sig, lambda *_: stop.set("signal"))

    def restore() -> None:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)

    return restore


def _summary(run: dict) -> dict:
    return {
        "run_id": run["id"],
        "account": run["account"],
        "broker": run["broker"],
        "pid": run["pid"],
        "alive": _alive(run["pid"]),
        "model_ref": run["model_ref"],
        "feed": run.get("feed"),
        "started_at": run["started_at"],
        "cycle": run["cycle"],
        "heartbeat_at": run["heartbeat_at"],
    }


def _acting(settings: Any, user: Any) -> Any:
    """The user acting: the one given, else the CLI session's user (``NotLoggedIn`` without one)."""
    if user is not None:
        return user
    from workbench.security.access import accounts_for, require_session

    return require_session(accounts_for(settings), settings).user


def _scope(user: Any) -> int | None:
    """Whose runs a user may see and stop: their own; an admin's, everyone's (None)."""
    return None if user.can("admin") else int(user.id)


def _visible(store: Store, user_id: int | None, account: str | None = None) -> list[dict]:
    """The RUNNING rows ``user_id`` may see (None: all), newest first."""
    return [r for r in store.running_runs(account) if user_id is None or r.get("user_id") == user_id]


def running(settings: Any, user: Any = None) -> list[dict]:
    """Every run still marked RUNNING that the user may see, each with whether its process is alive (a
    dead one is not running, whatever its row says: the next start on its account resumes it)."""
    store = Store(settings.store_url).create()
    return [_summary(r) for r in _visible(store, _scope(_acting(settings, user)))]


def _pick(store: Store, run_id: int | None, account: str | None, user_id: int | None) -> dict | None:
    """The run named by id, else the account's running/latest run, else the latest run; only among the
    runs ``user_id`` owns (None: an admin, anyone's)."""
    if run_id is not None:
        run = store.run(int(run_id))
        if run is None or (user_id is not None and run.get("user_id") != user_id):
            raise ConfigError(
                f"there is no run {run_id} of yours in the store {store.url}: `workbench live status` lists the running ones"
            )
        if account is not None and run["account"] != account:
            raise ConfigError(f"run {run_id} trades account '{run['account']}', not '{account}'")
        return run
    if account is not None:
        running_on = _visible(store, user_id, account)
        if running_on:
            return running_on[0]
        return store.latest_run(user_id=user_id, account=account)
    return store.latest_run(user_id=user_id)


def status(settings: Any, run_id: int | None = None, account: str | None = None, user: Any = None) -> dict:
    """One run (by id, else the account's running/latest run, else the latest run) of ``user`` (an
    admin: of anyone; default: the CLI session's user), as the CLI and dashboard show it, plus
    ``running``: every run of theirs still marked RUNNING."""
    store = Store(settings.store_url).create()
    scope = _scope(_acting(settings, user))
    run = _pick(store, run_id, account, scope)
    if run is None:
        return {"run_id": None, "status": "NO_RUN", "message": "no live run yet"}
    now = utcnow()
    hb = pd.Timestamp(run["heartbeat_at"]) if run.get("heartbeat_at") else None
    curve = store.equity_curve(run["id"])
    counts = store.order_counts(run["id"])
    alive = _alive(run["pid"])
    age = None if hb is None else round((now - hb).total_seconds(), 3)
    timings = timing_summary(store.cycle_stages(run["id"], last=STATUS_CYCLES))
    return {
        "run_id": run["id"],
        "status": run["status"],
        "pid": run["pid"],
        "alive": alive,
        "stale": run["status"] == "RUNNING" and not alive,
        "broker": run["broker"],
        "environment": run["environment"],
        "account": run["account"],
        "user_id": run.get("user_id"),
        "model_ref": run["model_ref"],
        "feed": run.get("feed"),
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "cycle": run["cycle"],
        "heartbeat_age_s": age,
        "heartbeat": heartbeat_state(run["status"], alive, age),
        **timings,
        "equity": float(curve["equity"].iloc[-1]) if len(curve) else None,
        "cash": float(curve["cash"].iloc[-1]) if len(curve) else None,
        "n_orders": sum(counts.values()),
        "n_filled": counts.get("FILLED", 0),
        "n_rejected": counts.get("REJECTED", 0),
        "n_positions": len(store.positions(run["account"] or "paper")),
        "message": run["message"],
        "running": [_summary(r) for r in _visible(store, scope)],
    }


@dataclass(frozen=True)
class StopOutcome:
    """What a stop request did: ``sent`` only when a live process will read the command."""

    run_id: int | None
    sent: bool
    message: str
    dead: bool = False


def stop_run(
    settings: Any, emergency: bool = False, run_id: int | None = None, account: str | None = None, user: Any = None
) -> StopOutcome:
    """Queue 'stop' (after the current cycle) or 'emergency_stop' for one run of ``user`` (an admin:
    anyone's; default: the CLI session's user): the one named by id, or the running one of ``account``,
    or the only running one. Never pretends: a run whose process is gone is reported dead and no command
    is queued; several running runs and no choice is an error listing them. Recorded in the audit trail."""
    from workbench.security.access import accounts_for

    user = _acting(settings, user)
    scope = _scope(user)
    store = Store(settings.store_url).create()
    what = "emergency stop" if emergency else "stop"
    if run_id is not None:
        run = _pick(store, run_id, account, scope)
        assert run is not None  # _pick raises for an unknown id
        candidates = [run] if run["status"] == "RUNNING" else []
        if not candidates:
            return StopOutcome(
                run["id"],
                False,
                f"run {run['id']} is not running (it ended {run['status']}"
                f"{' at ' + str(run['ended_at']) if run['ended_at'] else ''}): nothing to {what}",
            )
    else:
        candidates = _visible(store, scope, account)
        live = [r for r in candidates if _alive(r["pid"])]
        if len(live) > 1 or (not live and len(candidates) > 1):
            listed = "; ".join(
                f"run {r['id']} on account '{r['account']}' (pid {r['pid']}{'' if _alive(r['pid']) else ', dead'})"
                for r in candidates
            )
            raise ConfigError(
                f"{len(candidates)} runs are marked RUNNING: {listed}. Say which: "
                f"`workbench live {'emergency-' if emergency else ''}stop --run ID`"
            )
        candidates = live or candidates
    if not candidates:
        where = f" on account '{account}'" if account is not None else ""
        return StopOutcome(None, False, f"no live run is active{where}")
    run = candidates[0]
    if not _alive(run["pid"]):
        return StopOutcome(
            int(run["id"]),
            False,
            f"run {run['id']} on account '{run['account']}' is DEAD: its process (pid {run['pid']}) is gone "
            f"(last heartbeat {run['heartbeat_at']}, cycle {run['cycle']}), so no {what} was sent and nothing is "
            f"trading for it. Its open orders stay at the venue: start `workbench live run --broker {run['broker']}` "
            f"on the account to resume it and reconcile them, then stop it.",
            dead=True,
        )
    command = "emergency_stop" if emergency else "stop"
    store.send_command(command, int(run["id"]))
    accounts_for(settings).record(user, f"live_{command}", True, f"run {run['id']} (owner id {run.get('user_id')})")
    return StopOutcome(
        int(run["id"]), True, f"{what} requested for run {run['id']} on account '{run['account']}' (pid {run['pid']})"
    )


def send_action(settings: Any, action: str, run_id: int, user: Any = None) -> StopOutcome:
    """Queue 'flatten' or 'close:<symbol>' for one running run of ``user`` (an admin: anyone's); the loop
    does it between cycles and keeps running. Like ``stop_run`` it never pretends: a run that has ended
    or whose process is gone gets nothing queued, and says so. Recorded in the audit trail."""
    from workbench.security.access import accounts_for

    user = _acting(settings, user)
    store = Store(settings.store_url).create()
    run = _pick(store, run_id, None, _scope(user))
    assert run is not None  # _pick raises for an unknown id
    if run["status"] != "RUNNING":
        return StopOutcome(int(run["id"]), False, f"run {run['id']} is not running (it ended {run['status']})")
    if not _alive(run["pid"]):
        return StopOutcome(
            int(run["id"]),
            False,
            f"run {run['id']} is DEAD (pid {run['pid']} is gone): nothing would obey '{action}'; "
            f"resume it with `workbench live run --broker {run['broker']}` first",
            dead=True,
        )
    store.send_command(action, int(run["id"]))
    accounts_for(settings).record(user, f"live_{action.partition(':')[0]}", True, f"run {run['id']}: {action}")
    return StopOutcome(int(run["id"]), True, f"'{action}' sent to run {run['id']}: done before its next cycle")


def request_stop(
    settings: Any, emergency: bool = False, run_id: int | None = None, account: str | None = None, user: Any = None
) -> int | None:
    """Queue 'stop' or 'emergency_stop' (see ``stop_run``); the run's id when a live process will read it, else None."""
    out = stop_run(settings, emergency, run_id, account, user)
    return out.run_id if out.sent else None


def start_background(
    settings: Any,
    broker: str | None = None,
    model: str = "champion",
    interval_s: float | None = None,
    cycles: int | None = None,
    session: str | None = None,
    replay: bool | None = None,
    universe: str | None = None,
) -> subprocess.Popen:
    """Launch ``workbench live run`` as its own session: closing the dashboard never stops it.

    The arguments are checked here as the CLI checks them, and a start on an account whose lock is
    held is refused at once (``RunActiveError``). Two clicks closer together than the child takes to
    lock may both launch: the child that loses the lock race exits refused (its log says why) and
    writes no run, so exactly one run trades either way. ``session``: the owner's token, handed over
    in ``$WORKBENCH_TOKEN`` (never argv, which other users of the machine can read); default: whatever
    the environment already holds. ``replay``: True trades the lake's last bars (REPLAY), False live data, None as ``live.feed`` says.
    ``universe``: a universe spec (``workbench.trading.universes``), resolved here first so a bad symbol
    is refused at once, then again by the child; None: the model's universe."""
    check_run_args(interval_s, cycles)
    if universe is not None:
        if universe.strip().lower().startswith("file:"):  # the child runs in the home: an absolute path
            universe = f"file:{Path(universe.strip()[5:].strip()).expanduser().resolve()}"
        universe_for(settings, universe)  # ConfigError naming the unknown symbols
    name = broker_name(settings, broker)
    _probe_lock(settings, name, session)
    logs = settings.data_dir / "logs"
    settings.ensure_dirs()  # logs/ among the private directories
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    cmd = [sys.executable, "-m", "workbench", "live", "run", "--broker", name, "--model", model]
    if interval_s is not None:
        cmd += ["--interval", str(interval_s)]
    if cycles is not None:
        cmd += ["--cycles", str(cycles)]
    if replay is not None:
        cmd.append("--replay" if replay else "--live")
    if universe is not None:
        cmd += ["--universe", universe]
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home)}
    if session:
        env["WORKBENCH_TOKEN"] = session
    log_path = logs / f"live-{stamp}-{os.getpid()}-{time.monotonic_ns()}.log"
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")  # owner only; closed below
    try:
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(settings.home),
        )
    finally:
        log.close()  # the child holds its own descriptor


def _probe_lock(settings: Any, name: str, session: str | None = None) -> None:
    """Refuse at once when the session user's account on ``name`` is locked by a live run (known
    without connecting: ``paper:<user>``, ``<broker>@<environment>:<user>``; see ``owned_account``)."""
    from workbench.security.access import accounts_for, require_session

    venue, _ = resolve(name)
    try:
        username: str | None = require_session(accounts_for(settings), settings, token=session).user.username
    except AccessError:  # the child fails Phase 1's authentication and says why
        username = None
    env = None if venue.simulated else broker_environment(settings, name)
    account = owned_account(name, env, username)
    store = Store(settings.store_url).create()
    acquire_account(settings.data_dir, store, account).release()
