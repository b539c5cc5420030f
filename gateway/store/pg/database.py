"""The PostgreSQL store: `Database`'s methods over asyncpg (docs/postgresql.md). One writer
connection commits in groups; reads go through a small pool. `Database.open` opens it for a
postgresql:// URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import structlog

from gateway.redact import redact_url
from gateway.store.pg.migrate import apply_migrations
from gateway.store.pg.sql import numbered_placeholders
from gateway.store.store_types import (
    MAX_BATCH,
    Pending,
    Row,
    StoreError,
    Write,
    fail_pending,
    in_rank_order,
)

__all__ = ["PASSWORD_ENV", "PgDatabase", "Row", "pg_fault"]

log = structlog.get_logger()

# The store's password, kept out of the config file and the URL (asyncpg's own PGPASSWORD and
# ~/.pgpass still apply when this is unset).
PASSWORD_ENV = "CTGW_STORE_PASSWORD"  # noqa: S105 - the name of a variable, not a password
_CONNECT_TIMEOUT = 10.0
# A statement PostgreSQL has not answered by then fails (its batch, or its read), as SQLite's
# busy timeout bounds a locked write: a stalled server must not hold every request forever.
_STATEMENT_TIMEOUT = 10.0
_READERS = 4
# Statement texts kept translated. The store's are a few hundred; texts built with a `?` per
# item (`IN (?, ?, ...)`) add one per count, so the cache starts over rather than grow forever.
_STATEMENTS = 2048


class PgDatabase:
    """PostgreSQL behind the SQLite store's methods: group commit on one connection (a batch
    that breaks is retried a request at a time), reads on a pool, async point lookups."""

    # Which SQL this store speaks, for the few statements written once per dialect.
    dialect: ClassVar[str] = "postgresql"

    def __init__(
        self,
        where: str,
        writer: Any,
        readers: Any,
        connect: Callable[[], Awaitable[Any]],
    ) -> None:
        self._where = where
        self._writer = writer
        # A new writer connection when PostgreSQL dropped the last (a restart, a failover);
        # the password stays inside this closure, out of every repr.
        self._connect = connect
        # One operation at a time on the writer (asyncpg refuses a second): commits, migrations.
        self._writing = asyncio.Lock()
        self._readers = readers
        self._batch: list[Pending] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        # Each statement text is translated once (a pure function of the text).
        self._statements: dict[str, str] = {}
        self.commits = 0

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> PgDatabase:
        """Connect (the password from $CTGW_STORE_PASSWORD), migrate, open the read pool."""
        if not url.startswith(("postgresql://", "postgres://")):
            raise StoreError(f"store url {redact_url(url)!r} is not a postgresql:// URL")
        where = redact_url(url)
        password = os.environ.get(PASSWORD_ENV) or None

        async def connect() -> Any:
            try:
                return await asyncpg.connect(
                    url,
                    password=password,
                    timeout=_CONNECT_TIMEOUT,
                    command_timeout=_STATEMENT_TIMEOUT,
                )
            except Exception as exc:
                raise StoreError(_fault(url, exc, password)) from None

        writer = await connect()
        try:
            if migrate:
                for name in await apply_migrations(writer):
                    log.info("store_migrated", migration=name, store=where)
            readers = await asyncpg.create_pool(
                url,
                password=password,
                min_size=1,
                max_size=_READERS,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=_STATEMENT_TIMEOUT,
                reset=_keep_session,
            )
        except Exception as exc:
            await writer.close()
            raise StoreError(_fault(url, exc, password)) from None
        return cls(where, writer, readers, connect)

    @property
    def where(self) -> str:
        """The store's URL for logs and messages, its password hidden."""
        return self._where

    @property
    def path(self) -> Path:
        """None: the reads on a thread of their own (bulk_read, report_rows) are SQLite's."""
        raise StoreError(f"store {self._where}: this read is not available on PostgreSQL yet")

    async def own_connection(self) -> Any:
        """A new connection for the caller alone (it closes it): long reads kept off the read
        pool, which the call path's lookups share. Errors as `open`'s, the password hidden."""
        return await self._connect()

    async def migrate(self) -> list[str]:
        """Apply pending migrations (under an advisory lock); returns their names."""
        async with self._writing:
            return await apply_migrations(self._writer)

    async def close(self) -> None:
        """Commit what is queued, then close the writer and the read pool."""
        if self._closed and self._drainer is None and self._writer.is_closed():
            return
        self._closed = True
        await self.drain()
        await self._readers.close()
        await self._writer.close()

    async def write(self, writes: Sequence[Write]) -> None:
        """Queue statements for the next group commit and wait until they are committed."""
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
        if self._drainer is None:
            # The task's first step runs after every callback ready now: the requests of this
            # loop pass share its transaction, and those queued while it commits the next one.
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def flush(self) -> None:
        """Nothing to do: a commit starts by itself once the loop pass ends (`drain` waits)."""

    async def drain(self) -> None:
        """Wait until every write queued so far is answered."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        rows: list[Row] = await self._readers.fetch(self._sql(sql), *params)
        return rows

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        row: Row | None = await self._readers.fetchrow(self._sql(sql), *params)
        return row

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """One row by an indexed key: a round trip (~70 µs) where SQLite's is in-process."""
        return await self.fetchone(sql, params)

    def _sql(self, sql: str) -> str:
        text = self._statements.get(sql)
        if text is None:
            if len(self._statements) >= _STATEMENTS:
                self._statements.clear()
            text = self._statements[sql] = numbered_placeholders(sql)
        return text

    async def _drain(self) -> None:
        try:
            while self._batch:
                batch = self._batch[:MAX_BATCH]
                del self._batch[:MAX_BATCH]
                try:
                    await self._commit_batch(batch)
                finally:
                    # Even a bug or a cancel must not leave a request waiting forever.
                    fail_pending(batch, "store write interrupted")
        finally:
            self._drainer = None

    async def _commit_batch(self, batch: list[Pending]) -> None:
        """One group commit of `batch`; when a request's rows break it, each on its own."""
        try:
            await self._commit(in_rank_order(w for p in batch for w in p.writes))
        except Exception as exc:
            if len(batch) == 1 or not self._row_error(exc):
                log.error("store_write_failed", error=_said(exc), requests=len(batch))
                fail_pending(batch, f"store write failed: {_said(exc)}")
                return
            # One request's rows (a NUL in text, an integer over 64 bits, a broken constraint)
            # must not fail the others it shared the transaction with.
            log.warning("store_batch_split", error=_said(exc), requests=len(batch))
            await self._commit_each(batch)
            return
        self._committed(batch)

    async def _commit_each(self, batch: list[Pending]) -> None:
        """Each request's rows in a transaction of their own: only the bad ones fail."""
        for at, pending in enumerate(batch):
            try:
                await self._commit(in_rank_order(pending.writes))
            except Exception as exc:
                log.error("store_write_failed", error=_said(exc), requests=1)
                fail_pending([pending], f"store write failed: {_said(exc)}")
                if not self._row_error(exc):
                    # The store itself fails (gone, read-only, full): the rest would too.
                    fail_pending(batch[at + 1 :], f"store write failed: {_said(exc)}")
                    return
            else:
                self._committed([pending])

    def _row_error(self, exc: BaseException) -> bool:
        # A closed connection says so with an InterfaceError too: that is no row's fault.
        return _row_error(exc) and not self._writer.is_closed()

    def _committed(self, batch: list[Pending]) -> None:
        self.commits += 1
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)

    async def _commit(self, writes: list[Write]) -> None:
        """Every statement in one transaction; a run of one statement text is one executemany
        (asyncpg pipelines its rows: ~11 µs a row)."""
        groups: list[tuple[str, list[Sequence[Any]]]] = []
        for write in writes:
            if groups and groups[-1][0] == write.sql:
                groups[-1][1].append(write.params)
            else:
                groups.append((write.sql, [write.params]))
        async with self._writing:
            if self._writer.is_closed():
                # The batch before failed with the connection; this one tries a new one.
                self._writer = await self._connect()
            await self._run(groups)

    async def _run(self, groups: list[tuple[str, list[Sequence[Any]]]]) -> None:
        async with self._writer.transaction():
            for sql, rows in groups:
                if len(rows) == 1:
                    await self._writer.execute(self._sql(sql), *rows[0])
                else:
                    await self._writer.executemany(self._sql(sql), rows)


async def _keep_session(conn: Any) -> None:
    """The read pool's reset: none. asyncpg's default (`RESET ALL`, `UNLISTEN *`, ...) costs
    every read a second round trip, and the store's reads change no session state (an open
    transaction is still rolled back by asyncpg itself)."""


def _row_error(exc: BaseException) -> bool:
    """What one request's rows can cause; anything else is the store's and fails the batch."""
    return isinstance(
        exc,
        (
            asyncpg.IntegrityConstraintViolationError,
            asyncpg.DataError,  # also asyncpg's own check of an argument's Python type
            asyncpg.InterfaceError,  # the wrong number of arguments, as sqlite's ProgrammingError
            ValueError,
            OverflowError,
            TypeError,
        ),
    )


def pg_fault(exc: BaseException) -> str | None:
    """One line for a user when `exc` is PostgreSQL's (or its driver's) refusal, without row
    values; None for any other error."""
    if not isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return None
    return f"the PostgreSQL store refused a request: {_said(exc)}"


def _said(exc: BaseException) -> str:
    """An error as logged and answered: asyncpg quotes a bad argument's value, which may be a
    caller's number or a visitor's text; only its position and the reason are kept. Of a
    PostgreSQL error, the message alone with its SQLSTATE: its DETAIL names the row's values
    ("Failing row contains (...)", "Key (number)=(...)"), and a value quoted after the message
    ('invalid input syntax for type bigint: "..."') is hidden."""
    text = str(exc)
    if text.startswith(_BAD_ARGUMENT) and " (" in text:
        position = text[len(_BAD_ARGUMENT) :].split(":", 1)[0]
        return f"{_BAD_ARGUMENT}{position} ({text.rsplit(' (', 1)[1]}"
    if isinstance(exc, asyncpg.PostgresError):
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        head, quoted, _ = message.partition(': "')
        return f"{head}: (value hidden)" if quoted else f"{message} [{exc.sqlstate}]"
    return text


_BAD_ARGUMENT = "invalid input for query argument "


def _fault(url: str, exc: BaseException, password: str | None) -> str:
    """One line for a user: the store cannot be opened, and why, without the password (an
    error may quote the URL it was given, or the password alone)."""
    reason = f"{type(exc).__name__}: {exc}"
    try:
        in_url = urlsplit(url).password
    except ValueError:  # a URL that does not parse: its whole user part is hidden below
        in_url = None
    for secret in (password, in_url, unquote(in_url or "")):
        if secret:
            reason = reason.replace(secret, "***")
    return f"store {redact_url(url)}: cannot open PostgreSQL ({redact_url(reason)})"
