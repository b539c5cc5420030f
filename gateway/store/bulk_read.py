"""Bulk reads for downloads: a query read and turned into text on a thread of its own.

A download of 100,000 calls takes seconds of CPU. On the event loop it would hold up every
FastAGI route behind it (PRODUCT: the call path never waits behind slow work), so the rows are
read on a read-only connection of a thread's own, made into text there, and handed to the loop
a few chunks at a time: a slow client holds the thread back instead of a whole file in memory.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Render", "paced", "read_rendered"]

T = TypeVar("T")

# Turns the rows of the query into text, piece by piece; runs on the reading thread.
Render = Callable[[Iterable[sqlite3.Row]], Iterable[str]]

# Chunks made and not yet sent: about 64 KiB each (reports.call_export), so ~256 KiB at most.
_DEPTH = 4
_BUSY_TIMEOUT_MS = 5000
# The thread shares the GIL with the event loop. Run flat out, it keeps the GIL for a whole
# switch interval (5 ms) each time the loop gives it up for a system call, and a FastAGI route
# makes dozens. Working in bursts with a pause after each, it hands the GIL back sooner:
# measured beside a CPU-bound process, routes during a 100,000-call download took up to 66 ms
# and the loop stalled up to 53 ms; paced, up to 37 ms and no stall over 30 ms (the download
# takes about a quarter longer).
_BURST_S = 0.002
_PAUSE_S = 0.001


class _Handoff:
    """Chunks from the reading thread to the event loop, at most `depth` waiting at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int) -> None:
        self._loop = loop
        # Bounded by the slots: the thread takes one before each chunk, the loop gives it back.
        self._queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        self._slots = threading.Semaphore(depth)
        self._stopped = threading.Event()

    def put(self, chunk: bytes) -> bool:
        """On the thread: hand `chunk` over once a slot is free; False when no one reads now."""
        self._slots.acquire()
        return not self._stopped.is_set() and self._send(chunk)

    def end(self, error: Exception | None) -> None:
        """On the thread: the last word, the error that stopped the read or None when done."""
        self._send(error)

    def _send(self, item: bytes | Exception | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the app stopped, no one reads any more
            return False
        return True

    async def get(self) -> bytes | None:
        """On the loop: the next chunk, None at the end; raises what stopped the thread."""
        item = await self._queue.get()
        if isinstance(item, Exception):
            raise item
        if item is not None:
            self._slots.release()
        return item

    def stop(self) -> None:
        """On the loop: the reader went away; the thread stops before its next chunk."""
        self._stopped.set()
        self._slots.release()  # wakes the thread if it waits for a slot


async def read_rendered(
    path: Path, sql: str, params: Sequence[Any], render: Render, depth: int = _DEPTH
) -> AsyncGenerator[bytes, None]:
    """Run `sql` on the store file at `path` on a thread, `render` its rows there, and yield
    the text as UTF-8 chunks. Errors of the query come with the first chunk, before any text.

    Close the iterator (`contextlib.aclosing`) when done early: the thread stops with it.
    """
    handoff = _Handoff(asyncio.get_running_loop(), depth)
    thread = threading.Thread(
        target=_read,
        args=(path, sql, params, render, handoff),
        name="store-bulk-read",
        daemon=True,  # a download in flight must not hold up the process exiting
    )
    thread.start()
    try:
        while (chunk := await handoff.get()) is not None:
            yield chunk
    finally:
        handoff.stop()


def _read(path: Path, sql: str, params: Sequence[Any], render: Render, handoff: _Handoff) -> None:
    """The reading thread: one query on a read-only connection, its text handed over."""
    try:
        # Read-only and its own: never the writer's transaction, never the aiosqlite reader's
        # queue. In WAL mode the query reads one snapshot while the gateway goes on writing.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            conn.row_factory = sqlite3.Row
            rows = conn.execute(sql, params)  # runs up to the first row: errors come first
            for text in render(paced(rows)):
                if text and not handoff.put(text.encode()):
                    break
        finally:
            conn.close()
    except Exception as exc:
        handoff.end(exc)
    else:
        handoff.end(None)


def paced(rows: Iterable[T]) -> Iterator[T]:
    """`rows`, with a pause for the event loop after each burst of work on them."""
    until = time.monotonic() + _BURST_S
    for row in rows:
        yield row
        if time.monotonic() >= until:
            time.sleep(_PAUSE_S)
            until = time.monotonic() + _BURST_S
