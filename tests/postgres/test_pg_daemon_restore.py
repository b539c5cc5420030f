"""What a gateway reads back as it starts, on each backend alike: the leases to restore, the
calls its pools weigh, its sites with their numbers in the order added, and the fingerprint
the housekeeping polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store.database import Write
from gateway.store.sessions import calls_since, lease_write, leases_since
from gateway.store.sites import load_sites, settings_fingerprint
from numberpool.lease import CallNote, Lease

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STAMP = "2026-01-05T09:00:00.000000Z"


def lease(lease_id: str, number: str, start_min: int, end_min: int) -> Lease:
    start = T0 + timedelta(minutes=start_min)
    return Lease(
        lease_id, "demo:main", number, lease_id.split(".")[0], "v-" + lease_id, start, start,
        T0 + timedelta(minutes=end_min),
    )  # fmt: skip


async def test_leases_since_gives_the_live_and_each_numbers_newest(store: Any) -> None:
    """Leases ending after the moment, plus each number's newest (its cooldown), oldest first."""
    await store.write(
        [
            lease_write(lease("s1.1", "+14155550101", 0, 5)),  # old, superseded below
            lease_write(lease("s2.1", "+14155550101", 10, 15)),  # ended, newest of 0101
            lease_write(lease("s3.1", "+14155550102", 20, 60)),  # live
            lease_write(lease("s4.1", "+14155550103", 1, 2)),  # ended, newest of 0103
        ]
    )
    found = await leases_since(store, T0 + timedelta(minutes=30))
    assert [x.lease_id for x in found] == ["s4.1", "s2.1", "s3.1"]
    assert found[2] == lease("s3.1", "+14155550102", 20, 60)


def call(call_id: str, minute: int, attribution: str) -> Write:
    return Write(
        "INSERT INTO calls (call_id, site, dialed, caller, started_at, state, attribution_kind,"
        " visitor_id, attribution) VALUES (?, 'demo', '+14155550101', '+12025550100', ?,"
        " 'ringing', 'active', 'v1', ?)",
        (call_id, f"2026-01-05T09:{minute:02d}:00.000000Z", attribution),
    )


async def test_calls_since_reads_rival_and_confidence(store: Any) -> None:
    """The rival visitor and the confidence out of the attribution's JSON, the call's time; a
    confidence that is not a number in 0-1 counts as sure (1.0)."""
    await store.write(
        [
            call("c1", 1, '{"other_visitor_id": "v2", "confidence": 0.25}'),
            call("c2", 2, '{"confidence": "high"}'),
            call("c3", 3, "{}"),
            call("c0", 0, '{"confidence": 0.5}'),  # before the moment
        ]
    )
    found = await calls_since(store, T0 + timedelta(minutes=1))
    assert found == [
        ("+14155550101", CallNote("+12025550100", "v1", "v2", 0.25, T0 + timedelta(minutes=1))),
        ("+14155550101", CallNote("+12025550100", "v1", "", 1.0, T0 + timedelta(minutes=2))),
        ("+14155550101", CallNote("+12025550100", "v1", "", 1.0, T0 + timedelta(minutes=3))),
    ]


async def test_sites_load_and_fingerprint_follow_changes(store: Any) -> None:
    """load_sites builds the site with its pool's numbers in the order added; the fingerprint
    changes when a number is added and again when it moves pool."""
    add = "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)"
    await store.write([Write(add, ("+14155550102", "demo:main", STAMP))])
    await store.write([Write(add, ("+14155550101", "demo:main", "2026-01-05T09:01:00.000000Z"))])
    before = await settings_fingerprint(store)
    assert before == await settings_fingerprint(store)
    (pool,) = (await load_sites(store))["demo"].site.pools
    assert list(pool.numbers) == ["+14155550102", "+14155550101"]

    await store.write([Write(add, ("+14155550103", "demo:main", STAMP))])
    added = await settings_fingerprint(store)
    assert added != before
    await store.write(
        [
            Write(
                "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
                ("demo:other", "demo", "+14155550199", STAMP),
                rank=20,
            ),
            Write("DELETE FROM numbers WHERE number = ?", ("+14155550103",), rank=30),
            Write(add, ("+14155550103", "demo:other", STAMP), rank=40),
        ]
    )
    assert await settings_fingerprint(store) not in (before, added)
