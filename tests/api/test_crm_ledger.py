"""The CRM works by itself from AMI's final call updates: a missed call makes a follow-up task,
the next answered call closes it, a long enough one makes the lead `contacted`; the number's
facts are looked up once; and a CRM fault never costs a call record."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.appkeys import DB
from gateway.metrics import Metrics
from gateway.store.calls import call_write
from gateway.store.contacts import contact_call_write, contact_for_number
from gateway.store.crm import CrmStep
from gateway.store.database import Database, Write
from gateway.store.times import ts
from gateway.telephony import call_ledger
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.call_lifecycle import CallUpdate
from numberpool.calls import CallAttribution, CallRecord
from numberpool.crm import CrmRules

pytestmark = pytest.mark.timeout(60)

CALLER = "+12025550100"


async def record_call(
    db: Database, call_id: str, at: datetime, caller: str = CALLER, site: str = "demo"
) -> str:
    """A ringing call record as the route writes it (with its contact); returns the contact."""
    contact_id = await contact_for_number(db, caller) if caller else None
    first = contact_id is None
    if caller and contact_id is None:
        contact_id = f"k{abs(hash(caller)) % 10**12:012d}"
    record = CallRecord(
        call_id=call_id,
        site=site,
        dialed="+14155550150",
        started_at=ts(at),
        state="ringing",
        attribution=CallAttribution("static", source="billboard", medium="offline"),
        caller=caller,
        caller_name="Ada",
        linkedid=f"L{call_id}",
        first_time=first,
        contact_id=contact_id,
    )
    writes = [call_write(record)]
    if caller:
        writes.insert(0, contact_call_write(record))
    await db.write(writes)
    return contact_id or ""


async def settle(db: Database) -> None:
    """Wait until what was queued before has been committed (the CRM's own request)."""
    await db.write([Write("SELECT 1", ())])


def final(call_id: str, state: str, at: datetime, talk: float | None = None) -> CallUpdate:
    answered = at + timedelta(seconds=5) if state == "answered" else None
    end = at + timedelta(seconds=5 + (talk or 20))
    return CallUpdate(
        f"L{call_id}",
        state,
        at,
        answered_at=answered,
        ended_at=end,
        talk_seconds=talk,
        final=True,
    )


async def rows(db: Database, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall(sql, params)]


async def test_a_missed_call_makes_a_task_the_next_answered_call_closes(client, clock) -> None:
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())
    at = clock.now()
    contact = await record_call(db, "c1", at)
    await ledger.call_updated(final("c1", "missed", at))
    await settle(db)
    tasks = await rows(db, "SELECT * FROM tasks")
    assert len(tasks) == 1
    task = tasks[0]
    assert (task["site"], task["contact_id"], task["call_id"]) == ("demo", contact, "c1")
    assert task["due_at"] == ts(at + timedelta(seconds=25) + timedelta(minutes=60))
    assert task["closed_at"] is None and task["assignee"] == ""
    lead = await rows(db, "SELECT status FROM leads WHERE contact_id = ?", contact)
    assert lead == [{"status": "new"}]

    later = at + timedelta(hours=2)
    await record_call(db, "c2", later)
    await ledger.call_updated(final("c2", "answered", later, talk=12.0))
    await settle(db)
    task = (await rows(db, "SELECT * FROM tasks"))[0]
    assert task["closed_at"] == ts(later + timedelta(seconds=17)) and task["closed_by"] == "system"
    # 12 s of talk is under the 30 s threshold: still new.
    assert (await rows(db, "SELECT status FROM leads"))[0]["status"] == "new"
    history = await rows(
        db, "SELECT who, what, before, after FROM contact_history ORDER BY entry_id"
    )
    assert history == [
        {"who": "system", "what": "task", "before": "", "after": "follow-up missed call"},
        {"who": "system", "what": "task", "before": "open", "after": "closed t-c1"},
    ]


async def test_talk_over_the_threshold_makes_the_lead_contacted(client, clock) -> None:
    db = client.app[DB]
    ledger = CallLedger(db, Metrics(), CrmRules(contacted_talk_seconds=45))
    at = clock.now()
    await record_call(db, "c1", at)
    await ledger.call_updated(final("c1", "answered", at, talk=44.0))
    await settle(db)
    assert (await rows(db, "SELECT status FROM leads"))[0]["status"] == "new"
    await record_call(db, "c2", at + timedelta(minutes=5))
    await ledger.call_updated(final("c2", "answered", at + timedelta(minutes=5), talk=45.0))
    await settle(db)
    assert (await rows(db, "SELECT status FROM leads"))[0]["status"] == "contacted"
    entries = await rows(db, "SELECT who, what, before, after FROM contact_history")
    assert entries == [{"who": "system", "what": "status", "before": "new", "after": "contacted"}]
    # A later long call does not move a contacted lead back, nor write history again.
    await record_call(db, "c3", at + timedelta(minutes=9))
    await ledger.call_updated(final("c3", "answered", at + timedelta(minutes=9), talk=300.0))
    await settle(db)
    assert len(await rows(db, "SELECT * FROM contact_history")) == 1


async def test_the_numbers_facts_are_looked_up_once(client, clock) -> None:
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())
    at = clock.now()
    contact = await record_call(db, "c1", at, caller="+33612345678")
    await ledger.call_updated(final("c1", "abandoned", at))
    for _ in range(200):
        row = await db.lookup("SELECT * FROM contacts WHERE contact_id = ?", (contact,))
        if row["facts_at"]:
            break
        await asyncio.sleep(0.02)
    assert (row["region"], row["line_type"], row["carrier"], row["geo"]) == (
        "FR",
        "mobile",
        "SFR",
        "France",
    )


async def test_a_crm_fault_leaves_the_call_stored(client, clock, monkeypatch) -> None:
    """The CRM step raising (a bug) or its rows failing (a broken constraint): the call record
    is final all the same, and the fault is logged, not raised."""
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())

    async def broken(*args: Any) -> Any:
        raise RuntimeError("crm bug")

    at = clock.now()
    monkeypatch.setattr(call_ledger, "crm_after_call", broken)
    await record_call(db, "c1", at)
    await ledger.call_updated(final("c1", "missed", at))
    await settle(db)
    call = (await rows(db, "SELECT state, ended_at FROM calls WHERE call_id = 'c1'"))[0]
    assert call["state"] == "missed" and call["ended_at"]
    assert await rows(db, "SELECT * FROM tasks") == []

    async def bad_rows(*args: Any) -> Any:
        return CrmStep([Write("INSERT INTO leads (site) VALUES (NULL)", ())], None)

    monkeypatch.setattr(call_ledger, "crm_after_call", bad_rows)
    await record_call(db, "c2", at)
    await ledger.call_updated(final("c2", "answered", at, talk=60.0))
    await settle(db)
    call = (await rows(db, "SELECT state, ended_at FROM calls WHERE call_id = 'c2'"))[0]
    assert call["state"] == "answered" and call["ended_at"]
    assert await rows(db, "SELECT * FROM leads") == []  # the bad rows were not committed


async def test_an_anonymous_call_and_a_resync_close(client, clock) -> None:
    """No caller: no contact, no task. A call closed on resync unanswered gets its task."""
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())
    at = clock.now()
    await record_call(db, "c1", at, caller="")
    await ledger.call_updated(final("c1", "missed", at))
    await settle(db)
    assert await rows(db, "SELECT * FROM tasks") == []
    await record_call(db, "c2", at)
    await ledger.calls_resynced(CallsResynced(frozenset(), at + timedelta(minutes=2)))
    await settle(db)
    assert [t["call_id"] for t in await rows(db, "SELECT * FROM tasks")] == ["c2"]
