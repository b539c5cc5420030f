"""The CRM on both backends: leads listed and searched, the step after a call, a person's edits,
dispositions and tasks (each test runs on SQLite, the reference, then PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import calls, contacts, crm, crm_edits, crm_reads, webhooks
from gateway.store.crm_reads import LeadFilter
from gateway.store.database import Write
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.crm import CrmRules, Disposition, LeadEdit

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES = CrmRules()


async def _call(
    store: Any, call_id: str, caller: str, contact_id: str | None, minutes: int
) -> None:
    call = CallRecord(
        call_id=call_id,
        site="demo",
        dialed="+14155550111",
        started_at=ts(T0 + timedelta(minutes=minutes)),
        state="ringing",
        attribution=CallAttribution("static", source="billboard"),
        caller=caller,
        contact_id=contact_id,
    )
    writes = [calls.call_write(call)]
    if contact_id is not None:  # as the route: an anonymous caller has no contact
        writes.append(contacts.contact_call_write(call))
    await store.write(writes)


async def _three_callers(store: Any) -> None:
    await _call(store, "a1", "+14155550001", "ka", 1)
    await _call(store, "b1", "+14155550002", "kb", 2)
    await _call(store, "a2", "+14155550001", "ka", 3)
    await _call(store, "c1", "+14155550003", "kc", 4)
    await store.write(
        [
            Write("UPDATE contacts SET name = ? WHERE contact_id = ?", ("Ann Smith", "ka")),
            Write("UPDATE contacts SET name = ? WHERE contact_id = ?", ("Bob_Jones", "kb")),
        ]
    )
    at = T0 + timedelta(hours=1)
    await crm_edits.edit_lead(store, "demo", "kb", LeadEdit(status="qualified"), "u1", at)
    await crm_edits.edit_lead(store, "demo", "kc", LeadEdit(name="Carla 100%"), "u1", at)


async def test_leads_listed_filtered_and_searched(store: Any) -> None:
    await _three_callers(store)

    async def ids(**given: Any) -> list[str]:
        return [
            lead["contact_id"] for lead in await crm_reads.list_leads(store, LeadFilter(**given))
        ]

    leads = await crm_reads.list_leads(store, LeadFilter())
    assert [lead["contact_id"] for lead in leads] == ["kc", "ka", "kb"]
    ann = leads[1]
    assert (ann["calls"], ann["first_call_at"], ann["last_call_at"]) == (
        2,
        ts(T0 + timedelta(minutes=1)),
        ts(T0 + timedelta(minutes=3)),
    )
    assert (ann["status"], ann["tags"], ann["spam"], ann["name"]) == ("new", [], False, "Ann Smith")
    assert (leads[0]["name"], leads[2]["status"]) == ("Carla 100%", "qualified")
    assert await ids(status="qualified") == ["kb"]
    assert await ids(status="new") == ["kc", "ka"]
    assert await ids(sites=frozenset({"demo"}), contact_id="ka") == ["ka"]
    assert await ids(sites=frozenset({"other"})) == []
    assert await ids(limit=2, offset=1) == ["ka", "kb"]
    # The search ignores ASCII case, and takes %, _ and \ as themselves.
    assert await ids(q="ann smith") == ["ka"]
    assert await ids(q="BOB") == ["kb"]
    assert await ids(q="_") == ["kb"]
    assert await ids(q="0%") == ["kc"]
    assert await ids(q="555000") == ["kc", "ka", "kb"]
    assert await ids(q="n_s") == []  # not "Ann Smith"
    assert await ids(q="\\") == []


async def test_the_crm_step_after_missed_and_answered_calls(store: Any) -> None:
    await _call(store, "a1", "+14155550001", "ka", 1)
    # Events are queued only for an endpoint that asks for them (tests/unit/test_webhook_idle.py).
    wanted = ["task.created", "contact.updated"]
    await webhooks.create_endpoint(store, "demo", "https://hooks.example/", wanted, "s" * 16, T0)
    ended = T0 + timedelta(minutes=2)
    step = await crm.crm_after_call(store, RULES, "a1", "missed", None, ended)
    assert step.facts_for == ("ka", "+14155550001")
    await store.write(step.writes)
    await store.write(step.writes)  # the same step twice: one lead, one task, one event
    [task] = await crm_reads.list_tasks(store, crm_reads.TaskFilter(site="demo"))
    assert (task["task_id"], task["due_at"]) == ("t-a1", ts(ended + RULES.followup_delay))
    created = await store.fetchall("SELECT topic FROM outbox WHERE topic = 'task.created'")
    assert len(created) == 1
    step = await crm.crm_after_call(store, RULES, "a1", "answered", 45.0, ended)
    await store.write(step.writes)
    await store.write(step.writes)  # the status moved already: no second change
    detail = await crm_reads.lead_detail(store, "demo", "ka", "+14155550001")
    assert detail["status"] == "contacted"
    assert [t["open"] for t in detail["tasks"]] == [False]
    assert [(h["what"], h["before"], h["after"]) for h in detail["history"]] == [
        ("task", "open", "closed t-a1"),
        ("status", "new", "contacted"),
        ("task", "", "follow-up missed call"),
        ("task", "", "follow-up missed call"),
    ]
    updated = await store.fetchall("SELECT payload FROM outbox WHERE topic = 'contact.updated'")
    assert [json.loads(r["payload"])["data"]["changes"][0]["after"] for r in updated] == [
        "contacted"
    ]
    assert await crm.crm_after_call(store, RULES, "nope", "missed", None, ended) == ([], None)


async def test_a_person_edits_a_lead_sets_dispositions_and_tasks(store: Any) -> None:
    await _call(store, "a1", "+14155550001", "ka", 1)
    at = T0 + timedelta(hours=1)
    edit = LeadEdit(status="qualified", tags=("vip", "b2b"), notes="n", spam=False, test=True)
    changed = await crm_edits.edit_lead(store, "demo", "ka", edit, "u1", at)
    assert changed == LeadEdit(status="qualified", tags=("vip", "b2b"), notes="n", test=True)
    state = await crm_reads.lead_state(store, "demo", "ka")
    assert (state.status, state.tags, state.notes, state.spam, state.test) == (
        "qualified",
        ("vip", "b2b"),
        "n",
        False,
        True,
    )
    await store.write(
        crm.outcome_writes(
            "demo", "ka", crm.after_call(_finished("a1", at), RULES), call_id="a1", who="s", at=at
        )
    )
    [task] = await crm_reads.list_tasks(store, crm_reads.TaskFilter(contact_id="ka"))
    await crm_edits.edit_task(store, task, close=None, assignee="u2", who="u1", at=at)
    task = await crm_reads.find_task(store, task["task_id"]) or {}
    assert task["assignee"] == "u2" and task["closed_at"] is None
    await crm_edits.edit_task(store, task, close=True, assignee=None, who="u1", at=at)
    task = await crm_reads.find_task(store, task["task_id"]) or {}
    assert (task["closed_at"], task["closed_by"]) == (ts(at), "u1")
    spam = Disposition("spam", "lost", closes_tasks=True, spam=True)
    status = await crm_edits.set_disposition(
        store, spam, "robot", call_id="a1", site="demo", contact_id="ka", who="u1", at=at
    )
    assert status == "lost"
    assert await crm_reads.call_disposition(store, "a1") == ("spam", "robot")
    await _call(store, "x1", "", None, 2)
    assert (
        await crm_edits.set_disposition(
            store, spam, "", call_id="x1", site="demo", contact_id=None, who="u1", at=at
        )
        is None
    )
    marks = await store.fetchall("SELECT call_id, spam FROM calls ORDER BY call_id")
    assert [(r["call_id"], r["spam"]) for r in marks] == [("a1", 1), ("x1", 1)]
    history = await crm_reads.lead_detail(store, "demo", "ka", "+14155550001")
    assert [h["what"] for h in history["history"]][:4] == ["spam", "status", "disposition", "task"]


async def test_a_contacts_number_facts_are_kept(store: Any) -> None:
    await _call(store, "a1", "+14155550001", "ka", 1)
    contact = await crm_reads.contact_facts(store, "ka") or {}
    assert contact["facts_at"] is None
    known = await crm_edits.known_facts(store, contact, T0)
    assert known["region"] == "US"
    stored = await crm_reads.contact_facts(store, "ka") or {}
    assert (stored["region"], stored["facts_at"]) == ("US", ts(T0))
    assert await crm_edits.known_facts(store, stored, T0) is stored


def _finished(call_id: str, at: datetime) -> Any:
    from numberpool.crm import FinishedCall

    return FinishedCall(call_id, "demo", "ka", "missed", None, at)
