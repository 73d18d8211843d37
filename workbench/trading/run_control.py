"""Looking at and steering live runs from outside them: status, stop, emergency stop, actions, and
the dashboard's background start.

Why apart from the run itself: these run in the CLI's or the dashboard's process and talk to a run only
through the store (its rows, the commands it polls for), never to the process. Each acts for a user: a
user sees and stops their own runs, an admin anyone's; none pretends (a run whose process is gone is
reported dead and nothing is queued for it). The argument checks (``check_run_args``) are shared with
``live run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import AccessError, ConfigError
from workbench.trading.broker_setup import broker_environment, broker_name, owned_account
from workbench.trading.cycle import heartbeat_state, timing_summary
from workbench.trading.runlock import acquire as acquire_account
from workbench.trading.runlock import alive as _alive
from workbench.trading.store import Store, utcnow
from workbench.trading.universes import universe_for
from workbench.venues import resolve

__all__ = [
    "MIN_INTERVAL_S",
    "StopOutcome",
    "check_run_args",
    "request_stop",
    "running",
    "send_action",
    "start_background",
    "status",
    "stop_run",
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


def _summary(run: dict[str, Any]) -> dict[str, Any]:
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


def _visible(store: Store, user_id: int | None, account: str | None = None) -> list[dict[str, Any]]:
    """The RUNNING rows ``user_id`` may see (None: all), newest first."""
    return [r for r in store.running_runs(account) if user_id is None or r.get("user_id") == user_id]


def running(settings: Any, user: Any = None) -> list[dict[str, Any]]:
    """Every run still marked RUNNING that the user may see, each with whether its process is alive (a
    dead one is not running, whatever its row says: the next start on its account resumes it)."""
    store = Store(settings.store_url).create()
    return [_summary(r) for r in _visible(store, _scope(_acting(settings, user)))]


def _pick(store: Store, run_id: int | None, account: str | None, user_id: int | None) -> dict[str, Any] | None:
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


def status(settings: Any, run_id: int | None = None, account: str | None = None, user: Any = None) -> dict[str, Any]:
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
) -> subprocess.Popen[bytes]:
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
