"""One leasing process for the PostgreSQL tests and bench/pg_leasing.py: takes, heartbeats and
releases leases on one pool, as one gateway would, and says what it did.

`python -m tests.postgres.lease_worker --url URL --pool P --design D (--leases N | --seconds S)`
Each committed lease is written to `--report` (one line, flushed) before the next take, so a
process killed at any moment has reported only leases that were committed. At the end one JSON
line on stdout: takes, takes that found no number, and each take's latency in microseconds.

Design "naive" is the mistake the others avoid, kept here only to show the check catches it:
read the least recently released number, then take it, with nothing locked in between. Design
"owner" is what a gateway that owns the pool would write: the choice made in memory by
numberpool's Pool, then one statement; atomic only while one process alone leases the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TextIO

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from gateway.store.pg.leasing import DESIGNS, heartbeat, release, take_lease
from numberpool.lease import Lease, LeaseRules
from numberpool.pool import Pool

__all__ = ["RULES", "naive_take", "owner_take", "run"]

# Released numbers are leasable at once: the most contention a pool can see.
RULES = LeaseRules(cooldown=timedelta(0))

_NAIVE_CHOOSE = """
SELECT number FROM leasing.numbers WHERE pool_id = $1 AND (until IS NULL OR until <= $2)
ORDER BY until NULLS FIRST, position LIMIT 1
"""
_NAIVE_TAKE = """
WITH taken AS (
    UPDATE leasing.numbers SET lease_id = $2, visitor_id = $3, until = $4, quiet = true
    WHERE number = $1 RETURNING number
)
INSERT INTO leasing.leases
    (lease_id, pool_id, number, session_id, visitor_id, started_at, last_seen, until)
SELECT $2, $5, number, $6, $3, $7, $7, $4 FROM taken
RETURNING number
"""


async def naive_take(
    conn: asyncpg.Connection, pool_id: str, lease_id: str, session_id: str, at: datetime
) -> Lease | None:
    """Not atomic: two processes that read at once both take the same number."""
    number = await conn.fetchval(_NAIVE_CHOOSE, pool_id, at - RULES.cooldown)
    if number is None:
        return None
    until = at + RULES.probation
    await conn.fetchval(_NAIVE_TAKE, number, lease_id, session_id, until, pool_id, session_id, at)
    return Lease(lease_id, pool_id, number, session_id, session_id, at, at, until)


async def owner_take(
    conn: asyncpg.Connection, pool: Pool, lease_id: str, session_id: str, at: datetime
) -> Lease | None:
    """The pool's owner: chooses in memory, then writes the lease (one statement)."""
    lease = pool.lease(lease_id, session_id, session_id, at)
    if lease is not None:
        await conn.fetchval(
            _NAIVE_TAKE,
            lease.number,
            lease_id,
            session_id,
            lease.until,
            pool.pool_id,
            session_id,
            at,
        )
    return lease


async def _take(
    conn: asyncpg.Connection, pool_id: str, design: str, owned: Pool | None
) -> Lease | None:
    session_id = uuid.uuid4().hex
    lease_id = f"{session_id}.1"
    at = datetime.now(UTC)
    if design == "naive":
        return await naive_take(conn, pool_id, lease_id, session_id, at)
    if owned is not None:
        return await owner_take(conn, owned, lease_id, session_id, at)
    assert design in DESIGNS
    return await take_lease(
        conn, pool_id, lease_id, session_id, session_id, at, RULES, design=design
    )


async def run(args: argparse.Namespace, report: TextIO | None) -> dict[str, object]:
    # --async-commit: no wait for the WAL flush, to see the designs apart from the disk's speed.
    settings = {"synchronous_commit": "off"} if args.async_commit else {}
    conn = await asyncpg.connect(args.url, server_settings=settings)
    owned: Pool | None = None
    if args.design == "owner":
        rows = await conn.fetch(
            "SELECT number FROM leasing.numbers WHERE pool_id = $1 ORDER BY position", args.pool
        )
        owned = Pool(args.pool, "", [row["number"] for row in rows], RULES)
    held: deque[Lease] = deque()
    latencies: list[int] = []
    takes = empty = 0
    if args.start_at:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while (deadline is None and takes < args.leases) or (
            deadline is not None and time.monotonic() < deadline
        ):
            began = time.perf_counter()
            lease = await _take(conn, args.pool, args.design, owned)
            latencies.append(round((time.perf_counter() - began) * 1e6))
            if lease is None:
                empty += 1
            else:
                takes += 1
                held.append(lease)
                if report is not None:
                    report.write(f"{lease.lease_id} {lease.number}\n")
                    report.flush()
            if held:
                beat, now = held[-1], datetime.now(UTC)
                if owned is not None:
                    owned.heartbeat(beat.number, beat.session_id, now)
                await heartbeat(conn, beat.number, beat.lease_id, now, RULES)
            while len(held) > args.hold or (lease is None and held):
                old, now = held.popleft(), datetime.now(UTC)
                if owned is not None:
                    owned.release(old.number, old.session_id, now)
                await release(conn, old.number, old.lease_id, now)
            if args.pause_ms:
                await asyncio.sleep(args.pause_ms / 1000)
    finally:
        await conn.close()
    return {"takes": takes, "empty": empty, "latency_us": latencies}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument(
        "--design", choices=("skip_locked", "advisory", "naive", "owner"), required=True
    )
    parser.add_argument("--leases", type=int, default=100, help="takes to make (no --seconds)")
    parser.add_argument("--seconds", type=float, default=0.0, help="take for this long instead")
    parser.add_argument("--hold", type=int, default=2, help="live leases kept; older released")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="wait between takes")
    parser.add_argument("--start-at", type=float, default=0.0, help="epoch time to begin at")
    parser.add_argument("--async-commit", action="store_true", help="synchronous_commit=off")
    parser.add_argument("--report", default="", help="file: one line per committed lease")
    args = parser.parse_args(argv)
    report = open(args.report, "a", encoding="utf-8") if args.report else None
    try:
        result = asyncio.run(run(args, report))
    finally:
        if report is not None:
            report.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
