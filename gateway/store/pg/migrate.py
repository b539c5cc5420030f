"""The PostgreSQL store's schema: the numbered SQL files of gateway/store/pg/migrations, applied
in order, all in one transaction under an advisory lock (two gateways may start at once).
0001-0999 are twins of the SQLite store's migrations (same number and name); 1001 on are
PostgreSQL's own (the leasing schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from gateway.store.times import ts

__all__ = ["apply_migrations"]

# An arbitrary constant: the advisory lock every gateway takes before it migrates.
_MIGRATION_LOCK = 0x63746777  # "ctgw"


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("gateway.store.pg.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; returns their names. DDL is transactional here, so
    a failed migration leaves nothing, and a gateway waiting on the lock then finds them done."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        rows = await conn.fetch("SELECT version FROM schema_migrations")
        done = {int(row["version"]) for row in rows}
        for version, name, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                version,
                name,
                ts(datetime.now(UTC)),
            )
            applied.append(name)
    return applied
