"""The call path: a dialed number in, a route out, the call recorded with its attribution.

Called by the FastAGI server while the caller waits; short and bounded by the AGI deadline.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.leasing.desk import SessionDesk
from gateway.metrics import Metrics
from gateway.store.database import Database, Write, ts
from gateway.store.ids import id_maker
from gateway.store.sites import SiteEntry
from gateway.telephony.agi import AgiRequest, RouteDecision
from numberpool.clock import Clock
from numberpool.phone import InvalidNumber, normalise
from numberpool.site import Attribution, AttributionKind
from numberpool.visit import VisitContext

__all__ = ["FALLBACK_ROUTE", "CallRouter", "FollowUp", "attribution_snapshot", "source_label"]

log = structlog.get_logger()

_MAX_NAME = 80
# The route recorded for a call the dialplan sent to its own fallback (CTGW_FALLBACK).
FALLBACK_ROUTE = "fallback"
_SLOW_LOOKUP_S = 0.5
_DIALED_CACHE = 4096
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9 ._/()-]+")

_CALL_SQL = (
    "INSERT INTO calls (call_id, site, dialed, caller, caller_name, linkedid, started_at, state,"
    " first_time, contact_id, route, attribution_kind, session_id, visitor_id, attribution)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 'ringing', ?, ?, ?, ?, ?, ?, ?)"
)
_CONTACT_SQL = (
    "INSERT INTO contacts (contact_id, number, name, first_call_at, last_call_at, calls,"
    " first_touch, last_touch) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
    " ON CONFLICT(number) DO UPDATE SET last_call_at = excluded.last_call_at,"
    " calls = contacts.calls + 1, last_touch = excluded.last_touch,"
    " name = CASE WHEN excluded.name != '' THEN excluded.name ELSE contacts.name END"
)
# The sessions columns that make up a VisitContext (the stored visit of a call).
# (linkedid, call_id, site) -> the rows that bring a just-recorded call up to date.
FollowUp = Callable[[str, str, str], list[Write]]

_VISIT_FIELDS = ", ".join(f for f in VisitContext._fields if f != "params")


def source_label(snapshot: dict[str, Any]) -> str:
    """A short label for whisper and screen pop, from safe characters only."""
    kind = snapshot.get("kind", "")
    if kind in (AttributionKind.UNATTRIBUTED, AttributionKind.OVERFLOW):
        label = str(kind)
    else:
        parts = [snapshot.get("source") or "", snapshot.get("campaign") or ""]
        label = " ".join(p for p in parts if p) or str(kind)
    return _LABEL_UNSAFE.sub("", label)[:40].strip() or "call"


def attribution_snapshot(attribution: Attribution, visit: VisitContext | None) -> dict[str, Any]:
    """The attribution fields of a call record, copied from the visit at call time."""
    snap: dict[str, Any] = {
        "kind": attribution.kind.value,
        "session_id": attribution.session_id or None,
        "visitor_id": attribution.visitor_id or None,
        "source": "",
        "medium": "",
        "campaign": "",
        "term": "",
        "content": "",
        "gclid": "",
        "landing_page": "",
        "referrer": "",
    }
    if attribution.static is not None:
        snap.update(
            source=attribution.static.source,
            medium=attribution.static.medium,
            campaign=attribution.static.campaign,
        )
    elif visit is not None:
        # The visit's own rules imply source and medium when the URL had no UTM tags.
        snap.update(
            source=visit.source,
            medium=visit.medium,
            campaign=visit.utm_campaign,
            term=visit.utm_term,
            content=visit.utm_content,
            gclid=visit.gclid,
            landing_page=visit.landing_page,
            referrer=visit.referrer,
        )
    return snap


class CallRouter:
    """Decides the route of an inbound call and records the call as `ringing`."""

    def __init__(
        self,
        db: Database,
        desk: SessionDesk,
        clock: Clock,
        metrics: Metrics,
        region: str,
        follow_up: FollowUp | None = None,
    ) -> None:
        self.db = db
        # AMI's view of a call it followed before this route recorded it (see CallLedger).
        self.follow_up = follow_up
        self.desk = desk
        self.clock = clock
        self.metrics = metrics
        self.region = region
        self._new_id = id_maker()
        # Carriers send the same few dialed numbers in the same shapes: parse each shape once.
        self._dialed: dict[str, str] = {}
        # Rows queued for the group commit but not yet in the store: a second call from a new
        # caller (or a retried lookup) in the same batch must see them as the store will.
        self._new_contacts: dict[str, str] = {}
        self._new_calls: dict[str, tuple[str, str]] = {}

    async def decide(self, request: AgiRequest) -> RouteDecision | None:
        """The route for a call, or None so the dialplan dials its fallback."""
        now = self.clock.now()
        waited = request.waited(time.time())
        # Attribute by when the caller dialed, not by when a slow or frozen gateway got to it
        # (a lookup answered in its usual milliseconds keeps the gateway's own clock).
        at = now - timedelta(seconds=waited) if waited and waited >= _SLOW_LOOKUP_S else now
        dialed = self._dialed.get(request.dialed)
        if dialed is None:
            try:
                dialed = normalise(request.dialed, self.region)
            except InvalidNumber as exc:
                log.warning("call_unroutable", reason=str(exc), linkedid=request.linkedid[:64])
                return None
            if len(self._dialed) >= _DIALED_CACHE:
                self._dialed.clear()
            self._dialed[request.dialed] = dialed
        entry = self.desk.site_for_number(dialed)
        if entry is None:
            log.warning("call_unknown_number", dialed=dialed, linkedid=request.linkedid[:64])
            self.metrics.inc("ctgw_calls_unrouted_total", reason="unknown_number")
            return None
        route = entry.destination_for(dialed)
        if not route:
            log.warning("call_no_destination", dialed=dialed, site=entry.site.key)
            return None
        existing = self._existing_call(request.linkedid)
        if existing is not None:
            # Asterisk asked again for the same call (a retried lookup): same answer.
            return RouteDecision(route, existing[0], existing[1])
        # The caller waited past the dialplan's timeout: it has dialed its fallback already.
        late = waited is not None and waited >= (request.lookup_timeout_s or float("inf"))
        attribution, snapshot = self._attribute(entry, dialed, at)
        caller = _caller_number(request.caller, self.region)
        name = _clean_name(request.caller_name)
        call_id = self._new_id()
        stamp = ts(at)
        contact_id, first_time = self._contact(caller)
        writes = [
            Write(
                _CALL_SQL,
                (
                    call_id,
                    entry.site.key,
                    dialed,
                    caller,
                    name,
                    request.linkedid[:64],
                    stamp,
                    int(first_time),
                    contact_id,
                    FALLBACK_ROUTE if late else route,
                    attribution.kind.value,
                    attribution.session_id,
                    attribution.visitor_id,
                    json.dumps(snapshot),
                ),
                rank=60,
            ),
        ]
        if caller and contact_id:
            touch = json.dumps({**snapshot, "at": stamp, "call_id": call_id})
            writes.append(
                Write(_CONTACT_SQL, (contact_id, caller, name, stamp, stamp, touch, touch), rank=55)
            )
        if self.follow_up is not None:
            writes += self.follow_up(request.linkedid[:64], call_id, entry.site.key)
        label = source_label(snapshot)
        if request.linkedid:
            self._new_calls[request.linkedid[:64]] = (call_id, label)
        # The AGI deadline cancels this coroutine; the record is still written in full (the
        # rows are in the group commit already; the shield keeps our future from being cancelled).
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        committed.add_done_callback(lambda _: self._committed(caller, request.linkedid[:64]))
        self.db.submit(writes, committed)
        await asyncio.shield(committed)
        self.metrics.inc("ctgw_calls_total", site=entry.site.key, kind=attribution.kind.value)
        log.info(
            "call_routed_late" if late else "call_routed",
            call_id=call_id,
            site=entry.site.key,
            dialed=dialed,
            route=FALLBACK_ROUTE if late else route,
            attribution=attribution.kind.value,
            first_time=first_time,
            waited_s=round(waited, 3) if waited is not None else None,
        )
        if late:
            self.metrics.inc("ctgw_calls_routed_late_total", site=entry.site.key)
            return None
        return RouteDecision(route, call_id, label)

    def _attribute(
        self, entry: SiteEntry, dialed: str, at: datetime
    ) -> tuple[Attribution, dict[str, Any]]:
        """The call's attribution and its snapshot; whatever a visitor sent, never raises."""
        try:
            attribution = entry.site.attribute(dialed, at)
            return attribution, attribution_snapshot(attribution, self._visit(attribution))
        except Exception:
            # A call is routed and recorded whatever its visit holds; the bug is logged.
            log.exception("call_attribution_failed", dialed=dialed, site=entry.site.key)
            self.metrics.inc("ctgw_attribution_failures_total", site=entry.site.key)
            fallback = Attribution(AttributionKind.UNATTRIBUTED, entry.site.key, dialed)
            return fallback, attribution_snapshot(fallback, None)

    def _contact(self, caller: str) -> tuple[str | None, bool]:
        """The caller's contact id and whether this is its first call (one id per number)."""
        if not caller:
            return None, True
        pending = self._new_contacts.get(caller)
        if pending is not None:
            return pending, False
        row = self.db.lookup("SELECT contact_id FROM contacts WHERE number = ?", (caller,))
        if row is not None:
            return str(row["contact_id"]), False
        contact_id = self._new_contacts[caller] = secrets.token_hex(8)
        return contact_id, True

    def _committed(self, caller: str, linkedid: str) -> None:
        """The call's rows are in the store (or failed): lookups answer from the store again."""
        self._new_contacts.pop(caller, None)
        self._new_calls.pop(linkedid, None)

    def _existing_call(self, linkedid: str) -> tuple[str, str] | None:
        if not linkedid:
            return None
        pending = self._new_calls.get(linkedid[:64])
        if pending is not None:
            return pending
        row = self.db.lookup(
            "SELECT call_id, attribution FROM calls WHERE linkedid = ?", (linkedid[:64],)
        )
        if row is None:
            return None
        return str(row["call_id"]), source_label(json.loads(row["attribution"]))

    def _visit(self, attribution: Attribution) -> VisitContext | None:
        if not attribution.session_id:
            return None
        row = self.db.lookup(
            f"SELECT {_VISIT_FIELDS} FROM sessions WHERE session_id = ?",  # noqa: S608 - fixed columns
            (attribution.session_id,),
        )
        return VisitContext(**{key: row[key] for key in row.keys()}) if row else None


def _caller_number(text: str, region: str) -> str:
    """The caller as E.164, or '' for anonymous or unreadable caller ids."""
    try:
        return normalise(text, region) if text else ""
    except InvalidNumber:
        return ""


def _clean_name(text: str) -> str:
    """The caller name as stored: line breaks and tabs as spaces, other control characters
    removed, bounded length."""
    spaced = "".join(ch if ch.isprintable() else " " if ch in "\r\n\t" else "" for ch in text)
    return " ".join(spaced.split())[:_MAX_NAME]
