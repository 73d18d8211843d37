"""Tables of accounts, sessions, wrapped data keys and the audit trail (moved into the one schema at merge)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text

meta = MetaData()

users = Table(
    "users", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", String(40)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)  # fmt: skip

user_permissions = Table(
    "user_permissions", meta,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("permission", String(32), primary_key=True),
    Column("granted_by", Integer),
    Column("granted_at", String(40), nullable=False),
)  # fmt: skip

sessions = Table(
    "sessions", meta,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("client", String(32), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("last_seen_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)  # fmt: skip

user_keys = Table(
    "user_keys", meta,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("wrapped_key", Text, nullable=False),
    Column("master_fingerprint", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
)  # fmt: skip

audit = Table(
    "audit", meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False, index=True),
    Column("user_id", Integer),
    Column("username", String(64)),
    Column("action", String(40), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text),
)  # fmt: skip

user_secrets = Table(
    "user_secrets", meta,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("expires_at", String(40)),
    Column("verified_at", String(40)),
    Column("environment", String(16)),
)  # fmt: skip

# The single-key vault of earlier releases; read once by ``adopt_legacy_secrets`` on upgrade.
vault_secrets = Table(
    "vault_secrets", meta,
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("expires_at", String(40)),
)  # fmt: skip

# Per-user risk limits: only the fields a user changed; the rest come from the settings' defaults.
user_risk = Table(
    "user_risk", meta,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("limits", Text, nullable=False),  # JSON of RiskLimits fields
    Column("updated_at", String(40), nullable=False),
)  # fmt: skip
