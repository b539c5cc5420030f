"""Sessions, their leases and pool events in the store: the rows the session desk writes, and
what it reads back after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.database import Database, Write
from gateway.store.times import from_ts, ts
from numberpool.lease import CallNote
from numberpool.pool import Lease
from numberpool.site import NumberOffer
from numberpool.visit import VisitContext

__all__ = [
    "StoredSession",
    "calls_since",
    "lease_write",
    "leases_since",
    "pool_exhausted_write",
    "session_known",
    "session_seen_write",
    "session_write",
    "sessions_live_at",
    "shown_json",
]

_SESSION_SQL = (
    "INSERT INTO sessions (session_id, site, visitor_id, created_at, last_seen, expires_at, url,"
    " landing_page, referrer, user_agent, utm_source, utm_medium, utm_campaign, utm_term,"
    " utm_content, gclid, gbraid, wbraid, fbclid, msclkid, bd_vid, numbers)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SESSION_SEEN_SQL = "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE session_id = ?"
_LEASE_SQL = (
    "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at, last_seen,"
    " until) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(lease_id) DO UPDATE SET"
    " last_seen = excluded.last_seen, until = excluded.until"
)
_EVENT_SQL = "INSERT INTO pool_events (pool_id, kind, at, session_id) VALUES (?, ?, ?, ?)"
_CALLS_SINCE_SQL = (
    "SELECT dialed, visitor_id, caller, json_extract(attribution, '$.other_visitor_id') AS rival,"
    " json_extract(attribution, '$.confidence') AS sure, started_at FROM calls"
    " WHERE started_at >= ? AND visitor_id != '' AND caller != '' ORDER BY started_at"
)
# Every lease that may still be attributed to, the newest of each number (its cooldown), and
# each lease a call from a known phone went to since, however long ago it ended: that phone's
# repeat call may still follow it (numberpool/claims.py).
_LEASES_SINCE_SQL = (
    "SELECT * FROM leases WHERE until > ? OR rowid IN"
    " (SELECT max(rowid) FROM leases GROUP BY number)"
    " OR (session_id, number) IN (SELECT session_id, dialed FROM calls WHERE started_at >= ?"
    " AND visitor_id != '' AND caller != '') ORDER BY started_at, until, rowid"
)
# PostgreSQL has no rowid: a number's newest lease is the one that started last (ties: the one
# that ends last, then the higher lease id). Leases that started together come back the one
# ending first first: a visitor's lease cut by their next one in the same batch ends as that one
# begins, and must come before it (numberpool/slot.py: the live ones are the heads). Attribution
# is text holding JSON, as in SQLite; a confidence that is not a number reads as absent.
_CALLS_SINCE_PG = (
    "SELECT dialed, visitor_id, caller, a ->> 'other_visitor_id' AS rival,"
    " CASE WHEN jsonb_typeof(a -> 'confidence') = 'number'"
    " THEN (a ->> 'confidence')::double precision END AS sure, started_at"
    " FROM (SELECT dialed, visitor_id, caller, started_at, NULLIF(attribution, '')::jsonb AS a"
    " FROM calls WHERE started_at >= ? AND visitor_id != '' AND caller != '') AS c"
    " ORDER BY started_at"
)
_LEASES_SINCE_PG = (
    "SELECT * FROM leases WHERE until > ? OR lease_id IN"
    " (SELECT DISTINCT ON (number) lease_id FROM leases"
    " ORDER BY number, started_at DESC, until DESC, lease_id DESC)"
    " OR (session_id, number) IN (SELECT session_id, dialed FROM calls WHERE started_at >= ?"
    " AND visitor_id != '' AND caller != '') ORDER BY started_at, until, lease_id"
)
_LIVE_SESSIONS_SQL = (
    "SELECT session_id, site, visitor_id, expires_at FROM sessions WHERE expires_at > ?"
)


class StoredSession(NamedTuple):
    """A session as stored, as much of it as the desk keeps in memory."""

    session_id: str
    site: str
    visitor_id: str
    expires_at: datetime


def shown_json(offers: list[NumberOffer]) -> str:
    """The offers as stored with the session: JSON of E.164 numbers and kind names only, so
    it is assembled as text (json.dumps of the same list was a tenth of a session's decision).
    """
    return (
        "["
        + ", ".join(
            f'{{"target": "{o.target}", "number": "{o.number}", "kind": "{o.kind.value}"}}'
            for o in offers
        )
        + "]"
    )


def session_write(
    session_id: str,
    site: str,
    visitor_id: str,
    visit: VisitContext,
    offers: list[NumberOffer],
    created: str,
    expires: str,
) -> Write:
    """The insert of a new session row; `created` and `expires` are formatted already."""
    return Write(
        _SESSION_SQL,
        (
            session_id,
            site,
            visitor_id,
            created,
            created,
            expires,
            visit.url,
            visit.landing_page,
            visit.referrer,
            visit.user_agent,
            visit.utm_source,
            visit.utm_medium,
            visit.utm_campaign,
            visit.utm_term,
            visit.utm_content,
            visit.gclid,
            visit.gbraid,
            visit.wbraid,
            visit.fbclid,
            visit.msclkid,
            visit.bd_vid,
            shown_json(offers),
        ),
        rank=20,
    )


def session_seen_write(session_id: str, at: datetime, expires_at: datetime) -> Write:
    """A heartbeat's update of its session row."""
    return Write(_SESSION_SEEN_SQL, (ts(at), ts(expires_at), session_id), rank=25)


def lease_write(lease: Lease, stamps: dict[datetime, str] | None = None) -> Write:
    """The upsert of a lease row; `stamps` holds timestamps the caller has formatted already."""
    stamps = {} if stamps is None else stamps
    started = stamps.get(lease.started_at) or ts(lease.started_at)
    until = stamps.get(lease.until) or ts(lease.until)
    return Write(
        _LEASE_SQL,
        (
            lease.lease_id,
            lease.pool_id,
            lease.number,
            lease.session_id,
            lease.visitor_id,
            started,
            started if lease.last_seen == lease.started_at else ts(lease.last_seen),
            until,
        ),
        rank=30,
    )


def pool_exhausted_write(pool_id: str, at: str, session_id: str) -> Write:
    """A pool event: the session at `at` (formatted) was shown the pool's overflow number."""
    return Write(_EVENT_SQL, (pool_id, "exhausted", at, session_id), rank=40)


async def session_known(db: Database, session_id: str) -> bool:
    """Whether the store has ever had this session (a point lookup)."""
    return await db.lookup("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)) is not None


async def leases_since(db: Database, since: datetime) -> list[Lease]:
    """Leases that ended after `since`, are their number's newest, or got a call from a known
    phone since `since` (its repeat may follow it: Pool.candidates_at), oldest first."""
    sql = _LEASES_SINCE_SQL if db.dialect == "sqlite" else _LEASES_SINCE_PG
    rows = await db.fetchall(sql, (ts(since), ts(since)))
    return [
        Lease(
            lease_id=row["lease_id"],
            pool_id=row["pool_id"],
            number=row["number"],
            session_id=row["session_id"],
            visitor_id=row["visitor_id"],
            started_at=from_ts(row["started_at"]),
            last_seen=from_ts(row["last_seen"]),
            until=from_ts(row["until"]),
        )
        for row in rows
    ]


async def calls_since(db: Database, since: datetime) -> list[tuple[str, CallNote]]:
    """(dialed, how and when it was decided) of each call since `since` that went to a visit
    from a known phone, oldest first: for the pools after a restart (Pool.note_call)."""
    sql = _CALLS_SINCE_SQL if db.dialect == "sqlite" else _CALLS_SINCE_PG
    rows = await db.fetchall(sql, (ts(since),))
    return [
        (
            row["dialed"],
            CallNote(
                row["caller"],
                row["visitor_id"],
                row["rival"] or "",
                _share(row["sure"]),
                from_ts(row["started_at"]),
            ),
        )
        for row in rows
    ]


def _share(value: Any) -> float:
    """A stored confidence as 0-1; 1.0 when absent or garbled (records before issue 11)."""
    return float(value) if isinstance(value, int | float) and 0 <= value <= 1 else 1.0


async def sessions_live_at(db: Database, at: datetime) -> list[StoredSession]:
    """The sessions that have not expired at `at`."""
    rows = await db.fetchall(_LIVE_SESSIONS_SQL, (ts(at),))
    return [
        StoredSession(row["session_id"], row["site"], row["visitor_id"], from_ts(row["expires_at"]))
        for row in rows
    ]
