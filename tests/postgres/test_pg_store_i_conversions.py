"""Conversions on both backends: a period's call facts (with the visit's click ids and the call
snapshot's JSON), claims, reclaims and upload results (SQLite, the reference, then PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import calls, conversions, crm, sessions
from gateway.store.database import Write
from gateway.store.times import ts
from numberpool.calls import CallAttribution, CallRecord
from numberpool.visit import VisitContext
from reports.conversions import Conversion

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _call(call_id: str, minutes: int, attribution: CallAttribution) -> CallRecord:
    start = T0 + timedelta(minutes=minutes)
    return CallRecord(
        call_id=call_id,
        site="demo",
        dialed="+14155550111",
        started_at=ts(start),
        ended_at=ts(start + timedelta(minutes=2)),
        answered_at=ts(start + timedelta(seconds=5)),
        state="answered",
        attribution=attribution,
        caller="+14155550123",
        contact_id="k1",
        talk_seconds=115.0,
    )


async def _calls(store: Any) -> None:
    visit = VisitContext(url="https://demo.example/?msclkid=m1", gclid="g-visit", msclkid="m1")
    active = CallAttribution("active", session_id="s1", visitor_id="v1", gclid="g-snap")
    static = CallAttribution("static", gclid="g-static", landing_page="/offer")
    open_call = dataclasses.replace(_call("c3", 3, static), ended_at=None)
    await store.write(
        [
            sessions.session_write("s1", "demo", "v1", visit, [], ts(T0), ts(T0 + DAY)),
            calls.call_write(_call("c1", 1, active)),
            calls.call_write(_call("c2", 2, static)),
            calls.call_write(open_call),  # not ended: not a conversion yet
            calls.call_write(_call("c4", 60 * 25, static)),  # the next day
            crm.lead_write("demo", "k1"),
            Write(
                "UPDATE leads SET spam = 1 WHERE site = ? AND contact_id = ?", ("demo", "k1"), 90
            ),
        ]
    )


async def test_the_call_facts_of_a_period(store: Any) -> None:
    await _calls(store)
    facts = await conversions.call_facts(store, "demo", T0, T0 + DAY, "google_ads")
    assert [f.call_id for f in facts] == ["c1", "c2"]
    first, second = facts
    assert (first.gclid, first.msclkid, first.landing_url) == (
        "g-visit",
        "m1",
        "https://demo.example/?msclkid=m1",
    )
    assert (second.gclid, second.landing_page, second.msclkid) == ("g-static", "/offer", "")
    assert first.answered and first.talk_seconds == 115.0 and first.spam  # the lead's spam mark
    assert first.ended_at == T0 + timedelta(minutes=3) and first.inbound


async def test_claims_reclaims_and_results(store: Any) -> None:
    await _calls(store)
    rows = [
        Conversion("baidu_ocpc", call_id, "bd_vid", "b1", T0, T0, logid_url=f"u-{call_id}")
        for call_id in ("c1", "c2")
    ]
    first, second = conversions.new_batch(), conversions.new_batch()
    until = T0 + timedelta(minutes=5)
    await store.write(
        conversions.claim_writes(rows, "demo", first, T0, state="sending", lease_until=until)
    )
    # A second sender at once claims nothing: each call is claimed once.
    await store.write(
        conversions.claim_writes(rows, "demo", second, T0, state="sending", lease_until=until)
    )
    assert await conversions.claimed_call_ids(store, "baidu_ocpc", first) == {"c1", "c2"}
    assert await conversions.claimed_call_ids(store, "baidu_ocpc", second) == set()
    unsent = await conversions.call_facts(
        store, "demo", T0, T0 + DAY, "baidu_ocpc", unsent_only=True
    )
    assert unsent == []
    uploads = await conversions.claimed_uploads(store, "baidu_ocpc", first)
    assert [(u.call_id, u.payload, u.attempts, u.created_at) for u in uploads] == [
        ("c1", "u-c1", 0, T0),
        ("c2", "u-c2", 0, T0),
    ]
    retry_at = T0 + timedelta(minutes=10)
    await store.write(
        [
            conversions.upload_result_write("baidu_ocpc", first, "c1", "sent", "ok", at=T0),
            conversions.upload_result_write(
                "baidu_ocpc", first, "c2", "retry", "busy", at=T0, retry_at=retry_at
            ),
        ]
    )
    later = T0 + timedelta(minutes=11)
    await store.write(
        [
            conversions.reclaim_write(
                "demo", "baidu_ocpc", second, later, later + timedelta(minutes=5)
            )
        ]
    )
    assert await conversions.claimed_call_ids(store, "baidu_ocpc", second) == {"c2"}
    listed = await conversions.list_conversions(store, "demo", platform="baidu_ocpc")
    assert [(c["call_id"], c["state"], c["attempts"]) for c in listed] == [
        ("c1", "sent", 1),
        ("c2", "sending", 1),
    ]
    assert listed[0]["sent_at"] == ts(T0) and listed[0]["next_attempt_at"] is None
    assert await conversions.list_conversions(store, "demo", state="sent", limit=5) == listed[:1]
    assert await conversions.list_conversions(store, "demo", offset=2) == []


async def test_a_new_only_file_made_again(store: Any) -> None:
    await _calls(store)
    rows = [Conversion("google_ads", "c2", "gclid", "g-static", T0, T0)]
    batch = conversions.new_batch()
    await store.write(
        conversions.claim_writes(rows, "demo", batch, T0, state="sent", answer="file-1.csv")
    )
    again = await conversions.exported_facts(store, "demo", "google_ads", "file-1.csv")
    assert [(f.call_id, f.gclid, f.landing_page) for f in again] == [("c2", "g-static", "/offer")]
    unsent = await conversions.call_facts(
        store, "demo", T0, T0 + DAY, "google_ads", unsent_only=True
    )
    assert [f.call_id for f in unsent] == ["c1"]
