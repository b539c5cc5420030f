"""A gateway without webhook endpoints: the route, AMI and the CRM queue no event nobody asked
for, and the sender looks at the outbox every idle interval instead of every poll interval, back
to polling once an endpoint exists."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.metrics import Metrics
from gateway.store import outbox
from gateway.store.calls import call_write
from gateway.store.database import Database
from gateway.store.times import ts
from gateway.store.webhooks import create_endpoint
from gateway.webhook_settings import WebhookSettings
from gateway.webhooks import worker as worker_module
from gateway.webhooks.worker import WebhookWorker
from numberpool.calls import CallAttribution, CallRecord
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
URL = "https://hooks.example/ctgw"


@pytest.fixture
async def db(tmp_path: Path):
    store = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    yield store
    await store.close()


def a_call(call_id: str, site: str = "demo") -> CallRecord:
    return CallRecord(
        call_id=call_id,
        site=site,
        dialed="+14155550111",
        started_at=ts(T0),
        state="ringing",
        attribution=CallAttribution("unattributed"),
        caller="+14155550123",
        linkedid=f"L{call_id}",
        ring_seconds=None,
    )


async def route(db: Database, call_id: str) -> None:
    """What the route commits for a call: its row and its `call.started`."""
    call = a_call(call_id)
    await db.write([call_write(call), outbox.call_started_write(call)])


async def started(db: Database) -> list[str]:
    rows = await db.fetchall("SELECT payload FROM outbox WHERE topic = 'call.started'")
    return [str(r["payload"]) for r in rows]


async def test_call_started_is_queued_only_when_an_endpoint_of_the_site_wants_it(db) -> None:
    await route(db, "c1")
    assert await started(db) == []  # no endpoint at all
    await create_endpoint(db, "other", URL, ["call.started"], "whsec_x" * 3, T0)
    await create_endpoint(db, "demo", URL, ["call.completed", "task.created"], "whsec_x" * 3, T0)
    await route(db, "c2")
    assert await started(db) == []  # another site's endpoint; one not asking for it
    await create_endpoint(db, "demo", URL + "/2", ["call.updated", "call.started"], "s" * 16, T0)
    await route(db, "c3")
    [payload] = await started(db)
    assert '"key": "c3"' in payload
    call_rows = await db.fetchall("SELECT call_id FROM calls ORDER BY call_id")
    assert [r["call_id"] for r in call_rows] == ["c1", "c2", "c3"]  # every call is recorded


async def test_call_changes_are_queued_only_when_an_endpoint_of_the_site_wants_them(db) -> None:
    """call.updated and call.completed as AMI's ledger commits them (contact.updated and
    task.created go the same way: tests/api/test_webhooks.py)."""
    await route(db, "c1")

    async def change(topic: str) -> None:
        changes = {"state": "answered"}
        await db.write(
            [outbox.call_changed_write(topic, "c1", "demo", changes, T0, linkedid="Lc1")]
        )

    async def queued() -> list[str]:
        return [str(r["topic"]) for r in await db.fetchall("SELECT topic FROM outbox")]

    await change("call.updated")
    await change("call.completed")
    assert await queued() == []  # no endpoint: nothing nobody would read
    await create_endpoint(db, "other", URL, ["call.completed"], "s" * 16, T0)
    await create_endpoint(db, "demo", URL, ["call.completed"], "s" * 16, T0)
    await change("call.updated")
    await change("call.completed")
    assert await queued() == ["call.completed"]
    payload = await db.fetchone("SELECT payload FROM outbox")
    assert payload is not None and '"key": "c1"' in payload["payload"]


def sender(db: Database, clock: FakeClock, **kwargs: Any) -> WebhookWorker:
    return WebhookWorker(db, WebhookSettings(), clock, Metrics(), **kwargs)


async def test_the_sender_waits_the_idle_interval_while_no_endpoint_exists(db) -> None:
    now = [100.0]
    worker = sender(
        db, FakeClock(T0), poll_seconds=0.25, idle_seconds=5.0, monotonic=lambda: now[0]
    )
    assert await worker.next_wait() == 5.0
    await create_endpoint(db, "demo", URL, ["call.started"], "s" * 16, T0)
    # Made by another process (the CLI, another gateway): seen within the idle interval.
    now[0] += 4.9
    assert await worker.next_wait() == 5.0
    now[0] += 0.1
    assert await worker.next_wait() == 0.25


async def test_a_wake_makes_the_sender_look_for_endpoints_at_once(db) -> None:
    clock = FakeClock(T0)
    worker = sender(db, clock, poll_seconds=0.25, idle_seconds=5.0)
    assert await worker.next_wait() == 5.0
    await create_endpoint(db, "demo", URL, ["call.started"], "s" * 16, T0)
    worker.wake()
    assert await worker.next_wait() == 0.25


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


async def test_the_running_sender_does_not_poll_an_outbox_no_endpoint_reads(
    db, monkeypatch
) -> None:
    """With no endpoint, one round, then nothing until the idle interval (an hour here) or a
    wake; polling resumes once an endpoint exists."""
    rounds = 0
    real = worker_module.new_events

    async def counted(store: Database, limit: int) -> list[outbox.NewEvent]:
        nonlocal rounds
        rounds += 1
        return await real(store, limit)

    monkeypatch.setattr(worker_module, "new_events", counted)
    worker = sender(db, FakeClock(T0), poll_seconds=0.01, idle_seconds=3600.0)
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: rounds >= 1)
        await asyncio.sleep(0.3)  # 30 poll intervals
        assert rounds == 1
        # A loopback URL: the address guard refuses the attempt, nothing leaves the machine.
        await create_endpoint(db, "demo", "http://127.0.0.1:9/hook", ["call.started"], "s" * 16, T0)
        worker.wake()
        await until(lambda: rounds >= 5)  # polling again, every 10 ms
        await route(db, "c1")
        await until(lambda: rounds >= 10)
        row = await db.fetchone("SELECT count(*) AS n FROM webhook_deliveries")
        assert row is not None and row["n"] == 1  # the new call's event was fanned out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.close()
