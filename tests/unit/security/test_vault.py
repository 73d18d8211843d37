"""The vault keeps secrets as ciphertext only, round-trips them, and fails loudly on a changed key."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from cryptography.fernet import Fernet

from workbench.errors import VaultError
from workbench.security.vault import Secret, Vault, redact


def test_roundtrip_and_ciphertext_only(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_VAULT_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    v = Vault(url, tmp_path)
    v.put("ccxt:binance/api_key", "AKIAsupersecretvalue123")
    v.put("kite/access_token", "tok-1", expires_at=pd.Timestamp("2030-01-01", tz="UTC"))
    assert v.get("ccxt:binance/api_key").value == "AKIAsupersecretvalue123"
    assert v.get("missing") is None
    v.put("kite/access_token", "tok-2")  # overwrite
    assert v.get("kite/access_token").value == "tok-2"
    assert v.names("ccxt:") == ["ccxt:binance/api_key"]
    raw = sqlite3.connect(tmp_path / "w.db").execute("select group_concat(ciphertext) from vault_secrets").fetchone()[0]
    assert "supersecret" not in raw and "tok-2" not in raw
    assert (tmp_path / "data" / "vault.key").stat().st_mode & 0o777 == 0o600
    assert "supersecret" not in repr(v.get("ccxt:binance/api_key")) and "supersecret" not in str(v.get("ccxt:binance/api_key"))
    assert v.delete("kite/access_token") and v.get("kite/access_token") is None


def test_changed_key_is_a_clear_error(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    monkeypatch.setenv("WORKBENCH_VAULT_KEY", Fernet.generate_key().decode())
    Vault(url, tmp_path).put("x", "secret-value")
    monkeypatch.setenv("WORKBENCH_VAULT_KEY", Fernet.generate_key().decode())
    with pytest.raises(VaultError, match="cannot be decrypted"):
        Vault(url, tmp_path).get("x")
    monkeypatch.setenv("WORKBENCH_VAULT_KEY", "not-a-key")
    with pytest.raises(VaultError, match="not a valid Fernet key"):
        Vault(url, tmp_path)


def test_expiry_and_redaction():
    s = Secret("abc", pd.Timestamp("2024-01-01", tz="UTC"))
    assert s.expired(pd.Timestamp("2024-01-02", tz="UTC")) and not s.expired(pd.Timestamp("2023-12-31", tz="UTC"))
    assert redact("abcdefghijklmnop") == "<16 chars …op>" and redact("short") == "<hidden>" and redact("") == "<empty>"
