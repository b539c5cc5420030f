"""The AMI tap of the screen pop: it filters and queues in the AMI reader, looks calls up in a
task of its own, and never holds the reader up (a full queue drops, counted)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.telephony.ami_link import EventHandler
from gateway.telephony.pop_hub import PopHub
from gateway.telephony.screen_pop import ScreenPopTap
from numberpool.clock import SystemClock
from tests.unit.test_screen_pop import dial

pytestmark = pytest.mark.timeout(30)


class FakeLink:
    """An AmiLink stand-in: the test calls the handlers as the AMI reader would."""

    def __init__(self) -> None:
        self.handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self.handlers.append(handler)
        return lambda: self.handlers.remove(handler)

    def emit(self, event: Any) -> None:
        for handler in list(self.handlers):
            handler(event)


class NoCalls:
    """A store with no call records: counts the lookups made."""

    def __init__(self) -> None:
        self.lookups = 0

    async def lookup(self, sql: str, params: Any = ()) -> None:
        self.lookups += 1


def _tap(link: FakeLink, hub: PopHub, db: NoCalls, **kw: Any) -> ScreenPopTap:
    return ScreenPopTap(link, hub, db, SystemClock(), retry_delay=0.01, **kw)  # type: ignore[arg-type]


async def test_rings_of_endpoints_without_a_page_cost_no_lookup() -> None:
    link, hub, db = FakeLink(), PopHub(), NoCalls()
    tap = _tap(link, hub, db)
    tap.start()
    try:
        for _ in range(50):
            link.emit(dial())
            link.emit(dial("Newchannel"))
        await asyncio.sleep(0.05)
        assert db.lookups == 0 and hub.published == 0
    finally:
        await tap.close()
    assert link.handlers == []


async def test_a_ring_reaches_the_page_with_the_caller_even_without_a_record() -> None:
    link, hub, db = FakeLink(), PopHub(), NoCalls()
    page = hub.subscribe(frozenset({"PJSIP/agent1"}), frozenset({"demo"}))
    tap = _tap(link, hub, db)
    tap.start()
    try:
        link.emit(dial())
        async with asyncio.timeout(1):
            pop = await page.queue.get()
        assert pop.kind == "pop" and pop.data["caller"] == "+12025550100"
        assert db.lookups == 4  # the record was looked for again three times: a late route
        link.emit(dial("DialEnd", DialStatus="NOANSWER"))
        async with asyncio.timeout(1):
            end = await page.queue.get()
        assert end.kind == "end" and end.data["status"] == "NOANSWER"
    finally:
        await tap.close()


async def test_a_ring_while_the_page_reconnects_is_popped_for_its_replay() -> None:
    """The page's stream was cut just before the ring: the pop is built all the same and the
    page, back within the replay period, gets it."""
    link, hub, db = FakeLink(), PopHub(), NoCalls()
    hub.unsubscribe(hub.subscribe(frozenset({"PJSIP/agent1"}), frozenset({"demo"})))
    tap = _tap(link, hub, db, retries=0)
    tap.start()
    try:
        link.emit(dial())
        async with asyncio.timeout(5):
            while hub.published == 0:
                await asyncio.sleep(0.01)
        back = hub.subscribe(frozenset({"PJSIP/agent1"}), frozenset({"demo"}), after_seq=0)
        pop = back.queue.get_nowait()
        assert pop.kind == "pop" and pop.data["caller"] == "+12025550100"
    finally:
        await tap.close()


async def test_a_burst_beyond_the_queue_is_dropped_and_counted_without_waiting() -> None:
    link, hub, db = FakeLink(), PopHub(), NoCalls()
    hub.subscribe(frozenset({"PJSIP/agent1"}), None)
    tap = _tap(link, hub, db, max_queue=2, retries=0)
    tap.start()
    try:
        for n in range(5):  # no await in between: the reader never gave the worker a turn
            link.emit(dial(Linkedid=f"1.{n}"))
        assert tap.dropped == 3
        await asyncio.sleep(0.05)
        assert hub.published == 2
    finally:
        await tap.close()


async def test_a_failing_lookup_is_logged_and_the_tap_goes_on() -> None:
    link, hub = FakeLink(), PopHub()
    page = hub.subscribe(frozenset({"PJSIP/agent1"}), None)

    class Broken(NoCalls):
        async def lookup(self, sql: str, params: Any = ()) -> None:
            self.lookups += 1
            if self.lookups == 1:
                raise RuntimeError("disk gone")

    tap = _tap(link, hub, Broken(), retries=0)
    tap.start()
    try:
        link.emit(dial(Linkedid="1.1"))
        link.emit(dial(Linkedid="1.2"))
        async with asyncio.timeout(1):
            pop = await page.queue.get()
        assert pop.data["linkedid"] == "1.2"
    finally:
        await tap.close()
