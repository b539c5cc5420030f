"""A route decided in time whose waiter is cut before it wakes (its deadline fell between the
route's end and the waiter's turn): nobody received it, Asterisk dialed the fallback, so the
flight's `undelivered` runs, once, and only when no other waiter (a retry) got the answer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.database import Write
from gateway.telephony.agi import RouteDecision
from gateway.telephony.route_flights import Flight, Flights
from gateway.telephony.route_outcome import FALLBACK_ROUTE, answered_again

pytestmark = pytest.mark.timeout(30)

DECISION = RouteDecision("PJSIP/agent1", "c-1", "google")


class Held:
    """A route that ends when told, with an `undelivered` that records its linkedid."""

    def __init__(self, answer: RouteDecision | None = DECISION) -> None:
        self.release = asyncio.Event()
        self.answer = answer
        self.undelivered: list[str] = []

    async def __call__(self, flight: Flight) -> RouteDecision | None:
        await self.release.wait()
        flight.undelivered = lambda: self.undelivered.append(flight.linkedid)
        return self.answer


async def joined(flights: Flights, linkedid: str, route: Held) -> asyncio.Task[object]:
    waiter = asyncio.create_task(flights.join(linkedid, route))
    await asyncio.sleep(0)  # it has joined: the flight is up
    return waiter


def cut_as_it_lands(flights: Flights, linkedid: str, waiter: asyncio.Task[object]) -> None:
    """The waiter's deadline falls once the route has ended, before the waiter's turn: its
    answer is set, its wake-up queued, and the cancel comes first."""
    flight = flights._flights[linkedid]
    flight.task.add_done_callback(lambda _: waiter.cancel())


async def test_an_answer_that_reaches_no_waiter_is_undelivered_once() -> None:
    flights, route = Flights(), Held()
    waiter = await joined(flights, "1.0", route)
    cut_as_it_lands(flights, "1.0", waiter)
    route.release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert route.undelivered == ["1.0"]
    await asyncio.sleep(0.01)
    assert route.undelivered == ["1.0"] and len(flights) == 0


async def test_an_answer_a_retry_received_is_delivered() -> None:
    """The first attempt is cut as the route lands; its retry, waiting too, gets the answer:
    Asterisk dials the route, the record keeps it."""
    flights, route = Flights(), Held()
    first = await joined(flights, "2.0", route)
    retry = await joined(flights, "2.0", route)
    cut_as_it_lands(flights, "2.0", first)
    route.release.set()
    assert await retry == DECISION
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0.01)
    assert route.undelivered == []


async def test_an_answer_received_or_no_answer_needs_nothing() -> None:
    flights, route = Flights(), Held()
    waiter = await joined(flights, "3.0", route)
    route.release.set()
    assert await waiter == DECISION
    nothing = Held(answer=None)  # the route itself sent the caller to the fallback
    waiter = await joined(flights, "4.0", nothing)
    cut_as_it_lands(flights, "4.0", waiter)
    nothing.release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.01)
    assert route.undelivered == nothing.undelivered == []


async def test_an_answer_a_retry_will_still_receive_is_delivered() -> None:
    """The first attempt's deadline falls in the same loop pass as the route's end, before
    the retry (still waiting) has woken: the retry gets the route, so nothing is undone."""
    flights, route = Flights(), Held()
    first = await joined(flights, "5.0", route)
    retry = await joined(flights, "5.0", route)

    def land_and_cut() -> None:
        route.release.set()
        first.cancel()

    asyncio.get_running_loop().call_soon(land_and_cut)
    assert await retry == DECISION
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0.01)
    assert route.undelivered == []


class Store:
    """The writes submitted, each answered at once."""

    def __init__(self) -> None:
        self.writes: list[tuple[object, ...]] = []

    def submit(self, writes: list[Write], done: asyncio.Future[None]) -> None:
        self.writes += [w.params for w in writes]
        done.set_result(None)


async def test_a_second_ask_cut_before_its_answer_leaves_the_record_at_the_fallback() -> None:
    """A call recorded `fallback` asked again: the record says the route this answer dials;
    if this ask is cut as well before the answer reaches it, the record says `fallback` again.
    Another number's ask with the same linkedid changes nothing."""
    store = Store()
    known = ("c-9", "google", FALLBACK_ROUTE, "+14155550101")

    async def again(flight: Flight) -> RouteDecision | None:
        target = ("PJSIP/agent1", "+14155550101")
        return answered_again(store, target, known, "", flight)  # type: ignore[arg-type]

    flights = Flights()
    waiter = asyncio.create_task(flights.join("9.0", again))
    await asyncio.sleep(0)
    cut_as_it_lands(flights, "9.0", waiter)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.01)
    assert store.writes == [
        ("PJSIP/agent1", "c-9", FALLBACK_ROUTE),
        (FALLBACK_ROUTE, "c-9", "PJSIP/agent1"),
    ]
    other = answered_again(store, ("PJSIP/agent2", "+14155550102"), known, "")  # type: ignore[arg-type]
    assert other.route == "PJSIP/agent2" and len(store.writes) == 2
