"""Call records as the API shows them: query, JSON shape and CSV download."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers

from gateway.store.database import Database, ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.phone import display

__all__ = [
    "ATTRIBUTION_FIELDS",
    "CALL_STATES",
    "CSV_COLUMNS",
    "CallFilter",
    "call_json",
    "calls_csv",
    "find_call",
    "list_calls",
]

CALL_STATES = ("ringing", "answered", "missed", "abandoned")
ATTRIBUTION_FIELDS = (
    "kind",
    "session_id",
    "visitor_id",
    "source",
    "medium",
    "campaign",
    "term",
    "content",
    "gclid",
    "landing_page",
    "referrer",
)
CSV_COLUMNS = (
    "call_id",
    "site",
    "started_at",
    "state",
    "dialed",
    "dialed_display",
    "caller",
    "caller_display",
    "caller_name",
    "agent",
    "ring_seconds",
    "talk_seconds",
    "first_time",
    "recording",
    *(f"attribution_{f}" for f in ATTRIBUTION_FIELDS),
)


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    site: str | None = None
    state: str | None = None
    limit: int = 100
    offset: int = 0


def call_json(row: Any) -> dict[str, Any]:
    """One call record in the API's shape (PRODUCT.md contract)."""
    snapshot = json.loads(row["attribution"] or "{}")
    attribution = {f: snapshot.get(f, "") for f in ATTRIBUTION_FIELDS}
    attribution["kind"] = row["attribution_kind"]
    attribution["session_id"] = row["session_id"] or None
    attribution["visitor_id"] = row["visitor_id"] or None
    return {
        "call_id": row["call_id"],
        "site": row["site"],
        "dialed": row["dialed"],
        "caller": row["caller"],
        "caller_name": row["caller_name"],
        "started_at": row["started_at"],
        "answered_at": row["answered_at"],
        "ended_at": row["ended_at"],
        "state": row["state"],
        "agent": row["agent"],
        # What the call was dialed to: the gateway's route, or "fallback" (then, with AMI, the
        # fallback's dial string) when the dialplan had stopped waiting for the gateway.
        "route": row["route"],
        "ring_seconds": row["ring_seconds"],
        "talk_seconds": row["talk_seconds"],
        "hangup_cause": row["hangup_cause"],
        "recording": row["recording"],
        "first_time": bool(row["first_time"]),
        "test_call": bool(row["test_call"]),
        "attribution": attribution,
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
    """Calls matching the filter, newest first."""
    where, params = _where(flt)
    rows = await db.fetchall(
        f"SELECT * FROM calls{where} ORDER BY started_at DESC, call_id DESC LIMIT ? OFFSET ?",  # noqa: S608 - clauses are fixed text
        (*params, flt.limit, flt.offset),
    )
    return [call_json(row) for row in rows]


async def find_call(db: Database, call_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM calls WHERE call_id = ?", (call_id,))
    return call_json(row) if row else None


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet apps run cells starting with these as formulas: defuse them.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calls_csv(calls: Iterable[dict[str, Any]]) -> str:
    """Calls as CSV with a header row, one call a line, attribution flattened.

    Made to open right in a spreadsheet: a UTF-8 byte order mark (Excel reads UTF-8 only with
    it), and each number also in its national format (Excel turns `+442079460000` into
    4.42079E+11; `020 7946 0000` stays text).
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    shown: dict[str, str] = {}
    for call in calls:
        flat = {**call, **{f"attribution_{k}": v for k, v in call["attribution"].items()}}
        flat["dialed_display"] = _display(flat.get("dialed"), shown)
        flat["caller_display"] = _display(flat.get("caller"), shown)
        writer.writerow([_cell(flat.get(col)) for col in CSV_COLUMNS])
    return out.getvalue()


def _display(number: Any, shown: dict[str, str]) -> str:
    """A stored E.164 number as people in its country write it; '' when there is none."""
    if not isinstance(number, str) or not number:
        return ""
    text = shown.get(number)
    if text is None:
        try:
            text = display(number)
        except phonenumbers.NumberParseException:
            text = ""
        shown[number] = text
    return text


def record_from_row(row: Any) -> CallRecord:
    """A stored `calls` row (sqlite3.Row or a mapping) as a typed call record."""
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
    )
