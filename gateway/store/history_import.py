"""A history of visits and calls written into the store at once (the demo site's seeded history):
every row as the gateway's own paths write it, in one transaction of bulk inserts."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from gateway.store.call_marks import cost_writes
from gateway.store.calls import call_write
from gateway.store.contacts import contact_call_write
from gateway.store.crm import outcome_writes
from gateway.store.database import Database, Write
from gateway.store.sessions import (
    lease_write,
    pool_exhausted_write,
    session_seen_write,
    session_write,
)
from gateway.store.times import ts
from numberpool.calls import CallRecord
from numberpool.crm import CrmRules, FinishedCall, after_call
from numberpool.lease import Lease
from numberpool.site import NumberOffer
from numberpool.visit import VisitContext
from reports.costs import CostRow

__all__ = [
    "HistoryCall",
    "HistorySession",
    "import_history",
    "replay_crm",
    "site_call_count",
]

# A marketer's own cost of the same campaign and first day is kept.
_SPAM_SQL = "UPDATE calls SET spam = 1 WHERE call_id = ?"
# The parameter limit of older SQLite builds is 999: callers are looked up in slices.
_SLICE = 500


class HistorySession(NamedTuple):
    """A past session row: the visit, what it was shown, when it began, was last seen, expired."""

    session_id: str
    visitor_id: str
    visit: VisitContext
    offers: Sequence[NumberOffer]
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


class HistoryCall(NamedTuple):
    record: CallRecord
    spam: bool = False


async def site_call_count(db: Database, site: str) -> int:
    """How many calls the store holds for `site`."""
    row = await db.fetchone("SELECT count(*) FROM calls WHERE site = ?", (site,))
    return int(row[0]) if row else 0


async def import_history(
    db: Database,
    site: str,
    *,
    sessions: Sequence[HistorySession],
    leases: Sequence[Lease],
    exhausted: Sequence[tuple[str, datetime, str]],
    calls: Sequence[HistoryCall],
    costs: Sequence[CostRow],
) -> None:
    """Write a site's past sessions, leases, pool events, calls (oldest first) with their
    contacts, and campaign costs, in one transaction."""
    known = await _known_contacts(db, {c.record.caller for c in calls if c.record.caller})
    writes: list[Write] = []
    for s in sessions:
        created, expires = ts(s.created_at), ts(s.expires_at)
        offers = list(s.offers)
        writes.append(
            session_write(s.session_id, site, s.visitor_id, s.visit, offers, created, expires)
        )
        if s.last_seen != s.created_at:
            writes.append(session_seen_write(s.session_id, s.last_seen, s.expires_at))
    writes += (lease_write(lease) for lease in leases)
    writes += (pool_exhausted_write(pool_id, ts(at), sid) for pool_id, at, sid in exhausted)
    for call in calls:
        record = _with_contact(call.record, known)
        writes.append(call_write(record))
        if record.caller and record.contact_id:
            writes.append(contact_call_write(record))
        if call.spam:
            writes.append(Write(_SPAM_SQL, (record.call_id,), rank=65))
    writes += cost_writes(site, costs, keep_stored=True, rank=80)
    # One request of the group commit: one transaction, each statement run as an executemany.
    await db.write(writes)


async def _known_contacts(db: Database, callers: set[str]) -> dict[str, str]:
    """The contact ids of the numbers that called before (on any site): one contact per number."""
    found: dict[str, str] = {}
    numbers = sorted(callers)
    for at in range(0, len(numbers), _SLICE):
        part = numbers[at : at + _SLICE]
        marks = ", ".join("?" * len(part))
        rows = await db.fetchall(
            f"SELECT number, contact_id FROM contacts WHERE number IN ({marks})",  # noqa: S608 - only marks
            part,
        )
        found.update((row["number"], row["contact_id"]) for row in rows)
    return found


def _with_contact(record: CallRecord, known: dict[str, str]) -> CallRecord:
    """The record with its caller's stored contact, when the number called before."""
    contact_id = known.get(record.caller)
    if contact_id is None or record.contact_id == contact_id:
        return record
    return dataclasses.replace(record, contact_id=contact_id, first_time=False)


async def replay_crm(
    db: Database, calls: Sequence[HistoryCall], rules: CrmRules, *, settled_before: datetime
) -> int:
    """Run the CRM's rules over imported calls in the order they ended, as the gateway would
    have (leads move, follow-ups open and close); follow-ups due before `settled_before` are
    then closed as done by the staff, as a real team would have. Returns the writes made."""
    ended = sorted(
        (c.record for c in calls if c.record.ended_at and c.record.contact_id),
        key=lambda r: str(r.ended_at),
    )
    made = 0
    for record in ended:
        at = datetime.fromisoformat(str(record.ended_at))
        call = FinishedCall(
            record.call_id, record.site, str(record.contact_id), record.state,
            record.talk_seconds, at,
        )  # fmt: skip
        outcome = after_call(call, rules)
        # Each call's rows in their own commit: a later call's task closing needs the earlier
        # call's task there first.
        writes = outcome_writes(
            record.site, str(record.contact_id), outcome, call_id=record.call_id,
            who="system", at=at,
        )  # fmt: skip
        await db.write(writes)
        made += len(writes)
    await db.write(
        [
            Write(
                "UPDATE tasks SET closed_at = due_at, closed_by = 'demo'"
                " WHERE closed_at IS NULL AND due_at < ?",
                (ts(settled_before),),
                rank=90,
            )
        ]
    )
    return made
