"""Accounts, sessions, permissions and the audit trail: who may do what, and who did.

Why here and not in the web server: the live process, the CLI and the dashboard's kernel are separate
processes that share only the store, so a session is a row (its token hashed) that any of them can
check, and revoke. Passwords are hashed with argon2id; a session token is 256 random bits shown once
to its holder and stored only as a SHA-256 hash, so a copied database opens no session.

Permissions: ``trade_paper`` (paper runs), ``trade_live`` (anything with real money; granted only by an
admin), ``admin`` (manage users and grants). Every login, failed login, grant, revoke, password change
and key change lands in ``audit`` with the user and the time.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from workbench.errors import ConfigError, LoginFailed, NotLoggedIn, PermissionDenied
from workbench.store.schema import audit, sessions, user_permissions, users

__all__ = [
    "PERMISSIONS",
    "AuthPolicy",
    "User",
    "Session",
    "Accounts",
    "generate_password",
]

PERMISSIONS = ("trade_paper", "trade_live", "admin")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class AuthPolicy:
    """Session lifetimes and the lockout rule (``[security]`` in workbench.toml)."""

    idle_timeout: timedelta = timedelta(hours=12)
    absolute_timeout: timedelta = timedelta(days=7)
    min_password_length: int = 10
    lockout_after: int = 5  # failed logins in a row before the account locks
    lockout_base: timedelta = timedelta(seconds=30)  # doubled for every further failure
    lockout_max: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    permissions: frozenset[str]
    disabled: bool = False
    must_change_password: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class Session:
    """A logged-in user and their session's expiry (the token itself is never kept here)."""

    user: User
    expires_at: datetime
    idle_expires_at: datetime


def generate_password() -> str:
    """A password shown once to a first admin: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _ts(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users, sessions and the audit trail in the operational store."""

    def __init__(self, engine: Engine, policy: AuthPolicy | None = None, now: Callable[[], datetime] | None = None):
        self.engine = engine
        self.policy = policy or AuthPolicy()
        self._now = now or (lambda: datetime.now(UTC))

    # ---- users -------------------------------------------------------------------------------
    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(users)).scalar_one())

    def add_user(
        self,
        username: str,
        password: str,
        permissions: Iterable[str] = ("trade_paper",),
        *,
        actor: User | None = None,
        must_change_password: bool = False,
    ) -> User:
        """A new account. The first account needs no actor (it is the first admin); later ones need an
        admin, and only an admin may hand out ``trade_live`` or ``admin``."""
        name = _check_username(username)
        perms = _check_permissions(permissions)
        self._check_password(password)
        now = _iso(self._now())
        with self.engine.begin() as c:
            first = c.execute(select(func.count()).select_from(users)).scalar_one() == 0
            if not first:
                _require_admin(actor, "add users")
            if c.execute(select(users.c.id).where(users.c.username == name)).first() is not None:
                raise ConfigError(f"user {name!r} exists already: pick another name or `workbench users passwd {name}`")
            pk = c.execute(
                insert(users).values(
                    username=name,
                    password_hash=_hasher.hash(password),
                    disabled=False,
                    must_change_password=must_change_password,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert pk is not None  # an INSERT of one row always returns its key
            uid = pk[0]
            for p in sorted(perms):
                c.execute(
                    insert(user_permissions).values(
                        user_id=uid, permission=p, granted_by=actor and actor.id, granted_at=now
                    )
                )
            self._audit(c, actor, "user_add", True, f"{name} with {','.join(sorted(perms)) or 'no permissions'}")
        return self.user(name)

    def user(self, username: str) -> User:
        with self.engine.connect() as c:
            return self._user(c, username)

    def user_by_id(self, user_id: int) -> User:
        with self.engine.connect() as c:
            row = c.execute(select(users.c.username).where(users.c.id == user_id)).first()
            if row is None:
                raise ConfigError(f"no user with id {user_id}")
            return self._user(c, row[0])

    def list_users(self) -> list[User]:
        with self.engine.connect() as c:
            names = c.execute(select(users.c.username).order_by(users.c.username)).scalars().all()
            return [self._user(c, n) for n in names]

    def grant(self, username: str, permission: str, actor: User) -> User:
        (perm,) = _check_permissions([permission])
        _require_admin(actor, "grant permissions")
        with self.engine.begin() as c:
            u = self._user(c, username)
            if perm not in u.permissions:
                c.execute(
                    insert(user_permissions).values(
                        user_id=u.id, permission=perm, granted_by=actor.id, granted_at=_iso(self._now())
                    )
                )
            self._audit(c, actor, "grant", True, f"{perm} to {u.username}")
        return self.user(username)

    def revoke(self, username: str, permission: str, actor: User) -> User:
        (perm,) = _check_permissions([permission])
        _require_admin(actor, "revoke permissions")
        with self.engine.begin() as c:
            u = self._user(c, username)
            if perm == "admin" and u.id == actor.id and self._admins(c) == 1:
                raise PermissionDenied("you are the only admin: grant admin to someone else before revoking your own")
            c.execute(
                delete(user_permissions).where(
                    user_permissions.c.user_id == u.id, user_permissions.c.permission == perm
                )
            )
            self._audit(c, actor, "revoke", True, f"{perm} from {u.username}")
        return self.user(username)

    def disable(self, username: str, actor: User, disabled: bool = True) -> User:
        _require_admin(actor, "disable users")
        with self.engine.begin() as c:
            u = self._user(c, username)
            if disabled and u.id == actor.id:
                raise PermissionDenied("you cannot disable your own account")
            c.execute(update(users).where(users.c.id == u.id).values(disabled=disabled, updated_at=_iso(self._now())))
            if disabled:
                self._revoke_all(c, u.id)
            self._audit(c, actor, "user_disable" if disabled else "user_enable", True, u.username)
        return self.user(username)

    def set_password(self, username: str, new_password: str, actor: User, old_password: str | None = None) -> None:
        """A user changes their own password (``old_password`` required) or an admin resets one (the user
        must change it at next login). Either way every session of that user ends."""
        self._check_password(new_password)
        with self.engine.begin() as c:
            u = self._user(c, username)
            own = actor.id == u.id
            wrong = own and (old_password is None or not _verify(self._hash_of(c, u.id), old_password))
            if wrong:
                self._audit(c, actor, "passwd", False, "wrong current password")
        if wrong:
            raise LoginFailed("the current password is wrong")
        with self.engine.begin() as c:
            if own:
                if old_password == new_password:
                    raise ConfigError("the new password must differ from the current one")
            else:
                _require_admin(actor, "reset other users' passwords")
            c.execute(
                update(users)
                .where(users.c.id == u.id)
                .values(
                    password_hash=_hasher.hash(new_password),
                    must_change_password=not own,
                    failed_logins=0,
                    locked_until=None,
                    updated_at=_iso(self._now()),
                )
            )
            self._revoke_all(c, u.id)
            self._audit(c, actor, "passwd", True, u.username if own else f"reset for {u.username}")

    # ---- sessions ----------------------------------------------------------------------------
    def login(self, username: str, password: str, client: str = "cli") -> tuple[str, Session]:
        """A new session token (shown once; only its hash is stored). Wrong passwords count towards a
        lockout whose delay doubles with each further failure; the message never says whether the
        username exists."""
        now = self._now()
        with self.engine.begin() as c:  # failures are committed (count, lockout, audit) before raising
            failure = self._check_login(c, username, password, now)
            if failure is None:
                token, user, expires = self._open_session(c, username, client, now)
        if failure is not None:
            raise failure
        return token, Session(user, expires, min(expires, now + self.policy.idle_timeout))

    def _check_login(self, c: Connection, username: str, password: str, now: datetime) -> LoginFailed | None:
        row = c.execute(select(users).where(users.c.username == username.strip().lower())).mappings().first()
        if row is None:
            _hasher.hash(password)  # same cost as a real check: timing does not reveal unknown names
            self._audit(c, None, "login", False, f"unknown user {username!r}")
            return LoginFailed("wrong username or password")
        locked = _ts(row["locked_until"])
        if locked is not None and now < locked:
            wait = int((locked - now).total_seconds()) + 1
            self._audit(c, _stub(row), "login", False, "locked")
            return LoginFailed(f"too many failed logins: the account is locked for another {wait} s")
        if not _verify(row["password_hash"], password):
            fails = row["failed_logins"] + 1
            values: dict[str, Any] = {"failed_logins": fails}
            if fails >= self.policy.lockout_after:
                delay = min(
                    self.policy.lockout_base * 2 ** (fails - self.policy.lockout_after), self.policy.lockout_max
                )
                values["locked_until"] = _iso(now + delay)
            c.execute(update(users).where(users.c.id == row["id"]).values(**values))
            self._audit(c, _stub(row), "login", False, f"wrong password ({fails} in a row)")
            return LoginFailed("wrong username or password")
        if row["disabled"]:
            self._audit(c, _stub(row), "login", False, "disabled")
            return LoginFailed(f"the account {row['username']!r} is disabled: ask an admin")
        values = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(row["password_hash"]):
            values["password_hash"] = _hasher.hash(password)
        c.execute(update(users).where(users.c.id == row["id"]).values(**values))
        return None

    def _open_session(self, c: Connection, username: str, client: str, now: datetime) -> tuple[str, User, datetime]:
        token = secrets.token_urlsafe(32)  # 256 bits
        expires = now + self.policy.absolute_timeout
        user = self._user(c, username)
        c.execute(
            insert(sessions).values(
                token_hash=_token_hash(token),
                user_id=user.id,
                client=client,
                created_at=_iso(now),
                last_seen_at=_iso(now),
                expires_at=_iso(expires),
            )
        )
        self._audit(c, user, "login", True, client)
        return token, user, expires

    def authenticate(self, token: str | None, *, touch: bool = True) -> Session:
        """The session behind a token, or ``NotLoggedIn`` saying why (missing, expired, revoked, disabled)."""
        if not token:
            raise NotLoggedIn("not logged in: run `workbench login` (or set WORKBENCH_TOKEN)")
        now = self._now()
        with self.engine.begin() as c:
            row = c.execute(select(sessions).where(sessions.c.token_hash == _token_hash(token))).mappings().first()
            if row is None:
                raise NotLoggedIn("the session is unknown (logged out or never issued): run `workbench login`")
            if row["revoked_at"]:
                raise NotLoggedIn(
                    "the session was revoked (logout, password change or an admin): run `workbench login`"
                )
            expires = _ts(row["expires_at"])
            last_seen = _ts(row["last_seen_at"])
            assert expires is not None and last_seen is not None  # both columns are set when a session is issued
            idle = last_seen + self.policy.idle_timeout
            if now >= expires:
                raise NotLoggedIn("the session expired: run `workbench login`")
            if now >= idle:
                raise NotLoggedIn(
                    f"the session expired after {self.policy.idle_timeout} without use: run `workbench login`"
                )
            name = c.execute(select(users.c.username).where(users.c.id == row["user_id"])).scalar_one()
            user = self._user(c, name)
            if user.disabled:
                raise NotLoggedIn(f"the account {name!r} is disabled: ask an admin")
            if touch:
                c.execute(
                    update(sessions).where(sessions.c.token_hash == row["token_hash"]).values(last_seen_at=_iso(now))
                )
                idle = now + self.policy.idle_timeout
        return Session(user, expires, min(expires, idle))

    def logout(self, token: str) -> bool:
        with self.engine.begin() as c:
            row = c.execute(select(sessions.c.user_id).where(sessions.c.token_hash == _token_hash(token))).first()
            if row is None:
                return False
            c.execute(
                update(sessions).where(sessions.c.token_hash == _token_hash(token)).values(revoked_at=_iso(self._now()))
            )
            self._audit(c, self._user_by_id(c, row[0]), "logout", True, None)
        return True

    def revoke_sessions(self, username: str, actor: User) -> int:
        with self.engine.begin() as c:
            u = self._user(c, username)
            if u.id != actor.id:
                _require_admin(actor, "revoke other users' sessions")
            n = self._revoke_all(c, u.id)
            self._audit(c, actor, "revoke_sessions", True, f"{n} of {u.username}")
        return n

    # ---- audit -------------------------------------------------------------------------------
    def record(self, actor: User | None, action: str, ok: bool = True, detail: str | None = None) -> None:
        """An audit row for an action taken elsewhere (key changes, starts, stops, emergency stops)."""
        with self.engine.begin() as c:
            self._audit(c, actor, action, ok, detail)

    def audit_log(self, limit: int = 200, user: User | None = None) -> list[dict[str, Any]]:
        q = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if user is not None:
            q = q.where(audit.c.user_id == user.id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    # ---- internals ---------------------------------------------------------------------------
    def _check_password(self, password: str) -> None:
        if not isinstance(password, str) or len(password) < self.policy.min_password_length:
            raise ConfigError(f"a password needs at least {self.policy.min_password_length} characters")

    def _audit(self, c: Connection, actor: User | None, action: str, ok: bool, detail: str | None) -> None:
        c.execute(
            insert(audit).values(
                ts=_iso(self._now()),
                user_id=actor.id if actor else None,
                username=actor.username if actor else None,
                action=action,
                ok=ok,
                detail=detail,
            )
        )

    def _revoke_all(self, c: Connection, user_id: int) -> int:
        return c.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=_iso(self._now()))
        ).rowcount

    def _hash_of(self, c: Connection, user_id: int) -> str:
        return str(c.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar_one())

    def _admins(self, c: Connection) -> int:
        return int(
            c.execute(
                select(func.count()).select_from(user_permissions).where(user_permissions.c.permission == "admin")
            ).scalar_one()
        )

    def _user(self, c: Connection, username: str) -> User:
        name = username.strip().lower()
        row = c.execute(select(users).where(users.c.username == name)).mappings().first()
        if row is None:
            raise ConfigError(f"no user {name!r}: see `workbench users list`")
        perms = (
            c.execute(select(user_permissions.c.permission).where(user_permissions.c.user_id == row["id"]))
            .scalars()
            .all()
        )
        return User(
            row["id"], row["username"], frozenset(perms), bool(row["disabled"]), bool(row["must_change_password"])
        )

    def _user_by_id(self, c: Connection, user_id: int) -> User:
        name = c.execute(select(users.c.username).where(users.c.id == user_id)).scalar_one()
        return self._user(c, name)


def _stub(row: Any) -> User:
    return User(row["id"], row["username"], frozenset())


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not (2 <= len(name) <= 64) or not all(ch.isalnum() or ch in "._-" for ch in name):
        raise ConfigError(f"username {username!r}: use 2-64 letters, digits, '.', '_' or '-'")
    return name


def _check_permissions(permissions: Iterable[str]) -> frozenset[str]:
    perms = frozenset(p.strip().lower() for p in permissions)
    bad = sorted(perms - set(PERMISSIONS))
    if bad:
        raise ConfigError(f"unknown permission {', '.join(bad)}: use {', '.join(PERMISSIONS)}")
    return perms


def _require_admin(actor: User | None, what: str) -> None:
    if actor is None or not actor.can("admin") or actor.disabled:
        raise PermissionDenied(f"only an admin may {what}")
