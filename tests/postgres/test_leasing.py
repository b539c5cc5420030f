"""Leases in PostgreSQL, one process: the same choices as numberpool's Pool, heartbeat, release,
the migrations, and a double-lease check that does catch a double lease."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.pg.leasing import (
    DESIGNS,
    Design,
    add_pool,
    candidates_at,
    double_leases,
    heartbeat,
    release,
    take_lease,
)
from gateway.store.pg.migrate import apply_migrations
from numberpool.lease import Lease, LeaseRules
from numberpool.pool import Pool

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NUMBERS = [f"+1415555010{i}" for i in range(1, 6)]
RULES = LeaseRules()


@pytest.fixture
async def conn(pg_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_db)
    try:
        await add_pool(connection, "p1", NUMBERS)
        yield connection
    finally:
        await connection.close()


async def _take(
    conn: asyncpg.Connection,
    n: int,
    at: datetime,
    *,
    visitor: str = "",
    rules: LeaseRules = RULES,
    design: Design = "skip_locked",
    heartbeats: bool = True,
) -> Lease | None:
    return await take_lease(
        conn,
        "p1",
        f"s{n}.1",
        f"s{n}",
        visitor or f"v{n}",
        at,
        rules,
        heartbeats=heartbeats,
        design=design,
    )


async def test_migrations_apply_once_even_from_two_gateways_at_once(pg_db: str) -> None:
    first, second = await asyncpg.connect(pg_db), await asyncpg.connect(pg_db)
    try:
        assert await apply_migrations(first) == []  # pg_db migrated already
        await first.execute(
            "DROP SCHEMA leasing CASCADE; DROP SCHEMA cluster CASCADE;"
            " DROP SCHEMA public CASCADE; CREATE SCHEMA public"
        )
        results = await asyncio.gather(apply_migrations(first), apply_migrations(second))
        assert sorted(results)[0] == []
        assert "1001_leasing.sql" in sorted(results)[1]
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("design", DESIGNS)
async def test_numbers_go_least_recently_released_first_and_rest_the_cooldown(
    conn: asyncpg.Connection, design: Design
) -> None:
    rules = LeaseRules(when_exhausted="overflow")
    taken = [await _take(conn, n, T0, rules=rules, design=design) for n in range(5)]
    assert [lease.number for lease in taken if lease] == NUMBERS  # never leased: in order added
    assert await _take(conn, 9, T0, rules=rules, design=design) is None  # all live
    for lease in reversed([lease for lease in taken if lease]):
        assert await release(conn, lease.number, lease.lease_id, T0 + timedelta(seconds=10))
    later = T0 + timedelta(seconds=10) + rules.cooldown - timedelta(microseconds=1)
    assert await _take(conn, 10, later, rules=rules, design=design) is None  # all cooling
    rested = await _take(conn, 11, later + timedelta(microseconds=1), rules=rules, design=design)
    assert rested is not None and rested.number == NUMBERS[0]


async def test_under_pressure_the_quiet_cooling_number_is_reused_first(
    conn: asyncpg.Connection,
) -> None:
    rules = LeaseRules(min_cooldown=timedelta(seconds=30))
    leases = [await _take(conn, n, T0) for n in range(5)]
    assert all(leases)
    beaten = [lease for lease in leases if lease and lease.number != NUMBERS[3]]
    for held in beaten:  # every holder heartbeats but the fourth (a bounce)
        assert await heartbeat(conn, held.number, held.lease_id, T0, rules)
    for taken in leases:
        assert taken and await release(conn, taken.number, taken.lease_id, T0)
    assert await _take(conn, 7, T0 + timedelta(seconds=29), rules=rules) is None
    reused = await _take(conn, 8, T0 + timedelta(seconds=30), rules=rules)
    assert reused is not None and reused.number == NUMBERS[3]


async def test_a_returning_visitor_gets_its_number_back_and_its_old_lease_ends(
    conn: asyncpg.Connection,
) -> None:
    first = await _take(conn, 1, T0, visitor="ann")
    await _take(conn, 2, T0, visitor="bob")
    again = await _take(conn, 3, T0 + timedelta(seconds=5), visitor="ann")
    assert first and again and again.number == first.number
    old = await conn.fetchval(
        "SELECT until FROM leasing.leases WHERE lease_id = $1", first.lease_id
    )
    assert old == T0 + timedelta(seconds=5)
    assert await double_leases(conn) == []


async def test_heartbeat_extends_by_the_grace_and_release_ends(conn: asyncpg.Connection) -> None:
    lease = await _take(conn, 1, T0)
    assert lease is not None and lease.until == T0 + RULES.probation
    beat = await heartbeat(conn, lease.number, lease.lease_id, T0 + timedelta(seconds=60), RULES)
    assert beat is not None and beat.until == T0 + timedelta(seconds=60) + RULES.grace
    assert beat.last_seen == T0 + timedelta(seconds=60)
    ended = await release(conn, lease.number, lease.lease_id, T0 + timedelta(seconds=90))
    assert ended is not None and ended.until == T0 + timedelta(seconds=90)
    assert (
        await heartbeat(conn, lease.number, lease.lease_id, T0 + timedelta(seconds=91), RULES)
        is None
    )
    assert await release(conn, lease.number, lease.lease_id, T0 + timedelta(seconds=91)) is None


async def test_a_beat_or_release_stamped_before_the_lease_began_changes_nothing(
    conn: asyncpg.Connection,
) -> None:
    lease = await _take(conn, 1, T0)
    assert lease is not None
    early = T0 - timedelta(seconds=1)
    assert await heartbeat(conn, lease.number, lease.lease_id, early, RULES) is None
    assert await release(conn, lease.number, lease.lease_id, early) is None
    until = await conn.fetchval("SELECT until FROM leasing.numbers WHERE number = $1", lease.number)
    assert until == lease.until


async def test_a_lease_that_ran_out_neither_beats_nor_outlives_the_next_holder(
    conn: asyncpg.Connection,
) -> None:
    rules = LeaseRules(cooldown=timedelta(0), when_exhausted="overflow")
    first = await _take(conn, 1, T0, rules=rules)
    assert first is not None
    others = [await _take(conn, n, T0, rules=rules) for n in range(2, 6)]
    assert all(others)
    late = T0 + rules.probation
    assert await heartbeat(conn, first.number, first.lease_id, late, rules) is None
    second = await _take(conn, 6, late, rules=rules)
    assert second is not None and second.number == first.number
    assert await heartbeat(conn, first.number, first.lease_id, late, rules) is None
    assert await double_leases(conn) == []


async def test_the_double_lease_check_finds_overlapping_leases(conn: asyncpg.Connection) -> None:
    """The check the process tests rely on: it must see a double lease when there is one."""
    rows = [
        ("a.1", NUMBERS[0], T0, T0 + timedelta(minutes=2)),
        ("b.1", NUMBERS[0], T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)),  # touches
        ("c.1", NUMBERS[1], T0, T0 + timedelta(minutes=10)),
        ("d.1", NUMBERS[1], T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)),  # inside c
        ("e.1", NUMBERS[2], T0, T0),  # released as it began: holds nothing
        ("f.1", NUMBERS[2], T0, T0 + timedelta(minutes=1)),
    ]
    await conn.executemany(
        "INSERT INTO leasing.leases VALUES ($1, 'p1', $2, $1, $1, $3, $3, $4)",
        rows,
    )
    assert await double_leases(conn) == [(NUMBERS[1], "d.1")]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_same_choices_as_the_in_memory_pool(conn: asyncpg.Connection, seed: int) -> None:
    """A random day of takes, heartbeats and releases: PostgreSQL picks what Pool picks."""
    rng = random.Random(seed)
    rules = LeaseRules(min_cooldown=timedelta(seconds=60))
    pool = Pool("p1", "+14155550100", NUMBERS, rules)
    live: list[Lease] = []
    at = T0
    for step in range(160):
        at += timedelta(seconds=rng.choice([0, 1, 20, 45, 90, 200]))
        roll = rng.random()
        if roll < 0.5 or not live:
            visitor, beats = f"v{rng.randrange(8)}", rng.random() < 0.8
            lease_id = f"s{step}.1"
            mine = pool.lease(lease_id, f"s{step}", visitor, at, heartbeats=beats)
            theirs = await take_lease(
                conn, "p1", lease_id, f"s{step}", visitor, at, rules, heartbeats=beats
            )
            assert (theirs and theirs.number) == (mine and mine.number), (step, at)
            if mine:
                live.append(mine)
        elif roll < 0.8:
            lease = rng.choice(live)
            mine = pool.heartbeat(lease.number, lease.session_id, at)
            theirs = await heartbeat(conn, lease.number, lease.lease_id, at, rules)
            assert (theirs and theirs.until) == (mine and mine.until), (step, at)
        else:
            lease = live.pop(rng.randrange(len(live)))
            mine = pool.release(lease.number, lease.session_id, at)
            theirs = await release(conn, lease.number, lease.lease_id, at)
            assert (theirs and theirs.until) == (mine and mine.until), (step, at)
        number = rng.choice(NUMBERS)  # a call on it now: the same leases may claim it
        claims = await candidates_at(conn, number, at, rules)
        assert claims == pool.candidates_at(number, at), (step, at)
    assert await double_leases(conn) == []


async def test_a_lease_taken_by_one_gateway_claims_a_call_on_another_at_once(
    conn: asyncpg.Connection, pg_db: str
) -> None:
    other = await asyncpg.connect(pg_db)  # another gateway's connection
    try:
        lease = await _take(conn, 1, T0)
        assert lease is not None
        claims = await candidates_at(other, lease.number, T0 + timedelta(seconds=1), RULES)
        assert claims == [lease]
    finally:
        await other.close()
