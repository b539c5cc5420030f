"""The store as its callers see it: `Database`, the type both backends go by, whose `open` picks
one by the URL (SQLite: gateway/store/sqlite_database.py, PostgreSQL: gateway/store/pg/), and
the `Write` both commit in groups."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

from gateway.redact import redact_url

__all__ = [
    "Database",
    "Row",
    "StoreError",
    "Write",
    "is_postgresql_url",
    "sqlite_path",
]


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says what to do."""


class Write(NamedTuple):
    """One statement to run in the next group commit."""

    sql: str
    params: Sequence[Any]
    rank: int = 50


class Row(Protocol):
    """A row as callers read it: `row["name"]` or `row[0]` (sqlite3.Row, asyncpg's Record)."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> Any: ...


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
            # Imported here: both stores import this module (StoreError, Write), and a process
            # loads only the driver of the store it opens.
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


def is_postgresql_url(url: str) -> bool:
    """Whether `url` names a PostgreSQL store (postgresql:// or postgres://)."""
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///PATH` URL (relative paths are relative to the working dir)."""
    if is_postgresql_url(url):
        raise StoreError(f"store url {redact_url(url)!r}: a PostgreSQL store has no file")
    if not url.startswith("sqlite:///"):
        raise StoreError(
            f"store url {redact_url(url)!r}: use sqlite:///PATH or postgresql://HOST/DATABASE"
        )
    path = url.removeprefix("sqlite:///")
    if not path:
        raise StoreError("store url 'sqlite:///' names no file: use sqlite:///var/ctgw.db")
    return Path(path)
