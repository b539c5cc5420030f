"""A pool's stored sessions and calls of a period, as the traces the sizing replay takes
(reports/pool_sizing.py): read with the store's reader, turned into traces on a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.database import Database
from gateway.store.pg.database import PgDatabase
from gateway.store.times import ts
from numberpool.pool import Pool
from reports.pool_sizing import CallTrace, SessionTrace, SizingReport, policies_for, size_pool

__all__ = ["PoolHistory", "pool_history", "replay_sizing", "warm_up_start"]

# Sessions of the site that asked this pool for a number: shown one of it, or its overflow.
# Those that ended long before the period still decide which numbers rest at its start.
_SESSIONS_SQL = (
    "SELECT * FROM (SELECT session_id, visitor_id, created_at, last_seen,"
    " (SELECT max(json_extract(j.value, '$.kind') = 'overflow') FROM json_each(s.numbers) j"
    " WHERE json_valid(s.numbers) AND json_extract(j.value, '$.target') = ?"
    " AND json_extract(j.value, '$.kind') IN ('pool', 'overflow')) AS overflowed"
    " FROM sessions s WHERE site = ? AND created_at < ? AND last_seen >= ?)"
    " WHERE overflowed IS NOT NULL ORDER BY created_at, session_id"
)
# The calls of the period on the pool's numbers (today's, or leased in the period) or its
# overflow number; test calls are no traffic.
_CALLS_SQL = (
    "SELECT started_at, dialed, attribution_kind, session_id, visitor_id, caller,"
    " json_extract(attribution, '$.other_session_id') IS NOT NULL AS contested,"
    " json_extract(attribution, '$.other_visitor_id') AS rival FROM calls"
    " WHERE site = ? AND started_at >= ? AND started_at < ? AND test_call = 0"
    " AND direction = 'inbound'"
    " AND (dialed = ? OR dialed IN (SELECT number FROM numbers WHERE pool_id = ?)"
    " OR dialed IN (SELECT number FROM leases WHERE until >= ? AND pool_id = ?))"
    " ORDER BY started_at, call_id"
)

# PostgreSQL: the same rows. `numbers` that is not a JSON array counts as none (SQLite's
# json_valid; a JSON object, which json_each would walk, is never stored there); the derived
# table needs a name; bool_or is max() of a comparison, NULL when no offer matched.
_PG_SESSIONS_SQL = (
    "SELECT * FROM (SELECT session_id, visitor_id, created_at, last_seen,"
    " (SELECT bool_or(j.value ->> 'kind' = 'overflow') FROM json_array_elements("
    "CASE WHEN s.numbers LIKE '[%' THEN CAST(s.numbers AS json) ELSE '[]' END) j"
    " WHERE j.value ->> 'target' = ? AND j.value ->> 'kind' IN ('pool', 'overflow')) AS overflowed"
    " FROM sessions s WHERE site = ? AND created_at < ? AND last_seen >= ?) t"
    " WHERE overflowed IS NOT NULL ORDER BY created_at, session_id"
)
_PG_CALLS_SQL = (
    "SELECT started_at, dialed, attribution_kind, session_id, visitor_id, caller,"
    " CAST(attribution AS json) ->> 'other_session_id' IS NOT NULL AS contested,"
    " CAST(attribution AS json) ->> 'other_visitor_id' AS rival FROM calls"
    " WHERE site = ? AND started_at >= ? AND started_at < ? AND test_call = 0"
    " AND direction = 'inbound'"
    " AND (dialed = ? OR dialed IN (SELECT number FROM numbers WHERE pool_id = ?)"
    " OR dialed IN (SELECT number FROM leases WHERE until >= ? AND pool_id = ?))"
    " ORDER BY started_at, call_id"
)


class PoolHistory(NamedTuple):
    """What the sizing replay needs of one pool's period."""

    sessions: list[SessionTrace]
    calls: list[CallTrace]


def warm_up_start(pool: Pool, since: datetime) -> datetime:
    """How far before the period sessions still matter: their leases, rest and late callers."""
    rules = pool.rules
    return since - rules.grace - max(rules.cooldown, rules.attribution_window)


async def pool_history(
    db: Database | PgDatabase, site_key: str, pool: Pool, since: datetime, until: datetime
) -> PoolHistory:
    """The sessions that asked `pool` for a number and the calls on it of [since, until)."""
    early = ts(warm_up_start(pool, since))
    pg = db.dialect == "postgresql"
    sessions_sql, calls_sql = (
        (_PG_SESSIONS_SQL, _PG_CALLS_SQL) if pg else (_SESSIONS_SQL, _CALLS_SQL)
    )
    sessions = await db.fetchall(sessions_sql, (pool.target, site_key, ts(until), early))
    calls = await db.fetchall(
        calls_sql,
        (site_key, ts(since), ts(until), pool.overflow, pool.pool_id, early, pool.pool_id),
    )
    # Parsing thousands of timestamps is the replay's work, not the event loop's.
    return await asyncio.to_thread(_traces, sessions, calls, pool.overflow)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _session(row: Any) -> SessionTrace:
    started, seen = _moment(row["created_at"]), _moment(row["last_seen"])
    return SessionTrace(
        row["session_id"], row["visitor_id"], started, seen, seen > started, bool(row["overflowed"])
    )


def _traces(sessions: Sequence[Any], calls: Sequence[Any], overflow: str) -> PoolHistory:
    return PoolHistory(
        [_session(row) for row in sessions],
        [
            CallTrace(
                _moment(row["started_at"]),
                on_overflow=bool(overflow) and row["dialed"] == overflow,
                kind=row["attribution_kind"],
                session_id=row["session_id"] or "",
                visitor_id=row["visitor_id"] or "",
                caller=row["caller"] or "",
                contested=bool(row["contested"]),
                rival_visitor=row["rival"] or "",
            )
            for row in calls
        ],
    )


async def replay_sizing(
    db: Database | PgDatabase,
    site_key: str,
    pool: Pool,
    since: datetime,
    until: datetime,
    sizes: Sequence[int],
    pace: Callable[[], None] | None = None,
) -> SizingReport:
    """One pool's traffic of the period replayed at candidate sizes, on a thread (the replay
    is CPU work: reports/pool_sizing.py)."""
    history = await pool_history(db, site_key, pool, since, until)
    return await asyncio.to_thread(
        size_pool,
        pool.pool_id,
        history.sessions,
        history.calls,
        policies_for(pool.rules),
        since=since,
        until=until,
        current_size=len(pool.numbers),
        sizes=sizes,
        pace=pace,
    )
