"""Admin API keys: shown once at creation, stored only as a SHA-256 hash, revoked by name."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import NamedTuple

from gateway.store.database import Database, Write
from gateway.store.times import ts

__all__ = [
    "KeyInfo",
    "KeyNameTaken",
    "create_key",
    "find_key",
    "hash_key",
    "list_keys",
    "revoke_key",
]

_PREFIX = "ctgw_"


class KeyNameTaken(ValueError):
    """A live key already has this name."""


class KeyInfo(NamedTuple):
    """What may be shown of a key: never the key or its hash."""

    name: str
    created_at: str
    revoked_at: str | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


async def create_key(db: Database, name: str, at: datetime) -> str:
    """Store a new key under `name` and return it; it cannot be read back later.

    Raises KeyNameTaken when a live key has the name (names are how keys are revoked)."""
    if await _live_count(db, name):
        raise KeyNameTaken(name)
    key = _PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(8)
    await db.write(
        [
            Write(
                "INSERT INTO api_keys (key_id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (key_id, name, hash_key(key), ts(at)),
            )
        ]
    )
    return key


async def list_keys(db: Database) -> list[KeyInfo]:
    """Every key, live and revoked, oldest first."""
    rows = await db.fetchall(
        "SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at, name"
    )
    return [KeyInfo(r["name"], r["created_at"], r["revoked_at"]) for r in rows]


async def revoke_key(db: Database, name: str, at: datetime) -> int:
    """Revoke the live keys named `name` (one, unless an older store let names repeat);
    returns how many. A running gateway refuses them from its next request on."""
    count = await _live_count(db, name)
    if count:
        await db.write(
            [
                Write(
                    "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                    (ts(at), name),
                )
            ]
        )
    return count


async def _live_count(db: Database, name: str) -> int:
    row = await db.fetchone(
        "SELECT count(*) AS n FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
    )
    return int(row["n"]) if row else 0


async def find_key(db: Database, key: str) -> str | None:
    """The name of the live key `key`, or None. Read from the store on every request (a point
    lookup of a few microseconds), so a key revoked by the CLI is refused at once."""
    if not key.startswith(_PREFIX) or len(key) > 128:
        return None
    row = await db.lookup(
        "SELECT name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (hash_key(key),)
    )
    return str(row["name"]) if row else None
