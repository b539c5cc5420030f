"""Leases taken atomically across gateways on one PostgreSQL: the choice of numberpool's Pool
(a returning visitor's own number, else least recently released past the cooldown, else under
pressure the least risky cooling number) made by one statement that locks the row it takes.
Not used by the gateway (a site's holder leases in memory: gateway/cluster) and without the
Pool's later tiers (a holder who called; sharing a live number whose holder called).

Two designs, measured by bench/pg_leasing.py (docs/postgresql.md):
- "skip_locked": the choice is `SELECT ... FOR UPDATE SKIP LOCKED`: a gateway skips the number
  another is taking and takes the next one; one statement, no transaction around it.
- "advisory": a transaction holds one advisory lock per pool around the same choice (`FOR
  UPDATE` without SKIP LOCKED): takes on one pool run one at a time.
Heartbeat and release lock the number's row too, so they never cross a take of the same number.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any, Literal

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from numberpool.lease import Lease, LeaseRules

__all__ = [
    "DESIGNS",
    "Design",
    "add_pool",
    "candidates_at",
    "double_leases",
    "heartbeat",
    "pool_lock_key",
    "release",
    "take_lease",
]

Design = Literal["skip_locked", "advisory"]
DESIGNS: tuple[Design, ...] = ("skip_locked", "advisory")

# $1 pool, $2 visitor, $3 rested by (at - cooldown), $4 reusable by (NULL: no reuse), $5 at,
# $6 lease id, $7 until, $8 quiet, $9 session. The scalar subqueries run only until one finds
# a number (COALESCE), so a take locks one row; each is one index range, so an exhausted pool
# of thousands is not walked. `{lock}` is the design's locking clause.
_TAKE = """
WITH pick AS (
    SELECT COALESCE(
        (SELECT number FROM leasing.numbers WHERE pool_id = $1 AND visitor_id = $2 LIMIT 1 {lock}),
        (SELECT number FROM leasing.numbers WHERE pool_id = $1 AND until IS NULL
         ORDER BY until NULLS FIRST, position LIMIT 1 {lock}),
        (SELECT number FROM leasing.numbers WHERE pool_id = $1 AND until <= $3
         ORDER BY until, position LIMIT 1 {lock}),
        (SELECT number FROM leasing.numbers WHERE pool_id = $1 AND until <= $4
         ORDER BY quiet DESC, until, position LIMIT 1 {lock})
    ) AS number
), ended AS (
    -- A returning visitor's lease still live ends as the new one starts.
    UPDATE leasing.leases SET until = $5 FROM pick
    WHERE leases.number = pick.number AND leases.visitor_id = $2 AND leases.until > $5
), taken AS (
    UPDATE leasing.numbers SET lease_id = $6, visitor_id = $2, until = $7, quiet = $8
    FROM pick WHERE numbers.number = pick.number
    RETURNING numbers.number
)
INSERT INTO leasing.leases
    (lease_id, pool_id, number, session_id, visitor_id, started_at, last_seen, until)
SELECT $6, $1, number, $9, $2, $5, $5, $7 FROM taken
RETURNING number
"""
_TAKE_SQL: dict[str, str] = {
    "skip_locked": _TAKE.format(lock="FOR UPDATE SKIP LOCKED"),
    "advisory": _TAKE.format(lock="FOR UPDATE"),
}

# $1 number, $2 lease id, $3 new until, $4 at. The number's row is locked first: a take of the
# same number waits for it, or it for the take (which changes the row's lease_id).
_HEARTBEAT = """
WITH beat AS (
    UPDATE leasing.numbers SET until = $3, quiet = false
    WHERE number = $1 AND lease_id = $2 AND until > $4
      AND EXISTS (SELECT 1 FROM leasing.leases WHERE lease_id = $2 AND started_at <= $4)
    RETURNING number
)
UPDATE leasing.leases SET last_seen = $4, until = $3 FROM beat
WHERE leases.lease_id = $2
RETURNING leases.*
"""
_RELEASE = """
WITH ended AS (
    UPDATE leasing.numbers SET until = $3
    WHERE number = $1 AND lease_id = $2 AND until > $3
      AND EXISTS (SELECT 1 FROM leasing.leases WHERE lease_id = $2 AND started_at <= $3)
    RETURNING number
)
UPDATE leasing.leases SET until = $3 FROM ended
WHERE leases.lease_id = $2
RETURNING leases.*
"""

# The leases that can claim a call on $1 at $2, newest first: started by then, and live or
# ended within the attribution window ($3 = at - window). Of two leases of one number begun at
# the same instant the later ends later (the earlier had ended): `until DESC` orders them.
_CANDIDATES = """
SELECT * FROM leasing.leases
WHERE number = $1 AND started_at <= $2 AND until >= $3
ORDER BY started_at DESC, until DESC
"""

# Two leases of one number whose intervals [started_at, until) overlap: each lease against the
# latest end of the leases of its number that started before it.
_OVERLAPS = """
SELECT number, lease_id, started_at, earlier_until FROM (
    SELECT number, lease_id, started_at,
           max(until) OVER (PARTITION BY number ORDER BY started_at, lease_id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_until
    FROM leasing.leases WHERE started_at < until
) AS ordered
WHERE earlier_until > started_at
ORDER BY number, started_at
"""


def pool_lock_key(pool_id: str) -> int:
    """The advisory lock of a pool: a stable 32-bit hash (the same on every gateway)."""
    return zlib.crc32(pool_id.encode())


async def add_pool(conn: asyncpg.Connection, pool_id: str, numbers: list[str]) -> None:
    """Create a pool with its numbers, in the order given (which orders never-leased ones)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO leasing.pools (pool_id) VALUES ($1) ON CONFLICT DO NOTHING", pool_id
        )
        await conn.executemany(
            "INSERT INTO leasing.numbers (number, pool_id, position) VALUES ($1, $2, $3)",
            [(number, pool_id, position) for position, number in enumerate(numbers)],
        )


async def take_lease(
    conn: asyncpg.Connection,
    pool_id: str,
    lease_id: str,
    session_id: str,
    visitor_id: str,
    at: datetime,
    rules: LeaseRules,
    *,
    heartbeats: bool = True,
    design: Design = "skip_locked",
) -> Lease | None:
    """Lease a number of `pool_id` to a session, committed on return; None when none is free.

    The numbers and times are those of `numberpool.Pool.lease`, so the same visitor sees the
    same behaviour on one gateway or several.
    """
    life = min(rules.probation if heartbeats else rules.amp_lease, rules.grace)
    until = at + life
    reusable = min(at, at - rules.min_cooldown) if rules.when_exhausted == "reuse" else None
    rested_by = at - rules.cooldown
    args = (pool_id, visitor_id, rested_by, reusable, at, lease_id, until, heartbeats, session_id)
    number: str | None
    if design == "skip_locked":
        number = await conn.fetchval(_TAKE_SQL[design], *args)
    else:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", pool_lock_key(pool_id))
            number = await conn.fetchval(_TAKE_SQL[design], *args)
    if number is None:
        return None
    return Lease(lease_id, pool_id, number, session_id, visitor_id, at, at, until)


async def heartbeat(
    conn: asyncpg.Connection, number: str, lease_id: str, at: datetime, rules: LeaseRules
) -> Lease | None:
    """Extend a live lease by the grace; None when it has ended (or the number moved on)."""
    row = await conn.fetchrow(_HEARTBEAT, number, lease_id, at + rules.grace, at)
    return _lease(row)


async def release(
    conn: asyncpg.Connection, number: str, lease_id: str, at: datetime
) -> Lease | None:
    """End a live lease now; returns the ended lease, None when it had ended already."""
    row = await conn.fetchrow(_RELEASE, number, lease_id, at)
    return _lease(row)


async def candidates_at(
    conn: asyncpg.Connection, number: str, at: datetime, rules: LeaseRules
) -> list[Lease]:
    """What `numberpool.Pool.candidates_at` answers, from the database: a lease committed by any
    gateway is here for a call routed through any other at once."""
    rows = await conn.fetch(_CANDIDATES, number, at, at - rules.attribution_window)
    return [lease for lease in map(_lease, rows) if lease is not None]


async def double_leases(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """(number, lease id) of every lease that began while another lease of its number was live:
    empty when no number was ever leased twice at once."""
    rows = await conn.fetch(_OVERLAPS)
    return [(str(row["number"]), str(row["lease_id"])) for row in rows]


def _lease(row: Any) -> Lease | None:
    if row is None:
        return None
    return Lease(
        row["lease_id"],
        row["pool_id"],
        row["number"],
        row["session_id"],
        row["visitor_id"],
        row["started_at"],
        row["last_seen"],
        row["until"],
    )
