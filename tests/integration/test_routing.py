"""A real Asterisk asks the gateway over FastAGI where each call goes, and falls back safely."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.telephony.agi import RouteDecision
from tests.integration.conftest import RouteTable, new_call_id
from tests.lab.ami import AmiEvent, TestAmi
from tests.lab.asterisk import AMI_SECRET, AMI_USER, PROJECT

pytestmark = pytest.mark.asterisk

CALLER = '"Ada Caller" <+12025550100>'


def reached(linkedid: str):
    def match(event: AmiEvent) -> bool:
        return event.get("Event") == "UserEvent" and event.get("Linkedid") == linkedid

    return match


async def test_call_reaches_the_route_the_gateway_sets(ami: TestAmi, gateway, routes: RouteTable):
    """A call to a tracked number is sent where the gateway's route says."""
    call = new_call_id()
    answer = await ami.originate("+14155550123", "test-inbound", CALLER, call)
    assert answer["Response"] == "Success"
    event = await ami.wait_for(reached(call))
    assert event["UserEvent"] == "CtgwReached"
    assert event["Route"] == "sales"
    [request] = routes.requests
    assert request.dialed == "+14155550123"
    assert request.linkedid == call
    assert request.caller == "+12025550100"
    assert request.caller_name == "Ada Caller"


def ami_unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def varset(linkedid: str, channel_part: str, name: str):
    def match(event: AmiEvent) -> bool:
        return (
            event.get("Event") == "VarSet"
            and event.get("Linkedid") == linkedid
            and channel_part in event.get("Channel", "")
            and event.get("Variable") == name
        )

    return match


@pytest.mark.parametrize("dialed", ["+14155550123", "14155550123", "4155550123"])
async def test_carrier_shapes_of_the_dialed_number_reach_the_gateway(
    ami: TestAmi, gateway, routes: RouteTable, dialed: str
):
    """Each shape a carrier delivers the dialed number in reaches the gateway unchanged."""
    call = new_call_id()
    await ami.originate(dialed, "test-inbound", CALLER, call)
    event = await ami.wait_for(reached(call))
    assert event["Route"] == "sales"
    assert [r.dialed for r in routes.requests] == [dialed]


async def test_lookup_leg_is_marked_apart_from_the_call(ami: TestAmi, gateway):
    """The lookup leg's channels are named @ctgw-lookup- and run in context ctgw-lookup."""
    call = new_call_id()
    await ami.originate("+14155550123", "test-inbound", CALLER, call)
    await ami.wait_for(reached(call))
    begin = await ami.wait_for(
        lambda e: e.get("Event") == "DialBegin" and e.get("Linkedid") == call
    )
    assert "@ctgw-lookup-" in begin["DestChannel"]
    assert begin["DestContext"] == "ctgw-lookup"
    started = await ami.wait_for(
        lambda e: e.get("Event") == "AGIExecStart" and e.get("Linkedid") == call
    )
    assert "@ctgw-lookup-" in started["Channel"]


async def test_gateway_down_sends_the_call_to_the_fallback(ami: TestAmi, asterisk):
    """With nothing listening on the FastAGI port the call reaches the fallback."""
    call = new_call_id()
    start = time.monotonic()
    await ami.originate("+14155550123", "test-inbound", CALLER, call)
    event = await ami.wait_for(reached(call))
    assert event["Route"] == "fallback"
    assert time.monotonic() - start < 3


async def test_decider_slower_than_the_deadline_sends_the_call_to_the_fallback(
    ami: TestAmi, gateway, routes: RouteTable
):
    """A route decided after the 300 ms deadline is never used: the caller gets the fallback."""
    routes.delay_s = 1.0
    call = new_call_id()
    start = time.monotonic()
    await ami.originate("+14155550123", "test-inbound", CALLER, call)
    event = await ami.wait_for(reached(call))
    assert event["Route"] == "fallback"
    assert time.monotonic() - start < 3
    assert len(routes.requests) == 1


async def test_frozen_gateway_process_sends_the_caller_to_the_fallback_within_3_s(
    ami: TestAmi, asterisk
):
    """A gateway stopped with SIGSTOP holds its socket open, and the caller still gets the
    fallback within 3 s."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.lab.agi_child",
            str(asterisk.ports.agi),
            "Local/sales@test-dest",
        ],
        stdout=subprocess.PIPE,
        cwd=PROJECT,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 10)
        assert ready == b"ready\n"
        routed = new_call_id()
        await ami.originate("+14155550123", "test-inbound", CALLER, routed)
        assert (await ami.wait_for(reached(routed)))["Route"] == "sales"

        os.kill(child.pid, signal.SIGSTOP)
        call = new_call_id()
        start = time.monotonic()
        await ami.originate("+14155550123", "test-inbound", CALLER, call)
        event = await ami.wait_for(reached(call))
        assert event["Route"] == "fallback"
        assert time.monotonic() - start < 3
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


INJECTION = 'Eve "\\" \\\\n\\nEXEC System "touch /tmp/ctgw-pwned"'


async def test_hostile_caller_name_changes_nothing_but_the_name(
    ami: TestAmi, gateway, routes: RouteTable, asterisk
):
    """A caller name with quotes, backslashes and AGI-command text reaches the gateway as a
    name, and even echoed back as a label it arrives on the channel verbatim and runs nothing."""

    async def echo_name(request):
        routes.requests.append(request)
        return RouteDecision("Local/sales@test-dest", "call-x", request.caller_name)

    gateway._decide = echo_name
    call = new_call_id()
    await ami.originate("+14155550123", "test-inbound", f'"{INJECTION}" <+12025550100>', call)
    event = await ami.wait_for(reached(call))
    assert event["Route"] == "sales"
    [request] = routes.requests
    assert request.caller == "+12025550100"
    name = request.caller_name
    assert "EXEC System" in name and '"' in name and "\\" in name
    source = await ami.wait_for(varset(call, "@ctgw-lookup-", "CTGW_SOURCE"))
    # AMI escapes backslashes and quotes in event values; AGI's GET VARIABLE shows the raw value.
    assert ami_unescape(source["Value"]) == name
    route = await ami.wait_for(varset(call, "@ctgw-lookup-", "CTGW_ROUTE"))
    assert route["Value"] == "Local/sales@test-dest"
    assert not (asterisk.root / "tmp" / "ctgw-pwned").exists()
    assert not Path("/tmp/ctgw-pwned").exists()


async def test_agent_on_a_sip_phone_answers_the_routed_call(
    ami: TestAmi, gateway, routes: RouteTable, agent_phone
):
    """A call routed to PJSIP/agent1 is answered by the baresip phone and bridged."""
    routes.route = "PJSIP/agent1"
    call = new_call_id()
    await ami.originate("+14155550123", "test-inbound", CALLER, call, wait=3)
    end = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("Linkedid") == call
            and e.get("DestChannel", "").startswith("PJSIP/agent1-")
        ),
        timeout=15,
    )
    assert end["DialStatus"] == "ANSWER"
    bridged = await ami.wait_for(
        lambda e: (
            e.get("Event") == "BridgeEnter"
            and e.get("Linkedid") == call
            and e.get("Channel", "").startswith("PJSIP/agent1-")
        ),
        timeout=5,
    )
    assert bridged["Channel"] == end["DestChannel"]


async def test_recording_switch_records_the_answered_call(
    ami: TestAmi, gateway, routes: RouteTable, asterisk, agent_phone
):
    """With CTGW_RECORD=yes the answered call is recorded with audio, and MIXMONITOR_FILENAME
    names the file on the caller's channel."""
    routes.route = "PJSIP/agent1"
    await ami.action("Setvar", Variable="CTGW_RECORD", Value="yes")
    try:
        call = new_call_id()
        await ami.originate("+14155550123", "test-inbound", CALLER, call, wait=2)
        named = await ami.wait_for(varset(call, "test-inbound", "MIXMONITOR_FILENAME"))
        await ami.wait_for(
            lambda e: (
                e.get("Event") == "Hangup"
                and e.get("Linkedid") == call
                and e.get("Channel", "").startswith("PJSIP/agent1-")
            ),
            timeout=15,
        )
    finally:
        await ami.action("Setvar", Variable="CTGW_RECORD", Value="no")
    inner = Path(named["Value"])
    assert inner.name == f"ctgw-{call};2.wav"
    recorded = asterisk.root / inner.relative_to("/")
    for _ in range(50):  # MixMonitor closes the file on its own thread after the hangup
        if recorded.exists() and recorded.stat().st_size > 8000:
            break
        await asyncio.sleep(0.1)
    assert recorded.stat().st_size > 8000  # over half a second of 8 kHz audio


async def test_a_dialed_number_with_dial_string_characters_goes_to_the_fallback(
    ami: TestAmi, gateway, routes: RouteTable
):
    """A dialed 'number' carrying '&' (which would add a Dial destination) never reaches a dial
    string or the gateway: the caller gets the fallback."""
    call = new_call_id()
    await ami.originate("+14155550123&Local:evil", "test-inbound", CALLER, call)
    event = await ami.wait_for(reached(call))
    assert event["Route"] == "fallback"
    assert routes.requests == []


async def test_calls_are_routed_again_after_asterisk_restarts(asterisk, gateway, agent_phone):
    """After Asterisk restarts on the same ports, the next call is routed by the same gateway
    and the registered phone is still reachable."""
    asterisk.restart()
    assert "agent1/sip:agent1" in asterisk.rx("pjsip show contacts")
    client = await TestAmi.connect(asterisk.ports.ami, AMI_USER, AMI_SECRET)
    try:
        call = new_call_id()
        await client.originate("+14155550123", "test-inbound", CALLER, call)
        assert (await client.wait_for(reached(call)))["Route"] == "sales"
    finally:
        await client.close()


async def test_an_unset_lookup_timeout_still_bounds_a_stalled_gateway(ami: TestAmi, asterisk):
    """With CTGW_LOOKUP_TIMEOUT missing from [globals], a gateway that accepts and never answers
    still sends the caller to the fallback within 3 s (the dialplan's default is 2 s)."""

    release = asyncio.Event()

    async def stall(reader, writer):
        await release.wait()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", asterisk.ports.agi)
    await ami.action("Setvar", Variable="CTGW_LOOKUP_TIMEOUT", Value="")
    try:
        call = new_call_id()
        start = time.monotonic()
        await ami.originate("+14155550123", "test-inbound", CALLER, call)
        assert (await ami.wait_for(reached(call)))["Route"] == "fallback"
        assert time.monotonic() - start < 3
    finally:
        await ami.action("Setvar", Variable="CTGW_LOOKUP_TIMEOUT", Value=asterisk.lookup_timeout)
        release.set()
        server.close()
        await server.wait_closed()
