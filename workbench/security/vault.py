"""Secrets at rest: API keys and broker session tokens, encrypted with Fernet (AES-128-CBC + HMAC).

Why a vault and not env vars or the TOML file: keys live beside the orders they authorise, in the
operational store, but only as ciphertext, so a copied database or a log line never carries a usable
key. The encryption key comes from ``$WORKBENCH_VAULT_KEY`` (for servers and CI), else from a key
file created on first use with mode 0600 in the home; losing it makes the stored secrets unreadable
(the user enters them again), never readable by someone else.

Names are ``<venue>/<field>``, e.g. ``ccxt:binance/api_key``, ``kite/access_token``; each may instead
come from exactly one environment variable, ``secret_env_name(name)`` (``WORKBENCH_KEY_CCXT_BINANCE_API_KEY``). ``Secret`` values never print themselves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, insert, select, update

from workbench.errors import VaultError
from workbench.store.engine import engine_for
from workbench.store.schema import vault_secrets as _secrets

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = ["Secret", "Vault", "redact", "secret_env_name", "secret_value", "vault_of"]


@dataclass(frozen=True)
class Secret:
    """A decrypted value that does not show itself in reprs, logs or tracebacks."""

    value: str = ""
    expires_at: pd.Timestamp | None = None

    def __repr__(self) -> str:
        return f"Secret({redact(self.value)})"

    __str__ = __repr__

    def expired(self, now: pd.Timestamp | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or pd.Timestamp.now(tz="UTC")) >= self.expires_at


def redact(value: str | None) -> str:
    """What a log may show of a secret: its length and last two characters at most."""
    if not value:
        return "<empty>"
    return f"<{len(value)} chars …{value[-2:]}>" if len(value) >= 12 else "<hidden>"


def _key(home: Path) -> bytes:
    env = os.environ.get("WORKBENCH_VAULT_KEY")
    if env:
        return env.encode()
    path = home / "data" / "vault.key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class Vault:
    """Encrypted name → secret map in the operational store (``settings.store_url``, table
    ``vault_secrets`` of ``workbench.store.schema``)."""

    def __init__(self, store_url: str, home: Path | str):
        try:
            self._fernet = Fernet(_key(Path(home)))
        except ValueError as e:
            raise VaultError(
                "WORKBENCH_VAULT_KEY (or data/vault.key) is not a valid Fernet key: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            ) from e
        self._engine = engine_for(store_url)

    @classmethod
    def for_settings(cls, settings: Settings) -> Vault:
        settings.ensure_dirs()
        return cls(settings.store_url, settings.home)

    def put(self, name: str, value: str, expires_at: pd.Timestamp | None = None) -> None:
        if not name or not isinstance(value, str) or not value:
            raise ValueError(f"vault entry {name!r} needs a non-empty name and value")
        row = {
            "ciphertext": self._fernet.encrypt(value.encode()).decode(),
            "updated_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "expires_at": None if expires_at is None else pd.Timestamp(expires_at).tz_convert("UTC").isoformat(),
        }
        with self._engine.begin() as c:
            done = c.execute(update(_secrets).where(_secrets.c.name == name).values(**row)).rowcount
            if not done:
                c.execute(insert(_secrets).values(name=name, **row))

    def get(self, name: str) -> Secret | None:
        with self._engine.connect() as c:
            r = c.execute(select(_secrets).where(_secrets.c.name == name)).mappings().first()
        if r is None:
            return None
        try:
            plain = self._fernet.decrypt(r["ciphertext"].encode()).decode()
        except InvalidToken as e:
            raise VaultError(
                f"vault entry {name!r} cannot be decrypted: the vault key changed since it was stored. "
                f"Store the secret again (the old ciphertext is useless without the old key)."
            ) from e
        exp = pd.Timestamp(r["expires_at"]) if r["expires_at"] else None
        return Secret(plain, exp)

    def delete(self, name: str) -> bool:
        with self._engine.begin() as c:
            return bool(c.execute(delete(_secrets).where(_secrets.c.name == name)).rowcount)

    def names(self, prefix: str = "") -> list[str]:
        with self._engine.connect() as c:
            rows = c.execute(select(_secrets.c.name).order_by(_secrets.c.name)).scalars().all()
        return [n for n in rows if n.startswith(prefix)]


def vault_of(settings: Settings, vault: Vault | None = None) -> Vault:
    """The vault given, else the one of ``settings`` (adapters accept a vault so tests can pass theirs)."""
    return vault if vault is not None else Vault.for_settings(settings)


def secret_env_name(name: str) -> str:
    """The one environment variable that may hold the secret ``name`` (``<venue>/<field>``):
    ``WORKBENCH_KEY_`` + the name upper-cased with every other character as ``_``, e.g.
    ``kite/api_key`` → ``WORKBENCH_KEY_KITE_API_KEY``, ``ccxt:binance/secret`` → ``WORKBENCH_KEY_CCXT_BINANCE_SECRET``."""
    return "WORKBENCH_KEY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def secret_value(vault: Vault | None, name: str) -> str | None:
    """The value stored as ``name`` (unless expired), else its environment variable
    (``secret_env_name(name)``), else None. Why both: users store keys with `workbench keys set`;
    servers and CI hand them over in the environment. One name per secret, nothing else is read."""
    s = vault.get(name) if vault is not None else None
    if s is not None and s.value and not s.expired():
        return s.value
    return os.environ.get(secret_env_name(name)) or None
