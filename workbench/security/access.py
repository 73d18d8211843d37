"""Who is acting: the CLI's saved session, the first admin of a fresh home, and per-user risk limits.

Why a file for the CLI's token: each `workbench` command is a new process, so the session must outlive
it; the file is 0600 under the home (``.session``), or the token comes from ``$WORKBENCH_TOKEN`` (CI,
servers). Research commands that only read (data list, models list, instruments) stay open: they touch
no keys, runs, money or settings.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from workbench.config import RiskLimits, Settings
from workbench.errors import ConfigError, PermissionDenied
from workbench.security.users import Accounts, Session, User, generate_password
from workbench.store.schema import user_risk

__all__ = [
    "TOKEN_ENV",
    "token_path",
    "saved_token",
    "save_token",
    "forget_token",
    "require_session",
    "ensure_first_admin",
    "user_risk_limits",
    "set_user_risk",
]

TOKEN_ENV = "WORKBENCH_TOKEN"


def token_path(settings: Settings) -> Path:
    return settings.home / ".session"


def saved_token(settings: Settings) -> str | None:
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip()
    p = token_path(settings)
    return p.read_text().strip() or None if p.exists() else None


def save_token(settings: Settings, token: str) -> Path:
    p = token_path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.chmod(p, 0o600)
    return p


def forget_token(settings: Settings) -> None:
    token_path(settings).unlink(missing_ok=True)


def require_session(
    accounts: Accounts, settings: Settings, permission: str | None = None, token: str | None = None
) -> Session:
    """The session of ``token`` (default: the CLI's, ``saved_token``), or ``NotLoggedIn``; with
    ``permission``, also ``PermissionDenied``."""
    s = accounts.authenticate(token or saved_token(settings))
    if s.user.must_change_password:
        raise PermissionDenied(
            "your password was set by an admin or at first run: change it first with `workbench users passwd`"
        )
    if permission is not None and not s.user.can(permission):
        raise PermissionDenied(
            f"{s.user.username} lacks the {permission!r} permission: ask an admin (`workbench users grant`)"
        )
    return s


def ensure_first_admin(accounts: Accounts, username: str = "admin") -> str | None:
    """On a home with no users, create ``admin`` (admin, trade_paper) with a generated password that must
    be changed at first login; returns that password to show ONCE, or None when users exist already."""
    if accounts.count():
        return None
    password = generate_password()
    accounts.add_user(username, password, ["admin", "trade_paper"], must_change_password=True)
    return password


def user_risk_limits(engine: Engine, user: User, defaults: RiskLimits) -> RiskLimits:
    """The user's risk limits: their overrides on top of the home's defaults (DESIGN §5)."""
    with engine.connect() as c:
        raw = c.execute(select(user_risk.c.limits).where(user_risk.c.user_id == user.id)).scalar_one_or_none()
    if raw is None:
        return defaults
    return defaults.model_copy(update=json.loads(raw))


def set_user_risk(engine: Engine, user: User, defaults: RiskLimits, changes: dict[str, Any]) -> RiskLimits:
    """Validate and store the user's overrides (unknown fields and out-of-range values name the field)."""
    current = user_risk_limits(engine, user, defaults)
    unknown = sorted(set(changes) - set(RiskLimits.model_fields))
    if unknown:
        raise ConfigError(f"unknown risk setting {', '.join(unknown)}: use {', '.join(RiskLimits.model_fields)}")
    try:
        new = RiskLimits(**{**current.model_dump(), **changes})
    except ValidationError as e:
        err = e.errors()[0]
        field = RiskLimits.model_fields[str(err["loc"][0])]
        raise ConfigError(
            f"risk setting {err['loc'][0]} = {err.get('input')!r}: {err['msg']} ({field.description})"
        ) from None
    overrides = {k: v for k, v in new.model_dump().items() if v != getattr(defaults, k)}
    now = datetime.now(UTC).isoformat()
    with engine.begin() as c:
        done = c.execute(
            update(user_risk).where(user_risk.c.user_id == user.id).values(limits=json.dumps(overrides), updated_at=now)
        )
        if not done.rowcount:
            c.execute(insert(user_risk).values(user_id=user.id, limits=json.dumps(overrides), updated_at=now))
    return new


def store_engine(settings: Settings) -> Engine:
    """The operational store's engine (schema at head, security tables included)."""
    from workbench.store.engine import engine_for

    settings.ensure_dirs()
    return engine_for(settings.store_url)


def accounts_for(settings: Settings) -> Accounts:
    from datetime import timedelta

    from workbench.security.users import AuthPolicy

    sec = settings.security
    policy = AuthPolicy(
        idle_timeout=timedelta(minutes=sec.session_idle_minutes),
        absolute_timeout=timedelta(hours=sec.session_absolute_hours),
        min_password_length=sec.min_password_length,
        lockout_after=sec.lockout_after,
        lockout_base=timedelta(seconds=sec.lockout_base_s),
        lockout_max=timedelta(seconds=sec.lockout_max_s),
    )
    return Accounts(store_engine(settings), policy)
