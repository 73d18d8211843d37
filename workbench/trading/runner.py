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

This module holds the run itself. Beside it: ``broker_setup`` (which broker, which account),
``run_feed`` (which market data) and ``run_control`` (status, stop, actions, background start, as the
CLI and the dashboard ask them); their public names are importable from here as before.
"""

from __future__ import annotations

import os
import signal as _signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.errors import AccessError, ConfigError, WorkbenchError
from workbench.trading.broker_setup import (  # re-exported: callers import them from here
    _account,
    _start,
    broker_environment,
    broker_name,
    key_fields,
    make_broker,
    owned_account,
    plan_broker,
    required_keys,
)
from workbench.trading.cycle import (
    Stop,
    drive,
    is_store_error,
    store_failed,
    store_failure_note,
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
from workbench.trading.run_control import (  # re-exported: callers import them from here
    MIN_INTERVAL_S,
    StopOutcome,
    check_run_args,
    request_stop,
    running,
    send_action,
    start_background,
    status,
    stop_run,
)
from workbench.trading.run_feed import choose_feed, default_feed
from workbench.trading.runlock import acquire as acquire_account
from workbench.trading.runlock import alive as _alive
from workbench.trading.store import Store, utcnow
from workbench.trading.sync import sync_portfolio
from workbench.trading.universes import Universe
from workbench.venues.base import Broker
from workbench.venues.breaker import Breakers, guard

if TYPE_CHECKING:
    from workbench.config import Settings
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
    "owned_account",
    "StopOutcome",
    "MIN_INTERVAL_S",
]


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
            replay, why = choose_feed(settings, eng)
            if why:
                log("feed", why, "WARNING" if replay else "INFO")
        if feed is None:
            feed = default_feed(
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
