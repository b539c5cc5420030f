"""Staff accounts (admin, marketer, agent), their scrypt passwords and browser sessions.

A password is kept as `scrypt$N$r$p$salt$key` (base64), so its cost can rise later without
breaking stored hashes; a session only as the SHA-256 of its cookie token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.store.database import Database, Row, StoreError, Write
from gateway.store.times import from_ts, ts

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "EmailTaken",
    "StaffSession",
    "StaffUser",
    "UserInputError",
    "authenticate",
    "check_new_user",
    "create_user",
    "end_session",
    "find_session",
    "hash_password",
    "known_sites",
    "list_users",
    "open_session",
    "verify_password",
]

ROLES = ("admin", "marketer", "agent")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SESSION_IDLE = timedelta(hours=12)
SESSION_LIFETIME = timedelta(days=7)
# A session's last_seen is rewritten at most this often: not a store write per page view.
_TOUCH_EVERY = timedelta(minutes=1)

_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_MEM = 64 * 1024 * 1024
# Verified against when the e-mail is unknown, so an unknown address costs the same scrypt run
# as a wrong password (no telling who has an account by the answer's time).
_NO_USER = "scrypt$16384$8$1$" + "A" * 22 + "==$" + "A" * 43 + "="

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+", re.ASCII
)


class UserInputError(ValueError):
    """A field of a new user is not acceptable; the message says which and why."""


class EmailTaken(UserInputError):
    """A user with this e-mail exists already."""


@dataclass(frozen=True)
class StaffUser:
    """A person who logs in to the dashboard."""

    user_id: str
    email: str
    name: str
    role: str
    sites: frozenset[str]

    def can_see(self, site: str) -> bool:
        """An admin with no sites listed sees every site; anyone else only their sites."""
        if self.role == "admin" and not self.sites:
            return True
        return site in self.sites


@dataclass(frozen=True)
class StaffSession:
    """A live browser session: whose it is and the CSRF token its forms carry."""

    user: StaffUser
    csrf: str
    token_hash: str


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    secret = password.encode("utf-8", "surrogatepass")
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEM, dklen=size)


def hash_password(password: str) -> str:
    """The stored form of `password` (CPU- and memory-hard: run it off the event loop)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, _N, _R, _P, _KEY_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        parsed = (int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(key))
    except ValueError:
        return None
    # Bounded so that a damaged row cannot make a login run for minutes.
    ok = scheme == "scrypt" and 2 <= parsed[0] <= 2**17 and 1 <= parsed[1] * parsed[2] <= 64
    return parsed if ok and len(parsed[4]) >= 16 else None


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`, compared in constant time."""
    parsed = _parse(stored)
    n, r, p, salt, key = parsed or _parse(_NO_USER) or (_N, _R, _P, b"", b"")
    got = _scrypt(password, salt, n, r, p, len(key) or _KEY_BYTES)
    return parsed is not None and hmac.compare_digest(got, key)


def _user(row: Row) -> StaffUser:
    return StaffUser(
        row["user_id"], row["email"], row["name"], row["role"], frozenset(json.loads(row["sites"]))
    )


def check_new_user(
    email: str, name: str, role: str, sites: Iterable[str], password: str, known: Iterable[str]
) -> tuple[str, str, frozenset[str]]:
    """The e-mail (lower case), name and sites of a new user, or UserInputError."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise UserInputError("the e-mail address is not valid (like name@example.com)")
    name = name.strip()
    if len(name) > 100 or not name.isprintable():
        raise UserInputError("the name must be at most 100 printable characters")
    if role not in ROLES:
        raise UserInputError(f"the role must be one of: {', '.join(ROLES)}")
    wanted = frozenset(s.strip() for s in sites)
    unknown = sorted(wanted - frozenset(known))
    if unknown:
        shown = ", ".join(repr(s[:40]) for s in unknown[:5])
        raise UserInputError(f"no such site: {shown} (known: {', '.join(sorted(known))})")
    if role != "admin" and not wanted:
        raise UserInputError(f"a {role} needs at least one site")
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        raise UserInputError(
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return email, name, wanted


async def known_sites(db: Database) -> dict[str, str]:
    """The sites of the store: key -> name, by key."""
    rows = await db.fetchall("SELECT key, name FROM sites ORDER BY key")
    return {str(r["key"]): str(r["name"]) for r in rows}


async def create_user(
    db: Database,
    *,
    email: str,
    name: str,
    role: str,
    sites: Iterable[str],
    password: str,
    at: datetime,
) -> StaffUser:
    """Store a new user (fields checked with `check_new_user`); EmailTaken if the e-mail is."""
    email, name, wanted = check_new_user(email, name, role, sites, password, await known_sites(db))
    if await db.lookup("SELECT 1 FROM staff_users WHERE email = ?", (email,)) is not None:
        raise EmailTaken(f"a user with the e-mail {email} exists already")
    stored = await asyncio.to_thread(hash_password, password)
    user = StaffUser(secrets.token_hex(16), email, name, role, wanted)
    insert = (
        "INSERT INTO staff_users (user_id, email, name, role, sites, password_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    params = (user.user_id, email, name, role, json.dumps(sorted(wanted)), stored, ts(at))
    try:
        await db.write([Write(insert, params)])
    except StoreError:
        if await db.lookup("SELECT 1 FROM staff_users WHERE email = ?", (email,)) is not None:
            raise EmailTaken(f"a user with the e-mail {email} exists already") from None
        raise
    return user


async def list_users(db: Database) -> list[StaffUser]:
    """Every user, by e-mail (never a password hash)."""
    rows = await db.fetchall(
        "SELECT user_id, email, name, role, sites FROM staff_users ORDER BY email"
    )
    return [_user(r) for r in rows]


async def authenticate(db: Database, email: str, password: str) -> StaffUser | None:
    """The user whose e-mail and password these are, or None; the same scrypt work either way."""
    row = await db.lookup(
        "SELECT user_id, email, name, role, sites, password_hash FROM staff_users WHERE email = ?",
        (email.strip().lower()[:254],),
    )
    stored = str(row["password_hash"]) if row is not None else _NO_USER
    matches = await asyncio.to_thread(verify_password, password[:MAX_PASSWORD], stored)
    fits = len(password) <= MAX_PASSWORD  # hashed cut short, so as slow as any other
    return _user(row) if row is not None and matches and fits else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def open_session(db: Database, user: StaffUser, at: datetime) -> tuple[str, StaffSession]:
    """A new browser session for `user`: the cookie token (shown once) and the session."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session = StaffSession(user, csrf, _token_hash(token))
    now = ts(at)
    await db.write(
        [
            Write(
                "DELETE FROM staff_sessions"
                " WHERE user_id = ? AND (created_at < ? OR last_seen < ?)",
                (user.user_id, ts(at - SESSION_LIFETIME), ts(at - SESSION_IDLE)),
            ),
            Write(
                "INSERT INTO staff_sessions (token_hash, user_id, csrf, created_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (session.token_hash, user.user_id, csrf, now, now),
            ),
        ]
    )
    return token, session


async def find_session(db: Database, token: str, at: datetime) -> StaffSession | None:
    """The live session of a cookie token, or None (unknown, idle 12 h, or 7 days old)."""
    if not token or len(token) > 128:
        return None
    token_hash = _token_hash(token)
    row = await db.lookup(
        "SELECT s.csrf, s.created_at, s.last_seen, u.user_id, u.email, u.name, u.role, u.sites"
        " FROM staff_sessions s JOIN staff_users u USING (user_id) WHERE s.token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    last_seen = from_ts(row["last_seen"])
    if at - from_ts(row["created_at"]) > SESSION_LIFETIME or at - last_seen > SESSION_IDLE:
        await _delete_session(db, token_hash)
        return None
    if at - last_seen >= _TOUCH_EVERY:
        await db.write(
            [
                Write(
                    "UPDATE staff_sessions SET last_seen = ? WHERE token_hash = ?",
                    (ts(at), token_hash),
                )
            ]
        )
    return StaffSession(_user(row), str(row["csrf"]), token_hash)


async def end_session(db: Database, session: StaffSession) -> None:
    """Log out: the session's row is deleted, so its cookie opens nothing any more."""
    await _delete_session(db, session.token_hash)


async def _delete_session(db: Database, token_hash: str) -> None:
    await db.write([Write("DELETE FROM staff_sessions WHERE token_hash = ?", (token_hash,))])
