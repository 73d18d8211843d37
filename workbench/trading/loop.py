"""The live loop: Phase 1 (checks, in the spec's order, each recorded as it completes); the Phase 2
cycle (market data → signals → risk → orders → portfolio) is ``workbench.trading.phase2``, re-exported
here.

Phase 1 talks to a venue only once authentication allows it, and reports every failure as a failed
check rather than raising, so the dashboard can show which check stopped the run and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from workbench.config import RiskLimits, Settings
from workbench.data.panel import Panel
from workbench.errors import ModelError, NoModelError, WorkbenchError
from workbench.signals import Signal
from workbench.trading.engine import ModelSignalEngine
from workbench.trading.phase2 import (  # the Phase 2 cycle, importable from here as before
    CycleResult,
    LiveContext,
    close_positions,
    emergency_stop,
    exit_orders,
    perform_actions,
    run_cycle,
)
from workbench.trading.store import Store
from workbench.venues.base import AuthenticationError, Broker

__all__ = [
    "CheckResult",
    "close_positions",
    "perform_actions",
    "SignalEngine",
    "ModelSignalEngine",
    "registry_engine_factory",
    "BACKUP_CHOICE",
    "BACKUP_LABEL",
    "cached",
    "PendingBroker",
    "phase1",
    "calendar_warnings",
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


def calendar_warnings(settings: Settings, engine: Any, today: Any = None) -> list[str]:
    """``WARNING: …`` per calendar of the engine's exchanges (its universe's, and those of instrument
    keys in it) whose recorded holidays end within 30 days of ``today`` or have ended, naming the
    settings' extra holidays (``Calendars.from_settings``: read here, installed nowhere)."""
    from workbench.data.calendars import CALENDARS, Calendars, horizon_warnings
    from workbench.instruments import split_key

    uni = getattr(engine, "universe", None) or {}
    names = [str(uni["exchange"])] if uni.get("exchange") else []
    names += [split_key(s)[0] for s in uni.get("symbols") or () if ":" in str(s)]
    exchanges = [e for e in names if e.upper() in CALENDARS]  # crypto is 24/7; the feed refuses the unknown
    return [f"WARNING: {w}" for w in horizon_warnings(exchanges, today, calendars=Calendars.from_settings(settings))]


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
    today: Any = None,
) -> list[CheckResult]:
    """The five checks of the spec in order; stops at the first failure. Each result is written to
    the store with its duration (and passed to ``on_result``) as soon as it is known, so the dashboard
    shows progress. ``user`` is the run's owner (``workbench.security.users.User``; None → authentication
    fails with ``refusal``); a ``PendingBroker`` is connected only once authentication allows it, with
    the owner's vault. ``limits``: the owner's risk limits (default ``settings.risk``). When a calendar of
    the model's exchanges records holidays only to within 30 days of ``today`` (default: now), a passing
    ``calendar`` row before ``risk`` says so (``WARNING: …``): the run goes on, on the weekly schedule."""
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
    for warning in calendar_warnings(settings, engine, today):  # a warning row only when there is one
        record(CheckResult("calendar", True, warning))
    record(CheckResult("risk", True, _risk_text(limits if limits is not None else settings.risk)))
    return results
