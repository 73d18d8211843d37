"""`workbench init` on a fresh home: the first admin with a one-time password (shown once, changed at
first login) and the secrets of the earlier single-key vault moved into that admin's vault."""

from __future__ import annotations

import re
import sqlite3

from cryptography.fernet import Fernet
from sqlalchemy import insert
from typer.testing import CliRunner

from workbench.cli import app
from workbench.config import load_settings
from workbench.security.access import accounts_for
from workbench.security.vault import Vault
from workbench.store import engine_for
from workbench.store.schema import vault_secrets


def _init(home):
    return CliRunner().invoke(app, ["init", "--home", str(home)])


def test_init_creates_the_first_admin_once_and_forces_a_password_change(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.delenv("WORKBENCH_MASTER_KEY", raising=False)
    home = tmp_path / "home"
    first = _init(home)
    assert first.exit_code == 0, first.output
    (password,) = re.findall(r"one-time password:\s+(\S+)", first.output)
    assert "shown only this once" in first.output and "keys/master.key" in first.output
    accounts = accounts_for(load_settings(home))
    admin = accounts.user("admin")
    assert (
        admin.can("admin") and admin.can("trade_paper") and not admin.can("trade_live") and admin.must_change_password
    )
    _, session = accounts.login("admin", password)
    assert session.user.must_change_password
    again = _init(home)
    assert again.exit_code == 0 and "one-time password" not in again.output and accounts.count() == 1
    dump = "\n".join(sqlite3.connect(home / "data" / "workbench.db").iterdump())
    assert password not in dump  # only its argon2id hash is stored


def test_init_moves_legacy_secrets_into_the_admins_vault(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.delenv("WORKBENCH_MASTER_KEY", raising=False)
    monkeypatch.delenv("WORKBENCH_VAULT_KEY", raising=False)
    home = tmp_path / "home"
    settings = load_settings(home)
    settings.ensure_dirs()
    legacy = Fernet.generate_key()
    (home / "data" / "vault.key").write_bytes(legacy)
    engine = engine_for(settings.store_url)
    with engine.begin() as c:
        token = Fernet(legacy).encrypt(b"legacy-secret-0123456").decode()
        c.execute(insert(vault_secrets).values(name="ccxt:binance/secret", ciphertext=token, updated_at="2026-01-01"))
    r = _init(home)
    assert r.exit_code == 0 and "1 stored key(s) from an earlier release moved into admin's vault" in r.output, r.output
    admin = accounts_for(settings).user("admin")
    assert Vault.for_user(settings, admin.id).get("ccxt:binance/secret").value == "legacy-secret-0123456"
    assert not (home / "data" / "vault.key").exists()
