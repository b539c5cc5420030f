"""What people do to the CRM (the API and the staff pages alike): edit a lead, set a call's
disposition, close, reopen or assign a task; each change kept in the lead's history."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from gateway.store.crm import (
    disposition_write,
    edit_writes,
    facts_write,
    outcome_writes,
    task_writes,
)
from gateway.store.crm_reads import lead_state
from gateway.store.database import Database, Write
from numberpool.crm import (
    Disposition,
    LeadEdit,
    after_disposition,
    edit_entries,
    number_facts,
)

__all__ = ["edit_lead", "edit_task", "known_facts", "set_disposition"]


async def edit_lead(
    db: Database, site: str, contact_id: str, edit: LeadEdit, who: str, at: datetime
) -> LeadEdit:
    """Apply a person's edit to a lead; returns what really changed (kept in the history)."""
    stored = await lead_state(db, site, contact_id)
    changes = edit.changed_from(stored)
    await db.write(edit_writes(site, contact_id, changes, edit_entries(changes, stored, who, at)))
    return changes


async def set_disposition(
    db: Database,
    disposition: Disposition,
    note: str,
    *,
    call_id: str,
    site: str,
    contact_id: str | None,
    who: str,
    at: datetime,
) -> str | None:
    """Set a call's disposition and apply it to its contact's lead; returns the lead's status
    afterwards (None for an anonymous caller, who has no lead)."""
    writes: list[Write] = [disposition_write(call_id, disposition.name, note)]
    if contact_id is None:
        if disposition.spam:
            writes.append(Write("UPDATE calls SET spam = 1 WHERE call_id = ?", (call_id,), 80))
        await db.write(writes)
        return None
    status = (await lead_state(db, site, contact_id)).status or "new"
    outcome = after_disposition(disposition, status, who, at, note)
    writes += outcome_writes(site, contact_id, outcome, call_id=call_id, who=who, at=at)
    await db.write(writes)
    return (await lead_state(db, site, contact_id)).status


async def edit_task(
    db: Database,
    task: dict[str, Any],
    *,
    close: bool | None,
    assignee: str | None,
    who: str,
    at: datetime,
) -> None:
    """Close, reopen or (re)assign a task as a person asked."""
    await db.write(
        task_writes(
            task["task_id"],
            task["site"],
            task["contact_id"],
            close=close,
            assignee=assignee,
            who=who,
            at=at,
            was_open=task["closed_at"] is None,
            was_assignee=task["assignee"],
        )
    )


async def known_facts(db: Database, contact: dict[str, Any], at: datetime) -> dict[str, Any]:
    """`contact` with its number's facts, looked up on a thread and kept when still missing
    (a contact made before the CRM, or one whose calls AMI did not follow)."""
    if contact.get("facts_at"):
        return contact
    facts = await asyncio.to_thread(number_facts, contact["number"])
    await db.write([facts_write(contact["contact_id"], facts, at)])
    return {**contact, **facts._asdict()}
