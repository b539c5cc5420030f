"""A caller's repeat call past the window survives a restart: the pools restored from a SQLite
store get each call's note with its time and the lease the call went to, however long ago that
lease ended (SiteBook.restore, gateway/store/sessions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.leasing.site_book import SiteBook
from gateway.store.database import Database, Write
from gateway.store.sessions import calls_since, lease_write, leases_since
from gateway.store.times import ts
from numberpool.claims import KNOWN
from numberpool.lease import CallNote, Lease
from numberpool.site import AttributionKind
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NUMBER = "+14155550101"
ADA, EVE = "+12025550101", "+12025550103"


def minutes(count: float) -> datetime:
    return T0 + timedelta(minutes=count)


def lease(tag: str, start: float, seen: float, until: float) -> Lease:
    return Lease(
        f"l-{tag}", "demo:main", NUMBER, f"s-{tag}", f"v-{tag}", minutes(start), minutes(seen),
        minutes(until),
    )  # fmt: skip


def setup_writes() -> list[Write]:
    """The site demo with one pool of one number (default timings: window 60 min, grace 15)."""
    stamp = ts(T0)
    return [
        Write("INSERT INTO sites (key, name, created_at) VALUES ('demo', 'Demo', ?)", (stamp,)),
        Write(
            "INSERT INTO pools (pool_id, site, target, created_at)"
            " VALUES ('demo:main', 'demo', '+14155550100', ?)",
            (stamp,),
            rank=20,
        ),
        Write(
            "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, 'demo:main', ?)",
            (NUMBER, stamp),
            rank=30,
        ),
    ]


def call_write(call_id: str, at: datetime) -> Write:
    """Ada's call on the number that went to v's session, n as its rival."""
    return Write(
        "INSERT INTO calls (call_id, site, dialed, caller, started_at, state, attribution_kind,"
        " session_id, visitor_id, attribution) VALUES (?, 'demo', ?, ?, ?, 'ringing',"
        " 'probable', 's-v', 'v-v', ?)",
        (call_id, NUMBER, ADA, ts(at), '{"other_visitor_id": "v-n", "confidence": 0.9}'),
        rank=40,
    )


async def test_a_restart_keeps_the_call_times_and_the_lease_a_repeat_follows(
    tmp_path: Path,
) -> None:
    """v's lease ended 110 min before the restart (older than any lease restored for its own
    window), but Ada's call went to it 55 min ago: after the restart the note has its time, v's
    lease is back, and Ada's repeat is v's while Eve's is nobody's."""
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        await db.write(setup_writes())
        old, newest = lease("v", 0, 5, 10), lease("n", 40, 40, 42)
        await db.write([lease_write(old), lease_write(newest), call_write("c1", minutes(65))])
        now = minutes(120)
        since = now - timedelta(minutes=75)  # the window and the grace, as SiteBook reads
        assert [found.lease_id for found in await leases_since(db, since)] == ["l-v", "l-n"]
        note = CallNote(ADA, "v-v", "v-n", 0.9, minutes(65))
        assert await calls_since(db, since) == [(NUMBER, note)]

        book = SiteBook(db, FakeClock(now))
        await book.reload()
        restored = await book.restore()
        assert restored.read == 2
        entry = book.site_for_number(NUMBER)
        assert entry is not None
        (pool,) = entry.site.pools
        assert pool.calls_on(NUMBER) == [note]
        ada = entry.site.attribute(NUMBER, now, caller=ADA)
        assert (ada.kind, ada.visitor_id, ada.session_id, ada.confidence) == (
            AttributionKind.PROBABLE,
            "v-v",
            "s-v",
            KNOWN,
        )
        eve = entry.site.attribute(NUMBER, now, caller=EVE)
        assert eve.kind is AttributionKind.UNATTRIBUTED
    finally:
        await db.close()


async def test_a_lease_whose_calls_are_older_than_the_period_is_not_read_back(
    tmp_path: Path,
) -> None:
    """Only the calls of the period bring their lease back: an old lease whose call is older
    still stays in the store."""
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        await db.write(setup_writes())
        await db.write(
            [
                lease_write(lease("v", 0, 5, 10)),
                lease_write(lease("n", 40, 40, 42)),
                call_write("c1", minutes(30)),
            ]
        )
        found = await leases_since(db, minutes(45))
        assert [lease.lease_id for lease in found] == ["l-n"]
    finally:
        await db.close()
