"""The live process: one run = a run row, Phase 1, reconciliation, then a cycle every interval until
the cycles are done, the replay ends, or a command (stop / emergency stop) or a signal arrives.

It runs apart from the dashboard (``workbench live run``, or ``start_background`` from the Start
button) and talks to the world only through the store: the dashboard reads the rows it writes and
writes the commands it obeys — within one cycle, because the wait between cycles polls for them.

Every run has an owner: the user of the session that started it (``$WORKBENCH_TOKEN`` or the CLI's
session file). Phase 1 checks that user's permission, reads that user's vault and risk limits. A run
whose process died is resumed by the next ``live run`` on the same broker and account under its
stored owner, without a session, so a supervisor can restart it unattended (the master key unwraps
the owner's data key); Phase 1 runs again, so a permission revoked meanwhile stops the resumed run.
A permission revoked while a run is going does not stop it: stop it (``live stop``) if it must end.
"""

from __future__ import annotations

import os
import signal as _signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import AccessError, ConfigError, WorkbenchError
from workbench.trading.loop import (
    LiveContext,
    PendingBroker,
    cached,
    emergency_stop,
    phase1,
    registry_engine_factory,
    run_cycle,
)
from workbench.trading.orders import OrderManager
from workbench.trading.store import Store, utcnow
from workbench.trading.sync import sync_portfolio
from workbench.venues import get_venue, resolve, venue_config, venue_names
from workbench.venues.base import Broker

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
    "start_background",
]

_POLL_S = 0.05
_HEARTBEAT_S = 5.0


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


def _start(settings: Any, store: Store, name: str, vault: Any = None) -> Broker | PendingBroker:
    """A simulated venue's broker at once; a real one planned with the owner's vault (Phase 1 connects it)."""
    venue, _ = resolve(name)
    return make_broker(settings, store, name) if venue.simulated else plan_broker(settings, name, vault)


def _account(brk: Broker | PendingBroker) -> str:
    """The store account of a broker: the paper account, else ``<broker>@<environment>`` so that a
    testnet's book never mixes with real money."""
    if isinstance(brk, PendingBroker):
        return f"{brk.name}@{brk.environment}"
    return getattr(brk, "account", None) or f"{brk.name}@{brk.environment}"


def _default_feed(settings: Settings, engine: Any, start_cursor: int):
    from workbench.data.lake import Lake
    from workbench.trading.feeds import ReplayFeed

    uni = getattr(engine, "universe", None) or {}
    if not uni.get("exchange") or not uni.get("timeframe"):
        raise ConfigError(
            "the model records no universe (exchange, timeframe, symbols): retrain and register it, or pass a feed"
        )
    return ReplayFeed(
        Lake(settings.lake_dir),
        uni["exchange"],
        uni["timeframe"],
        list(uni.get("symbols") or []) or None,
        warmup_bars=settings.live.warmup_bars,
        replay_bars=settings.live.replay_bars,
        start_cursor=start_cursor,
    )


def _resume_cursor(store: Store, run_id: int, broker_name: str) -> int:
    """Continue the previous run's replay where it stopped, unless it had played to the end."""
    prev = store.previous_run(run_id, broker=broker_name, with_cursor=True)
    if prev is None or prev.get("cursor") is None:
        return 0
    if prev.get("message") and "replay finished" in prev["message"]:
        return 0
    return int(prev["cursor"])


class _Stop:
    """Why the loop ends: set by commands, by SIGTERM/SIGINT, or by the cycle budget."""

    def __init__(self) -> None:
        self.reason: str | None = None  # "stop" | "emergency_stop" | "signal"

    def set(self, reason: str) -> None:
        if self.reason != "emergency_stop":
            self.reason = reason


def run_live(
    settings: Settings,
    broker: str | Broker | None = None,
    model: str = "champion",
    interval_s: float | None = None,
    cycles: int | None = None,
    engine: Any = None,
    feed: Any = None,
    on_point: Callable[[str], None] | None = None,
    session: str | None = None,
) -> int:
    """Run the live loop in this process and return the run id when it ends. ``broker``: a name
    (default ``settings.broker.default``, i.e. paper) or a Broker object. ``session``: the owner's
    session token (default ``$WORKBENCH_TOKEN`` or the CLI's session file); without a valid one,
    Phase 1 fails at authentication (a crashed run resumes under its stored owner without one). The
    run row's status says how it ended: STOPPED, FAILED (with the failing check's or error's message)
    or EMERGENCY_STOPPED. Unexpected errors are recorded (FAILED) and then raised. ``on_point`` goes
    to the ``OrderManager`` (crash tests stop the process at a named point of an order's life)."""
    from workbench.security.access import accounts_for

    settings.ensure_dirs()
    store = Store(settings.store_url).create()
    accounts = accounts_for(settings)
    interval = float(interval_s if interval_s is not None else settings.live.interval_s)
    if isinstance(broker, str) or broker is None:
        label = (broker or settings.broker.default or "paper").strip()
    else:
        label = getattr(broker, "name", type(broker).__name__)
    try:
        if isinstance(broker, str) or broker is None:
            label = broker_name(settings, broker)
            brk = _start(settings, store, label)
        else:
            brk = broker
        env = brk.environment
    except WorkbenchError as e:
        run_id = store.start_run(label, "unknown", None, model, interval, os.getpid())
        store.log_event("run", f"run failed to start: {e}", "ERROR", run_id)
        store.finish_run(run_id, "FAILED", str(e))
        return run_id
    account = _account(brk)
    crashed = _crashed_run(store, label, account)
    owner, refusal = _owner(accounts, settings, session, crashed)
    if (isinstance(broker, str) or broker is None) and isinstance(brk, PendingBroker) and owner is not None:
        from workbench.security.vault import Vault

        brk = plan_broker(settings, label, Vault.open(accounts.engine, settings.home, owner.id))  # the owner's keys
    if crashed is not None:
        run_id = int(crashed["id"])
        store.update_run(run_id, pid=os.getpid(), heartbeat_at=utcnow(), message=None)
        store.clear_checks(run_id)
        who = f" under its owner {owner.username}" if owner is not None else ""
        store.log_event(
            "run",
            f"run {run_id} resumed{who} after a crash of pid {crashed['pid']} (last complete cycle {crashed['cycle']})",
            "WARNING",
            run_id,
        )
    else:
        run_id = store.start_run(label, env, account, model, interval, os.getpid(), user_id=owner.id if owner else None)
    detail = f"run {run_id} on {label} ({env}){' resumed' if crashed is not None else ''}"
    accounts.record(owner, "live_start", owner is not None, detail if owner else f"{detail}: {refusal}")
    stop = _Stop()
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
        )
    finally:
        restore()


def _owner(accounts: Any, settings: Any, session: str | None, crashed: dict | None) -> tuple[Any, str | None]:
    """(the run's owner, None) or (None, why there is none). A crashed run's owner is read from its row
    (no session needed: unattended restart); otherwise the session presented decides."""
    from workbench.security.access import require_session

    if crashed is not None and crashed.get("user_id") is not None:
        try:
            return accounts.user_by_id(int(crashed["user_id"])), None
        except ConfigError as e:
            return None, f"the crashed run's owner is gone: {e}"
    try:
        return require_session(accounts, settings, token=session).user, None
    except AccessError as e:
        return None, str(e)


def _crashed_run(store: Store, broker_name: str, account: str) -> dict | None:
    """The latest run, when it is still RUNNING on this broker and account but its process is gone
    (killed, machine lost power): it is resumed, not replaced, so the cycle it died in is re-run
    under the same (run, cycle) and therefore the same client order ids — nothing is sent twice."""
    run = store.latest_run()
    if run is None or run["status"] != "RUNNING" or run["broker"] != broker_name or run["account"] != account:
        return None
    return run if not _alive(run["pid"]) else None


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
) -> int:
    from workbench.security.access import user_risk_limits

    log = lambda kind, msg, level="INFO": store.log_event(kind, msg, level, run_id)  # noqa: E731
    factory = cached((lambda: engine) if engine is not None else registry_engine_factory(settings, model))
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
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:
        msg = f"Phase 1 failed at '{failed.name}': {failed.message}"
        log("phase1", msg, "ERROR")
        store.finish_run(run_id, "FAILED", msg)
        return run_id
    if isinstance(brk, PendingBroker):
        brk = brk.get()  # connected by Phase 1
    eng = factory()
    ref = getattr(eng, "ref", None)
    if isinstance(ref, str):
        store.update_run(run_id, model_ref=ref)
    ctx = None
    try:
        last_cycle = int(resumed["cycle"] or 0) if resumed is not None else 0
        if resumed is not None and resumed.get("cursor") is not None:
            start_cursor = int(resumed["cursor"])
        else:
            start_cursor = _resume_cursor(store, run_id, store.run(run_id)["broker"])
        if feed is None:
            feed = _default_feed(settings, eng, start_cursor)
        elif resumed is not None and resumed.get("cursor") is not None and hasattr(feed, "cursor"):
            feed.cursor = start_cursor
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
        )
        done, final_status, final_msg = 0, "STOPPED", None
        while True:
            _poll(store, run_id, stop)
            if stop.reason is not None:
                break
            result = run_cycle(ctx)
            done += 1
            if result.exhausted:
                final_msg = f"replay finished after {done} cycle(s)"
                break
            if cycles is not None and done >= cycles:
                final_msg = f"completed {done} cycle(s)"
                break
            _wait(store, run_id, interval, stop)
            if stop.reason is not None:
                break
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
        log("run", f"run {run_id} failed: {msg}", "ERROR")
        store.finish_run(run_id, "FAILED", msg)
        return run_id
    except BaseException as e:
        store.finish_run(run_id, "FAILED", f"unexpected {type(e).__name__}: {e}")
        log("run", f"run {run_id} crashed: {type(e).__name__}: {e}", "ERROR")
        raise


def _poll(store: Store, run_id: int, stop: _Stop) -> None:
    cmd = store.pending_command(run_id)
    if cmd is not None:
        stop.set(cmd)
        store.log_event("command", f"'{cmd}' received", "WARNING", run_id)


def _wait(store: Store, run_id: int, interval: float, stop: _Stop) -> None:
    """Sleep until the next cycle in small steps, obeying commands and signals meanwhile."""
    end = time.monotonic() + interval
    beat = time.monotonic() + _HEARTBEAT_S
    while stop.reason is None:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(_POLL_S, left))
        _poll(store, run_id, stop)
        if time.monotonic() >= beat:
            store.heartbeat(run_id)
            beat = time.monotonic() + _HEARTBEAT_S


def _install_signal_handlers(stop: _Stop):
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


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _acting(settings: Any, user: Any) -> Any:
    """The user acting: the one given, else the CLI session's user (``NotLoggedIn`` without one)."""
    if user is not None:
        return user
    from workbench.security.access import accounts_for, require_session

    return require_session(accounts_for(settings), settings).user


def _scope(user: Any) -> int | None:
    """Whose runs a user may see and stop: their own; an admin's, everyone's (None)."""
    return None if user.can("admin") else int(user.id)


def status(settings: Any, user: Any = None) -> dict:
    """The latest run of ``user`` (an admin: of anyone; default: the CLI session's user), as the CLI
    and dashboard show it."""
    store = Store(settings.store_url).create()
    run = store.latest_run(user_id=_scope(_acting(settings, user)))
    if run is None:
        return {"run_id": None, "status": "NO_RUN", "message": "no live run yet"}
    now = utcnow()
    hb = pd.Timestamp(run["heartbeat_at"]) if run.get("heartbeat_at") else None
    curve = store.equity_curve(run["id"])
    counts = store.order_counts(run["id"])
    alive = _alive(run["pid"])
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
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "cycle": run["cycle"],
        "heartbeat_age_s": None if hb is None else round((now - hb).total_seconds(), 3),
        "equity": float(curve["equity"].iloc[-1]) if len(curve) else None,
        "cash": float(curve["cash"].iloc[-1]) if len(curve) else None,
        "n_orders": sum(counts.values()),
        "n_filled": counts.get("FILLED", 0),
        "n_rejected": counts.get("REJECTED", 0),
        "n_positions": len(store.positions(run["account"] or "paper")),
        "message": run["message"],
    }


def request_stop(settings: Any, emergency: bool = False, user: Any = None) -> int | None:
    """Queue 'stop' (after the current cycle) or 'emergency_stop' for ``user``'s running run (an admin:
    anyone's; default: the CLI session's user); its id, or None. Recorded in the audit trail."""
    from workbench.security.access import accounts_for

    user = _acting(settings, user)
    store = Store(settings.store_url).create()
    run = store.latest_run(user_id=_scope(user))
    if run is None or run["status"] != "RUNNING":
        return None
    command = "emergency_stop" if emergency else "stop"
    store.send_command(command, run["id"])
    accounts_for(settings).record(user, f"live_{command}", True, f"run {run['id']} (owner id {run.get('user_id')})")
    return int(run["id"])


def start_background(
    settings: Any,
    broker: str | None = None,
    model: str = "champion",
    interval_s: float | None = None,
    cycles: int | None = None,
    session: str | None = None,
) -> subprocess.Popen:
    """Launch ``workbench live run`` as its own session: closing the dashboard never stops it.
    ``session``: the owner's token, handed over in ``$WORKBENCH_TOKEN`` (never argv, which other
    users of the machine can read); default: whatever the environment already holds."""
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "live",
        "run",
        "--broker",
        broker or settings.broker.default,
        "--model",
        model,
    ]
    if interval_s is not None:
        cmd += ["--interval", str(interval_s)]
    if cycles is not None:
        cmd += ["--cycles", str(cycles)]
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home)}
    if session:
        env["WORKBENCH_TOKEN"] = session
    log = open(logs / f"live-{stamp}.log", "ab")  # noqa: SIM115 (closed below once the child holds its own copy)
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
