"""The store's schema: the numbered SQL files of gateway/store/migrations, applied in order."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources

from gateway.store.times import ts

__all__ = ["apply_migrations"]


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("gateway.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; returns their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in _migrations():
        if version in done:
            continue
        # executescript commits first; wrap explicitly so a failed migration leaves nothing.
        try:
            conn.executescript("BEGIN;\n" + sql + "\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, ts(datetime.now(UTC)))
        )
        applied.append(name)
    return applied
