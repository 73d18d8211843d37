"""Which broker a live run trades and which store account it books to.

Why apart from the run itself: the CLI (``keys set``), the dashboard (its key and broker pickers) and
the live process all ask the venue registry the same questions — a broker's normalised name, its
environment (paper, testnet, live), the keys it takes — and a run's account must be named the same
way by whoever looks for it (``owned_account``: the run lock, ``live status``, the Start button's probe).
A real broker is planned, not connected, until Phase 1's authentication allows it (``plan_broker``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.trading.loop import PendingBroker
from workbench.trading.store import Store
from workbench.venues import get_venue, resolve, venue_config, venue_names
from workbench.venues.base import Broker

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.security.vault import Vault

__all__ = [
    "broker_environment",
    "broker_name",
    "key_fields",
    "make_broker",
    "owned_account",
    "plan_broker",
    "required_keys",
]


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
