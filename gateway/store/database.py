"""The store as its callers see it: `Database`, the type both backends go by, whose `open` picks
one by the URL (SQLite: gateway/store/sqlite_database.py, PostgreSQL: gateway/store/pg/). The
basics both backends share (`Write`, `StoreError`, `Row`, the URL helpers) live in
gateway/store/store_types.py, which both import, and are handed on from here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from gateway.store.store_types import Row, StoreError, Write, is_postgresql_url, sqlite_path

__all__ = [
    "Database",
    "Row",
    "StoreError",
    "Write",
    "is_postgresql_url",
    "sqlite_path",
]


class Database(Protocol):
    """What the store modules ask of a store, met by `SqliteDatabase` and `PgDatabase`;
    `Database.open(url)` opens the one the URL's scheme names."""

    # "sqlite" | "postgresql": picks a statement where the two dialects differ.
    dialect: ClassVar[str]
    commits: int

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Database:
        """The store at `url`: PostgreSQL for postgresql:// and postgres://, else SQLite."""
        if is_postgresql_url(url):
            # Imported here: a process loads only the driver of the store it opens.
            from gateway.store.pg.database import PgDatabase

            return await PgDatabase.open(url, migrate=migrate)
        from gateway.store.sqlite_database import SqliteDatabase

        return await SqliteDatabase.open(url, migrate=migrate)

    async def close(self) -> None: ...
    async def migrate(self) -> list[str]: ...
    async def write(self, writes: Sequence[Write]) -> None: ...
    def submit(self, writes: Sequence[Write], done: asyncio.Future[None]) -> None: ...
    def flush(self) -> None: ...
    async def drain(self) -> None: ...
    # Rows as Any: the modules still name `sqlite3.Row` in their hints; both kinds meet `Row`.
    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...
    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any | None: ...
    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> Any | None: ...

    @property
    def path(self) -> Path:
        """The SQLite file, for reads on a thread; PostgreSQL raises StoreError."""
        ...
