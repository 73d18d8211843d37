"""Per-user envelope encryption: ciphertext only, users isolated, master key outside data/, rotation safe."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert

from workbench.security.keys import master_key_path
from workbench.security.vault import Secret, Vault, VaultError, adopt_legacy_secrets, redact, rotate_master_key
from workbench.store import engine_for
from workbench.store.schema import users, vault_secrets


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_MASTER_KEY", raising=False)
    monkeypatch.delenv("WORKBENCH_VAULT_KEY", raising=False)
    (tmp_path / "data").mkdir()
    engine = engine_for(f"sqlite:///{tmp_path / 'data' / 'w.db'}")  # the store's schema, foreign keys on
    with engine.begin() as c:  # data keys belong to users 1 and 2
        for uid in (1, 2):
            c.execute(
                insert(users).values(id=uid, username=f"u{uid}", password_hash="x", created_at="t", updated_at="t")
            )
    return tmp_path, engine


def _dump(home_dir) -> str:
    return "\n".join(sqlite3.connect(home_dir / "data" / "w.db").iterdump())


def test_roundtrip_ciphertext_only_and_key_outside_data(home):
    h, engine = home
    v = Vault.open(engine, h, 1)
    v.put("ccxt:binance/api_key", "AKIAsupersecretvalue123")
    v.put("kite/access_token", "tok-1", expires_at=pd.Timestamp("2030-01-01", tz="UTC"))
    assert v.get("ccxt:binance/api_key").value == "AKIAsupersecretvalue123"
    assert v.get("missing") is None
    v.put("kite/access_token", "tok-2")
    assert Vault.open(engine, h, 1).get("kite/access_token").value == "tok-2"
    assert v.names("ccxt:") == ["ccxt:binance/api_key"]
    dump = _dump(h)
    assert "supersecret" not in dump and "tok-2" not in dump
    key = master_key_path(h)
    assert (
        key.parent != h / "data" and key.stat().st_mode & 0o777 == 0o600 and key.parent.stat().st_mode & 0o777 == 0o700
    )
    assert key.read_bytes().strip().decode() not in dump
    assert "supersecret" not in repr(v.get("ccxt:binance/api_key"))
    assert v.delete("kite/access_token") and v.get("kite/access_token") is None
    v.mark_verified("ccxt:binance/", "testnet")
    (e,) = v.entries()
    assert e["environment"] == "testnet" and e["verified_at"]


def test_users_are_isolated(home):
    h, engine = home
    a, b = Vault.open(engine, h, 1), Vault.open(engine, h, 2)
    a.put("ccxt:binance/secret", "alice-secret-value")
    assert b.get("ccxt:binance/secret") is None and b.names() == []
    b.put("ccxt:binance/secret", "bob-secret-value")
    assert a.get("ccxt:binance/secret").value == "alice-secret-value"
    assert b.get("ccxt:binance/secret").value == "bob-secret-value"
    # Bob's data key cannot open Alice's ciphertext (different data keys, not only a WHERE clause)
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE user_secrets SET ciphertext=(SELECT ciphertext FROM user_secrets WHERE user_id=1) WHERE user_id=2"
        )
    with pytest.raises(VaultError, match="cannot be decrypted"):
        b.get("ccxt:binance/secret")


def test_missing_or_wrong_master_key_is_refused_never_replaced(home, monkeypatch):
    h, engine = home
    Vault.open(engine, h, 1).put("x", "secret-value-1")
    key = master_key_path(h).read_bytes()
    master_key_path(h).unlink()
    with pytest.raises(VaultError, match="master key is missing"):
        Vault.open(engine, h, 1)
    assert not master_key_path(h).exists()  # no silently generated new key
    monkeypatch.setenv("WORKBENCH_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(VaultError, match="not the one the stored API keys were encrypted with"):
        Vault.open(engine, h, 1)
    monkeypatch.setenv("WORKBENCH_MASTER_KEY", "not-a-key")
    with pytest.raises(VaultError, match="not a valid master key"):
        Vault.open(engine, h, 1)
    monkeypatch.setenv("WORKBENCH_MASTER_KEY", key.decode())
    assert Vault.open(engine, h, 1).get("x").value == "secret-value-1"


def test_rotation_rewraps_and_loses_nothing(home):
    h, engine = home
    Vault.open(engine, h, 1).put("a", "secret-a-123")
    Vault.open(engine, h, 2).put("b", "secret-b-123")
    old = master_key_path(h).read_bytes()
    assert rotate_master_key(engine, h) == 2
    assert master_key_path(h).read_bytes() != old and not master_key_path(h).with_name("master.key.next").exists()
    assert Vault.open(engine, h, 1).get("a").value == "secret-a-123"
    assert Vault.open(engine, h, 2).get("b").value == "secret-b-123"
    # an interrupted rotation (next key written, rows partly re-wrapped) still reads every row
    from workbench.security.keys import begin_rotation

    begin_rotation(h)
    assert Vault.open(engine, h, 1).get("a").value == "secret-a-123"


def test_legacy_single_key_secrets_are_adopted(home):
    h, engine = home
    legacy = Fernet.generate_key()
    (h / "data" / "vault.key").write_bytes(legacy)
    with engine.begin() as c:
        c.execute(
            insert(vault_secrets).values(
                name="alpaca/secret",
                ciphertext=Fernet(legacy).encrypt(b"old-secret-9").decode(),
                updated_at="2026-01-01",
            )
        )
    assert adopt_legacy_secrets(engine, h, 1) == 1
    assert Vault.open(engine, h, 1).get("alpaca/secret").value == "old-secret-9"
    assert not (h / "data" / "vault.key").exists() and "old-secret" not in _dump(h)


def test_expiry_and_redaction():
    s = Secret("abc", pd.Timestamp("2024-01-01", tz="UTC"))
    assert s.expired(pd.Timestamp("2024-01-02", tz="UTC")) and not s.expired(pd.Timestamp("2023-12-31", tz="UTC"))
    assert redact("abcdefghijklmnop") == "<16 chars …op>" and redact("short") == "<hidden>" and redact("") == "<empty>"
