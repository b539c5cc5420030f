"""Contacts in the store: one row per caller number, counting its calls and their attribution."""

from __future__ import annotations

import json

from gateway.store.database import Database, Write
from numberpool.calls import CallRecord

__all__ = ["contact_call_write", "contact_for_number"]

# A new number makes its contact; a known one counts the call and keeps its first touch, and
# keeps its name when this call came without one.
_CONTACT_CALL_SQL = (
    "INSERT INTO contacts (contact_id, number, name, first_call_at, last_call_at, calls,"
    " first_touch, last_touch) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
    " ON CONFLICT(number) DO UPDATE SET last_call_at = excluded.last_call_at,"
    " calls = contacts.calls + 1, last_touch = excluded.last_touch,"
    " name = CASE WHEN excluded.name != '' THEN excluded.name ELSE contacts.name END"
)


async def contact_for_number(db: Database, number: str) -> str | None:
    """The contact id of a caller number, if it called before (a committed call)."""
    row = await db.lookup("SELECT contact_id FROM contacts WHERE number = ?", (number,))
    return None if row is None else str(row["contact_id"])


def contact_call_write(call: CallRecord) -> Write:
    """The caller's contact made or brought up to date by this call (it has a caller and a
    contact id), its touch being the call's attribution."""
    touch = json.dumps(
        {**call.attribution.as_dict(), "at": call.started_at, "call_id": call.call_id}
    )
    return Write(
        _CONTACT_CALL_SQL,
        (
            call.contact_id,
            call.caller,
            call.caller_name,
            call.started_at,
            call.started_at,
            touch,
            touch,
        ),
        rank=55,
    )
