"""The whole gateway next to a real Asterisk: a visit leases a number, the call to it is
attributed to that visit, routed to the agent's phone and recorded."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import AGI, AMI, DB
from gateway.config import parse_config
from gateway.store.calls import find_call
from gateway.store.keys import create_key
from gateway.store.webhooks import create_endpoint
from tests.api.conftest import demo_config, open_session
from tests.conftest import FakeClock
from tests.integration.conftest import new_call_id
from tests.lab.ami import TestAmi
from tests.lab.asterisk import AMI_SECRET, AMI_USER, CTGW_AMI_SECRET, AsteriskLab

CALLER = '"Ada" <+12025550100>'

pytestmark = pytest.mark.asterisk


RING_ONLY = "+14155550151"  # a static number routed to a destination that never answers


@pytest.fixture
async def daemon(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    """The gateway app with its FastAGI server on the port the lab's dialplan calls."""
    raw = demo_config(tmp_path)
    raw["agi"] = {"port": asterisk.ports.agi}
    return await aiohttp_client(create_app(parse_config(raw, source="test"), clock=FakeClock()))


@pytest.fixture
async def following(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    """The whole daemon: FastAGI on the lab's port and AMI following calls as the ctgw user."""
    raw = demo_config(tmp_path)
    raw["agi"] = {"port": asterisk.ports.agi}
    raw["ami"] = {
        "enabled": True,
        "port": asterisk.ports.ami,
        "username": "ctgw",
        "secret": CTGW_AMI_SECRET,
    }
    raw["sites"][0]["static_numbers"].append(
        {"number": RING_ONLY, "source": "radio", "destination": "Local/nobody@test-ring"}
    )
    client = await aiohttp_client(create_app(parse_config(raw, source="test")))
    await wait_until(lambda: AMI in client.app and client.app[AMI].connected, 10)
    return client


async def wait_until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def final_record(client: TestClient, linkedid: str, timeout: float = 30) -> dict:
    """The call record of `linkedid` once AMI has completed it."""
    db = client.app[DB]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await db.fetchone("SELECT call_id FROM calls WHERE linkedid = ?", (linkedid,))
        if row is not None:
            call = await find_call(db, row["call_id"])
            if call is not None and call["ended_at"]:
                return call
        await asyncio.sleep(0.2)
    raise AssertionError(f"call {linkedid} was not completed within {timeout} s")


async def test_call_to_a_leased_number_is_attributed_and_answered_by_the_agent(
    daemon: TestClient, ami: TestAmi, agent_phone
):
    """A visitor's leased number, dialed through Asterisk, reaches the agent's phone, and the
    call record carries the visit's UTM fields and the caller."""
    url = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=spring&gclid=G9"
    session = await (await open_session(daemon, url=url)).json()
    number = session["numbers"][0]["number"]
    call = new_call_id()
    await ami.originate(number.removeprefix("+"), "test-inbound", '"Ada" <+12025550100>', call, 2)
    answered = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("Linkedid") == call
            and e.get("DestChannel", "").startswith("PJSIP/agent1-")
        ),
        timeout=15,
    )
    assert answered["DialStatus"] == "ANSWER"
    # channelvars puts the gateway's call id on the caller channel's events.
    call_id = answered["ChanVariable"].removeprefix("CTGW_CALL_ID=")
    assert call_id
    key = await create_key(daemon.app[DB], "test", datetime.now(UTC))
    record = await (
        await daemon.get(f"/v1/calls/{call_id}", headers={"Authorization": f"Bearer {key}"})
    ).json()
    assert record["dialed"] == number
    assert record["caller"] == "+12025550100" and record["caller_name"] == "Ada"
    attribution = record["attribution"]
    assert attribution["kind"] == "active"
    assert attribution["session_id"] == session["session_id"]
    assert (attribution["source"], attribution["campaign"], attribution["gclid"]) == (
        "google",
        "spring",
        "G9",
    )


async def test_answered_call_record_has_agent_ring_and_talk_time(following, ami, agent_phone):
    """The agent's phone answers: AMI completes the record as answered with agent and times."""
    # Events are queued only for an endpoint that asks for them (loopback: never sent).
    wanted = ["call.updated", "call.completed"]
    hook = "http://127.0.0.1:9/hook"
    await create_endpoint(following.app[DB], "demo", hook, wanted, "s" * 16, datetime.now(UTC))
    session = await (await open_session(following)).json()
    call = new_call_id()
    await ami.originate(session["numbers"][0]["number"], "test-inbound", CALLER, call, 4)
    record = await final_record(following, call)
    assert record["state"] == "answered"
    assert "agent1" in record["agent"]
    assert record["ring_seconds"] is not None and 0 <= record["ring_seconds"] < 5
    assert record["talk_seconds"] is not None and 1 <= record["talk_seconds"] <= 6
    assert record["attribution"]["session_id"] == session["session_id"]
    outbox = await following.app[DB].fetchall("SELECT topic, payload FROM outbox")
    topics = [r["topic"] for r in outbox if r["topic"].startswith("call.")]
    # No endpoint asks for call.started here, so the route queued none (docs/webhooks.md).
    assert "call.started" not in topics and topics[-1] == "call.completed"
    assert topics.count("call.completed") == 1 and topics.count("call.updated") <= 1


async def test_caller_hanging_up_while_ringing_is_abandoned(following, ami):
    """Nobody answers and the caller gives up after 3 s: the record is abandoned."""
    call = new_call_id()
    await ami.originate(RING_ONLY, "test-inbound", CALLER, call, 30)
    ringing = await ami.wait_for(
        lambda e: (
            (e.get("Event") == "DialBegin" and e.get("Uniqueid") == call)
            or (e.get("Event") == "Newchannel" and e.get("Uniqueid") == call)
        )
    )
    await asyncio.sleep(3)
    await ami.action("Hangup", Channel=ringing["Channel"])
    record = await final_record(following, call)
    assert record["state"] == "abandoned"
    assert record["agent"] == "" and record["talk_seconds"] in (None, 0, 0.0)


async def test_long_unanswered_call_is_missed(following, ami):
    """Nobody answers until the dialplan's ring timeout (20 s): the record is missed."""
    call = new_call_id()
    await ami.originate(RING_ONLY, "test-inbound", CALLER, call, 30)
    record = await final_record(following, call, timeout=40)
    assert record["state"] == "missed"


async def test_after_asterisk_restarts_ami_reconnects_and_completes_the_next_call(
    following, asterisk, agent_phone
):
    """Asterisk restarted under the running gateway: AMI logs in again, the next call completes."""
    await asyncio.to_thread(asterisk.restart)
    await wait_until(lambda: following.app[AMI].connected, 20)
    client = await TestAmi.connect(asterisk.ports.ami, AMI_USER, AMI_SECRET)
    try:
        session = await (await open_session(following)).json()
        call = new_call_id()
        await client.originate(session["numbers"][0]["number"], "test-inbound", CALLER, call, 3)
        record = await final_record(following, call)
    finally:
        await client.close()
    assert record["state"] == "answered" and "agent1" in record["agent"]


@pytest.mark.parametrize(
    "context", ["test-inbound-newline-name", "test-inbound-blank-line-name"], ids=["lines", "blank"]
)
async def test_a_caller_name_with_line_breaks_is_routed_recorded_and_attributed(
    daemon: TestClient, ami: TestAmi, context: str
):
    """Asterisk passes a caller name with line breaks (one line faking agi_callerid) raw into
    FastAGI: the call is still routed, and recorded with the real caller and its visit."""
    session = await (await open_session(daemon)).json()
    number = session["numbers"][0]["number"]
    call = new_call_id()
    await ami.originate(number.removeprefix("+"), context, CALLER, call, 2)
    db = daemon.app[DB]
    await wait_until(lambda: daemon.app[AGI].outcomes["routed"] >= 1, 10)
    row = await db.fetchone("SELECT call_id FROM calls WHERE linkedid = ?", (call,))
    record = await find_call(db, row["call_id"])
    assert record is not None
    assert record["caller"] == "+12025550100" and record["dialed"] == number
    assert record["caller_name"].startswith("Ada ") and record["caller_name"].endswith("Lovelace")
    assert "\n" not in record["caller_name"]
    assert record["attribution"]["kind"] == "active"
    assert record["attribution"]["session_id"] == session["session_id"]


async def test_a_call_placed_while_the_gateway_is_frozen_is_recorded_as_the_fallback(
    following: TestClient, ami: TestAmi, asterisk: AsteriskLab
):
    """The gateway freezes (its event loop blocked, as under SIGSTOP) while a call comes in:
    the dialplan dials its fallback after 2 s; the late record says the fallback (AMI names
    the fallback's dial string), and starts when the caller dialed, not when it thawed."""
    session = await (await open_session(following)).json()
    call = new_call_id()
    placed = datetime.now(UTC)
    await ami.originate(session["numbers"][0]["number"], "test-inbound", CALLER, call, 3)
    time.sleep(3.5)
    record = await final_record(following, call)
    row = await following.app[DB].fetchone("SELECT route FROM calls WHERE linkedid = ?", (call,))
    assert row["route"] == asterisk.fallback
    started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    assert abs((started - placed).total_seconds()) < 1.0
    assert record["attribution"]["session_id"] == session["session_id"]
