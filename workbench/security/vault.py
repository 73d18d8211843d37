"""Secrets at rest, per user: API keys and broker session tokens under envelope encryption.

Why a vault and not env vars or the TOML file: keys live beside the orders they authorise, in the
operational store, but only as ciphertext. Each user's secrets are encrypted (Fernet: AES-128-CBC +
HMAC) with that user's own data key; the data key is stored wrapped by the master key, which lives
outside ``data/`` (see ``workbench.security.keys``). So user A's keys never decrypt with user B's data
key, a copied database is useless, and rotating the master key touches only the small data keys.

Names are ``<venue>/<field>``, e.g. ``ccxt:binance/api_key``, ``kite/access_token``; each may instead
come from exactly one environment variable, ``secret_env_name(name)`` (``WORKBENCH_KEY_CCXT_BINANCE_API_KEY``).
``Secret`` values never print themselves; decrypted values live in memory only, for Phase 1 and the
broker clients. Keys are always some user's: a live run reads its owner's vault, and code with no
vault at hand (``vault_of``) uses the vault of the CLI's logged-in user, else the environment only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from workbench.errors import VaultError
from workbench.security.keys import MasterKeys, begin_rotation, finish_rotation, new_data_key
from workbench.store.engine import engine_for
from workbench.store.schema import user_keys, user_secrets, vault_secrets

__all__ = [
    "Secret",
    "Vault",
    "adopt_legacy_secrets",
    "redact",
    "rotate_master_key",
    "secret_env_name",
    "secret_value",
    "vault_of",
]


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


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def _fingerprints_in_use(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return sorted(set(c.execute(select(user_keys.c.master_fingerprint)).scalars().all()))


def load_master(engine: Engine, home: Path, *, create: bool = False) -> MasterKeys:
    """The master key(s), checked against the fingerprints of the data keys already wrapped."""
    return MasterKeys.load(home, create=create, in_use=_fingerprints_in_use(engine))


class Vault:
    """One user's encrypted name → secret map in the operational store."""

    def __init__(self, engine: Engine, master: MasterKeys, user_id: int):
        self._engine = engine
        self.user_id = int(user_id)
        self._fernet = Fernet(self._data_key(master))

    @classmethod
    def open(cls, engine: Engine, home: Path, user_id: int) -> Vault:
        """The user's vault; creates the master key only on a home where nothing is wrapped yet."""
        return cls(engine, load_master(engine, home, create=True), user_id)

    @classmethod
    def for_user(cls, settings: Any, user_id: int) -> Vault:
        """The vault of ``user_id`` in the operational store of ``settings``."""
        settings.ensure_dirs()
        return cls.open(engine_for(settings.store_url), Path(settings.home), user_id)

    def _data_key(self, master: MasterKeys) -> bytes:
        with self._engine.begin() as c:
            row = c.execute(select(user_keys).where(user_keys.c.user_id == self.user_id)).mappings().first()
            if row is not None:
                return master.unwrap(row["wrapped_key"], row["master_fingerprint"])
            key = new_data_key()
            wrapped, fp = master.wrap(key)
            c.execute(
                insert(user_keys).values(
                    user_id=self.user_id, wrapped_key=wrapped, master_fingerprint=fp, created_at=_now()
                )
            )
            return key

    def put(self, name: str, value: str, expires_at: pd.Timestamp | None = None) -> None:
        if not name or not isinstance(value, str) or not value:
            raise ValueError(f"vault entry {name!r} needs a non-empty name and value")
        row = {
            "ciphertext": self._fernet.encrypt(value.encode()).decode(),
            "updated_at": _now(),
            "verified_at": None,
            "environment": None,
            "expires_at": None if expires_at is None else pd.Timestamp(expires_at).tz_convert("UTC").isoformat(),
        }
        with self._engine.begin() as c:
            done = c.execute(update(user_secrets).where(self._is(name)).values(**row)).rowcount
            if not done:
                c.execute(insert(user_secrets).values(user_id=self.user_id, name=name, **row))

    def get(self, name: str) -> Secret | None:
        with self._engine.connect() as c:
            r = c.execute(select(user_secrets).where(self._is(name))).mappings().first()
        if r is None:
            return None
        try:
            plain = self._fernet.decrypt(r["ciphertext"].encode()).decode()
        except InvalidToken as e:
            raise VaultError(
                f"vault entry {name!r} cannot be decrypted with its owner's data key: the database was damaged "
                f"or tampered with. Store the secret again (`workbench keys set`)."
            ) from e
        exp = pd.Timestamp(r["expires_at"]) if r["expires_at"] else None
        return Secret(plain, exp)

    def delete(self, name: str) -> bool:
        with self._engine.begin() as c:
            return bool(c.execute(delete(user_secrets).where(self._is(name))).rowcount)

    def names(self, prefix: str = "") -> list[str]:
        with self._engine.connect() as c:
            rows = (
                c.execute(
                    select(user_secrets.c.name)
                    .where(user_secrets.c.user_id == self.user_id)
                    .order_by(user_secrets.c.name)
                )
                .scalars()
                .all()
            )
        return [n for n in rows if n.startswith(prefix)]

    def entries(self) -> list[dict[str, Any]]:
        """What the keys page shows: names, when stored and last verified, and against which environment."""
        cols = [user_secrets.c.name, user_secrets.c.updated_at, user_secrets.c.verified_at, user_secrets.c.environment]
        with self._engine.connect() as c:
            q = select(*cols).where(user_secrets.c.user_id == self.user_id).order_by(user_secrets.c.name)
            return [dict(r) for r in c.execute(q).mappings()]

    def mark_verified(self, prefix: str, environment: str) -> None:
        """A venue accepted the keys under ``prefix`` (e.g. ``ccxt:binance/``) in ``environment``."""
        with self._engine.begin() as c:
            c.execute(
                update(user_secrets)
                .where(user_secrets.c.user_id == self.user_id, user_secrets.c.name.startswith(prefix))
                .values(verified_at=_now(), environment=environment)
            )

    def _is(self, name: str) -> Any:
        return (user_secrets.c.user_id == self.user_id) & (user_secrets.c.name == name)


def vault_of(settings: Any, vault: Vault | None = None) -> Vault | None:
    """The vault given; else the vault of the CLI's logged-in user (``$WORKBENCH_TOKEN`` or the home's
    session file) when that session is valid; else None, and secrets come from the environment only.
    Why: adapters called outside a live run (a data pull from Kite) act for whoever is logged in; a live
    run always passes its owner's vault."""
    if vault is not None:
        return vault
    from workbench.errors import AccessError
    from workbench.security.access import accounts_for, saved_token

    token = saved_token(settings)
    if not token:
        return None
    accounts = accounts_for(settings)
    try:
        user = accounts.authenticate(token, touch=False).user
    except AccessError:
        return None
    return Vault.open(accounts.engine, Path(settings.home), user.id)


def secret_env_name(name: str) -> str:
    """The one environment variable that may hold the secret ``name`` (``<venue>/<field>``):
    ``WORKBENCH_KEY_`` + the name upper-cased with every other character as ``_``, e.g.
    ``kite/api_key`` → ``WORKBENCH_KEY_KITE_API_KEY``, ``ccxt:binance/secret`` → ``WORKBENCH_KEY_CCXT_BINANCE_SECRET``."""
    return "WORKBENCH_KEY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def secret_value(vault: Vault | None, name: str) -> str | None:
    """The value stored as ``name`` in the user's vault (unless expired), else its environment variable
    (``secret_env_name(name)``), else None. Why both: users store keys with `workbench keys set`;
    servers and CI hand them over in the environment. One name per secret, nothing else is read."""
    s = vault.get(name) if vault is not None else None
    if s is not None and s.value and not s.expired():
        return s.value
    return os.environ.get(secret_env_name(name)) or None


def rotate_master_key(engine: Engine, home: Path) -> int:
    """Re-wrap every user's data key under a new master key; returns how many were re-wrapped.

    The new key is written (``master.key.next``) before any row changes and replaces the old file only
    after the transaction commits, so a crash at any point leaves every data key readable."""
    if os.environ.get("WORKBENCH_MASTER_KEY"):
        raise VaultError(
            "the master key comes from $WORKBENCH_MASTER_KEY: rotate it where it is kept (generate a new "
            "Fernet key, run `workbench vault rotate` with the key file instead, or re-enter the keys)"
        )
    old = load_master(engine, home, create=True)
    nxt = begin_rotation(home)
    both = MasterKeys((nxt, *old.keys), old.source)
    with engine.begin() as c:
        rows = c.execute(select(user_keys)).mappings().all()
        for r in rows:
            wrapped, fp = both.wrap(both.unwrap(r["wrapped_key"], r["master_fingerprint"]))
            c.execute(
                update(user_keys)
                .where(user_keys.c.user_id == r["user_id"])
                .values(wrapped_key=wrapped, master_fingerprint=fp)
            )
    finish_rotation(home)
    return len(rows)


def adopt_legacy_secrets(engine: Engine, home: Path, owner_id: int) -> int:
    """Secrets stored by the single-key vault of earlier releases (``vault_secrets``, key in
    ``data/vault.key`` or ``$WORKBENCH_VAULT_KEY``) move to ``owner_id``'s vault, so nothing is lost on
    upgrade. Returns how many moved; the old key file is removed once they are re-encrypted."""
    with engine.connect() as c:
        rows = c.execute(select(vault_secrets)).mappings().all()
    if not rows:
        return 0
    legacy = os.environ.get("WORKBENCH_VAULT_KEY", "").encode() or _read(Path(home) / "data" / "vault.key")
    if not legacy:
        raise VaultError(
            f"{len(rows)} secrets from an earlier release are encrypted with data/vault.key, which is gone: "
            f"they cannot be recovered. Enter the keys again with `workbench keys set`, then "
            f"`workbench vault reset --legacy` drops the unreadable rows."
        )
    old = Fernet(legacy)
    vault = Vault.open(engine, home, owner_id)
    for r in rows:
        try:
            plain = old.decrypt(r["ciphertext"].encode()).decode()
        except InvalidToken as e:
            raise VaultError(
                f"legacy secret {r['name']!r} does not decrypt with data/vault.key: restore the old key file"
            ) from e
        vault.put(r["name"], plain, pd.Timestamp(r["expires_at"]) if r["expires_at"] else None)
    with engine.begin() as c:
        c.execute(delete(vault_secrets))
    legacy_file = Path(home) / "data" / "vault.key"
    if legacy_file.exists():
        legacy_file.unlink()
    return len(rows)


def _read(path: Path) -> bytes:
    return path.read_bytes().strip() if path.exists() else b""
