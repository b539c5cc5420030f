"""AMI client, call tracker and a store sink wired together, against the fake AMI server."""

from __future__ import annotations

import asyncio
import random

from gateway.telephony.ami import AmiClient
from gateway.telephony.call_follower import CallFollower
from gateway.telephony.call_lifecycle import CallTracker
from numberpool.clock import SystemClock
from tests.fake_ami import FakeAmi, MemorySink, load_transcript


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_replayed_calls_reach_the_sink_and_resync_is_reported():
    """Recorded events end as final records in the sink; every login reports a resync."""
    fake = await FakeAmi(after_login=load_transcript("answered-then-unanswered.txt")).start()
    client = AmiClient("127.0.0.1", fake.port, "ctgw", fake.secret, rng=random.Random(1))
    sink = MemorySink(fail_first=True)
    follower = CallFollower(client, CallTracker(SystemClock()), sink, SystemClock())
    try:
        follower.start()
        client.start()
        await until(lambda: sum(u.final for u in sink.calls.values()) == 2 and sink.resyncs)
        assert sink.calls["1795591690.0"].state == "answered"
        assert sink.calls["1795591699.6"].state in ("abandoned", "missed")
        assert len(sink.resyncs) == 1 and sink.resyncs[0].live_linkedids == frozenset()
        fake.after_login = []
        await fake.drop_clients()
        await until(lambda: len(sink.resyncs) == 2)
    finally:
        await client.close()
        await follower.close()
        await fake.close()
