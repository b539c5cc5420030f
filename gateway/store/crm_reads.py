"""The CRM's reads: leads (a contact on a site) listed and shown with their calls, tasks and
history; tasks listed. A lead's calls, first and last touch are its site's calls only, and its
touches its inbound calls only (a click-to-call is no visit of theirs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.store.calls import call_json, record_from_row
from gateway.store.database import Database
from numberpool.crm import LeadEdit

__all__ = [
    "LeadFilter",
    "TaskFilter",
    "call_disposition",
    "call_lead",
    "contact_facts",
    "contact_sites",
    "find_task",
    "lead_detail",
    "lead_state",
    "list_leads",
    "list_tasks",
]

# One row per (site, contact) that called; a lead row exists once the CRM or a person touched it.
_LEADS_SQL = (
    "SELECT c.site, c.contact_id, k.number, coalesce(nullif(l.name, ''), k.name) AS name,"
    " coalesce(l.status, 'new') AS status, coalesce(l.tags, '[]') AS tags,"
    " coalesce(l.spam, 0) AS spam, coalesce(l.test, 0) AS test, count(*) AS calls,"
    " min(c.started_at) AS first_call_at, max(c.started_at) AS last_call_at,"
    " k.region, k.line_type, k.carrier, k.geo,"
    " (SELECT count(*) FROM tasks t WHERE t.site = c.site AND t.contact_id = c.contact_id"
    " AND t.closed_at IS NULL) AS open_tasks"
    " FROM calls c JOIN contacts k ON k.contact_id = c.contact_id"
    " LEFT JOIN leads l ON l.site = c.site AND l.contact_id = c.contact_id"
)
# Per dialect, SQLite's text kept as it was (and with it its plan): the search ignores case
# (SQLite's LIKE ASCII case only; ILIKE any letter's in a UTF-8 database: 'JOSÉ' finds 'José'
# there, not in SQLite), and PostgreSQL takes the joined rows' columns only with their keys
# grouped too.
_LEADS_SEARCH = {
    "sqlite": (
        " AND (k.number LIKE ? ESCAPE '\\'"
        " OR coalesce(nullif(l.name, ''), k.name) LIKE ? ESCAPE '\\')"
    ),
    "postgresql": (
        " AND (k.number ILIKE ? ESCAPE '\\'"
        " OR coalesce(nullif(l.name, ''), k.name) ILIKE ? ESCAPE '\\')"
    ),
}
_LEADS_GROUP = {
    "sqlite": " GROUP BY c.site, c.contact_id",
    "postgresql": " GROUP BY c.site, c.contact_id, k.contact_id, l.site, l.contact_id",
}
_TASKS_SQL = (
    "SELECT t.*, k.number, coalesce(nullif(l.name, ''), k.name) AS name FROM tasks t"
    " JOIN contacts k ON k.contact_id = t.contact_id"
    " LEFT JOIN leads l ON l.site = t.site AND l.contact_id = t.contact_id"
)

# A lead's touches are its visits: its inbound calls' attributions, never a click-to-call's.
_TOUCH_WHERE = (
    "SELECT * FROM calls WHERE caller = ? AND contact_id = ? AND site = ? AND direction = 'inbound'"
)
_TOUCH_SQL = {
    "first": _TOUCH_WHERE + " ORDER BY started_at, call_id LIMIT 1",
    "last": _TOUCH_WHERE + " ORDER BY started_at DESC, call_id DESC LIMIT 1",
}


@dataclass(frozen=True)
class LeadFilter:
    sites: frozenset[str] | None = None  # None: every site
    site: str = ""
    status: str = ""
    q: str = ""
    contact_id: str = ""
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class TaskFilter:
    sites: frozenset[str] | None = None
    site: str = ""
    closed: bool | None = False  # None: open and closed ones
    due_before: str = ""  # stored time text; '' = any
    contact_id: str = ""
    limit: int = 100


def _in(column: str, sites: frozenset[str] | None) -> tuple[str, list[Any]]:
    if sites is None:
        return "", []
    return f" AND {column} IN ({', '.join('?' * len(sites))})", sorted(sites)


def _lead_json(row: Any) -> dict[str, Any]:
    lead = {key: row[key] for key in row.keys()}
    lead["tags"] = json.loads(lead["tags"])
    lead["spam"], lead["test"] = bool(lead["spam"]), bool(lead["test"])
    return lead


async def list_leads(db: Database, flt: LeadFilter) -> list[dict[str, Any]]:
    """The leads matching `flt`, the latest called first."""
    sites, params = _in("c.site", flt.sites)
    where = " WHERE c.contact_id IS NOT NULL" + sites
    for clause, value in (("c.site = ?", flt.site), ("c.contact_id = ?", flt.contact_id)):
        if value:
            where += f" AND {clause}"
            params.append(value)
    if flt.status:
        where += " AND coalesce(l.status, 'new') = ?"
        params.append(flt.status)
    if flt.q:
        where += _LEADS_SEARCH[db.dialect]
        pattern = "%" + flt.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params.extend((pattern, pattern))
    sql = f"{_LEADS_SQL}{where}{_LEADS_GROUP[db.dialect]}"
    sql += " ORDER BY last_call_at DESC, c.contact_id LIMIT ? OFFSET ?"
    rows = await db.fetchall(sql, [*params, flt.limit, flt.offset])
    return [_lead_json(row) for row in rows]


async def contact_facts(db: Database, contact_id: str) -> dict[str, Any] | None:
    """A contact's number and what is known of it, None when there is no such contact."""
    row = await db.fetchone(
        "SELECT contact_id, number, name, region, line_type, carrier, geo, facts_at"
        " FROM contacts WHERE contact_id = ?",
        (contact_id,),
    )
    return None if row is None else {key: row[key] for key in row.keys()}


async def contact_sites(db: Database, number: str, contact_id: str) -> list[str]:
    """The sites a contact called."""
    rows = await db.fetchall(
        "SELECT DISTINCT site FROM calls WHERE caller = ? AND contact_id = ? ORDER BY site",
        (number, contact_id),
    )
    return [str(row["site"]) for row in rows]


async def lead_state(db: Database, site: str, contact_id: str) -> LeadEdit:
    """What a person may edit of a lead, as stored (a lead never touched is `new`)."""
    row = await db.fetchone(
        "SELECT status, tags, notes, name, spam, test FROM leads WHERE site = ? AND contact_id = ?",
        (site, contact_id),
    )
    if row is None:
        return LeadEdit("new", (), "", "", False, False)
    return LeadEdit(
        row["status"],
        tuple(json.loads(row["tags"])),
        row["notes"],
        row["name"],
        bool(row["spam"]),
        bool(row["test"]),
    )


async def lead_detail(db: Database, site: str, contact_id: str, number: str) -> dict[str, Any]:
    """A lead with its calls (newest first), open and closed tasks, and history (newest first)."""
    state = await lead_state(db, site, contact_id)
    rows = await db.fetchall(
        "SELECT * FROM calls WHERE caller = ? AND contact_id = ? AND site = ?"
        " ORDER BY started_at DESC, call_id DESC LIMIT 200",
        (number, contact_id, site),
    )
    calls = [
        {
            **call_json(record_from_row(r)),
            "disposition": r["disposition"],
            "disposition_note": r["disposition_note"],
            "spam": bool(r["spam"]),
        }
        for r in rows
    ]
    first_touch = await _touch(db, site, contact_id, number, "first")
    last_touch = await _touch(db, site, contact_id, number, "last")
    history = await db.fetchall(
        "SELECT at, who, what, before, after FROM contact_history"
        " WHERE contact_id = ? AND site = ? ORDER BY entry_id DESC LIMIT 500",
        (contact_id, site),
    )
    tasks = await list_tasks(db, TaskFilter(site=site, contact_id=contact_id, closed=None))
    return {
        "site": site,
        "status": state.status,
        "tags": list(state.tags or ()),
        "notes": state.notes,
        "name": state.name,
        "spam": state.spam,
        "test": state.test,
        "first_touch": first_touch,
        "last_touch": last_touch,
        "calls": calls,
        "tasks": tasks,
        "history": [{key: h[key] for key in h.keys()} for h in history],
    }


async def _touch(db: Database, site: str, contact_id: str, number: str, which: str) -> Any:
    """The attribution of the lead's first or latest inbound call, however many calls it has
    (the index calls_caller walks the caller's calls in time order)."""
    row = await db.fetchone(_TOUCH_SQL[which], (number, contact_id, site))
    return None if row is None else call_json(record_from_row(row))["attribution"]


async def list_tasks(db: Database, flt: TaskFilter) -> list[dict[str, Any]]:
    """Tasks matching `flt`, due first."""
    sites, params = _in("t.site", flt.sites)
    where = " WHERE 1 = 1" + sites
    if flt.closed is not None:
        where += " AND t.closed_at IS NOT NULL" if flt.closed else " AND t.closed_at IS NULL"
    for clause, value in (
        ("t.site = ?", flt.site),
        ("t.contact_id = ?", flt.contact_id),
        ("t.due_at <= ?", flt.due_before),
    ):
        if value:
            where += f" AND {clause}"
            params.append(value)
    sql = f"{_TASKS_SQL}{where} ORDER BY t.due_at, t.task_id LIMIT ?"
    rows = await db.fetchall(sql, [*params, flt.limit])
    return [{**{key: r[key] for key in r.keys()}, "open": r["closed_at"] is None} for r in rows]


async def find_task(db: Database, task_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
    return None if row is None else {key: row[key] for key in row.keys()}


async def call_lead(db: Database, call_id: str) -> tuple[str, str | None] | None:
    """A call's site and contact (None for an anonymous caller); None for no such call."""
    row = await db.fetchone("SELECT site, contact_id FROM calls WHERE call_id = ?", (call_id,))
    return None if row is None else (str(row["site"]), row["contact_id"])


async def call_disposition(db: Database, call_id: str) -> tuple[str, str]:
    """A call's disposition and its note ('' when none is set)."""
    row = await db.fetchone(
        "SELECT disposition, disposition_note FROM calls WHERE call_id = ?", (call_id,)
    )
    return ("", "") if row is None else (row["disposition"], row["disposition_note"])
