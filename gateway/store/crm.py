"""The CRM's writes: leads (a contact on a site), follow-up tasks, the history of every change,
dispositions on calls and the facts of a contact's number. Reads are in crm_reads.py."""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from gateway.store.database import Database, Write
from gateway.store.outbox import wanted_write
from gateway.store.times import ts
from numberpool.crm import (
    CallOutcome,
    CrmRules,
    FinishedCall,
    HistoryEntry,
    LeadEdit,
    NumberFacts,
    after_call,
)

__all__ = [
    "CrmStep",
    "crm_after_call",
    "disposition_write",
    "edit_writes",
    "facts_write",
    "history_write",
    "lead_write",
    "outcome_writes",
    "task_writes",
]

# After the call rows (contacts 55, calls 60, AMI's updates 70): a lead refers to its contact.
_RANK = 80
# A status change and its history entry are written only if the status still is what the rule
# read: two changes of one lead in one group commit do not both claim the same "before".
_STATUS_HISTORY_SQL = (
    "INSERT INTO contact_history (site, contact_id, at, who, what, before, after)"
    " SELECT ?, ?, ?, ?, ?, ?, ?"
    " WHERE EXISTS (SELECT 1 FROM leads WHERE site = ? AND contact_id = ? AND status = ?)"
)
_STATUS_SQL = "UPDATE leads SET status = ? WHERE site = ? AND contact_id = ? AND status = ?"
_CLOSE_HISTORY_SQL = (
    "INSERT INTO contact_history (site, contact_id, at, who, what, before, after)"
    " SELECT site, contact_id, ?, ?, 'task',"
    " 'open', 'closed ' || task_id FROM tasks WHERE site = ? AND contact_id = ?"
    " AND closed_at IS NULL"
)
_CLOSE_SQL = (
    "UPDATE tasks SET closed_at = ?, closed_by = ? WHERE site = ? AND contact_id = ?"
    " AND closed_at IS NULL"
)
_TASK_SQL = (
    "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_CALL_CONTACT_SQL = (
    "SELECT c.contact_id, c.site, k.number, k.facts_at FROM calls c"
    " JOIN contacts k ON k.contact_id = c.contact_id WHERE c.call_id = ?"
)


def lead_write(site: str, contact_id: str) -> Write:
    """The lead of a contact on a site, made `new` unless it exists."""
    return Write(
        "INSERT INTO leads (site, contact_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (site, contact_id),
        _RANK,
    )


def history_write(site: str, contact_id: str, entry: HistoryEntry) -> Write:
    return Write(
        "INSERT INTO contact_history (site, contact_id, at, who, what, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (site, contact_id, ts(entry.at), entry.who, entry.what, entry.before, entry.after),
        _RANK,
    )


def outcome_writes(
    site: str, contact_id: str, outcome: CallOutcome, *, call_id: str, who: str, at: datetime
) -> list[Write]:
    """The statements that apply a call's or a disposition's outcome to a lead."""
    writes = [lead_write(site, contact_id)]
    for entry in outcome.history:
        if entry.what == "status":
            values = (site, contact_id, ts(entry.at), entry.who, "status", entry.before)
            writes.append(
                Write(
                    _STATUS_HISTORY_SQL,
                    (*values, entry.after, site, contact_id, outcome.status_from),
                    _RANK,
                )
            )
        else:
            writes.append(history_write(site, contact_id, entry))
    if outcome.moves_status:
        writes.append(_contact_event(site, contact_id, outcome.history, at, outcome.status_from))
        writes.append(
            Write(_STATUS_SQL, (outcome.status_to, site, contact_id, outcome.status_from), _RANK)
        )
    elif outcome.spam:
        writes.append(_contact_event(site, contact_id, outcome.history, at))
    if outcome.close_tasks:
        writes.append(Write(_CLOSE_HISTORY_SQL, (ts(at), who, site, contact_id), _RANK))
        writes.append(Write(_CLOSE_SQL, (ts(at), who, site, contact_id), _RANK))
    task = outcome.follow_up
    if task is not None:
        writes.append(_task_event(site, contact_id, task.task_id, task.call_id, task.due_at, at))
        writes.append(
            Write(
                _TASK_SQL,
                (task.task_id, site, contact_id, task.call_id, ts(task.due_at), ts(at)),
                _RANK,
            )
        )
    if outcome.spam:
        writes.append(
            Write(
                "UPDATE leads SET spam = 1 WHERE site = ? AND contact_id = ?",
                (site, contact_id),
                _RANK,
            )
        )
        writes.append(Write("UPDATE calls SET spam = 1 WHERE call_id = ?", (call_id,), _RANK))
    return writes


class CrmStep(NamedTuple):
    """What the CRM does once a call is final: its writes, and the contact whose number's
    facts are still to look up (None when known, or when the call has no contact)."""

    writes: list[Write]
    facts_for: tuple[str, str] | None  # (contact_id, number)


async def crm_after_call(
    db: Database,
    rules: CrmRules,
    call_id: str,
    state: str,
    talk_seconds: float | None,
    ended_at: datetime,
) -> CrmStep:
    """The CRM's step for a committed call that just ended (one point lookup, no commit)."""
    row = await db.lookup(_CALL_CONTACT_SQL, (call_id,))
    if row is None:
        return CrmStep([], None)  # an anonymous caller has no contact to follow up
    contact_id, site = str(row["contact_id"]), str(row["site"])
    call = FinishedCall(call_id, site, contact_id, state, talk_seconds, ended_at)
    outcome = after_call(call, rules)
    writes = outcome_writes(site, contact_id, outcome, call_id=call_id, who="system", at=ended_at)
    facts_for = None if row["facts_at"] else (contact_id, str(row["number"]))
    return CrmStep(writes, facts_for)


def facts_write(contact_id: str, facts: NumberFacts, at: datetime) -> Write:
    """The facts of a contact's number, kept once looked up."""
    return Write(
        "UPDATE contacts SET region = ?, line_type = ?, carrier = ?, geo = ?, facts_at = ?"
        " WHERE contact_id = ?",
        (*facts, ts(at), contact_id),
        _RANK,
    )


def disposition_write(call_id: str, disposition: str, note: str) -> Write:
    return Write(
        "UPDATE calls SET disposition = ?, disposition_note = ? WHERE call_id = ?",
        (disposition, note, call_id),
        _RANK,
    )


def edit_writes(
    site: str, contact_id: str, edit: LeadEdit, entries: list[HistoryEntry]
) -> list[Write]:
    """A person's edit of a lead (cut to its changes) and its history."""
    columns: list[str] = []
    params: list[object] = []
    for name in ("status", "name", "notes", "spam", "test"):
        value = getattr(edit, name)
        if value is not None:
            columns.append(f"{name} = ?")
            params.append(int(value) if isinstance(value, bool) else value)
    if edit.tags is not None:
        columns.append("tags = ?")
        params.append(json.dumps(list(edit.tags)))
    writes = [lead_write(site, contact_id)]
    if columns:
        writes.append(
            Write(
                f"UPDATE leads SET {', '.join(columns)} WHERE site = ? AND contact_id = ?",  # noqa: S608 - fixed column names
                (*params, site, contact_id),
                _RANK,
            )
        )
    writes.extend(history_write(site, contact_id, e) for e in entries)
    if columns and entries:
        writes.append(_contact_event(site, contact_id, tuple(entries), entries[0].at))
    return writes


def _contact_event(
    site: str,
    contact_id: str,
    entries: tuple[HistoryEntry, ...],
    at: datetime,
    status_from: str | None = None,
) -> Write:
    """`contact.updated` with the lead's changes; with `status_from`, only if the status still
    is that when the commit moves it (as the status change itself)."""
    changes = [{"field": e.what, "before": e.before, "after": e.after} for e in entries]
    by = entries[0].who if entries else "system"
    data = {"contact_id": contact_id, "site": site, "changes": changes, "by": by}
    payload = {"site": site, "key": f"contact:{contact_id}", "data": data}
    if status_from is None:
        return wanted_write("contact.updated", payload, at, rank=_RANK)
    where = "EXISTS (SELECT 1 FROM leads WHERE site = ? AND contact_id = ? AND status = ?)"
    return wanted_write(
        "contact.updated", payload, at, where, (site, contact_id, status_from), _RANK
    )


def _task_event(
    site: str, contact_id: str, task_id: str, call_id: str, due_at: datetime, at: datetime
) -> Write:
    """`task.created`, only if the task is new (a task id written twice is one task)."""
    data = {
        "task_id": task_id,
        "site": site,
        "contact_id": contact_id,
        "call_id": call_id,
        "due_at": ts(due_at),
        "created_at": ts(at),
    }
    payload = {"site": site, "key": f"contact:{contact_id}", "data": data}
    where = "NOT EXISTS (SELECT 1 FROM tasks WHERE task_id = ?)"
    return wanted_write("task.created", payload, at, where, (task_id,), _RANK)


def task_writes(
    task_id: str,
    site: str,
    contact_id: str,
    *,
    close: bool | None,
    assignee: str | None,
    who: str,
    at: datetime,
    was_open: bool,
    was_assignee: str,
) -> list[Write]:
    """A person closing, reopening or assigning a task, with its history."""
    writes: list[Write] = []
    if close is not None and close == was_open:
        closed_at, closed_by = (ts(at), who) if close else (None, "")
        writes.append(
            Write(
                "UPDATE tasks SET closed_at = ?, closed_by = ? WHERE task_id = ?",
                (closed_at, closed_by, task_id),
                _RANK,
            )
        )
        before, after = ("open", "closed") if close else ("closed", "open")
        entry = HistoryEntry(who, "task", before, f"{after} {task_id}", at)
        writes.append(history_write(site, contact_id, entry))
    if assignee is not None and assignee != was_assignee:
        writes.append(
            Write("UPDATE tasks SET assignee = ? WHERE task_id = ?", (assignee, task_id), _RANK)
        )
        entry = HistoryEntry(who, "assignee", was_assignee, assignee, at)
        writes.append(history_write(site, contact_id, entry))
    return writes
