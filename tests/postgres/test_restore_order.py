"""Leases read back for a restart come in the order the pool made them: a visitor's lease cut
by their next one at the same instant (one batch) comes before it, on both stores, whatever
the lease ids (PostgreSQL) or row order (SQLite). Out of order, the live lease would not be one
of its number's heads (numberpool/slot.py): its heartbeats refused, the number free for a
third visitor."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.store.database import Database, Write
from gateway.store.sessions import leases_since

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

_LEASE = (
    "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at,"
    " last_seen, until) VALUES (?, 'p', '+14155550101', ?, 'v-a', ?, ?, ?)"
)
AT = "2026-01-05T09:00:00.000000Z"
LATER = "2026-01-05T09:15:00.000000Z"


async def _read_back(db: Database) -> list[str]:
    # The live lease first in row order and with the lower id: the order a careless read gives.
    await db.write(
        [
            Write(_LEASE, ("a-live", "s-2", AT, AT, LATER)),
            Write(_LEASE, ("b-cut", "s-1", AT, AT, AT)),
        ]
    )
    leases = await leases_since(db, datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    return [lease.lease_id for lease in leases]


async def test_a_lease_cut_at_its_successors_start_comes_first_on_sqlite(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        assert await _read_back(db) == ["b-cut", "a-live"]
    finally:
        await db.close()


async def test_a_lease_cut_at_its_successors_start_comes_first_on_postgresql(pg_db: str) -> None:
    db = await Database.open(pg_db)
    try:
        assert await _read_back(db) == ["b-cut", "a-live"]
    finally:
        await db.close()
