"""The call tracker follows real calls through the shipped dialplan, as the ctgw AMI user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.config import AmiSettings
from gateway.telephony.call_follower import following_calls
from numberpool.clock import SystemClock
from tests.fake_ami import MemorySink
from tests.integration.conftest import RouteTable, new_call_id
from tests.lab.ami import TestAmi
from tests.lab.asterisk import CTGW_AMI_SECRET, AsteriskLab

pytestmark = pytest.mark.asterisk

CALLER = '"Ada Caller" <+12025550100>'


@pytest.fixture
async def followed(asterisk: AsteriskLab) -> AsyncIterator[MemorySink]:
    """The daemon's AMI wiring, logged in as the shipped `ctgw` user, writing to a memory sink."""
    sink = MemorySink()
    settings = AmiSettings(
        host="127.0.0.1", port=asterisk.ports.ami, username="ctgw", secret=CTGW_AMI_SECRET
    )
    async with following_calls(settings, sink, SystemClock()) as client:
        async with asyncio.timeout(10):
            while not sink.resyncs:
                await asyncio.sleep(0.05)
        assert client.connected
        yield sink


async def final(sink: MemorySink, linkedid: str, timeout: float = 20):
    async with asyncio.timeout(timeout):
        while not (linkedid in sink.calls and sink.calls[linkedid].final):
            await asyncio.sleep(0.05)
    return sink.calls[linkedid]


async def test_agent_answering_on_a_sip_phone_ends_answered(
    ami: TestAmi, gateway, routes: RouteTable, agent_phone, followed: MemorySink
):
    """Answered by the baresip agent: `answered`, agent PJSIP/agent1, ring and talk time, and
    the call id the gateway handed to the dialplan."""
    routes.route = "PJSIP/agent1"
    call = new_call_id()
    await ami.originate("+14155550123", "test-inbound", CALLER, call, wait=3)
    record = await final(followed, call)
    assert (record.state, record.agent) == ("answered", "PJSIP/agent1")
    assert record.call_id == f"call-{call}"
    assert record.ring_seconds is not None and 0 <= record.ring_seconds < 5
    assert record.talk_seconds is not None and 1 <= record.talk_seconds < 10
    assert record.hangup_cause is not None and not record.closed_by_resync


async def test_unreachable_route_ends_abandoned_without_agent(
    ami: TestAmi, gateway, routes: RouteTable, followed: MemorySink
):
    """A route nobody can answer, hung up within seconds: `abandoned`, no agent, no recording;
    the lookup leg's own Dial never counts as an agent."""
    routes.route = "Local/nobody@test-agent-out"
    call = new_call_id()
    await ami.originate("+14155550123", "test-inbound", CALLER, call, wait=2)
    record = await final(followed, call)
    assert (record.state, record.agent, record.recording) == ("abandoned", None, None)
    assert record.answered_at is None and record.call_id == f"call-{call}"
