"""The PostgreSQL store's schema is the SQLite store's: the same migrations by number and name,
the same tables, columns (in order, with their types and nullability) and indexes. A SQLite
migration without its PostgreSQL twin fails here."""

from __future__ import annotations

import sqlite3
from importlib import resources

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.migrate import apply_migrations as apply_sqlite_migrations

pytestmark = pytest.mark.postgres

# Columns as (name, type, nullable). SQLite's declared types, as PostgreSQL names them.
_TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision"}
Columns = list[tuple[str, str, bool]]


def _sqlite_schema() -> tuple[dict[str, Columns], set[str]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        apply_sqlite_migrations(conn)
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        schema: dict[str, Columns] = {}
        for table in tables:
            # A primary key column is NOT NULL in PostgreSQL; SQLite lets a TEXT key be NULL
            # (an old quirk the store never uses).
            schema[table] = [
                (name, _TYPES[kind], not (notnull or pk))
                for _, name, kind, notnull, _, pk in conn.execute(f"PRAGMA table_info({table})")
            ]
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        return schema, indexes
    finally:
        conn.close()


async def _postgresql_schema(url: str) -> tuple[dict[str, Columns], set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        schema: dict[str, Columns] = {}
        for row in rows:
            column = (row["column_name"], row["data_type"], row["is_nullable"] == "YES")
            schema.setdefault(row["table_name"], []).append(column)
        # The indexes behind PRIMARY KEY and UNIQUE are unnamed in SQLite (sqlite_autoindex_*).
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'"
        )
        return schema, {row["indexname"] for row in indexes}
    finally:
        await conn.close()


def _names(package: str) -> set[str]:
    return {
        entry.name
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(".sql") and entry.name[:4].isdigit()
    }


def test_every_sqlite_migration_has_its_postgresql_twin() -> None:
    twins = {name for name in _names("gateway.store.pg.migrations") if name < "1000"}
    assert twins == _names("gateway.store.migrations")


async def test_both_stores_have_the_same_tables_columns_and_indexes(pg_db: str) -> None:
    sqlite_tables, sqlite_indexes = _sqlite_schema()
    pg_tables, pg_indexes = await _postgresql_schema(pg_db)
    assert sorted(pg_tables) == sorted(sqlite_tables)
    for table, columns in sqlite_tables.items():
        assert pg_tables[table] == columns, table
    assert pg_indexes == sqlite_indexes
