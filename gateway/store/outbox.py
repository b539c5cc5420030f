"""The outbox in the store: events queued in the same commit as the change they announce, and
their deliveries to webhook endpoints (one row per event and endpoint, sent by
gateway/webhooks/)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.calls import call_json
from gateway.store.database import Database, Row, Write
from gateway.store.times import ts
from numberpool.calls import CallRecord

__all__ = [
    "CALL_STARTED_RANK",
    "DueDelivery",
    "NewEvent",
    "call_changed_write",
    "call_started_write",
    "delivered_write",
    "due_deliveries",
    "endpoints_exist",
    "event_key",
    "expire_write",
    "failed_writes",
    "fan_out_writes",
    "new_events",
    "outbox_write",
    "prune_range",
    "prune_writes",
    "pull_forward_write",
    "wanted_write",
]

# Right after the call's row (calls are rank 60, AMI's updates 70): the route's call.started
# takes an event id before an update committed with it, so a call's events keep their order.
CALL_STARTED_RANK = 61
# Just before AMI's update (70), whose WHERE the event's condition repeats.
_CALL_CHANGED_RANK = 69

_OUTBOX_SQL = "INSERT INTO outbox (topic, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?)"
_OUTBOX_IF_SQL = (
    "INSERT INTO outbox (topic, payload, created_at, next_attempt_at) SELECT ?, ?, ?, ?"
)
# An endpoint of the event's site asks for its topic (event types have no LIKE wildcards).
_WANTED_SQL = "EXISTS (SELECT 1 FROM webhook_endpoints WHERE site = ? AND events LIKE ?)"
_NEW_SQL = (
    "SELECT event_id, topic, payload, created_at FROM outbox WHERE delivered_at IS NULL"
    " ORDER BY event_id LIMIT ?"
)
_DELIVERY_SQL = (
    "INSERT INTO webhook_deliveries (event_id, endpoint_id, order_key, due_at, since)"
    " VALUES (?, ?, ?, ?, ?)"
)
# A delivery waits while an earlier one of the same call to the same endpoint is pending.
_DUE_SQL = (
    "SELECT d.delivery_id, d.event_id, d.endpoint_id, d.order_key, d.attempts, d.since, o.body,"
    " o.topic, o.created_at, e.url, e.secret FROM webhook_deliveries d"
    " JOIN outbox o ON o.event_id = d.event_id"
    " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id"
    " WHERE d.state = 'pending' AND d.due_at <= ? AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key"
    " AND p.state = 'pending' AND p.delivery_id < d.delivery_id)"
)


class NewEvent(NamedTuple):
    """An outbox event not yet fanned out to the endpoints."""

    event_id: int
    topic: str
    payload: dict[str, Any]
    created_at: str


class DueDelivery(NamedTuple):
    """A delivery whose time has come, with what sending it takes."""

    delivery_id: int
    event_id: int
    endpoint_id: str
    order_key: str
    attempts: int
    since: str
    body: str
    topic: str
    created_at: str
    url: str
    secret: str


def event_key(event_id: int, created_at: str) -> str:
    """An event's id and idempotency key: unique per event, the same in every attempt (its
    commit time is in it, so a store made anew does not reuse an old key)."""
    stamp = hashlib.sha256(created_at.encode()).hexdigest()[:6]
    return f"evt_{event_id}_{stamp}"


def outbox_write(topic: str, payload: dict[str, Any], at: datetime, rank: int = 80) -> Write:
    """An event on `topic`, due for delivery at once, queued whether or not an endpoint asks for
    it (the gateway's own events go through `wanted_write`)."""
    return Write(_OUTBOX_SQL, (topic, json.dumps(payload), ts(at), ts(at)), rank=rank)


def call_started_write(call: CallRecord) -> Write:
    """The route's `call.started`: the whole call as the API shows it, committed with it (and
    only when an endpoint of the call's site asks for it: `wanted_write`)."""
    payload = {"site": call.site, "key": call.call_id, "data": call_json(call)}
    return _wanted("call.started", payload, call.started_at, "", (), CALL_STARTED_RANK)


def wanted_write(
    topic: str,
    payload: dict[str, Any],
    at: datetime,
    where: str = "",
    params: Sequence[Any] = (),
    rank: int = 80,
) -> Write:
    """An event of the site in `payload`, queued only when an endpoint of that site asks for
    `topic` (decided in the commit), and `where` holds if given. No endpoint is ever sent an
    event from before it was made, so a row nobody wants would only be pruned unread, and
    most gateways have no endpoint at all: every call would queue two or three such rows."""
    return _wanted(topic, payload, ts(at), where, params, rank)


def _wanted(
    topic: str, payload: dict[str, Any], stamp: str, where: str, params: Sequence[Any], rank: int
) -> Write:
    """`wanted_write` with the event's time as the store writes it."""
    site = str(payload.get("site", ""))
    condition = f"({where}) AND {_WANTED_SQL}" if where else _WANTED_SQL
    values = (topic, json.dumps(payload), stamp, stamp, *params, site, _wanted_pattern(topic))
    return Write(f"{_OUTBOX_IF_SQL} WHERE {condition}", values, rank=rank)


def _wanted_pattern(topic: str) -> str:
    """A LIKE pattern finding `topic` in an endpoint's `events` (a JSON array of names)."""
    return f"%{json.dumps(topic)}%"


async def endpoints_exist(db: Database) -> bool:
    """Whether any webhook endpoint exists (the sender polls the outbox only then)."""
    return await db.fetchone("SELECT 1 FROM webhook_endpoints LIMIT 1") is not None


def call_changed_write(
    topic: str,
    call_id: str,
    site: str,
    changes: dict[str, Any],
    at: datetime,
    *,
    linkedid: str = "",
    first_answer: bool = False,
) -> Write:
    """`call.updated` or `call.completed`: written only while the call is open (and, for a
    first answer, not yet answered), as the update it announces, and only when an endpoint of
    the site asks for it; the sender renders the call from the store with `changes` over it."""
    payload = {"site": site, "key": call_id, "call_id": call_id, "changes": changes}
    column, value = ("linkedid", linkedid) if linkedid else ("call_id", call_id)
    answered = " AND answered_at IS NULL" if first_answer else ""
    where = f"EXISTS (SELECT 1 FROM calls WHERE {column} = ? AND ended_at IS NULL{answered})"  # noqa: S608 - fixed names
    return wanted_write(topic, payload, at, where, (value,), rank=_CALL_CHANGED_RANK)


async def new_events(db: Database, limit: int) -> list[NewEvent]:
    """The oldest events not yet fanned out, in the order they were committed."""
    rows = await db.fetchall(_NEW_SQL, (limit,))
    return [
        NewEvent(r["event_id"], r["topic"], _payload(r["payload"]), r["created_at"]) for r in rows
    ]


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def fan_out_writes(
    event_id: int, body: str, at: datetime, deliveries: Iterable[tuple[str, str]]
) -> list[Write]:
    """The event's body kept as sent, and one delivery per (endpoint_id, order_key)."""
    now = ts(at)
    writes = [
        Write(
            "UPDATE outbox SET delivered_at = ?, body = ? WHERE event_id = ?", (now, body, event_id)
        )
    ]
    writes += [Write(_DELIVERY_SQL, (event_id, e, key, now, now)) for e, key in deliveries]
    return writes


async def due_deliveries(
    db: Database, at: datetime, limit: int, skip: Iterable[str] = ()
) -> list[DueDelivery]:
    """Pending deliveries due by `at`, oldest first, each the next of its call on its endpoint
    (deliveries to the endpoints in `skip` are left out)."""
    left_out = sorted(set(skip))
    marks = ", ".join("?" * len(left_out))
    sql = _DUE_SQL + (f" AND d.endpoint_id NOT IN ({marks})" if left_out else "")
    rows = await db.fetchall(f"{sql} ORDER BY d.delivery_id LIMIT ?", (ts(at), *left_out, limit))
    return [_due(r) for r in rows]


def _due(row: Row) -> DueDelivery:
    return DueDelivery(*(row[name] for name in DueDelivery._fields))


def delivered_write(delivery_id: int, status: int, at: datetime) -> Write:
    return Write(
        "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?, attempts ="
        " attempts + 1, last_status = ?, last_error = '' WHERE delivery_id = ?"
        " AND state = 'pending'",
        (ts(at), status, delivery_id),
    )


def failed_writes(
    delivery: DueDelivery, status: int | None, error: str, due: datetime | None
) -> list[Write]:
    """A failed attempt: retried at `due`, or parked (None) with the later deliveries of the
    same call to the same endpoint, which would otherwise wait for it forever."""
    if due is not None:
        sql = (
            "UPDATE webhook_deliveries SET attempts = attempts + 1, due_at = ?, last_status = ?,"
            " last_error = ? WHERE delivery_id = ? AND state = 'pending'"
        )
        return [Write(sql, (ts(due), status, error[:500], delivery.delivery_id))]
    park = (
        "UPDATE webhook_deliveries SET state = 'parked', attempts = attempts + 1,"
        " last_status = ?, last_error = ? WHERE delivery_id = ? AND state = 'pending'"
    )
    behind = (
        "UPDATE webhook_deliveries SET state = 'parked', last_error = ? WHERE endpoint_id = ?"
        " AND order_key = ? AND state = 'pending' AND delivery_id > ?"
    )
    waits = f"waits for parked delivery {delivery.delivery_id}"
    return [
        Write(park, (status, error[:500], delivery.delivery_id)),
        Write(behind, (waits, delivery.endpoint_id, delivery.order_key, delivery.delivery_id)),
    ]


def pull_forward_write(endpoint_id: str, at: datetime) -> Write:
    """An endpoint answers again: its deliveries waiting out a backoff are due now."""
    return Write(
        "UPDATE webhook_deliveries SET due_at = ? WHERE endpoint_id = ? AND state = 'pending'"
        " AND due_at > ?",
        (ts(at), endpoint_id, ts(at)),
    )


def expire_write(before: datetime, hours: int) -> Write:
    """Park every pending delivery whose retry window began before `before`."""
    return Write(
        "UPDATE webhook_deliveries SET state = 'parked', last_error = CASE WHEN last_error = ''"
        " THEN ? ELSE last_error END WHERE state = 'pending' AND since < ?",
        (f"not delivered within {hours} h", ts(before)),
    )


# A delivery that keeps its event: any but one delivered, or parked, before the cutoffs.
_KEEPS_SQL = (
    "SELECT 1 FROM webhook_deliveries d WHERE d.event_id = {t}.event_id AND NOT ("
    "(d.state = 'delivered' AND d.delivered_at < ?) OR (d.state = 'parked' AND d.since < ?))"
)
# An event of the range fanned out (its endpoints have their deliveries) and older than the cutoff.
_OLD_SQL = (
    "{t}.event_id > ? AND {t}.event_id <= ? AND {t}.delivered_at IS NOT NULL AND {t}.created_at < ?"
)


async def prune_range(db: Database, after: int, limit: int, before: datetime) -> int | None:
    """The last event id of the next range of at most `limit` events after `after`, when the
    range starts with an event older than `before` (None: the pass is over)."""
    rows = await db.fetchall(
        "SELECT event_id, created_at FROM outbox WHERE event_id > ? ORDER BY event_id LIMIT ?",
        (after, limit),
    )
    if not rows or rows[0]["created_at"] >= ts(before):
        return None
    return int(rows[-1]["event_id"])


def prune_writes(
    after: int, last: int, delivered_before: datetime, parked_before: datetime
) -> list[Write]:
    """Delete the events of (after, last] sent to every endpoint before `delivered_before`, or
    parked in a retry window begun before `parked_before`, and their deliveries. Decided in
    the commit itself, so a delivery retried meanwhile keeps its event."""
    cut, parked = ts(delivered_before), ts(parked_before)
    old, keeps = _OLD_SQL.format(t="o"), _KEEPS_SQL.format(t="o")
    deliveries = (
        "DELETE FROM webhook_deliveries WHERE event_id IN (SELECT o.event_id FROM outbox o"  # noqa: S608 - fixed clauses
        f" WHERE {old} AND NOT EXISTS ({keeps}))"
    )
    # What is left of an old event's deliveries after that delete keeps it.
    events = (
        f"DELETE FROM outbox WHERE {_OLD_SQL.format(t='outbox')} AND NOT EXISTS"  # noqa: S608 - fixed clauses
        " (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = outbox.event_id)"
    )
    return [
        Write(deliveries, (after, last, cut, cut, parked)),
        Write(events, (after, last, cut)),
    ]
