"""Admin API keys: shown once at creation, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from gateway.db import Database, Write, ts

__all__ = ["create_key", "find_key", "hash_key"]

_PREFIX = "ctgw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


async def create_key(db: Database, name: str, at: datetime) -> str:
    """Store a new key under `name` and return it; it cannot be read back later."""
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


async def find_key(db: Database, key: str) -> str | None:
    """The name of the live key `key`, or None."""
    if not key.startswith(_PREFIX) or len(key) > 128:
        return None
    row = db.lookup(
        "SELECT name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (hash_key(key),)
    )
    return str(row["name"]) if row else None
