"""Agents' SIP endpoints (`PJSIP/agent1`) and what a screen pop reads of a caller's contact.

An endpoint is stored as AMI names a channel's device (`agent_endpoint()`), so the pop of a
ringing channel finds its agents by equality.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from gateway.store.database import Database, Write
from gateway.store.staff import UserInputError

__all__ = [
    "ENDPOINT_ROLES",
    "MAX_ENDPOINTS",
    "check_endpoint",
    "check_endpoints",
    "contact_card",
    "endpoints_by_user",
    "endpoints_of",
    "set_endpoints",
]

MAX_ENDPOINTS = 20
# A marketer takes no calls: only these roles have a console to pop on.
ENDPOINT_ROLES = ("admin", "agent")
# Technology/resource. The resource is a whitelist: no comma or pipe (Dial's argument
# separators), no `&` (Dial's list), no spaces or control characters.
_ENDPOINT = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,15})/([A-Za-z0-9_.+@:#*~=-]{1,120})", re.ASCII)
# Asterisk reads a technology in any case but names channels in its own; stored that way.
_TECH_CASE = {t.lower(): t for t in ("PJSIP", "SIP", "IAX2", "DAHDI", "Local", "Console")}
_CONTACT_COLUMNS = ("contact_id", "name", "region", "line_type", "carrier", "geo")
_SITE_CALLS_SQL = (
    "SELECT count(*) AS calls, min(started_at) AS first_call_at FROM calls"
    " WHERE caller = ? AND site = ?"
)
_LEAD_SQL = "SELECT status, tags, spam FROM leads WHERE site = ? AND contact_id = ?"
# Many rows as one (a point lookup returns one row): the 5 soonest open tasks, the 5 latest
# history entries, by contact (`+site`: a site's index of all its open tasks is no point lookup).
_OPEN_TASKS_SQL = (
    "SELECT json_group_array(json_object('task_id', task_id, 'due_at', due_at,"
    " 'call_id', call_id, 'assignee', assignee)) FROM (SELECT * FROM tasks"
    " WHERE contact_id = ? AND +site = ? AND closed_at IS NULL ORDER BY due_at LIMIT 5)"
)
_HISTORY_SQL = (
    "SELECT json_group_array(json_object('at', at, 'who', who, 'what', what, 'before', before,"
    " 'after', after)) FROM (SELECT * FROM contact_history"
    " WHERE contact_id = ? AND site = ? ORDER BY entry_id DESC LIMIT 5)"
)
# The same on PostgreSQL: json_agg/json_build_object, ordered in the aggregate (its planner may
# pick its own index for `site`; SQLite's `+site` has no twin there).
_PG_OPEN_TASKS_SQL = (
    "SELECT json_agg(json_build_object('task_id', task_id, 'due_at', due_at,"
    " 'call_id', call_id, 'assignee', assignee) ORDER BY due_at)::text FROM (SELECT * FROM tasks"
    " WHERE contact_id = ? AND site = ? AND closed_at IS NULL ORDER BY due_at LIMIT 5) AS soonest"
)
_PG_HISTORY_SQL = (
    "SELECT json_agg(json_build_object('at', at, 'who', who, 'what', what, 'before', before,"
    " 'after', after) ORDER BY entry_id DESC)::text FROM (SELECT * FROM contact_history"
    " WHERE contact_id = ? AND site = ? ORDER BY entry_id DESC LIMIT 5) AS latest"
)
_CARD_SQL = {
    "sqlite": (_OPEN_TASKS_SQL, _HISTORY_SQL),
    "postgresql": (_PG_OPEN_TASKS_SQL, _PG_HISTORY_SQL),
}
# PostgreSQL's SQLSTATE for a table that does not exist (asyncpg's UndefinedTableError).
_UNDEFINED_TABLE = "42P01"


def check_endpoint(text: str) -> str:
    """`text` as a stored endpoint (`pjsip/agent1` -> `PJSIP/agent1`), or UserInputError."""
    found = _ENDPOINT.fullmatch(text.strip())
    if found is None:
        shown = repr(text[:60])
        raise UserInputError(
            f"the endpoint {shown} is not technology/resource like PJSIP/agent1"
            " (letters, digits and _ . + @ : # * ~ = - only)"
        )
    tech, resource = found.groups()
    return f"{_TECH_CASE.get(tech.lower(), tech)}/{resource}"


def check_endpoints(texts: Iterable[str], role: str) -> tuple[str, ...]:
    """The endpoints of a user with `role`, checked, without repeats, in the order given."""
    endpoints = tuple(dict.fromkeys(check_endpoint(t) for t in texts if t.strip()))
    if endpoints and role not in ENDPOINT_ROLES:
        raise UserInputError(f"a {role} has no agent console: endpoints are for agents")
    if len(endpoints) > MAX_ENDPOINTS:
        raise UserInputError(f"at most {MAX_ENDPOINTS} endpoints per user")
    return endpoints


async def set_endpoints(db: Database, user_id: str, endpoints: Iterable[str]) -> None:
    """Make `endpoints` (checked already) the user's endpoints, in one commit."""
    writes = [Write("DELETE FROM agent_endpoints WHERE user_id = ?", (user_id,))]
    writes += [
        Write("INSERT INTO agent_endpoints (user_id, endpoint) VALUES (?, ?)", (user_id, e))
        for e in endpoints
    ]
    await db.write(writes)


async def endpoints_of(db: Database, user_id: str) -> frozenset[str]:
    """The endpoints a user answers on."""
    rows = await db.fetchall("SELECT endpoint FROM agent_endpoints WHERE user_id = ?", (user_id,))
    return frozenset(str(r["endpoint"]) for r in rows)


async def endpoints_by_user(db: Database) -> dict[str, list[str]]:
    """Every user's endpoints (user id -> endpoints, sorted)."""
    rows = await db.fetchall("SELECT user_id, endpoint FROM agent_endpoints ORDER BY endpoint")
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(str(row["user_id"]), []).append(str(row["endpoint"]))
    return found


async def contact_card(
    db: Database, site: str, contact_id: str, caller: str
) -> dict[str, Any] | None:
    """What a pop shows of the caller on `site`: the contact, its calls to this site, and (with
    the CRM's tables) the lead's status, open tasks and latest history. Point lookups on
    indexes only: run on the event loop, microseconds, never behind a report on the reader."""
    row = await db.lookup("SELECT * FROM contacts WHERE contact_id = ?", (contact_id,))
    if row is None:
        return None
    card = {key: row[key] for key in _CONTACT_COLUMNS if key in row.keys()}
    # This site's calls only (through the calls_caller index): one site never learns of another.
    counted = await db.lookup(_SITE_CALLS_SQL, (caller, site)) if caller else None
    card["calls"] = int(counted["calls"]) if counted is not None else 0
    card["first_call_at"] = counted["first_call_at"] if counted is not None else None
    card.update(await _lead(db, site, contact_id))
    return card


async def _lead(db: Database, site: str, contact_id: str) -> dict[str, Any]:
    tasks_sql, history_sql = _CARD_SQL[db.dialect]
    try:
        lead = await db.lookup(_LEAD_SQL, (site, contact_id))
        tasks = await db.lookup(tasks_sql, (contact_id, site))
        history = await db.lookup(history_sql, (contact_id, site))
    except sqlite3.OperationalError:
        return {}  # a store without the CRM's tables: the pop shows the contact alone
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE:
            return {}  # the same on PostgreSQL (no asyncpg import here: SQLite needs none)
        raise
    return {
        "status": str(lead["status"]) if lead is not None else "new",
        "tags": json.loads(lead["tags"]) if lead is not None else [],
        "spam": bool(lead["spam"]) if lead is not None else False,
        "open_tasks": json.loads(tasks[0]) if tasks is not None and tasks[0] else [],
        "history": json.loads(history[0]) if history is not None and history[0] else [],
    }
