"""The embedded SQLite store: one writer that commits in groups, a separate reader (migrations
in gateway/store/migrate.py, stored times in gateway/store/times.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import structlog

from gateway.store.file import prepare_store_file, store_fault
from gateway.store.migrate import apply_migrations
from gateway.store.store_types import (
    MAX_BATCH,
    Pending,
    StoreError,
    Write,
    fail_pending,
    in_rank_order,
    sqlite_path,
)

__all__ = ["SqliteDatabase"]

log = structlog.get_logger()

# Rows written between two WAL checkpoints (SQLite's own default is about 1000 pages).
_CHECKPOINT_EVERY = 2000


class SqliteDatabase:
    """SQLite in WAL mode: group commits on the event loop thread, one aiosqlite reader.

    The writer is a plain sqlite3 connection: a group commit of a few dozen rows takes ~0.2 ms,
    less than the thread hops it would cost elsewhere. WAL checkpoints run on a thread.
    """

    # Which SQL this store speaks, for the few statements written once per dialect.
    dialect: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        reader: aiosqlite.Connection,
    ) -> None:
        self._path = path
        self._writer = writer
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._since_checkpoint = 0
        self._executor = executor
        self._reader = reader
        # One read at a time on the reader: a statement holds its snapshot until its cursor
        # closes, and a read run meanwhile would share it, missing a write that had ended.
        self._read_lock = asyncio.Lock()
        # The next group commit: every request queued before the loop gets back to it.
        self._batch: list[Pending] = []
        self._flush_scheduled = False
        self._closed = False
        self.commits = 0

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> SqliteDatabase:
        path = sqlite_path(url)
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

        def connect() -> sqlite3.Connection:
            prepare_store_file(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                for pragma in _PRAGMAS:
                    conn.execute(pragma)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the loop
                conn.row_factory = sqlite3.Row
                if migrate:
                    for name in apply_migrations(conn):
                        log.info("store_migrated", migration=name, path=str(path))
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            writer = await loop.run_in_executor(executor, connect)
        except (OSError, sqlite3.Error) as exc:
            executor.shutdown(wait=False)
            raise StoreError(store_fault(path, exc)) from None
        try:
            reader = await aiosqlite.connect(path, isolation_level=None)
            for pragma in _PRAGMAS:
                await reader.execute(pragma)
            reader.row_factory = aiosqlite.Row
        except sqlite3.Error as exc:
            await loop.run_in_executor(executor, writer.close)
            executor.shutdown(wait=False)
            raise StoreError(store_fault(path, exc)) from None
        return cls(path, writer, executor, reader)

    @property
    def path(self) -> Path:
        """The store's file (a thread's own read-only connection may open it)."""
        return self._path

    async def close(self) -> None:
        """Commit what is queued, then close both connections."""
        if not self._closed:
            self._closed = True
            self.flush()
        if self._checkpoint is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._checkpoint
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_writer)
        self._executor.shutdown(wait=True)
        await self._reader.close()

    def _close_writer(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        # A last full checkpoint keeps the WAL small for the next start.
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._writer.close()

    async def migrate(self) -> list[str]:
        """Apply pending migrations on the writer connection; returns their names."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, apply_migrations, self._writer)

    async def write(self, writes: Sequence[Write]) -> None:
        """Queue statements for the next group commit and wait until they are durable.

        The commit runs once the event loop has handled every request that is ready now, so
        all the sessions that arrived together share one transaction.
        """
        if not writes:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(writes, done)
        await done

    def submit(self, writes: Sequence[Write], done: asyncio.Future[None]) -> None:
        """Queue statements for the next group commit; `done` gets its outcome."""
        if self._closed:
            raise StoreError("store is closed")
        self._batch.append(Pending(writes, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._read_lock, self._reader.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """One row by an indexed key, read on the event loop thread: a few microseconds, where
        a trip to the reader thread costs two or three thread hops. Point lookups only.

        Awaitable for a store where a lookup is a round trip (PostgreSQL); here it never
        suspends, so callers still read atomically with the code around the await."""
        row: sqlite3.Row | None = self._writer.execute(sql, params).fetchone()
        return row

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self._read_lock, self._reader.execute(sql, tuple(params)) as cursor:
            row = await cursor.fetchone()
            return row

    async def drain(self) -> None:
        """Commit what is queued now (`flush` answers every request before it returns)."""
        if self._batch:
            self.flush()

    def flush(self) -> None:
        """Commit every queued request in one transaction and wake them (on the loop).

        Runs by itself at the end of the loop pass that queued the first write; a caller that
        holds a whole batch already (the lease channel) calls it to answer the batch at once.
        Every request queued is answered, whatever goes wrong.
        """
        self._flush_scheduled = False
        while self._batch:
            batch = self._batch[:MAX_BATCH]
            del self._batch[:MAX_BATCH]
            try:
                self._commit_batch(batch)
            finally:
                # Even a bug or an interrupt above must not leave a request waiting forever
                # (a request that never gets its answer holds its connection and memory).
                fail_pending(batch, "store write interrupted")
        if self._since_checkpoint >= _CHECKPOINT_EVERY and self._checkpoint is None:
            self._since_checkpoint = 0
            self._checkpoint = asyncio.get_running_loop().run_in_executor(
                self._executor, self._checkpoint_wal
            )
            self._checkpoint.add_done_callback(self._checkpoint_done)

    def _commit_batch(self, batch: list[Pending]) -> None:
        """One group commit of `batch`; when a request's rows break it, each on its own."""
        try:
            self._commit(in_rank_order(w for p in batch for w in p.writes))
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, _ROW_ERRORS):
                log.error("store_write_failed", error=str(exc), requests=len(batch))
                fail_pending(batch, f"store write failed: {exc}")
                return
            # One request's rows (text that is not UTF-8, an integer over 64 bits, a broken
            # constraint) must not fail the others it shared the transaction with.
            log.warning("store_batch_split", error=str(exc), requests=len(batch))
            self._commit_each(batch)
            return
        self._committed(batch)

    def _commit_each(self, batch: list[Pending]) -> None:
        """Each request's rows in a transaction of their own: only the bad ones fail."""
        for at, pending in enumerate(batch):
            try:
                self._commit(in_rank_order(pending.writes))
            except Exception as exc:
                log.error("store_write_failed", error=str(exc), requests=1)
                fail_pending([pending], f"store write failed: {exc}")
                if not isinstance(exc, _ROW_ERRORS):
                    # The store itself fails (full, locked, read-only): trying the rest one by
                    # one would hold the event loop for a busy timeout each.
                    fail_pending(batch[at + 1 :], f"store write failed: {exc}")
                    return
            else:
                self._committed([pending])

    def _committed(self, batch: list[Pending]) -> None:
        self.commits += 1
        self._since_checkpoint += sum(len(p.writes) for p in batch)
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)

    def _checkpoint_wal(self) -> None:
        """On the checkpoint thread: copy the WAL into the database without blocking writers."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._path, isolation_level=None)
            self._checkpointer.execute("PRAGMA busy_timeout=5000")
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("store_checkpoint_failed", error=str(future.exception()))

    def _commit(self, writes: list[Write]) -> None:
        """Every statement of the group in one transaction, on the event loop thread.

        Measured here: a writer thread loses the GIL to the event loop after every row (commit
        p99 29 ms, max 190 ms under load), while this commit of a few dozen rows takes ~0.2 ms.
        Checkpoints, the one slow part of a WAL commit, run on a thread instead.
        """
        groups: list[tuple[str, list[Sequence[Any]]]] = []
        for write in writes:
            if groups and groups[-1][0] == write.sql:
                groups[-1][1].append(write.params)
            else:
                groups.append((write.sql, [write.params]))
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in groups:
                if len(rows) == 1:
                    conn.execute(sql, rows[0])
                else:
                    conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


# What one request's rows can cause. Any other error is the store's (disk full, locked,
# corrupt): it fails the whole batch at once.
_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    ValueError,  # UnicodeEncodeError: a lone surrogate in text
    OverflowError,  # an integer over 64 bits
    TypeError,
)


_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
)
