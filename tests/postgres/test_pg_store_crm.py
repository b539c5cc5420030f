"""The CRM's reads and its portable writes on both backends (docs/postgresql.md: `list_leads`
and the `INSERT OR IGNORE` writes are SQLite-only still)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import calls, contacts, crm, crm_reads
from gateway.store.crm_reads import TaskFilter
from gateway.store.database import Write
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.crm import HistoryEntry, NumberFacts

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALLER = "+14155550123"


async def _called(store: Any) -> None:
    """Two calls of one caller to `demo`, its contact `k1`, a lead, a task and history."""
    for n in (1, 2):
        call = CallRecord(
            call_id=f"c{n}",
            site="demo",
            dialed="+14155550111",
            started_at=ts(T0 + timedelta(minutes=n)),
            state="missed",
            attribution=CallAttribution("static", source="billboard"),
            caller=CALLER,
            contact_id="k1",
        )
        await store.write([calls.call_write(call), contacts.contact_call_write(call)])
    await store.write(
        [
            Write(
                "INSERT INTO leads (site, contact_id, status, tags) VALUES (?, ?, ?, ?)",
                ("demo", "k1", "contacted", '["vip"]'),
            ),
            Write(
                "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                ("t1", "demo", "k1", "c2", ts(T0 + timedelta(hours=1)), ts(T0)),
            ),
            crm.history_write(
                "demo", "k1", HistoryEntry("system", "status", "new", "contacted", T0)
            ),
            crm.facts_write("k1", NumberFacts("US", "mobile", "", "California"), T0),
            crm.disposition_write("c2", "callback", "after 5"),
        ]
    )


async def test_a_lead_shown_with_its_calls_tasks_and_history(store: Any) -> None:
    await _called(store)
    facts = await crm_reads.contact_facts(store, "k1")
    assert facts is not None and (facts["number"], facts["geo"]) == (CALLER, "California")
    assert await crm_reads.contact_sites(store, CALLER, "k1") == ["demo"]
    state = await crm_reads.lead_state(store, "demo", "k1")
    assert (state.status, state.tags) == ("contacted", ("vip",))
    detail = await crm_reads.lead_detail(store, "demo", "k1", CALLER)
    assert [c["call_id"] for c in detail["calls"]] == ["c2", "c1"]
    assert detail["calls"][0]["disposition"] == "callback"
    assert [(h["what"], h["after"]) for h in detail["history"]] == [("status", "contacted")]
    assert [t["task_id"] for t in detail["tasks"]] == ["t1"]


async def test_a_leads_touches_are_its_first_and_latest_inbound_calls(store: Any) -> None:
    """First touch is the lead's first call however many came since (more than the 200 calls
    listed); last touch is its latest inbound call, not a click-to-call placed after it."""

    def call(n: int, source: str) -> CallRecord:
        return CallRecord(
            call_id=f"c{n:03d}",
            site="demo",
            dialed="+14155550111",
            started_at=ts(T0 + timedelta(minutes=n)),
            state="answered",
            attribution=CallAttribution("static", source=source),
            caller=CALLER,
            contact_id="k1",
        )

    await store.write([calls.call_write(call(0, "flyer"))])
    await store.write([calls.call_write(call(n, "google")) for n in range(1, 201)])
    await store.write([calls.call_write(call(201, "radio"))])
    await store.write(calls.outbound_call_writes(replace(call(202, ""), call_id="out1")))
    detail = await crm_reads.lead_detail(store, "demo", "k1", CALLER)
    assert len(detail["calls"]) == 200 and detail["calls"][0]["call_id"] == "out1"
    assert detail["first_touch"]["source"] == "flyer", detail["first_touch"]
    assert detail["last_touch"]["source"] == "radio", detail["last_touch"]
    # Only click-to-calls: no visit known, so no touch.
    await store.write(calls.outbound_call_writes(replace(call(203, ""), contact_id="k2")))
    other = await crm_reads.lead_detail(store, "demo", "k2", CALLER)
    assert (other["first_touch"], other["last_touch"]) == (None, None)
    assert [c["call_id"] for c in other["calls"]] == ["c203"]


async def test_tasks_and_the_lead_of_a_call(store: Any) -> None:
    await _called(store)
    due = ts(T0 + timedelta(hours=2))
    [task] = await crm_reads.list_tasks(
        store, TaskFilter(sites=frozenset({"demo"}), due_before=due)
    )
    assert task["open"] and task["number"] == CALLER
    assert (await crm_reads.find_task(store, "t1") or {})["call_id"] == "c2"
    assert await crm_reads.call_lead(store, "c1") == ("demo", "k1")
    assert await crm_reads.call_lead(store, "none") is None
    assert await crm_reads.call_disposition(store, "c2") == ("callback", "after 5")
