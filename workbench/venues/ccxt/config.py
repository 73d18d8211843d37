"""The ccxt venue's config: any exchange ccxt supports, named ``ccxt:<exchange id>``; testnet by default.

``[venues.ccxt]`` in ``workbench.toml``::

    [venues.ccxt]
    options = { binance = { recvWindow = 10000 } }   # per exchange id: ccxt ``options``
    urls = { binance = { test = { public = "http://127.0.0.1:9000/api/v3" } } }  # per exchange id: ccxt ``urls``
    rate_limit = true            # ccxt's ``enableRateLimit`` (its own per-exchange request pacing)
    stop_limit_buffer = 0.01     # a stop-loss-limit's limit this fraction beyond its stop

Secrets (one name each): the vault's ``ccxt:<id>/api_key``, ``ccxt:<id>/secret`` and, where the
exchange requires them, ``ccxt:<id>/password`` and ``ccxt:<id>/uid``; or the environment variables
``WORKBENCH_KEY_CCXT_<ID>_API_KEY``, ``_SECRET``, ``_PASSWORD``, ``_UID`` (``<ID>`` upper-cased, e.g.
``WORKBENCH_KEY_CCXT_BINANCE_SECRET``). ``broker.testnet`` (default on) picks the exchange's sandbox.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workbench.errors import ConfigError
from workbench.venues.base import VenueConfig

__all__ = ["CcxtConfig", "CCXT_FIELDS", "exchange_id", "key_fields"]

# ccxt's credential names -> the vault field names
CCXT_FIELDS = {"apiKey": "api_key", "secret": "secret", "password": "password", "uid": "uid"}


class CcxtConfig(VenueConfig):
    """``[venues.ccxt]``: per-exchange ccxt ``options`` and ``urls``, rate limiting, stop-limit buffer."""

    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per exchange id: ccxt `options`")
    urls: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per exchange id: ccxt `urls` overrides")
    rate_limit: bool = Field(True, description="ccxt's enableRateLimit")
    stop_limit_buffer: float = Field(
        0.01, ge=0, lt=0.5, description="stop-loss-limit: limit this fraction beyond the stop"
    )


def exchange_id(text: str) -> str:
    """A ccxt exchange id, checked against ``ccxt.exchanges``."""
    import ccxt

    ex = text.strip().lower()
    if ex not in ccxt.exchanges:
        raise ConfigError(f"ccxt has no exchange {ex!r}: use one of ccxt.exchanges (e.g. ccxt:binance, ccxt:kraken)")
    return ex


def key_fields(instance: str | None) -> tuple[str, ...]:
    """The exchange's own required credentials (api_key, secret, and password/uid where it needs them)."""
    import ccxt

    if not instance:
        return ("api_key", "secret")
    creds = getattr(ccxt, instance)().requiredCredentials
    return tuple(f for k, f in CCXT_FIELDS.items() if creds.get(k)) or ("api_key", "secret")
