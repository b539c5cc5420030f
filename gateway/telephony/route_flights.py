"""Routes in flight on a store whose lookups suspend (PostgreSQL), by the call's linkedid.

Each route runs as a task the AGI deadline cannot cancel: a call whose caller was sent to the
fallback meanwhile is still recorded, once. A retry of the same call that arrives while its
route is still looking up waits for that task instead of attributing the call a second time.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from gateway.telephony.agi import AgiRequest, RouteDecision

__all__ = ["AGI_DEADLINE", "MAX_FLIGHTS", "PEER_DEADLINE", "Flight", "Flights", "late_reason"]

log = structlog.get_logger()

# Routes outlive their AGI sessions only while the store is slow. Each always ends: every
# statement has the store's timeout (asyncpg's command_timeout, 10 s), a pooled connection is
# waited for only behind such statements, and a commit's waiter is always answered. Past this
# many in flight (a store that has all but stopped), a route runs in its AGI session as on
# SQLite, and the deadline may cut it.
MAX_FLIGHTS = 10_000
# Whose deadline passed when nobody waits for a route any more (a late route's `late`): an AGI
# session's here, or that of the gateway Asterisk asked, which forwarded the call (the time it
# had left travels with the request: gateway/cluster/peer_answers.py).
AGI_DEADLINE = "agi_deadline"
PEER_DEADLINE = "peer_deadline"


class Flight:
    """One call's route being decided: its task, the AGI sessions (or peers' requests) waiting
    for its answer, whose deadline the newest of them has and, once the call's record is made,
    its call id (for the logs). `undelivered`: what to do when a route decided in time reached
    no waiter (its deadline fell between the route's end and the waiter's wake-up); set by the
    route with its answer, `delivered` once one waiter got it."""

    __slots__ = ("call_id", "deadline", "delivered", "linkedid", "task", "undelivered", "waiters")
    task: asyncio.Task[RouteDecision | None]

    def __init__(self, linkedid: str) -> None:
        self.linkedid = linkedid
        self.call_id = ""
        self.deadline = AGI_DEADLINE
        self.waiters: set[asyncio.Task[Any]] = set()
        self.delivered = False
        self.undelivered: Callable[[], object] | None = None

    def awaited(self) -> bool:
        """Whether an AGI session still waits for the answer. One whose deadline has passed
        has been asked to stop (cancelling) even before it runs again: it is not counted."""
        return any(not w.done() and not w.cancelling() for w in self.waiters)


Route = Callable[[Flight], Coroutine[Any, Any, RouteDecision | None]]


class Flights:
    """The routes in flight, by linkedid while they run (those of calls without one, by
    themselves: no retry can find them)."""

    def __init__(self, limit: int = MAX_FLIGHTS) -> None:
        self._limit = limit
        self._flights: dict[object, Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def full(self, linkedid: str) -> bool:
        """Whether a new route for `linkedid` would not fit (one already in flight always does)."""
        return len(self._flights) >= self._limit and linkedid not in self._flights

    async def join(
        self, linkedid: str, route: Route, deadline: str = AGI_DEADLINE
    ) -> RouteDecision | None:
        """The answer of the route in flight for `linkedid` (a retry of its call gets the same
        answer), begun with `route` when there is none. Cancelling the caller (its `deadline`)
        leaves the route running."""
        flight = self._flights.get(linkedid) if linkedid else None
        if flight is None:
            flight = Flight(linkedid)
            flight.task = asyncio.get_running_loop().create_task(self._fly(flight, route))
            key: object = linkedid or flight
            self._flights[key] = flight
            flight.task.add_done_callback(functools.partial(self._landed, key))
        else:
            log.info("call_route_joined", linkedid=linkedid)
        flight.deadline = deadline
        waiter = asyncio.current_task()
        if waiter is not None:
            flight.waiters.add(waiter)
        try:
            decision = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if _answered(flight.task):
                # Cut after the route ended: after the other waiters woke, see if one got it.
                asyncio.get_running_loop().call_soon(_undelivered, flight)
            raise
        finally:
            if waiter is not None:
                flight.waiters.discard(waiter)
        flight.delivered = True
        return decision

    async def close(self) -> None:
        """Wait for the routes in flight, so their calls are recorded before the store closes."""
        if self._flights:
            tasks = [flight.task for flight in self._flights.values()]
            await asyncio.gather(*tasks, return_exceptions=True)

    def _landed(self, key: object, _: object) -> None:
        del self._flights[key]

    async def _fly(self, flight: Flight, route: Route) -> RouteDecision | None:
        try:
            return await route(flight)
        except Exception:
            if flight.awaited():
                raise  # the AGI session reports it (agi_decider_failed), as on SQLite
            # Nobody waits for this answer: the log is the only trace of the call. call_id is
            # empty when the route failed before the call's record was made.
            log.exception("call_route_failed", linkedid=flight.linkedid, call_id=flight.call_id)
            return None


def _answered(task: asyncio.Task[RouteDecision | None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None and bool(task.result())


def _undelivered(flight: Flight) -> None:
    """No waiter received the route its flight decided in time: Asterisk dialed the fallback."""
    if flight.delivered or flight.awaited():
        return  # a waiter got it, or one still waits (if it is cut too, it comes back here)
    fix, flight.undelivered = flight.undelivered, None
    if fix is not None:
        fix()


def late_reason(request: AgiRequest, waited: float | None, flight: Flight | None) -> str:
    """Why a call with a route is recorded as sent to the fallback ('' when it is not): the
    caller waited past the dialplan's timeout (it has dialed its fallback already), or nobody
    waits for the route in flight any more (its deadline passed: `Flight.deadline`)."""
    if waited is not None and waited >= (request.lookup_timeout_s or float("inf")):
        return "lookup_timeout"
    if flight is not None and not flight.awaited():
        return flight.deadline
    return ""
