"""The AMI client and call tracker against a real Asterisk 22, restarted under them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from gateway.telephony.ami import AmiClient
from gateway.telephony.call_follower import CallFollower
from gateway.telephony.call_lifecycle import CallTracker
from numberpool.clock import SystemClock
from tests.fake_ami import MemorySink
from tests.lab.eval_asterisk import AMI_PORT, AMI_SECRET, AMI_USER, EvalAsterisk

pytestmark = pytest.mark.asterisk


async def until(predicate, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest.fixture
async def eval_asterisk() -> AsyncIterator[EvalAsterisk]:
    lab = EvalAsterisk()
    if not lab.available():
        reason = f"no Asterisk root filesystem at {lab.rootfs} (run tests/lab/setup.sh as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    await asyncio.to_thread(lab.start)
    try:
        yield lab
    finally:
        await asyncio.to_thread(lab.close)


async def call(client: AmiClient, dialed: str, wait: int = 5) -> None:
    """A caller dialing `dialed`: the Local ;2 half runs the inbound dialplan."""
    await client.action(
        "Originate",
        {
            "Channel": f"Local/{dialed}@ctgw-inbound",
            "Application": "Wait",
            "Data": str(wait),
            "CallerID": '"Ann" <+12025550100>',
            "Async": "true",
        },
    )


async def test_calls_are_followed_across_an_asterisk_restart(eval_asterisk):
    """Answered call recorded; a crash mid-call closes it on resync; after restart calls follow."""
    client = AmiClient("127.0.0.1", AMI_PORT, AMI_USER, AMI_SECRET, ping_interval=2)
    sink = MemorySink()
    follower = CallFollower(client, CallTracker(SystemClock()), sink, SystemClock())
    follower.start()
    client.start()
    try:
        await client.wait_connected(10)
        await call(client, "+14155550101")
        await until(lambda: any(u.final for u in sink.calls.values()), 15)
        (first,) = sink.calls.values()
        assert (first.state, first.agent) == ("answered", "Local/agent1@eval-agents")
        assert first.recording and first.recording.endswith(".wav")
        assert first.talk_seconds is not None and first.talk_seconds >= 0.5

        await call(client, "+14155550102", wait=30)  # agent2 never answers: rings 4 s
        await until(lambda: len(sink.calls) == 2, 10)
        await asyncio.to_thread(eval_asterisk.crash)  # no Hangup events: only the resync can tell
        await asyncio.to_thread(eval_asterisk.start)
        await until(lambda: client.logins == 2 and len(sink.resyncs) == 2, 30)
        await until(lambda: all(u.final for u in sink.calls.values()), 10)
        (cut,) = [u for u in sink.calls.values() if u.linkedid != first.linkedid]
        assert cut.closed_by_resync and cut.state in ("missed", "abandoned")

        await call(client, "+14155550101")
        await until(lambda: sum(u.final for u in sink.calls.values()) == 3, 15)
        (last,) = [
            u for u in sink.calls.values() if u.linkedid not in (first.linkedid, cut.linkedid)
        ]
        assert (last.state, last.agent, last.closed_by_resync) == (
            "answered",
            "Local/agent1@eval-agents",
            False,
        )
    finally:
        await client.close()
        await follower.close()


async def test_graceful_stop_mid_call_ends_the_call_by_its_hangups(eval_asterisk):
    """`core stop now` hangs channels up and AMI reports it before closing; AMI then reconnects."""
    client = AmiClient("127.0.0.1", AMI_PORT, AMI_USER, AMI_SECRET, ping_interval=2)
    sink = MemorySink()
    follower = CallFollower(client, CallTracker(SystemClock()), sink, SystemClock())
    follower.start()
    client.start()
    try:
        await client.wait_connected(10)
        await call(client, "+14155550102", wait=30)
        await until(lambda: len(sink.calls) == 1, 10)
        await asyncio.to_thread(eval_asterisk.restart)
        await until(lambda: client.logins == 2, 30)
        (update,) = sink.calls.values()
        assert update.final and not update.closed_by_resync
        assert update.hangup_cause is not None
    finally:
        await client.close()
        await follower.close()
