"""Call records stay whole and true: simultaneous callers, late answers, hostile visits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import timedelta

from gateway.appkeys import AGI, DB, DESK
from gateway.metrics import Metrics
from gateway.store.calls import call_for_linkedid, call_json, call_write, find_call
from gateway.store.times import from_ts
from gateway.telephony.agi import AgiRequest
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.call_lifecycle import CallUpdate
from gateway.telephony.route import FALLBACK_ROUTE, CallRouter
from numberpool.calls import ATTRIBUTION_FIELDS, CallAttribution, CallRecord
from tests.api.conftest import open_session
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.unit.test_agi import fake_asterisk


async def test_simultaneous_calls_from_a_new_caller_share_one_contact(client) -> None:
    """Three calls from a new number in one group commit make one contact, one first call."""
    agi = client.app[AGI]
    answers = await asyncio.gather(
        *(
            fake_asterisk(agi, call_env("+14155550150", caller="+12025550177", linkedid=f"5.{i}"))
            for i in range(3)
        )
    )
    assert all(routed(a)["CTGW_ROUTE"] == "PJSIP/agent1" for a in answers)
    db = client.app[DB]
    contacts = await db.fetchall("SELECT contact_id, calls FROM contacts")
    assert len(contacts) == 1 and contacts[0]["calls"] == 3
    calls = await db.fetchall("SELECT contact_id, first_time FROM calls")
    assert {c["contact_id"] for c in calls} == {contacts[0]["contact_id"]}
    assert sorted(c["first_time"] for c in calls) == [0, 0, 1]


def timed_env(number: str, waited: float, timeout: float = 2, linkedid: str = "8.0") -> bytes:
    """A lookup the caller's channel began `waited` seconds ago and waits `timeout` for."""
    return call_env(number, linkedid=linkedid).replace(
        b"\n\n", f"\nagi_arg_5: {time.time() - waited:.3f}\nagi_arg_6: {timeout}\n\n".encode()
    )


async def test_an_answer_later_than_the_callers_wait_is_recorded_as_the_fallback(
    client, admin_key, clock: FakeClock
) -> None:
    """A lookup read after the dialplan gave up (a frozen gateway) gets no route, and its
    record says the call went to the fallback, started when the caller dialed."""
    assert await fake_asterisk(client.app[AGI], timed_env("+14155550150", waited=3.0)) == []
    answer = await client.get("/v1/calls", headers={"Authorization": f"Bearer {admin_key}"})
    [call] = (await answer.json())["calls"]
    assert call["route"] == FALLBACK_ROUTE and call["state"] == "ringing"
    early = clock.now() - from_ts(call["started_at"])
    assert timedelta(seconds=2.9) < early < timedelta(seconds=4)


async def test_a_slow_answer_in_time_is_routed_and_dated_when_the_caller_dialed(
    client, clock: FakeClock
) -> None:
    """A lookup answered within the caller's wait is routed; the record starts at the dial."""
    commands = await fake_asterisk(client.app[AGI], timed_env("+14155550150", waited=1.0))
    assert routed(commands)["CTGW_ROUTE"] == "PJSIP/agent1"
    row = await client.app[DB].fetchone("SELECT route, started_at FROM calls")
    assert row["route"] == "PJSIP/agent1"
    early = clock.now() - from_ts(row["started_at"])
    assert timedelta(seconds=0.9) < early < timedelta(seconds=2)


async def test_garbled_lookup_times_are_ignored(client, clock: FakeClock) -> None:
    """Lookup times that are not numbers or absurd leave the call routed on the gateway's clock."""
    for i, (began, wait) in enumerate([("nan", "2"), ("1e300", "2"), ("x", "y"), ("-5", "-1")]):
        env = call_env("+14155550150", linkedid=f"9.{i}").replace(
            b"\n\n", f"\nagi_arg_5: {began}\nagi_arg_6: {wait}\n\n".encode()
        )
        assert routed(await fake_asterisk(client.app[AGI], env))["CTGW_ROUTE"] == "PJSIP/agent1"
    rows = await client.app[DB].fetchall("SELECT started_at FROM calls")
    assert [from_ts(r["started_at"]) for r in rows] == [clock.now()] * 4


async def test_a_visit_with_a_broken_referrer_still_gets_its_call_routed_and_attributed(
    client,
) -> None:
    """Whatever URL text a visitor sent, the call on its number is routed, recorded, attributed."""
    for i, referrer in enumerate(
        ["http://[bad", "http://[::1/", "http://a\u2100/x", "//[", "\x7f"]
    ):
        response = await open_session(client, referrer=referrer)
        if response.status != 201:
            assert response.status == 400  # refused at the edge: nothing to attribute
            continue
        session = await response.json()
        number = session["numbers"][0]["number"]
        commands = await fake_asterisk(client.app[AGI], call_env(number, linkedid=f"3.{i}"))
        assert routed(commands)["CTGW_ROUTE"] == "PJSIP/agent1", referrer
        row = await client.app[DB].fetchone(
            "SELECT attribution_kind, session_id FROM calls WHERE linkedid = ?", (f"3.{i}",)
        )
        assert row["attribution_kind"] == "active", referrer
        assert row["session_id"] == session["session_id"]


async def test_an_ami_update_read_while_the_record_commits_is_kept(client, clock) -> None:
    """AMI's final update of a call, read after the route queued the record but before its
    commit, completes the record (it was once left ringing for good)."""
    db = client.app[DB]
    ledger = CallLedger(db, Metrics())
    router = CallRouter(
        db, client.app[DESK].book, clock, Metrics(), "US", follow_up=ledger.writes_for_new_call
    )
    request = AgiRequest("+14155550150", "+12025550100", "Ada", "6.0", "6.0", "PJSIP/x-1", {})
    deciding = asyncio.create_task(router.decide(request))
    await asyncio.sleep(0)  # the route has queued its rows; their commit has not run yet
    assert await db.lookup("SELECT 1 FROM calls") is None
    ended = clock.now() + timedelta(seconds=20)
    await ledger.call_updated(
        CallUpdate("6.0", "answered", clock.now(), ended_at=ended, talk_seconds=9.0, final=True)
    )
    assert (await deciding) is not None
    row = await db.fetchone("SELECT state, ended_at, talk_seconds FROM calls")
    assert (row["state"], row["talk_seconds"]) == ("answered", 9.0) and row["ended_at"]


async def test_a_call_record_reads_back_from_the_store_as_it_was_written(client) -> None:
    """Every field of a CallRecord survives the store, and the API shows it as stored."""
    record = CallRecord(
        call_id="c0ffee",
        site="demo",
        dialed="+14155550150",
        started_at="2026-01-05T09:00:00.000000Z",
        state="answered",
        attribution=CallAttribution(
            "probable",
            "s1",
            "v1",
            "google",
            "cpc",
            "spring",
            "plumber",
            "ad2",
            "G1",
            "/",
            "r",
            confidence=0.75,
            other_session_id="s2",
            other_visitor_id="v2",
        ),
        caller="+12025550100",
        caller_name="Ada",
        linkedid="6.1",
        answered_at="2026-01-05T09:00:04.000000Z",
        ended_at="2026-01-05T09:01:04.000000Z",
        agent="PJSIP/agent1",
        route="PJSIP/agent1",
        ring_seconds=4.0,
        talk_seconds=60.0,
        hangup_cause="16 Normal Clearing",
        recording="/rec/6.1.wav",
        first_time=False,
        contact_id="abc",
        test_call=True,
    )
    db = client.app[DB]
    await db.write([call_write(record)])
    assert await call_for_linkedid(db, "6.1") == record
    assert await find_call(db, "c0ffee") == call_json(record)
    stored = await db.fetchone("SELECT attribution FROM calls")
    assert list(json.loads(stored["attribution"])) == list(ATTRIBUTION_FIELDS)
    unattributed = dataclasses.replace(
        record, call_id="c0ffef", linkedid="6.2", attribution=CallAttribution("unattributed")
    )
    await db.write([call_write(unattributed)])
    row = await db.fetchone("SELECT session_id, visitor_id FROM calls WHERE linkedid = '6.2'")
    assert (row["session_id"], row["visitor_id"]) == ("", "")
    assert await call_for_linkedid(db, "6.2") == unattributed


async def test_a_call_recorded_before_confidence_reads_it_as_null(client, admin_key) -> None:
    """A record stored before calls had a confidence and a rival visit shows null for them,
    its other fields as stored."""
    db = client.app[DB]
    snapshot = {"kind": "probable", "session_id": "s1", "visitor_id": "v1", "source": "google"}
    record = CallRecord(
        call_id="c0ffee",
        site="demo",
        dialed="+14155550101",
        started_at="2026-01-05T09:00:00.000000Z",
        state="ringing",
        attribution=CallAttribution.from_snapshot(snapshot),
    )
    write = call_write(record)
    params = list(write.params)
    params[-2] = json.dumps(snapshot)  # the attribution JSON as an older version wrote it
    await db.write([write._replace(params=params)])
    answer = await client.get("/v1/calls/c0ffee", headers={"Authorization": f"Bearer {admin_key}"})
    attribution = (await answer.json())["attribution"]
    assert (attribution["kind"], attribution["session_id"], attribution["source"]) == (
        "probable",
        "s1",
        "google",
    )
    assert attribution["confidence"] is None
    assert attribution["other_session_id"] is None and attribution["other_visitor_id"] is None
