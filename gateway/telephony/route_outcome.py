"""How a routed call is counted and logged (`call_routed`, or `call_routed_late` when the
caller was sent to the fallback), and a record corrected when its caller's deadline passed
while it was being committed: the route was decided, but nobody received it."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace

import structlog

from gateway.metrics import Metrics
from gateway.store.calls import call_fallback_write
from gateway.store.database import Database, StoreError
from gateway.telephony.agi import RouteDecision
from gateway.telephony.route_flights import Flight
from numberpool.calls import CallRecord

__all__ = [
    "FALLBACK_ROUTE",
    "KnownCall",
    "answered_again",
    "count_and_log",
    "late_in_commit",
    "recorded_when_cut",
    "undelivered",
    "undelivered_if_cut",
]

log = structlog.get_logger()

# The route recorded for a call the dialplan sent to its own fallback (CTGW_FALLBACK).
FALLBACK_ROUTE = "fallback"
# A call already recorded (or queued) for a linkedid: its call id, label, recorded route and
# dialed number.
KnownCall = tuple[str, str, str, str]


def late_in_commit(deadline: str) -> str:
    """The `late` of a route whose caller's deadline (`agi_deadline`, `peer_deadline`) passed
    while its record was being committed: recorded with the route, then set to the fallback."""
    return f"{deadline}_in_commit"


def count_and_log(metrics: Metrics, call: CallRecord, late: str, waited: float | None) -> None:
    """One count and one line per routed call, as its record says it went."""
    kind = call.attribution.kind
    metrics.inc("ctgw_calls_total", site=call.site, kind=kind)
    fields = {"late": late} if late else {}
    log.info(
        "call_routed_late" if late else "call_routed",
        call_id=call.call_id,
        site=call.site,
        dialed=call.dialed,
        route=call.route,
        attribution=kind,
        first_time=call.first_time,
        waited_s=round(waited, 3) if waited is not None else None,
        **fields,
    )
    if late:
        metrics.inc("ctgw_calls_routed_late_total", site=call.site)


def recorded_when_cut(
    db: Database,
    metrics: Metrics,
    committed: asyncio.Future[None],
    call: CallRecord,
    late: str,
    waited: float | None,
) -> asyncio.Future[None] | None:
    """Once `committed` (the record of `call`) has landed: the record set to the fallback
    unless it says so already (the write's future, answered when that lands), the call counted
    and logged late. A failed commit left no record (the store logged it)."""
    if committed.cancelled() or committed.exception() is not None:
        return None
    fallback = call.route != FALLBACK_ROUTE
    written = _rewrite(db, call.call_id, call.route, FALLBACK_ROUTE) if fallback else None
    count_and_log(metrics, replace(call, route=FALLBACK_ROUTE), late, waited)
    return written


def undelivered(db: Database, metrics: Metrics, call: CallRecord, deadline: str) -> None:
    """The route of `call` was decided and recorded in time, but its caller's `deadline`
    passed before the answer reached it (Flights.join): Asterisk dialed the fallback. The record
    says so, unless AMI wrote the dial string meanwhile; counted late (counted and logged
    routed already)."""
    _rewrite(db, call.call_id, call.route, FALLBACK_ROUTE)
    log.warning("call_route_undelivered", call_id=call.call_id, site=call.site, late=deadline)
    metrics.inc("ctgw_calls_routed_late_total", site=call.site)


def answered_again(
    db: Database,
    target: tuple[str, str],
    known: KnownCall,
    whisper: str,
    flight: Flight | None = None,
) -> RouteDecision:
    """Asterisk asked again for a call already recorded (a retried lookup, or the second
    gateway of a failover, both with its linkedid): the same answer, the `target` route (with
    its dialed number). A record of that number that says `fallback` (the first ask was cut)
    now says the route this answer dials; should this ask be cut too before the answer
    reaches it (`flight`), it says `fallback` again."""
    route, dialed = target
    call_id, label, recorded, recorded_dialed = known
    if recorded == FALLBACK_ROUTE and dialed == recorded_dialed:
        _rewrite(db, call_id, FALLBACK_ROUTE, route)
        log.info("call_route_again", call_id=call_id, route=route, was=FALLBACK_ROUTE)
        if flight is not None:
            flight.undelivered = functools.partial(_rewrite, db, call_id, route, FALLBACK_ROUTE)
    return RouteDecision(route, call_id, label, whisper=whisper)


def undelivered_if_cut(
    flight: Flight | None, db: Database, metrics: Metrics, call: CallRecord
) -> None:
    """A route answered in a flight: should its waiter be cut before the answer reaches it,
    the record of `call` says `fallback` (`undelivered`)."""
    if flight is not None:
        flight.undelivered = functools.partial(undelivered, db, metrics, call, flight.deadline)


def _rewrite(db: Database, call_id: str, route: str, to: str) -> asyncio.Future[None]:
    """Submit: the record of `call_id` says `to` if it still says `route`; the write's future."""
    written = asyncio.get_running_loop().create_future()
    try:
        db.submit([call_fallback_write(call_id, route, to)], written)
    except StoreError as exc:  # closed meanwhile: answered all the same, logged once below
        written.set_exception(exc)
    written.add_done_callback(lambda done: _unless_failed(done, call_id))
    return written


def _unless_failed(written: asyncio.Future[None], call_id: str) -> None:
    """The record could not be corrected: it keeps a route Asterisk did not dial."""
    if not written.cancelled() and (exc := written.exception()) is not None:
        log.error("call_route_failed", call_id=call_id, error=str(exc))
