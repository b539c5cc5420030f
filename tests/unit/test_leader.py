"""The leader's duties in a cluster: started and stopped as the unit `leader` comes and goes,
and AMI's call updates written by the leader only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from gateway.cluster.leader import LeaderDuties, LeaderSink
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_lifecycle import CallUpdate

pytestmark = pytest.mark.timeout(10)

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def duty(name: str, events: list[str], *, fails: bool = False):  # type: ignore[no-untyped-def]
    async def run(app: web.Application) -> AsyncIterator[None]:
        if fails:
            raise RuntimeError(name)
        events.append(f"start {name}")
        yield
        events.append(f"stop {name}")

    run.__name__ = name
    return run


async def test_duties_start_in_order_and_stop_in_reverse() -> None:
    """Taking `leader` starts each duty; letting go stops them last first, and `active` says
    which it is."""
    events: list[str] = []
    leader = LeaderDuties(web.Application(), [duty("a", events), duty("b", events)])
    assert not leader.active
    await leader.start()
    assert leader.active and leader.running == ["a", "b"]
    await leader.stop()
    assert not leader.active
    assert events == ["start a", "start b", "stop b", "stop a"]


async def test_a_duty_failing_to_start_stops_the_others() -> None:
    """A duty that cannot start undoes the ones started and raises (the unit is taken later)."""
    events: list[str] = []
    leader = LeaderDuties(web.Application(), [duty("a", events), duty("b", events, fails=True)])
    with pytest.raises(RuntimeError):
        await leader.start()
    assert events == ["start a", "stop a"] and not leader.active


class Sink:
    def __init__(self) -> None:
        self.seen: list[object] = []

    async def call_updated(self, update: CallUpdate) -> None:
        self.seen.append(update)

    async def calls_resynced(self, resync: CallsResynced) -> None:
        self.seen.append(resync)


async def test_only_the_leader_writes_what_ami_says() -> None:
    """Every gateway follows AMI; its call updates and resyncs reach the store only while this
    gateway leads."""
    sink, leads = Sink(), [False]
    gate = LeaderSink(sink, lambda: leads[0])
    update = CallUpdate(linkedid="1.1", state="ringing", started_at=AT)
    resync = CallsResynced(frozenset(), AT)
    await gate.call_updated(update)
    await gate.calls_resynced(resync)
    assert sink.seen == []
    leads[0] = True
    await gate.call_updated(update)
    await gate.calls_resynced(resync)
    assert sink.seen == [update, resync]
