"""A read sees every write that finished before it began, whatever other reads are doing.

The store has one reader connection. A statement holds its snapshot until its cursor closes, so
a read run while another task's read is still open would share that older snapshot and miss a
finished write (an export once claimed calls, read its claims back, and found none)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.store.database import Database, Write

pytestmark = pytest.mark.timeout(120)

_INSERT = (
    "INSERT INTO outbox (topic, payload, created_at, next_attempt_at) VALUES (?, '{}', 'x', 'x')"
)
# A read that leaves its statement open for a while: each row it returns takes a long scan, and
# one row (fetchone) leaves the rest unread until its cursor closes.
_SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " SELECT i FROM n, (SELECT count(*) FROM outbox) WHERE i % ? = 0"  # reads a table: a snapshot
)


async def test_a_read_sees_a_write_that_finished_while_another_read_was_open(
    tmp_path: Path,
) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        step = 500_000
        for _ in range(4):
            slow = asyncio.create_task(db.fetchone(_SLOW, (4 * step, step)))
            await asyncio.sleep(0.02)  # the slow read has begun: its snapshot is taken
            await db.write([Write(_INSERT, ("after",))])
            overlapped = not slow.done()
            seen = await db.fetchall("SELECT count(*) AS n FROM outbox WHERE topic = 'after'")
            assert (await slow) is not None
            assert seen[0]["n"] >= 1, "a finished write was not seen by the next read"
            if overlapped:
                return
            step *= 2  # the machine read it before the write was done: a longer read
        pytest.fail("the write never finished while the slow read was open: nothing was tested")
    finally:
        await db.close()
