"""Venues: one package per venue (``paper``, ``ccxt``, ``kite``, ``alpaca``), all with the same modules
(``config``, ``broker``, ``data``, ``instruments``), found by name through ``VENUES``.

Adding a venue is one package whose ``__init__`` defines ``VENUE = Venue(...)`` plus one line here
(or one ``register_venue`` call): the runner, the CLI (``keys``, ``live run --broker``), the dashboard
and the settings (``[venues.<name>]``) all look venues up through this registry. Like ``MODEL_KINDS``,
entries are module paths imported on first use, so naming a venue never imports its client library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar, overload

from workbench.errors import ConfigError
from workbench.venues.base import Venue, VenueConfig

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = [
    "VENUES",
    "Venue",
    "VenueConfig",
    "register_venue",
    "get_venue",
    "resolve",
    "venue_names",
    "venue_choices",
    "venue_offers",
    "venue_config",
    "venue_instruments",
]

# name -> the package defining ``VENUE``
VENUES: dict[str, str] = {
    "paper": "workbench.venues.paper",
    "ccxt": "workbench.venues.ccxt",
    "kite": "workbench.venues.kite",
    "alpaca": "workbench.venues.alpaca",
}


def register_venue(name: str, package: str) -> None:
    """Add (or replace) a venue: ``package`` is an importable module defining ``VENUE``."""
    if not name or not name.isidentifier() or name != name.lower():
        raise ValueError(f"a venue name is a lower-case identifier, not {name!r}")
    VENUES[name] = package


def get_venue(name: str) -> Venue:
    """The ``Venue`` registered as ``name`` (without an instance part)."""
    if name not in VENUES:
        raise ConfigError(f"unknown venue {name!r}: use {venue_choices()}")
    v = getattr(importlib.import_module(VENUES[name]), "VENUE", None)
    if not isinstance(v, Venue) or v.name != name:
        raise ConfigError(f"{VENUES[name]} does not define VENUE = Venue(name={name!r}, ...)")
    return v


def resolve(name: str) -> tuple[Venue, str | None]:
    """A broker name (``paper``, ``kite``, ``ccxt:binance``) → its venue and instance, validated."""
    text = (name or "").strip()
    base, sep, inst = text.lower().partition(":")
    if base not in VENUES:
        raise ConfigError(f"unknown broker {text!r}: use {venue_choices()}")
    v = get_venue(base)
    if v.instance is None:
        if sep:
            raise ConfigError(f"broker {base!r} takes no ':<instance>' part: use {v.name!r}")
        return v, None
    if not inst:
        raise ConfigError(f"broker {base!r} needs an instance: use {v.instance_hint or base + ':<id>'}")
    return v, v.instance(inst)


def venue_names() -> list[str]:
    """Registered venues as the CLI and the dashboard show them (``ccxt:<exchange id>``)."""
    out = []
    for n in VENUES:
        try:
            v = get_venue(n)
        except (ConfigError, ImportError):
            out.append(n)
            continue
        out.append(v.instance_hint or n if v.instance is not None else n)
    return out


def venue_offers() -> list[str]:
    """One concrete broker name per registered venue (``ccxt:binance`` for ccxt), paper first: what a
    picker offers. Venues whose package cannot be imported here are left out."""
    out = []
    for n in VENUES:
        try:
            v = get_venue(n)
        except (ConfigError, ImportError):
            continue
        if v.instance is None or v.default_instance:
            out.append(v.label(v.default_instance if v.instance is not None else None))
    return sorted(out, key=lambda n: n != "paper")


def venue_choices() -> str:
    return " | ".join(venue_names())


_C = TypeVar("_C", bound=VenueConfig)


@overload
def venue_config(settings: Settings, name: str) -> VenueConfig: ...
@overload
def venue_config(settings: Settings, name: str, kind: type[_C]) -> _C: ...
def venue_config(settings: Settings, name: str, kind: type[VenueConfig] = VenueConfig) -> VenueConfig:
    """The validated ``[venues.<name>]`` table of ``settings`` (the venue's defaults when absent); a
    venue's own code passes its config class as ``kind`` and gets that type back."""
    v = get_venue(name.partition(":")[0])
    got = (getattr(settings, "venues", None) or {}).get(v.name)
    cfg = got if isinstance(got, v.config) else parse_venue_config(v.name, got or {})
    if not isinstance(cfg, kind):
        raise ConfigError(f"venue {v.name!r} is configured by {type(cfg).__name__}, not {kind.__name__}")
    return cfg


def parse_venue_config(name: str, table: Any) -> VenueConfig:
    """``table`` validated by venue ``name``'s config class; a bad value raises ``ConfigError`` naming
    the setting (``venues.kite.product``) and what it should be."""
    from pydantic import ValidationError

    v = get_venue(name)
    if isinstance(table, v.config):
        return table
    if not isinstance(table, dict):
        raise ConfigError(f"venues.{name} must be a table of settings, not {table!r}")
    try:
        return v.config(**table)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in (name, *err["loc"]))
        got = f" (got {err['input']!r})" if "input" in err and err["type"] != "extra_forbidden" else ""
        raise ConfigError(f"venues.{where}: {err['msg']}{got}") from None


def venue_instruments(name: str, path: Any = None, **kw: Any) -> Any:
    """The instrument list of the venue ``name`` (``kite``, ``ccxt:binance``) as master rows."""
    v, inst = resolve(name)
    if v.instruments is None:
        raise ConfigError(f"venue {v.name!r} publishes no instrument list")
    return v.instruments(path, instance=inst, **kw)
