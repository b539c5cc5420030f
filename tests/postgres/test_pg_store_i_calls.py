"""Call records read back equal, and click-to-call records, on both backends (SQLite, the
reference, then PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.store import calls
from gateway.store.calls import CallFilter
from numberpool.calls import CallAttribution, CallRecord

pytestmark = pytest.mark.postgres

STARTED = "2026-01-05T09:00:00.000000Z"


def _record(call_id: str, **given: Any) -> CallRecord:
    attribution = CallAttribution(
        "active",
        session_id="s1",
        visitor_id="v1",
        source="google",
        medium="cpc",
        gclid="g1",
        landing_page="/offer",
        confidence=0.75,
        other_session_id="s2",
        other_visitor_id="v2",
    )
    fields: dict[str, Any] = {
        "call_id": call_id,
        "site": "demo",
        "dialed": "+14155550111",
        "started_at": STARTED,
        "state": "answered",
        "attribution": attribution,
        "caller": "+14155550123",
        "caller_name": "ANN",
        "linkedid": f"L{call_id}",
        "answered_at": "2026-01-05T09:00:04.500000Z",
        "ended_at": "2026-01-05T09:01:04.500000Z",
        "agent": "PJSIP/agent1",
        "route": "PJSIP/+14155550100",
        "ring_seconds": 4.5,
        "talk_seconds": 60.0,
        "hangup_cause": "16",
        "recording": "r.wav",
        "first_time": False,
        "contact_id": "k1",
        "test_call": True,
    }
    return CallRecord(**{**fields, **given})


async def test_a_call_record_reads_back_equal(store: Any) -> None:
    whole = _record("c1")
    bare = CallRecord("c2", "demo", "+14155550111", STARTED, "ringing", CallAttribution("none"))
    await store.write([calls.call_write(whole), calls.call_write(bare)])
    rows = await store.fetchall("SELECT * FROM calls ORDER BY call_id")
    assert [calls.record_from_row(row) for row in rows] == [whole, bare]


async def test_click_to_call_records(store: Any) -> None:
    await store.write(calls.outbound_call_writes(_record("o1", answered_at=None, ended_at=None)))
    await store.write(calls.outbound_call_writes(_record("o2")))
    await store.write([calls.call_write(_record("i1", answered_at=None))])
    listed = await calls.list_calls(store, CallFilter(site="demo"))
    assert {c["call_id"]: c["direction"] for c in listed} == {
        "o1": "outbound",
        "o2": "outbound",
        "i1": "inbound",
    }
    # Only an outbound call never answered is dropped.
    for call_id in ("o1", "o2", "i1"):
        await store.write([calls.outbound_dropped_write(call_id)])
    rows = await store.fetchall("SELECT call_id FROM calls ORDER BY call_id")
    assert [row["call_id"] for row in rows] == ["i1", "o2"]
