"""Envelope encryption: one data key per user, wrapped by a master key kept outside ``data/``.

Why two levels: a copied database (``data/workbench.db``) holds only ciphertext and *wrapped* data
keys, useless without the master key, which lives in another directory (``$WORKBENCH_HOME/keys``,
0700, the file 0600) or in ``$WORKBENCH_MASTER_KEY`` on servers. Rotating the master key re-wraps the
small data keys and never touches the secrets themselves. A missing or wrong master key while wrapped
keys exist is a refusal that says what to do — never a silently generated new key, which would make
every stored secret unreadable without anyone noticing.

Threat model, in short: someone with the database alone learns nothing; someone with the database and
the master key (the same machine's account) can decrypt, which is what lets a crashed run restart
unattended under its owner. Protect the account, back the key file up apart from the database.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from workbench.errors import VaultError

__all__ = ["MASTER_KEY_ENV", "MasterKeys", "fingerprint", "new_data_key", "master_key_path"]

MASTER_KEY_ENV = "WORKBENCH_MASTER_KEY"


def master_key_path(home: Path) -> Path:
    """The master key file: beside ``data/``, never inside it (a copy of ``data/`` must not carry it)."""
    return Path(home) / "keys" / "master.key"


def fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key, stored beside what it wrapped so the right key is picked."""
    return hashlib.sha256(key).hexdigest()[:16]


def new_data_key() -> bytes:
    return Fernet.generate_key()


def _write_0600(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class MasterKeys:
    """The master key (and, during a rotation, the next one). ``wrap`` uses the current key; ``unwrap``
    picks the key by the fingerprint stored with the wrapped value."""

    keys: tuple[bytes, ...]
    source: str

    @property
    def current(self) -> bytes:
        return self.keys[0]

    @property
    def current_fingerprint(self) -> str:
        return fingerprint(self.current)

    @classmethod
    def load(cls, home: Path, *, create: bool, in_use: Sequence[str] = ()) -> MasterKeys:
        """The master key from ``$WORKBENCH_MASTER_KEY`` or ``keys/master.key``.

        ``create``: make a new key file when there is none — only allowed when nothing is wrapped yet
        (``in_use`` lists the fingerprints of stored wrapped keys)."""
        env = os.environ.get(MASTER_KEY_ENV)
        path = master_key_path(home)
        pending = path.with_name("master.key.next")
        keys: list[bytes] = []
        if env:
            keys.append(_valid(env.strip().encode(), f"${MASTER_KEY_ENV}"))
            source = f"${MASTER_KEY_ENV}"
        elif path.exists():
            keys.append(_valid(path.read_bytes().strip(), str(path)))
            source = str(path)
        else:
            source = str(path)
        if pending.exists():  # a rotation was interrupted: the next key may already wrap some rows
            keys.append(_valid(pending.read_bytes().strip(), str(pending)))
        if not keys:
            if in_use:
                raise VaultError(
                    f"the master key is missing: stored API keys are encrypted with it, and it is neither in "
                    f"{path} nor in ${MASTER_KEY_ENV}. Restore the key file from your backup (or set "
                    f"${MASTER_KEY_ENV}); without it the stored keys cannot be read — `workbench vault reset` "
                    f"deletes them so they can be entered again."
                )
            if not create:
                raise VaultError(f"no master key at {path}: run `workbench init` first")
            key = Fernet.generate_key()
            _write_0600(path, key)
            return cls((key,), str(path))
        known = {fingerprint(k) for k in keys}
        unknown = sorted(set(in_use) - known)
        if unknown:
            raise VaultError(
                f"the master key in {source} is not the one the stored API keys were encrypted with "
                f"(fingerprints {', '.join(unknown)} expected, {', '.join(sorted(known))} found). Restore the "
                f"right key file (or ${MASTER_KEY_ENV}); `workbench vault reset` deletes the stored keys."
            )
        return cls(tuple(keys), source)

    def wrap(self, data_key: bytes) -> tuple[str, str]:
        """(wrapped data key, fingerprint of the master key that wrapped it)."""
        return Fernet(self.current).encrypt(data_key).decode(), self.current_fingerprint

    def unwrap(self, wrapped: str, fp: str) -> bytes:
        for k in self.keys:
            if fingerprint(k) == fp:
                try:
                    return Fernet(k).decrypt(wrapped.encode())
                except InvalidToken as e:
                    raise VaultError(
                        "a wrapped data key does not decrypt with the master key of the same fingerprint: the "
                        "database was tampered with or damaged. Restore it from a backup."
                    ) from e
        raise VaultError(f"no master key with fingerprint {fp}: restore the key file it was wrapped with")


def _valid(key: bytes, where: str) -> bytes:
    try:
        Fernet(key)
    except ValueError as e:
        raise VaultError(
            f"{where} is not a valid master key (a 44-character urlsafe base64 Fernet key): restore the right "
            f"file or value"
        ) from e
    return key


def begin_rotation(home: Path) -> bytes:
    """Write the next master key beside the current one (``master.key.next``) before any row is re-wrapped,
    so a crash mid-rotation leaves both keys on disk and every row readable."""
    key = Fernet.generate_key()
    _write_0600(master_key_path(home).with_name("master.key.next"), key)
    return key


def finish_rotation(home: Path) -> None:
    """Every row is re-wrapped: the next key becomes the master key."""
    path = master_key_path(home)
    os.replace(path.with_name("master.key.next"), path)
