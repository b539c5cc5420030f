"""Call records, contacts, visits and the webhook outbox on both backends: the statements of the
route and the AMI follower that already run on PostgreSQL (docs/postgresql.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import calls, contacts, outbox, sessions, webhooks
from gateway.store.calls import CallFilter
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.lease import Lease
from numberpool.visit import VisitContext

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _call(call_id: str, *, caller: str = "+14155550123", minutes: int = 0) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        site="demo",
        dialed="+14155550111",
        started_at=ts(T0 + timedelta(minutes=minutes)),
        state="ringing",
        attribution=CallAttribution("active", session_id="s1", visitor_id="v1", source="ads"),
        caller=caller,
        linkedid=f"L{call_id}",
        contact_id="k1",
        ring_seconds=None,
    )


async def test_call_records_from_the_route_to_the_end(store: Any) -> None:
    await store.write([calls.call_write(_call("c1")), calls.call_write(_call("c2", minutes=5))])
    found = await calls.call_for_linkedid(store, "Lc1")
    assert found is not None and found.call_id == "c1" and found.attribution.source == "ads"
    linked = await calls.linked_call(store, "Lc1")
    assert linked is not None and linked.call_id == "c1"
    await store.write(
        [
            calls.call_progress_write(
                "Lc1",
                "answered",
                agent="PJSIP/agent1",
                answered_at=T0 + timedelta(seconds=4),
                ended_at=T0 + timedelta(seconds=64),
                ring_seconds=4.0,
                talk_seconds=60.0,
                recording="",
                hangup_cause="16",
                route=None,
            )
        ]
    )
    shown = await calls.find_call(store, "c1")
    assert shown is not None and shown["state"] == "answered"
    assert shown["talk_seconds"] == 60.0 and shown["agent"] == "PJSIP/agent1"
    assert [c["call_id"] for c in await calls.list_calls(store, CallFilter(site="demo"))] == [
        "c2",
        "c1",
    ]
    still_open = await calls.open_calls(store, T0 + timedelta(hours=1))
    assert [c.call_id for c in still_open] == ["c2"]
    await store.write([calls.call_closed_write("c2", "missed", T0 + timedelta(hours=1))])
    assert await calls.open_calls(store, T0 + timedelta(hours=1)) == []


async def test_a_caller_becomes_a_contact(store: Any) -> None:
    assert await contacts.contact_for_number(store, "+14155550123") is None
    await store.write([contacts.contact_call_write(_call("c1"))])
    await store.write([contacts.contact_call_write(_call("c2", minutes=5))])
    assert await contacts.contact_for_number(store, "+14155550123") == "k1"
    row = await store.fetchone("SELECT calls, last_call_at FROM contacts WHERE contact_id = 'k1'")
    assert row is not None and (row["calls"], row["last_call_at"]) == (
        2,
        ts(T0 + timedelta(minutes=5)),
    )


async def test_a_visit_its_lease_and_the_call_it_explains(store: Any) -> None:
    visit = VisitContext(url="https://demo.example/?gclid=g1", gclid="g1", utm_source="ads")
    lease = Lease("l1", "demo:main", "+14155550111", "s1", "v1", T0, T0, T0 + timedelta(minutes=30))
    await store.write(
        [
            sessions.session_write(
                "s1", "demo", "v1", visit, [], ts(T0), ts(T0 + timedelta(hours=1))
            ),
            sessions.lease_write(lease),
            sessions.lease_write(lease._replace(until=T0 + timedelta(minutes=45))),  # the upsert
            sessions.pool_exhausted_write("demo:main", ts(T0), "s1"),
        ]
    )
    assert await sessions.session_known(store, "s1") and not await sessions.session_known(
        store, "x"
    )
    live = await sessions.sessions_live_at(store, T0 + timedelta(minutes=10))
    assert [s.session_id for s in live] == ["s1"]
    await store.write([sessions.session_seen_write("s1", T0, T0 + timedelta(hours=2))])
    stored = await calls.attributed_visit(store, "s1")
    assert stored is not None and stored.gclid == "g1" and stored.utm_source == "ads"
    row = await store.fetchone("SELECT until FROM leases WHERE lease_id = 'l1'")
    assert row is not None and row["until"] == ts(T0 + timedelta(minutes=45))


async def test_an_event_goes_out_through_the_outbox(store: Any) -> None:
    endpoint = await webhooks.create_endpoint(
        store, "demo", "https://hooks.example/", ["call.started"], "whsec_x", T0
    )
    await store.write([calls.call_write(_call("c1")), outbox.call_started_write(_call("c1"))])
    [event] = await outbox.new_events(store, 10)
    assert event.topic == "call.started" and event.payload["key"] == "c1"
    await store.write(
        outbox.fan_out_writes(event.event_id, "{}", T0, [(endpoint.endpoint_id, "c1")])
    )
    assert await outbox.new_events(store, 10) == []
    [due] = await outbox.due_deliveries(store, T0 + timedelta(seconds=1), 10)
    assert due.endpoint_id == endpoint.endpoint_id and due.body == "{}"
    assert await outbox.due_deliveries(store, T0, 10, skip=[endpoint.endpoint_id]) == []
    await store.write([outbox.delivered_write(due.delivery_id, 200, T0)])
    [shown] = await webhooks.list_deliveries(store)
    assert shown["state"] == "delivered" and shown["last_status"] == 200


async def test_conditional_events_retries_parking_and_the_prune(store: Any) -> None:
    endpoint = await webhooks.create_endpoint(
        store, "demo", "https://hooks.example/", ["call.updated"], "whsec_x", T0
    )
    await store.write([calls.call_write(_call("c1"))])
    changed = outbox.call_changed_write("call.updated", "c1", "demo", {"state": "answered"}, T0)
    await store.write([changed])
    await store.write([calls.call_closed_write("c1", "missed", T0)])
    await store.write([changed])  # the call has ended: no event
    [event] = await outbox.new_events(store, 10)
    pairs = [(endpoint.endpoint_id, "c1"), (endpoint.endpoint_id, "c1")]
    await store.write(outbox.fan_out_writes(event.event_id, "{}", T0, pairs))
    [first] = await outbox.due_deliveries(store, T0, 10)  # the next of its call only
    await store.write(outbox.failed_writes(first, 500, "boom", T0 + timedelta(minutes=1)))
    await store.write([outbox.pull_forward_write(endpoint.endpoint_id, T0)])
    [first] = await outbox.due_deliveries(store, T0, 10)  # the next of its call only
    await store.write(outbox.failed_writes(first, None, "gone", None))
    states = {d["state"] for d in await webhooks.list_deliveries(store)}
    assert states == {"parked"}
    assert await webhooks.replay_deliveries(store, endpoint.endpoint_id, T0) == 2
    await store.write(outbox.failed_writes(first, None, "gone again", None))
    retried = await webhooks.retry_delivery(store, first.delivery_id, T0)
    assert retried is not None and retried["next_attempt_at"] == ts(T0)  # due again, "failed"
    assert await webhooks.find_delivery(store, 10**6) is None
    await store.write([outbox.expire_write(T0 + timedelta(days=1), 24)])
    later = T0 + timedelta(days=30)
    last = await outbox.prune_range(store, 0, 100, later)
    assert last == event.event_id
    await store.write(outbox.prune_writes(0, last, later, later))
    assert await outbox.new_events(store, 10) == []
    assert await store.fetchall("SELECT event_id FROM outbox") == []


async def test_the_config_endpoints_follow_the_file(store: Any) -> None:
    def config_endpoint(events: tuple[str, ...]) -> webhooks.Endpoint:
        return webhooks.Endpoint(
            "cfg-1", "demo", "https://hooks.example/", events, "s", "config", ts(T0)
        )

    await webhooks.sync_config_endpoints(store, [config_endpoint(("call.started",))])
    await webhooks.sync_config_endpoints(store, [config_endpoint(("call.ended",))])
    [kept] = await webhooks.list_endpoints(store, ["demo"])
    assert kept.events == ("call.ended",)
    await webhooks.sync_config_endpoints(store, [])
    assert await webhooks.list_endpoints(store) == []
