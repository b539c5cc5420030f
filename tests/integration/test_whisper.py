"""Whisper for real: the whole gateway routes calls through the shipped dialplan on Asterisk 22
to the baresip agent phone (PJSIP/agent1). For a site with whisper on, AMI shows SayAlpha run in
[ctgw-whisper] on the agent's channel only, and the caller's channel answered and bridged only
after it returned; a site with whisper off never runs it; a broken whisper still connects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_config
from tests.api.conftest import demo_config, open_session
from tests.integration.conftest import new_call_id
from tests.lab.ami import AmiEvent, TestAmi
from tests.lab.asterisk import AsteriskLab
from tests.lab.phone import AgentPhone, write_tone

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(90)]

CALLER = '"Ada Caller" <+12025550100>'
QUIET = "+14155550170"  # a static number of the site with whisper off
AGENT_PREFIX = "PJSIP/agent1-"
Match = Callable[[AmiEvent], bool]


@pytest.fixture
async def daemon(aiohttp_client: Any, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    """The whole gateway with FastAGI on the lab's port: site `demo` whispers, `quiet` does not."""
    raw = demo_config(tmp_path)
    # A loaded 2-CPU machine must not turn a slow decision into the fallback (lookup waits 2 s).
    raw["agi"] = {"port": asterisk.ports.agi, "deadline_ms": 1500}
    raw["sites"][0]["whisper"] = True
    raw["sites"].append(
        {
            "key": "quiet",
            "destination": "PJSIP/agent1",
            "static_numbers": [{"number": QUIET, "source": "radio"}],
        }
    )
    client: TestClient = await aiohttp_client(create_app(parse_config(raw, source="test")))
    return client


@pytest.fixture
def agent(agent_phone: AgentPhone) -> Iterator[AgentPhone]:
    """The agent phone talking long enough to hear a whisper out: baresip hangs up when its
    microphone file ends (3 s of tone as tests/lab/phone.py writes it), which would cut a
    spelled word short. The phone's own file is put back afterwards."""
    source = agent_phone.home / "source.wav"
    own = source.read_bytes()
    longer = source.with_suffix(".long.wav")
    write_tone(longer, seconds=20.0)
    _swap_in(longer.read_bytes(), source)
    try:
        yield agent_phone
    finally:
        _swap_in(own, source)
        longer.unlink(missing_ok=True)


def _swap_in(audio: bytes, path: Path) -> None:
    """baresip opens the file at each call's start: replace it whole, never half-written."""
    fresh = path.with_suffix(".new.wav")
    fresh.write_bytes(audio)
    fresh.replace(path)


def event(name: str, linkedid: str, **fields: str) -> Match:
    return lambda e: (
        e.get("Event") == name
        and e.get("Linkedid") == linkedid
        and all(e.get(k) == v for k, v in fields.items())
    )


def index(ami: TestAmi, found: AmiEvent) -> int:
    return next(i for i, e in enumerate(ami.events) if e is found)


async def call_reaching_the_agent(ami: TestAmi, dialed: str) -> tuple[str, AmiEvent]:
    """Place a call to `dialed` and return its linkedid and the Dial ringing the agent."""
    call = new_call_id()
    await ami.originate(dialed, "test-inbound", CALLER, call, wait=2)
    dial = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialBegin"
            and e.get("Linkedid") == call
            and e.get("DestChannel", "").startswith(AGENT_PREFIX)
        ),
        timeout=15,
    )
    return call, dial


async def ended(ami: TestAmi, call: str, channel: str) -> None:
    """Wait for the caller's channel to hang up, so the agent phone is free for the next test."""
    await ami.wait_for(event("Hangup", call, Channel=channel), timeout=30)


async def test_the_agent_hears_the_source_before_the_caller_is_connected(
    daemon: TestClient, ami: TestAmi, agent: AgentPhone
) -> None:
    url = "https://www.demo-plumbing.example/taps?utm_source=google"
    visit = await (await open_session(daemon, url=url)).json()
    call, dial = await call_reaching_the_agent(ami, visit["numbers"][0]["number"])
    caller, leg = dial["Channel"], dial["DestChannel"]
    said = await ami.wait_for(
        event("Newexten", call, Context="ctgw-whisper", Application="SayAlpha"), timeout=15
    )
    done = await ami.wait_for(
        event("Newexten", call, Context="ctgw-whisper", Application="Return"), timeout=20
    )
    answered = await ami.wait_for(event("Newstate", call, Channel=caller, ChannelStateDesc="Up"))
    bridged = await ami.wait_for(event("BridgeEnter", call, Channel=caller))
    dial_end = await ami.wait_for(event("DialEnd", call, Channel=caller, DestChannel=leg))
    await ended(ami, call, caller)

    # Spelled on the agent's channel, and only there: the caller's channel never ran it.
    assert (said["Channel"], said["AppData"], done["Channel"]) == (leg, "google", leg)
    whisper = [e for e in ami.events if e.get("Context") == "ctgw-whisper"]
    assert {e["Channel"] for e in whisper if e.get("Linkedid") == call} == {leg}
    # The letters really played (six of them take seconds; a missing sound file takes none).
    assert float(done["Timestamp"]) - float(said["Timestamp"]) >= 1.5
    # The caller was answered, bridged and the Dial reported ANSWER only after the whisper.
    start, end = index(ami, said), index(ami, done)
    assert end < index(ami, answered) and end < index(ami, bridged) and end < index(ami, dial_end)
    assert dial_end["DialStatus"] == "ANSWER"
    caller_states = [
        e["ChannelStateDesc"]
        for e in ami.events[: index(ami, answered)]
        if e.get("Event") == "Newstate" and e.get("Channel") == caller
    ]
    assert "Up" not in caller_states, caller_states
    # The caller (Originate's ;1 half plays the carrier) was told "ringing" before the whisper.
    ringing = await ami.wait_for(
        event("Newstate", call, Channel=caller.replace(";2", ";1"), ChannelStateDesc="Ringing")
    )
    assert index(ami, ringing) < start
    # Meanwhile the caller's channel sat in Dial, hearing ringing: nothing else ran on it.
    ran = [
        e["Application"]
        for e in ami.events[start:end]
        if e.get("Event") == "Newexten" and e.get("Channel") == caller
    ]
    assert ran == [], ran
    leg_bridged = [
        e for e in ami.events if e.get("Event") == "BridgeEnter" and e.get("Channel") == leg
    ]
    assert leg_bridged and index(ami, leg_bridged[0]) > end


async def test_a_site_with_whisper_off_connects_without_it(
    daemon: TestClient, ami: TestAmi, agent: AgentPhone
) -> None:
    call, dial = await call_reaching_the_agent(ami, QUIET)
    caller, leg = dial["Channel"], dial["DestChannel"]
    await ami.wait_for(event("BridgeEnter", call, Channel=leg), timeout=15)
    await ami.wait_for(event("BridgeEnter", call, Channel=caller))
    await ended(ami, call, caller)
    mine = [e for e in ami.events if e.get("Linkedid") == call]
    assert not [e for e in mine if e.get("Context") == "ctgw-whisper"]
    [dialed] = [
        e
        for e in mine
        if e.get("Event") == "Newexten"
        and e.get("Channel") == caller
        and e.get("Application") == "Dial"
        and e.get("AppData", "").startswith("PJSIP/agent1,")
    ]
    assert dialed["AppData"] == "PJSIP/agent1,20,", dialed["AppData"]  # no U(ctgw-whisper)
    assert not [e for e in mine if e.get("Application") == "SayAlpha"]


async def test_a_broken_whisper_still_connects_the_call(
    daemon: TestClient, ami: TestAmi, agent: AgentPhone, asterisk: AsteriskLab
) -> None:
    """With [ctgw-whisper] missing (an old ctgw.conf loaded), the call is bridged all the same."""
    removed = await asyncio.to_thread(asterisk.rx, "dialplan remove extension s@ctgw-whisper")
    try:
        assert "removed" in removed.lower(), removed
        call, dial = await call_reaching_the_agent(ami, "+14155550150")  # demo's billboard
        caller, leg = dial["Channel"], dial["DestChannel"]
        await ami.wait_for(event("BridgeEnter", call, Channel=leg), timeout=15)
        await ami.wait_for(event("BridgeEnter", call, Channel=caller))
        await ended(ami, call, caller)
    finally:
        await asyncio.to_thread(asterisk.rx, "dialplan reload")
    restored = await asyncio.to_thread(asterisk.rx, "dialplan show s@ctgw-whisper")
    assert "SayAlpha" in restored, restored
    mine = [e for e in ami.events if e.get("Linkedid") == call]
    dials = [e.get("AppData", "") for e in mine if e.get("Application") == "Dial"]
    assert any(d.endswith("U(ctgw-whisper)") for d in dials), dials
    assert not [e for e in mine if e.get("Application") == "SayAlpha"]
