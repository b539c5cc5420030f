"""Call records in the store: the route's new record, AMI's updates, the resync's closing, and
the records as the API shows them (query and JSON shape).

Every statement on `calls` is here; a record goes in and comes out as a `CallRecord`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.database import Database, Write
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.visit import VisitContext

__all__ = [
    "CallFilter",
    "LinkedCall",
    "attributed_visit",
    "call_closed_write",
    "call_fallback_write",
    "call_for_linkedid",
    "call_json",
    "call_progress_write",
    "call_write",
    "caller_visitors",
    "calls_select",
    "find_call",
    "linked_call",
    "list_calls",
    "open_calls",
    "outbound_call_writes",
    "outbound_dropped_write",
    "record_from_row",
]

# A whole record; flags are stored as 0/1, the attribution's ids as '' when there are none.
_CALL_SQL = (
    "INSERT INTO calls (call_id, site, dialed, caller, caller_name, linkedid, started_at,"
    " answered_at, ended_at, state, agent, ring_seconds, talk_seconds, hangup_cause, recording,"
    " first_time, contact_id, route, attribution_kind, session_id, visitor_id, attribution,"
    " test_call) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Only open records change: a finished call is never rewritten by a late or duplicate event.
# The route is what Asterisk really dialed, as AMI saw it: it corrects the route the gateway
# decided when the dialplan had given up waiting and dialed its fallback.
_PROGRESS_SQL = (
    "UPDATE calls SET state = ?, agent = ?, answered_at = ?, ended_at = ?, ring_seconds = ?,"
    " talk_seconds = ?, recording = ?, hangup_cause = ?, route = coalesce(?, route)"
    " WHERE linkedid = ? AND ended_at IS NULL"
)
# A route decided while its caller waited, whose caller was cut off (its deadline) before the
# answer reached it: Asterisk dialed its fallback. Only while the record still holds that route:
# AMI's dial string, once written, is what Asterisk really dialed, and stays.
_FALLBACK_SQL = "UPDATE calls SET route = ? WHERE call_id = ? AND route = ?"
_CLOSED_SQL = (
    "UPDATE calls SET state = ?, ended_at = ?, hangup_cause = 'closed on resync'"
    " WHERE call_id = ? AND ended_at IS NULL"
)
# The visitors a caller's latest attributed calls went to, as one JSON array (one row: the
# route reads it with a point lookup). The index calls_caller walks the caller's calls newest
# first and stops at the limit, however often the number called.
_CALLER_VISITORS_SQL = (
    "SELECT json_group_array(DISTINCT visitor_id) FROM (SELECT visitor_id FROM calls"
    " WHERE caller = ? AND visitor_id != '' ORDER BY started_at DESC LIMIT ?)"
)
# The same on PostgreSQL (json_agg is NULL for no rows, where SQLite's array is '[]').
_PG_CALLER_VISITORS_SQL = (
    "SELECT json_agg(DISTINCT visitor_id)::text FROM (SELECT visitor_id FROM calls"
    " WHERE caller = ? AND visitor_id != '' ORDER BY started_at DESC LIMIT ?) AS latest"
)
# The sessions columns that make up a VisitContext (the stored visit of a call).
_VISIT_FIELDS = ", ".join(f for f in VisitContext._fields if f != "params")


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    site: str | None = None
    state: str | None = None
    limit: int = 100
    offset: int = 0


def call_json(call: CallRecord) -> dict[str, Any]:
    """One call record in the API's shape (PRODUCT.md contract)."""
    return {
        "call_id": call.call_id,
        "site": call.site,
        "dialed": call.dialed,
        "caller": call.caller,
        "caller_name": call.caller_name,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "state": call.state,
        "agent": call.agent,
        # What the call was dialed to: the gateway's route, or "fallback" (then, with AMI, the
        # fallback's dial string) when the dialplan had stopped waiting for the gateway.
        "route": call.route,
        "ring_seconds": call.ring_seconds,
        "talk_seconds": call.talk_seconds,
        "hangup_cause": call.hangup_cause,
        "recording": call.recording,
        "first_time": call.first_time,
        "test_call": call.test_call,
        "direction": call.direction,
        "attribution": call.attribution.as_dict(),
    }


def _where(flt: CallFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.since is not None:
        clauses.append("started_at >= ?")
        params.append(ts(flt.since))
    if flt.until is not None:
        clauses.append("started_at < ?")
        params.append(ts(flt.until))
    if flt.site:
        clauses.append("site = ?")
        params.append(flt.site)
    if flt.state:
        clauses.append("state = ?")
        params.append(flt.state)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def list_calls(db: Database, flt: CallFilter) -> list[dict[str, Any]]:
    """Calls matching the filter, newest first, in the API's shape."""
    sql, params = calls_select(flt)
    return [call_json(record_from_row(row)) for row in await db.fetchall(sql, params)]


async def find_call(db: Database, call_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM calls WHERE call_id = ?", (call_id,))
    return call_json(record_from_row(row)) if row else None


def record_from_row(row: Any) -> CallRecord:
    """A stored `calls` row (either backend's row, or a mapping) as a typed call record."""
    return CallRecord(
        call_id=row["call_id"],
        site=row["site"],
        dialed=row["dialed"],
        started_at=row["started_at"],
        state=row["state"],
        attribution=CallAttribution.from_snapshot(
            {
                **json.loads(row["attribution"] or "{}"),
                "kind": row["attribution_kind"],
                "session_id": row["session_id"] or None,
                "visitor_id": row["visitor_id"] or None,
            }
        ),
        caller=row["caller"],
        caller_name=row["caller_name"],
        linkedid=row["linkedid"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        agent=row["agent"],
        route=row["route"],
        ring_seconds=row["ring_seconds"],
        talk_seconds=row["talk_seconds"],
        hangup_cause=row["hangup_cause"],
        recording=row["recording"],
        first_time=bool(row["first_time"]),
        contact_id=row["contact_id"],
        test_call=bool(row["test_call"]),
        direction=row["direction"],
    )


def calls_select(flt: CallFilter) -> tuple[str, list[Any]]:
    """The SELECT of the calls matching `flt`, newest first, paged as `list_calls` pages them."""
    where, params = _where(flt)
    sql = f"SELECT * FROM calls{where} ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?"  # noqa: S608 - clauses are fixed text
    return sql, [*params, flt.limit, flt.offset]


class LinkedCall(NamedTuple):
    """What AMI's updates need of a stored call: which record, of which site, still open."""

    call_id: str
    site: str
    ended: bool


def call_write(call: CallRecord) -> Write:
    """The INSERT of a new call record (the route's, as the caller waits); `record_from_row`
    reads it back equal."""
    attribution = call.attribution
    return Write(
        _CALL_SQL,
        (
            call.call_id,
            call.site,
            call.dialed,
            call.caller,
            call.caller_name,
            call.linkedid,
            call.started_at,
            call.answered_at,
            call.ended_at,
            call.state,
            call.agent,
            call.ring_seconds,
            call.talk_seconds,
            call.hangup_cause,
            call.recording,
            int(call.first_time),
            call.contact_id,
            call.route,
            attribution.kind,
            attribution.session_id or "",
            attribution.visitor_id or "",
            json.dumps(attribution.as_dict()),
            int(call.test_call),
        ),
        rank=60,
    )


async def call_for_linkedid(db: Database, linkedid: str) -> CallRecord | None:
    """The committed record of the call with this linkedid, if any."""
    row = await db.lookup("SELECT * FROM calls WHERE linkedid = ?", (linkedid,))
    return None if row is None else record_from_row(row)


async def attributed_visit(db: Database, session_id: str) -> VisitContext | None:
    """The stored visit of a session a call is attributed to, if the session is stored."""
    row = await db.lookup(
        f"SELECT {_VISIT_FIELDS} FROM sessions WHERE session_id = ?",  # noqa: S608 - fixed columns
        (session_id,),
    )
    return VisitContext(**{key: row[key] for key in row.keys()}) if row else None


async def caller_visitors(db: Database, caller: str, limit: int = 5) -> frozenset[str]:
    """The visitor ids the latest `limit` attributed calls from `caller` went to (none when
    the caller is anonymous)."""
    if not caller:
        return frozenset()
    sql = _CALLER_VISITORS_SQL if db.dialect == "sqlite" else _PG_CALLER_VISITORS_SQL
    row = await db.lookup(sql, (caller, limit))
    return frozenset(json.loads(row[0])) if row and row[0] else frozenset()


async def linked_call(db: Database, linkedid: str) -> LinkedCall | None:
    """The committed call with this linkedid, as far as an AMI update needs it."""
    row = await db.lookup(
        "SELECT call_id, site, ended_at FROM calls WHERE linkedid = ?", (linkedid,)
    )
    return (
        None
        if row is None
        else LinkedCall(row["call_id"], row["site"], row["ended_at"] is not None)
    )


def call_progress_write(
    linkedid: str,
    state: str,
    *,
    agent: str,
    answered_at: datetime | None,
    ended_at: datetime | None,
    ring_seconds: float | None,
    talk_seconds: float | None,
    recording: str,
    hangup_cause: str,
    route: str | None,
) -> Write:
    """An open call record brought up to what AMI saw; `route` None keeps the route's own."""
    return Write(
        _PROGRESS_SQL,
        (
            state,
            agent,
            ts(answered_at) if answered_at else None,
            ts(ended_at) if ended_at else None,
            ring_seconds,
            talk_seconds,
            recording,
            hangup_cause,
            route,
            linkedid,
        ),
        rank=70,
    )


def call_fallback_write(call_id: str, route: str, fallback: str) -> Write:
    """The record of a call routed to `route` whose caller never got that answer set to
    `fallback` (what the dialplan dialed), unless its route has changed since (AMI)."""
    return Write(_FALLBACK_SQL, (fallback, call_id, route), rank=70)


async def open_calls(db: Database, started_before: datetime) -> list[CallRecord]:
    """The records not ended yet of calls that began before `started_before`."""
    rows = await db.fetchall(
        "SELECT * FROM calls WHERE ended_at IS NULL AND started_at < ?", (ts(started_before),)
    )
    return [record_from_row(row) for row in rows]


def call_closed_write(call_id: str, state: str, at: datetime) -> Write:
    """An open record closed at `at` because Asterisk no longer has its call (resync)."""
    return Write(_CLOSED_SQL, (state, ts(at), call_id), rank=70)


def outbound_call_writes(call: CallRecord) -> list[Write]:
    """A click-to-call record: the route's INSERT with its direction (the column comes from
    migration 0008; `call_write` leaves it to its default, inbound, whatever `call.direction`
    says: the direction is decided by which write stores the call)."""
    insert = call_write(call)
    sql = insert.sql.replace(" test_call)", " test_call, direction)").replace("?)", "?, ?)")
    return [insert._replace(sql=sql, params=(*insert.params, "outbound"))]


def outbound_dropped_write(call_id: str) -> Write:
    """Removes a click-to-call record whose Originate AMI refused: no call happened."""
    return Write(
        "DELETE FROM calls WHERE call_id = ? AND direction = 'outbound' AND answered_at IS NULL",
        (call_id,),
    )
