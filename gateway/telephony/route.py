"""The call path: a dialed number in, a route out, the call recorded with its attribution.
Called by the FastAGI server while the caller waits; short and bounded by the AGI deadline."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

import structlog

from gateway.metrics import Metrics
from gateway.store.calls import (
    attributed_visit,
    call_for_linkedid,
    call_write,
    caller_visitors,
)
from gateway.store.contacts import contact_call_write, contact_for_number
from gateway.store.database import Database, Write
from gateway.store.ids import id_maker
from gateway.store.outbox import call_started_write
from gateway.store.sites import SiteEntry
from gateway.store.times import ts
from gateway.telephony.agi import AgiRequest, RouteDecision
from gateway.telephony.caller_id import caller_number, clean_name
from gateway.telephony.route_flights import AGI_DEADLINE, Flight, Flights, late_reason
from gateway.telephony.route_landed import Landed
from gateway.telephony.route_outcome import (
    FALLBACK_ROUTE,
    KnownCall,
    answered_again,
    count_and_log,
    late_in_commit,
    recorded_when_cut,
    undelivered_if_cut,
)
from gateway.telephony.whisper import whisper_for
from numberpool.calls import CallAttribution, CallRecord, attribution_snapshot
from numberpool.clock import Clock
from numberpool.phone import InvalidNumber, normalise
from numberpool.site import Attribution, AttributionKind

__all__ = ["FALLBACK_ROUTE", "CallRouter", "FollowUp", "SitesByNumber", "source_label"]

log = structlog.get_logger()

_SLOW_LOOKUP_S = 0.5
_DIALED_CACHE = 4096
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/()-]+")

# (linkedid, call_id, site) -> the rows that bring a just-recorded call up to date.
FollowUp = Callable[[str, str, str], list[Write]]


class SitesByNumber(Protocol):
    """Which site a dialed number belongs to: all the route needs of the sites as served."""

    def site_for_number(self, number: str) -> SiteEntry | None: ...


class _Target(NamedTuple):
    """Where a dialed number goes: the number as E.164, its site and the dial string."""

    dialed: str
    entry: SiteEntry
    route: str


def source_label(attribution: CallAttribution) -> str:
    """A short label for whisper and screen pop, from safe characters only."""
    kind = attribution.kind
    if kind in (AttributionKind.UNATTRIBUTED, AttributionKind.OVERFLOW):
        label = kind
    else:
        parts = [attribution.source or "", attribution.campaign or ""]
        label = " ".join(p for p in parts if p) or kind
    return _LABEL_UNSAFE.sub("", label)[:40].strip() or "call"


class CallRouter:
    """Decides the route of an inbound call and records the call as `ringing`."""

    def __init__(
        self,
        db: Database,
        sites: SitesByNumber,
        clock: Clock,
        metrics: Metrics,
        region: str,
        follow_up: FollowUp | None = None,
    ) -> None:
        self.db = db
        # AMI's view of a call it followed before this route recorded it (see CallLedger).
        self.follow_up = follow_up
        self.sites = sites
        self.clock = clock
        self.metrics = metrics
        self.region = region
        self._new_id = id_maker()
        # Carriers send the same few dialed numbers in the same shapes: parse each shape once.
        self._dialed: dict[str, str] = {}
        # Rows queued for the group commit but not yet in the store: a second call from a new
        # caller (or a retried lookup) in the same batch must see them as the store will.
        self._new_contacts: dict[str, str] = {}
        self._new_calls: dict[str, KnownCall] = {}
        # Commits landed so far, and the calls and contacts of those that landed while a route
        # was looking up (only where lookups suspend: PostgreSQL), which may have read the
        # store just before they landed and left the maps above.
        self._commits = 0
        self._looking = 0
        self._landed_calls: Landed[KnownCall] = Landed()
        self._landed_contacts: Landed[str] = Landed()
        # Where lookups suspend, routes run in flight: the AGI deadline cannot cut them.
        self._lookups_suspend = db.dialect != "sqlite"
        self._flights = Flights()
        metrics.gauge(lambda: [("ctgw_routes_in_flight", (), len(self._flights))])

    async def decide(
        self, request: AgiRequest, *, deadline: str = AGI_DEADLINE
    ) -> RouteDecision | None:
        """The route for a call, or None so the dialplan dials its fallback. `deadline`: whose
        deadline cancels the caller (the `late` of a route recorded once nobody waits)."""
        now = self.clock.now()
        waited = request.waited(time.time())
        target = self._target(request)
        if target is None:
            return None
        linkedid = request.linkedid[:64]
        if not self._lookups_suspend or self._flights.full(linkedid):
            # SQLite: no lookup suspends, the deadline cannot cut the route before its submit.
            return await self._route(request, target, now, waited, deadline, None)
        # A lookup may outlast the deadline: the call is recorded whether or not it is awaited.
        return await self._flights.join(
            linkedid,
            lambda flight: self._route(request, target, now, waited, deadline, flight),
            deadline,
        )

    async def close(self) -> None:
        """Wait for the routes in flight: their calls are recorded before the store closes."""
        await self._flights.close()

    async def _route(
        self,
        request: AgiRequest,
        target: _Target,
        now: datetime,
        waited: float | None,
        deadline: str,
        flight: Flight | None,
    ) -> RouteDecision | None:
        """Look the call up, attribute and record it; in `flight` where lookups suspend."""
        linkedid, seen = request.linkedid[:64], self._commits
        self._looking += 1
        try:
            known = await self._known_call(linkedid)
            if known is not None:
                return self._again(target, known, flight)
            at = _dialed_at(now, waited)
            caller = caller_number(request.caller, self.region)
            attribution = await self._attribute(target.entry, target.dialed, at, caller)
            stored_contact = await contact_for_number(self.db, caller) if caller else None
            # Nothing awaits from here to the submit in _record: the pending maps are checked
            # and filled in one step. With SQLite the lookups above never suspend, so the whole
            # route is one step as before. Where they do, a route of this call that did not
            # join this one's flight (flights full, or a commit just missed) is caught here.
            pending = self._new_calls.get(linkedid) or self._landed_calls.since(linkedid, seen)
            if linkedid and pending is not None:
                return self._again(target, pending, flight)
            contact = self._contact(caller, stored_contact, seen)
        finally:
            self._looking -= 1
        late = late_reason(request, waited, flight)
        route = FALLBACK_ROUTE if late else target.route
        call = self._new_call(request, target, route, at, caller, attribution, contact)
        if flight is not None:
            flight.call_id = call.call_id
        label = source_label(call.attribution)
        committed = self._record(call, label)
        try:
            await asyncio.shield(committed)
        except asyncio.CancelledError:
            # The caller's deadline passed during the commit (SQLite, or no flight): the rows
            # are still written; once they are, the record says what Asterisk dialed.
            cut = late or late_in_commit(deadline)
            committed.add_done_callback(
                lambda done: recorded_when_cut(self.db, self.metrics, done, call, cut, waited)
            )
            raise
        if not late and flight is not None and not flight.awaited():
            # The same where routes fly: nobody gets this route (Asterisk dials the fallback).
            late = late_in_commit(flight.deadline)
            fixed = recorded_when_cut(self.db, self.metrics, committed, call, late, waited)
            if fixed is not None:
                await asyncio.wait([fixed])  # the flight lasts until the record is corrected
            return None
        count_and_log(self.metrics, call, late, waited)
        if late:
            return None
        undelivered_if_cut(flight, self.db, self.metrics, call)
        whisper = whisper_for(target.entry.whisper, label)
        return RouteDecision(target.route, call.call_id, label, whisper)

    def _target(self, request: AgiRequest) -> _Target | None:
        """The dialed number's site and dial string; None (logged) when it has none."""
        dialed = self.dialed_number(request)
        if dialed is None:
            return None
        entry = self.sites.site_for_number(dialed)
        if entry is None:
            log.warning("call_unknown_number", dialed=dialed, linkedid=request.linkedid[:64])
            self.metrics.inc("ctgw_calls_unrouted_total", reason="unknown_number")
            return None
        route = entry.destination_for(dialed)
        if not route:
            log.warning("call_no_destination", dialed=dialed, site=entry.site.key)
            return None
        return _Target(dialed, entry, route)

    def dialed_number(self, request: AgiRequest) -> str | None:
        """The dialed number as E.164; None (logged) when it is not a phone number."""
        dialed = self._dialed.get(request.dialed)
        if dialed is not None:
            return dialed
        try:
            dialed = normalise(request.dialed, self.region)
        except InvalidNumber as exc:
            log.warning("call_unroutable", reason=str(exc), linkedid=request.linkedid[:64])
            return None
        if len(self._dialed) >= _DIALED_CACHE:
            self._dialed.clear()
        self._dialed[request.dialed] = dialed
        return dialed

    async def _known_call(self, linkedid: str) -> KnownCall | None:
        """The call id, label and route of a call recorded (or queued) for this linkedid."""
        if not linkedid:
            return None
        pending = self._new_calls.get(linkedid)
        if pending is not None:
            return pending
        stored = await call_for_linkedid(self.db, linkedid)
        if stored is None:
            return None
        return stored.call_id, source_label(stored.attribution), stored.route, stored.dialed

    def _again(self, target: _Target, known: KnownCall, flight: Flight | None) -> RouteDecision:
        whisper = whisper_for(target.entry.whisper, known[1])
        return answered_again(self.db, (target.route, target.dialed), known, whisper, flight)

    def _new_call(
        self,
        request: AgiRequest,
        target: _Target,
        route: str,
        at: datetime,
        caller: str,
        attribution: CallAttribution,
        contact: tuple[str | None, bool],
    ) -> CallRecord:
        """The record of a call just routed, `ringing`, attributed as of `at`."""
        contact_id, first_time = contact
        return CallRecord(
            call_id=self._new_id(),
            site=target.entry.site.key,
            dialed=target.dialed,
            started_at=ts(at),
            state="ringing",
            attribution=attribution,
            caller=caller,
            caller_name=clean_name(request.caller_name),
            linkedid=request.linkedid[:64],
            route=route,
            first_time=first_time,
            contact_id=contact_id,
        )

    async def _attribute(
        self, entry: SiteEntry, dialed: str, at: datetime, caller: str
    ) -> CallAttribution:
        """The call's attribution, helped by the visits the caller's earlier calls went to;
        whatever a visitor sent, never raises."""
        try:
            known = await caller_visitors(self.db, caller)
            attribution = entry.site.attribute(dialed, at, known_visitors=known, caller=caller)
            session_id = attribution.session_id
            visit = await attributed_visit(self.db, session_id) if session_id else None
            return attribution_snapshot(attribution, visit)
        except Exception:
            # A call is routed and recorded whatever its visit holds; the bug is logged.
            log.exception("call_attribution_failed", dialed=dialed, site=entry.site.key)
            self.metrics.inc("ctgw_attribution_failures_total", site=entry.site.key)
            fallback = Attribution(AttributionKind.UNATTRIBUTED, entry.site.key, dialed)
            return attribution_snapshot(fallback, None)

    def _contact(self, caller: str, stored: str | None, seen: int) -> tuple[str | None, bool]:
        """The caller's contact id and whether this is its first call (one id per number),
        given the id the store had (`stored`) when the router had counted `seen` commits."""
        if not caller:
            return None, True
        pending = self._new_contacts.get(caller) or self._landed_contacts.since(caller, seen)
        if pending is not None:
            return pending, False
        if stored is not None:
            return stored, False
        contact_id = self._new_contacts[caller] = secrets.token_hex(8)
        return contact_id, True

    def _record(self, call: CallRecord, label: str) -> asyncio.Future[None]:
        """Submit the call, its contact and AMI's view of it to one group commit."""
        writes = [call_write(call), call_started_write(call)]
        if call.caller and call.contact_id:
            writes.append(contact_call_write(call))
        if self.follow_up is not None:
            writes += self.follow_up(call.linkedid, call.call_id, call.site)
        if call.linkedid:
            self._new_calls[call.linkedid] = (call.call_id, label, call.route, call.dialed)
        # The AGI deadline may cancel the route's await of this future: the record is still
        # written in full (the rows are in the group commit already; it is awaited shielded).
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        committed.add_done_callback(lambda done: self._committed(done, call.caller, call.linkedid))
        self.db.submit(writes, committed)
        return committed

    def _committed(self, done: asyncio.Future[None], caller: str, linkedid: str) -> None:
        """The call's rows are in the store (or failed): lookups answer from the store again."""
        contact = self._new_contacts.pop(caller, None)
        answer = self._new_calls.pop(linkedid, None)
        self._commits += 1
        if not self._looking or done.cancelled() or done.exception() is not None:
            return  # no route is between its lookups and its queueing (always so on SQLite)
        if contact is not None:
            self._landed_contacts.add(caller, self._commits, contact)
        if answer is not None:
            self._landed_calls.add(linkedid, self._commits, answer)


def _dialed_at(now: datetime, waited: float | None) -> datetime:
    """When the caller dialed: attribute by that, not by when a slow or frozen gateway got to
    it (a lookup answered in its usual milliseconds keeps the gateway's own clock)."""
    return now - timedelta(seconds=waited) if waited and waited >= _SLOW_LOOKUP_S else now
