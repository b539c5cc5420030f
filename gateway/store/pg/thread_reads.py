"""Big reads of the PostgreSQL store on a thread, as the SQLite store's reports and downloads
read on a read-only connection of a thread's own (gateway/store/bulk_read.py,
gateway/store/report_rows.py).

The rows come from a server-side cursor in a read-only REPEATABLE READ transaction (one
snapshot, as SQLite's WAL reader sees one) on a connection of the read's own, a chunk at
a time: the thread asks the event loop for the next chunk and waits, turns the rows into
objects or text meanwhile, and never holds a whole result in memory. asyncpg decodes each chunk
on the loop; between chunks the loop serves everything else."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

from gateway.store.bulk_read import _DEPTH, Render, _Handoff, paced
from gateway.store.pg.database import PgDatabase, Row
from gateway.store.pg.sql import numbered_placeholders

__all__ = ["ReadStopped", "ThreadConnection", "ThreadRows", "on_thread", "read_rendered_pg"]

T = TypeVar("T")

# Rows a fetch: asyncpg decodes each chunk on the event loop, so a chunk is kept to a few
# milliseconds of it (calls rows of ~25 columns); each fetch is one round trip more.
_CHUNK = 200
# How long the thread waits for the loop to answer one fetch; the statement itself has its
# own bound (command_timeout, 10 s): past this the loop is gone or stuck, and the thread gives up.
_FETCH_WAIT_S = 60.0


class ThreadConnection:
    """An asyncpg connection as the reading thread sees it: `execute(sql, params)` with
    the store's `?` placeholders, rows by name or position (as `sqlite3.Connection`)."""

    dialect = "postgresql"

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self.loop = loop
        self._stopped = threading.Event()

    def stop(self) -> None:
        """On the loop: no more fetches; the thread's next one raises ReadStopped."""
        self._stopped.set()

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """On the thread: run `work` on the event loop and wait for its result."""
        if self._stopped.is_set():
            work.close()
            raise ReadStopped
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(_FETCH_WAIT_S)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> ThreadRows:
        """On the thread: open a cursor for `sql` and read its first chunk (its errors first)."""
        text = numbered_placeholders(sql)

        async def open_cursor() -> tuple[Any, list[Row]]:
            cursor = await self._conn.cursor(text, *params)
            return cursor, await cursor.fetch(_CHUNK)

        cursor, first = self.call(open_cursor())
        return ThreadRows(self, cursor, first)


class ThreadRows:
    """A query's rows, fetched a chunk at a time as the thread iterates them."""

    def __init__(self, conn: ThreadConnection, cursor: Any, first: list[Row]) -> None:
        self._conn = conn
        self._cursor = cursor
        self._chunk = first
        self._at = 0

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        if self._at >= len(self._chunk):
            if len(self._chunk) < _CHUNK:
                raise StopIteration
            self._chunk, self._at = self._conn.call(self._cursor.fetch(_CHUNK)), 0
            if not self._chunk:
                raise StopIteration
        row = self._chunk[self._at]
        self._at += 1
        return row

    def fetchone(self) -> Row | None:
        return next(self, None)


class ReadStopped(Exception):
    """The read was given up (its request cancelled): the thread stops at its next fetch."""


async def _own_connection(db: PgDatabase) -> Any:
    # A connection of the big read's own, not one of the read pool's: a few reports or
    # downloads at once must not take every pooled connection from the call path's lookups.
    return await db.own_connection()


@contextlib.asynccontextmanager
async def _snapshot(db: PgDatabase) -> AsyncIterator[Any]:
    """A connection of its own in a read-only REPEATABLE READ transaction; closed after."""
    conn = await _own_connection(db)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield conn
    finally:
        await conn.close()


async def on_thread(db: PgDatabase, work: Callable[[ThreadConnection], T]) -> T:
    """Run `work` on a thread with a connection of its own, in one read-only snapshot."""
    loop = asyncio.get_running_loop()
    async with _snapshot(db) as conn:
        reader = ThreadConnection(conn, loop)
        task = asyncio.ensure_future(asyncio.to_thread(work, reader))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The connection is closed only once the thread no longer uses it.
            reader.stop()
            await asyncio.wait([task])
            raise


async def read_rendered_pg(
    db: PgDatabase, sql: str, params: Sequence[Any], render: Render, depth: int = _DEPTH
) -> AsyncGenerator[bytes, None]:
    """`bulk_read.read_rendered` on PostgreSQL: run `sql` through a cursor, `render` its rows
    on a thread, yield the text as UTF-8 chunks (errors of the query before any text).

    Close the iterator (`contextlib.aclosing`) when done early: the thread stops with it."""
    loop = asyncio.get_running_loop()
    handoff = _Handoff(loop, depth)
    async with _snapshot(db) as conn:
        reader = ThreadConnection(conn, loop)
        finished: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(
            target=_read,
            args=(reader, sql, params, render, handoff, finished),
            name="store-bulk-read-pg",
            daemon=True,  # a download in flight must not hold up the process exiting
        )
        thread.start()
        try:
            while (chunk := await handoff.get()) is not None:
                yield chunk
        finally:
            handoff.stop()
            reader.stop()
            # The connection is closed only once the thread no longer uses it.
            await asyncio.wait([finished])


def _read(
    reader: ThreadConnection,
    sql: str,
    params: Sequence[Any],
    render: Render,
    handoff: _Handoff,
    finished: asyncio.Future[None],
) -> None:
    """The reading thread: one cursor, its rows rendered and handed over."""
    try:
        rows = reader.execute(sql, params)
        for text in render(paced(rows)):  # type: ignore[arg-type]  # asyncpg Records
            if text and not handoff.put(text.encode()):
                break
    except Exception as exc:
        handoff.end(exc)
    else:
        handoff.end(None)
    finally:
        _settle(reader, finished)


def _settle(reader: ThreadConnection, finished: asyncio.Future[None]) -> None:
    def done() -> None:
        if not finished.done():
            finished.set_result(None)

    try:
        reader.loop.call_soon_threadsafe(done)
    except RuntimeError:  # the loop is closed: nobody waits
        pass
