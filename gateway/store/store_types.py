"""What both stores and their callers share: the store's error, a `Write` for the group
commit, how a row reads, and what a store URL names. Nothing here opens a store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from gateway.redact import redact_url

__all__ = [
    "MAX_BATCH",
    "Pending",
    "Row",
    "StoreError",
    "Write",
    "fail_pending",
    "in_rank_order",
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


# The group commit both backends run: writes from many requests share one transaction, at most
# MAX_BATCH requests a commit; statements are grouped by rank so that rows are written before
# rows that refer to them, and keep their order within a rank.
MAX_BATCH = 256


class Pending(NamedTuple):
    """One request's statements and the future it waits on until they are durable."""

    writes: Sequence[Write]
    done: asyncio.Future[None]


def in_rank_order(writes: Iterable[Write]) -> list[Write]:
    """The writes by rank, in their order within a rank (a stable sort)."""
    return sorted(writes, key=lambda write: write.rank)


def fail_pending(batch: Sequence[Pending], message: str) -> None:
    """Answer the requests of `batch` not answered yet with a StoreError."""
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(StoreError(message))


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
