"""One generated history (bench/report_history.py) in a SQLite file and, row for row, in a
PostgreSQL database: for the tests that hold the report side of both backends to each other."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from bench.report_history import write_history

__all__ = ["EDGES", "POOL", "SITE", "TABLES", "TARGET", "copy_to_postgres", "write_sqlite_history"]

pytestmark = pytest.mark.postgres

SITE = "bench"
TABLES = ("sites", "sessions", "calls", "campaign_costs", "pools", "numbers", "leases")
# Calls right at the edges a local-time bucket can get wrong: New York's midnight before its
# clock change (05:00Z), the change itself (07:00Z, 2:00 EST -> 3:00 EDT), Paris's change
# (01:00Z on 2026-03-29) and its midnight after (22:00Z), each a microsecond either side.
EDGES = (
    "2026-03-08T04:59:59.999999Z",
    "2026-03-08T05:00:00.000000Z",
    "2026-03-08T06:59:59.999999Z",
    "2026-03-08T07:00:00.000000Z",
    "2026-03-29T00:59:59.999999Z",
    "2026-03-29T01:00:00.000000Z",
    "2026-03-29T21:59:59.999999Z",
    "2026-03-29T22:00:00.000000Z",
    "2026-03-31T23:59:59.9999995Z",
)
# The pool the sizing reads: the generator's sessions were shown its numbers.
POOL = "bench:main"
TARGET = "+14155550100"


def write_sqlite_history(path: Path) -> None:
    """A few hundred calls over 40 days across both clock changes of March 2026, the edges
    above, sessions shown the pool (some its overflow), campaign costs."""
    write_history(
        path,
        calls=400,
        sessions=1600,
        days=40,
        end=datetime(2026, 4, 5, tzinfo=UTC),
        tz="America/New_York",
        site=SITE,
    )
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for n, at in enumerate(EDGES):
            conn.execute(
                "INSERT INTO calls (call_id, site, dialed, caller, caller_name, linkedid,"
                " started_at, answered_at, ended_at, state, agent, ring_seconds, talk_seconds,"
                " first_time, route, attribution_kind, session_id, visitor_id, attribution,"
                " spam, test_call) SELECT 'edge' || ?, site, dialed, caller, caller_name,"
                " linkedid, ?, answered_at, ended_at, state, agent, ring_seconds, talk_seconds,"
                " first_time, route, attribution_kind, session_id, visitor_id, attribution,"
                " spam, test_call FROM calls WHERE call_id = ?",
                (n, at, f"h{n * 7 + 3:09d}"),
            )
        # What a session was shown: the pool's number, or every tenth its overflow number.
        conn.execute(
            "UPDATE sessions SET numbers = json_array(json_object('target', ?, 'number',"
            " '+1415555010' || (rowid % 10), 'kind',"
            " CASE WHEN rowid % 10 = 0 THEN 'overflow' ELSE 'pool' END))",
            (TARGET,),
        )
        conn.execute(
            "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
            (POOL, SITE, TARGET, "2026-01-01T00:00:00.000000Z"),
        )
        for i in range(10):
            conn.execute(
                "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)",
                (f"+1415555010{i}", POOL, "2026-01-01T00:00:00.000000Z"),
            )
        costs = [
            ("google", "brand", "2026-03-01", "2026-03-31", 310.0, "USD"),
            ("google", "generic-plumber", "2026-02-15", "2026-03-14", 99.5, "USD"),
            ("bing", "bing-brand", "2026-03-20", "2026-04-10", 42.25, "USD"),
        ]
        for cost in costs:
            conn.execute(
                "INSERT INTO campaign_costs (site, source, campaign, first_day, last_day,"
                " amount, currency) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (SITE, *cost),
            )
    finally:
        conn.close()


async def copy_to_postgres(path: Path, url: str) -> dict[str, int]:
    """Every row of TABLES from the SQLite file into the (migrated, empty) database at `url`;
    the rows copied per table."""
    source = sqlite3.connect(path)
    target = await asyncpg.connect(url)
    copied: dict[str, int] = {}
    try:
        for table in TABLES:
            cursor = source.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            marks = ", ".join(f"${i + 1}" for i in range(len(names)))
            if rows:
                await target.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
                    rows,
                )
            copied[table] = len(rows)
    finally:
        await target.close()
        source.close()
    return copied


async def test_the_history_copies_row_for_row(tmp_path: Path, pg_db: str) -> None:
    path = tmp_path / "ctgw.db"
    write_sqlite_history(path)
    copied = await copy_to_postgres(path, pg_db)
    source = sqlite3.connect(path)
    conn = await asyncpg.connect(pg_db)
    try:
        for table in TABLES:
            rows = source.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == rows[0] == copied[table]
    finally:
        await conn.close()
        source.close()
    assert copied["calls"] == 400 + len(EDGES)
