"""Pool health (`ctgw report pools`, the dashboard): the peak of numbers in use against the
pool's size. A number shared by two visitors is one number in use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.store.database import Database, Write
from reports.pool_health import numbers_in_use, peak_concurrent, pool_health

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
N1, N2, N3, N4 = (f"+1415555010{i}" for i in range(1, 5))


def at(minute: int) -> str:
    return f"2026-01-05T11:{minute:02d}:00.000000Z"


def test_overlapping_and_touching_leases_of_a_number_are_one_span() -> None:
    leases = [
        (N1, at(0), at(10)),
        (N1, at(5), at(20)),  # shared while the first was live
        (N1, at(20), at(25)),  # a returning visitor: begins as the last one ends
        (N1, at(40), at(45)),
        (N2, at(6), at(8)),
    ]
    assert sorted(numbers_in_use(leases)) == [
        (at(0), at(25)),
        (at(6), at(8)),
        (at(40), at(45)),
    ]
    assert peak_concurrent(numbers_in_use(leases)) == 2
    assert peak_concurrent([(start, end) for _, start, end in leases]) == 3  # leases, not numbers


async def test_a_pool_with_every_number_shared_is_full_not_over_full(tmp_path: Path) -> None:
    """Four numbers, each live and shared by two visitors at the peak: 4 in use of 4 (100 %,
    grow), not 8 of 4; a pool at half its numbers with no exhaustion is healthy."""
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        writes = [
            Write("INSERT INTO sites (key, created_at) VALUES ('demo', ?)", (at(0),)),
            Write(
                "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, 'demo', ?, ?)",
                ("demo:full", "+14155550100", at(0)),
            ),
            Write(
                "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, 'demo', ?, ?)",
                ("demo:calm", "+14155550200", at(0)),
            ),
        ]
        lease_sql = (
            "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at,"
            " last_seen, until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        for i, number in enumerate((N1, N2, N3, N4)):
            writes.append(Write("INSERT INTO numbers VALUES (?, 'demo:full', ?)", (number, at(0))))
            calm = f"+1415555020{i}"
            writes.append(Write("INSERT INTO numbers VALUES (?, 'demo:calm', ?)", (calm, at(0))))
            for holder, (start, end) in enumerate(((1, 30), (10, 20))):
                lease_id = f"l{i}.{holder}"
                row = (lease_id, "demo:full", number, lease_id, f"v{i}.{holder}")
                writes.append(Write(lease_sql, (*row, at(start), at(start), at(end))))
            if i % 2:
                row = (f"c{i}", "demo:calm", calm, f"c{i}", f"w{i}", at(1), at(1), at(9))
                writes.append(Write(lease_sql, row))
        await db.write(writes)
        health = {h.pool_id: h for h in await pool_health(db, NOW)}
    finally:
        await db.close()
    full, calm = health["demo:full"], health["demo:calm"]
    assert (full.size, full.peak_live, full.utilisation, full.exhausted) == (4, 4, 1.0, 0)
    assert full.needs_growth and full.recommended_size == 6  # 4 / 0.75, rounded up
    assert (calm.size, calm.peak_live, calm.utilisation) == (4, 2, 0.5)
    assert not calm.needs_growth and calm.recommended_size == 4
