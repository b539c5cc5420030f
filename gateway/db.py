"""The embedded SQLite store: one writer that commits in groups, a separate reader, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

__all__ = [
    "Database",
    "StoreError",
    "Write",
    "apply_migrations",
    "from_ts",
    "sqlite_path",
    "ts",
]

log = structlog.get_logger()

# Writes from many requests share one transaction; statements are grouped by rank so that
# rows are written before rows that refer to them, and keep their order within a rank.
_MAX_BATCH = 512


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says what to do."""


@dataclass(frozen=True)
class Write:
    """One statement to run in the next group commit."""

    sql: str
    params: Sequence[Any]
    rank: int = 50


@dataclass
class _Pending:
    writes: Sequence[Write]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def ts(moment: datetime) -> str:
    """A UTC timestamp as stored: fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str) -> datetime:
    """Read a stored timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///PATH` URL (relative paths are relative to the working dir)."""
    if not url.startswith("sqlite:///"):
        raise StoreError(
            f"store url {url!r}: only sqlite:///PATH is supported by this build; "
            "PostgreSQL support is planned for multi-node deployments"
        )
    path = url.removeprefix("sqlite:///")
    if not path:
        raise StoreError("store url 'sqlite:///' names no file: use sqlite:///var/ctgw.db")
    return Path(path)


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("gateway.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def apply_migrations(conn: aiosqlite.Connection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; returns their names."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    await conn.commit()
    async with conn.execute("SELECT version FROM schema_migrations") as cursor:
        done = {row[0] for row in await cursor.fetchall()}
    applied = []
    for version, name, sql in _migrations():
        if version in done:
            continue
        # executescript commits first; wrap explicitly so a failed migration leaves nothing.
        await conn.executescript(
            "BEGIN;\n" + sql + f"\nINSERT INTO schema_migrations VALUES ({version}, '{name}', "
            f"'{ts(datetime.now(UTC))}');\nCOMMIT;"
        )
        applied.append(name)
    return applied


class Database:
    """SQLite in WAL mode: a single writer connection fed by a group-commit queue, one reader."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Database:
        path = sqlite_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        try:
            await _tune(writer)
            if migrate:
                for name in await apply_migrations(writer):
                    log.info("store_migrated", migration=name, path=str(path))
            reader = await aiosqlite.connect(path, isolation_level=None)
            await _tune(reader)
            reader.row_factory = aiosqlite.Row
        except sqlite3.Error as exc:
            await writer.close()
            raise StoreError(f"cannot use store {path}: {exc}") from None
        db = cls(writer, reader)
        db._task = asyncio.create_task(db._commit_loop(), name="store-writer")
        return db

    async def close(self) -> None:
        """Commit what is queued, then close both connections."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._writer.close()
        await self._reader.close()

    async def migrate(self) -> list[str]:
        """Apply pending migrations on the writer connection; returns their names."""
        return await apply_migrations(self._writer)

    async def write(self, writes: Sequence[Write]) -> None:
        """Queue statements for the next group commit and wait until they are durable."""
        if not writes:
            return
        if self._task is None:
            raise StoreError("store is closed")
        pending = _Pending(writes)
        self._queue.put_nowait(pending)
        await pending.done

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._reader.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self._reader.execute(sql, tuple(params)) as cursor:
            row = await cursor.fetchone()
            return row

    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except sqlite3.Error as exc:
                log.error("store_write_failed", error=str(exc), requests=len(batch))
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(StoreError(f"store write failed: {exc}"))
            else:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_result(None)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        writes = sorted((w for p in batch for w in p.writes), key=lambda w: w.rank)
        groups: list[tuple[str, list[Sequence[Any]]]] = []
        for write in writes:
            if groups and groups[-1][0] == write.sql:
                groups[-1][1].append(write.params)
            else:
                groups.append((write.sql, [write.params]))
        await self._writer.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in groups:
                if len(rows) == 1:
                    await self._writer.execute(sql, rows[0])
                else:
                    await self._writer.executemany(sql, rows)
            await self._writer.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await self._writer.execute("ROLLBACK")
            raise
        self.commits += 1


async def _tune(conn: aiosqlite.Connection) -> None:
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA foreign_keys=OFF")
