"""AMI client, call tracker and a store sink wired together, against the fake AMI server."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from gateway.ami import AmiClient
from gateway.call_follower import CallFollower, CallsResynced
from gateway.call_lifecycle import CallTracker, CallUpdate
from tests.fake_ami import FakeAmi, load_transcript


class MemorySink:
    """A store stand-in keeping the newest snapshot per linkedid."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: dict[str, CallUpdate] = {}
        self.resyncs: list[CallsResynced] = []
        self.fail_first = fail_first

    async def call_updated(self, update: CallUpdate) -> None:
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("store hiccup")
        self.calls[update.linkedid] = update

    async def calls_resynced(self, resync: CallsResynced) -> None:
        self.resyncs.append(resync)


def now() -> datetime:
    return datetime.now(UTC)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_replayed_calls_reach_the_sink_and_resync_is_reported():
    """Recorded events end as final records in the sink; every login reports a resync."""
    fake = await FakeAmi(after_login=load_transcript("answered-then-unanswered.txt")).start()
    client = AmiClient("127.0.0.1", fake.port, "ctgw", fake.secret, rng=random.Random(1))
    sink = MemorySink(fail_first=True)
    follower = CallFollower(client, CallTracker(now), sink, now)
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
