"""Retention of the webhook outbox on a fake clock: old delivered events go with their deliveries,
events still owed to an endpoint stay, parked ones stay for keep_parked_days, and a backlog is
pruned in bounded batches over several rounds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.metrics import Metrics
from gateway.store.database import Database, Write
from gateway.store.outbox import outbox_write, prune_writes
from gateway.store.times import ts
from gateway.webhook_settings import WebhookSettings, webhooks_problem
from gateway.webhooks.worker import WebhookWorker
from tests.conftest import FakeClock

HOOK = "wh_one"
OTHER = "wh_two"


@pytest.fixture
async def db(tmp_path: Path):
    store = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    endpoint = (
        "INSERT INTO webhook_endpoints (endpoint_id, site, url, events, secret, origin,"
        " created_at) VALUES (?, 'demo', ?, '[]', 'x', 'api', '2026-01-01T00:00:00.000000Z')"
    )
    await store.write(
        [Write(endpoint, (HOOK, "https://a.example/")), Write(endpoint, (OTHER, "https://b/"))]
    )
    yield store
    await store.close()


def worker_of(db: Database, clock: FakeClock, **settings: int) -> WebhookWorker:
    return WebhookWorker(db, WebhookSettings(**settings), clock, Metrics(), prune_batch=10)


async def add_event(db: Database, at: datetime, *deliveries: tuple[str, str, datetime]) -> int:
    """An event fanned out at `at`, with deliveries as (endpoint, state, delivered-or-since)."""
    await db.write([outbox_write("call.started", {"site": "demo"}, at)])
    row = await db.fetchone("SELECT max(event_id) AS n FROM outbox")
    assert row is not None
    event_id = int(row["n"])
    writes = [Write("UPDATE outbox SET delivered_at = ? WHERE event_id = ?", (ts(at), event_id))]
    for endpoint, state, when in deliveries:
        writes.append(
            Write(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, order_key, state, due_at,"
                " since, delivered_at) VALUES (?, ?, 'k', ?, ?, ?, ?)",
                (
                    event_id,
                    endpoint,
                    state,
                    ts(when),
                    ts(when),
                    ts(when) if state == "delivered" else None,
                ),
            )
        )
    await db.write(writes)
    return event_id


async def event_ids(db: Database) -> set[int]:
    return {int(r["event_id"]) for r in await db.fetchall("SELECT event_id FROM outbox")}


async def delivery_events(db: Database) -> set[int]:
    rows = await db.fetchall("SELECT event_id FROM webhook_deliveries")
    return {int(r["event_id"]) for r in rows}


async def prune_pass(worker: WebhookWorker, now: datetime) -> int:
    """A whole retention pass; returns how many batches it wrote."""
    batches = 0
    while await worker.prune(now):
        batches += 1
        assert batches < 1000
    return batches


async def test_old_delivered_events_go_and_owed_ones_stay(db: Database) -> None:
    clock = FakeClock()
    start = clock.now()
    delivered = await add_event(db, start, (HOOK, "delivered", start), (OTHER, "delivered", start))
    half = await add_event(db, start, (HOOK, "delivered", start), (OTHER, "pending", start))
    pending = await add_event(db, start, (HOOK, "pending", start))
    parked = await add_event(db, start, (HOOK, "parked", start))
    no_endpoint = await add_event(db, start)
    await db.write([outbox_write("call.started", {"site": "demo"}, start)])
    not_fanned_out = max(await event_ids(db))
    young = await add_event(db, start + timedelta(days=20), (HOOK, "delivered", start))

    worker = worker_of(db, clock)
    await prune_pass(worker, clock.advance(days=31))
    gone = {delivered, no_endpoint}
    assert await event_ids(db) == {half, pending, parked, not_fanned_out, young}
    assert not gone & await delivery_events(db)
    # The event still owed to one endpoint keeps the delivery the other one got.
    rows = await db.fetchall("SELECT state FROM webhook_deliveries WHERE event_id = ?", (half,))
    assert sorted(r["state"] for r in rows) == ["delivered", "pending"]

    # A parked delivery goes after keep_parked_days (its retry window's start counts).
    await prune_pass(worker_of(db, clock), clock.advance(days=60))
    assert await event_ids(db) == {half, pending, not_fanned_out}
    assert await delivery_events(db) == {half, pending}


async def test_a_retried_parked_delivery_keeps_its_event(db: Database) -> None:
    clock = FakeClock()
    start = clock.now()
    parked = await add_event(db, start, (HOOK, "parked", start))
    later = clock.advance(days=80)
    await db.write([Write("UPDATE webhook_deliveries SET since = ?", (ts(later),))])
    await prune_pass(worker_of(db, clock), clock.advance(days=20))
    assert await event_ids(db) == {parked}


async def test_the_decision_is_taken_in_the_commit(db: Database) -> None:
    """A delivery retried between the pass's read and its write keeps its event."""
    clock = FakeClock()
    start = clock.now()
    event = await add_event(db, start, (HOOK, "parked", start))
    now = clock.advance(days=100)
    await db.write([Write("UPDATE webhook_deliveries SET state = 'pending'", ())])
    await db.write(prune_writes(0, event, now - timedelta(days=30), now - timedelta(days=90)))
    assert await event_ids(db) == {event}
    assert await delivery_events(db) == {event}


async def test_a_backlog_goes_in_bounded_batches(db: Database) -> None:
    clock = FakeClock()
    start = clock.now()
    for n in range(95):
        deliveries = [(HOOK, "delivered", start)] if n % 2 else []
        await add_event(db, start, *deliveries)
    kept = await add_event(db, start, (HOOK, "pending", start))
    worker = worker_of(db, clock)

    now = clock.advance(days=31)
    assert await worker.prune(now)
    assert len(await event_ids(db)) == 96 - 10  # one batch of ten events per round
    batches = 1 + await prune_pass(worker, now)
    assert batches == 10
    assert await event_ids(db) == {kept}
    assert await delivery_events(db) == {kept}
    # The next pass waits for its time (ten minutes), then finds nothing to do.
    assert not await worker.prune(clock.advance(minutes=5))
    assert await prune_pass(worker, clock.advance(minutes=6)) == 1
    assert await event_ids(db) == {kept}


async def test_the_sender_prunes_events_of_sites_without_endpoints(db: Database) -> None:
    """Fanned out to no endpoint by the sender's round, then pruned by a round after retention."""
    clock = FakeClock()
    await db.write([outbox_write("task.created", {"site": "elsewhere"}, clock.now())])
    worker = worker_of(db, clock, keep_delivered_days=7)
    await worker.round(wait=True)
    assert len(await event_ids(db)) == 1
    clock.advance(days=8)
    while await event_ids(db):
        await worker.round(wait=True)
    assert await delivery_events(db) == set()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"keep_delivered_days": 0}, "keep_delivered_days' must be at least 1"),
        ({"keep_delivered_days": 30, "keep_parked_days": 10}, "keep_parked_days' must be at"),
    ],
)
def test_retention_settings_are_checked(settings: dict[str, int], problem: str) -> None:
    config = SimpleNamespace(webhooks=WebhookSettings(**settings), sites=[])
    found = webhooks_problem(config)
    assert found is not None
    assert problem in found
