"""The pure parts of the screen pop: which endpoint an AMI dial event rings, and what the pop
of a ringing call says (its caller, the visit that led to it, the caller's contact)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.call_lifecycle import agent_endpoint
from numberpool.calls import CallRecord
from numberpool.visit import VisitContext, visit_from_url

__all__ = ["Ring", "pop_content", "ring_of"]

_MAX_TEXT = 256
_UNKNOWN = frozenset({"", "<unknown>", "unknown"})


@dataclass(frozen=True)
class Ring:
    """An endpoint rung (DialBegin) or done ringing (DialEnd) for the call `linkedid`."""

    endpoint: str
    linkedid: str
    caller: str
    caller_name: str
    call_id: str
    at: datetime  # Asterisk's event time when it sends one (timestampevents), else ours
    ended: str = ""  # DialEnd's status (ANSWER, NOANSWER, ...); "" while ringing


def _text(value: str) -> str:
    cleaned = "".join(ch for ch in value if ch.isprintable())[:_MAX_TEXT]
    return "" if cleaned.lower() in _UNKNOWN else cleaned


def _event_time(event: AmiMessage, now: datetime) -> datetime:
    try:
        stamp = float(event.get("Timestamp"))
    except ValueError:
        return now
    return datetime.fromtimestamp(stamp, UTC) if 0 < stamp < 1e11 else now


def ring_of(event: AmiMessage, now: datetime, lookup_context: str = "ctgw-lookup") -> Ring | None:
    """The endpoint a DialBegin rings (or a DialEnd stops ringing); None for any other event,
    for Originate's own first leg (no calling channel) and for the gateway's lookup leg."""
    name = event.event.lower()
    if name not in ("dialbegin", "dialend"):
        return None
    dest, channel = event.get("DestChannel"), event.get("Channel")
    if not dest or not channel:
        return None
    if event.get("DestContext") == lookup_context or f"@{lookup_context}-" in dest:
        return None
    linkedid = event.get("Linkedid") or event.get("DestLinkedid")
    if not linkedid:
        return None
    return Ring(
        endpoint=agent_endpoint(dest),
        linkedid=linkedid[:_MAX_TEXT],
        caller=_text(event.get("CallerIDNum")),
        caller_name=_text(event.get("CallerIDName")),
        call_id=_text(event.channel_variables().get("CTGW_CALL_ID", "")),
        at=_event_time(event, now),
        ended=_text(event.get("DialStatus")).upper()[:32] if name == "dialend" else "",
    )


def _pages(visit: VisitContext | None, landing_page: str) -> list[str]:
    """The pages the visit is known to have seen: where it landed, where it asked for a number.
    One page is listed once: by its address without query, shown as last seen (with its UTM)."""
    pages = [landing_page or (visit.landing_page if visit else "")]
    if visit is not None:
        pages.append(visit.url)
    seen: dict[str, str] = {}
    for page in pages:
        if page:
            seen[visit_from_url(page).landing_page] = page
    return list(seen.values())


def pop_content(
    ring: Ring,
    call: CallRecord | None,
    contact: dict[str, Any] | None,
    visit: VisitContext | None,
) -> dict[str, Any]:
    """The pop as the agent page receives it (JSON). Without a call record (a call the gateway
    did not route, or not yet) it still names the caller AMI saw."""
    pop: dict[str, Any] = {
        "linkedid": ring.linkedid,
        "endpoint": ring.endpoint,
        "rang_at": ring.at.isoformat().replace("+00:00", "Z"),
        "caller": ring.caller,
        "caller_name": ring.caller_name,
        "call_id": ring.call_id or None,
        "site": None,
        "visit": None,
        "contact": None,
    }
    if call is None:
        return pop
    att = call.attribution
    pop.update(
        call_id=call.call_id,
        site=call.site,
        dialed=call.dialed,
        caller=call.caller or ring.caller,
        caller_name=call.caller_name or ring.caller_name,
        first_time=call.first_time,
        visit={
            "kind": att.kind,
            "source": att.source,
            "medium": att.medium,
            "campaign": att.campaign,
            "keyword": att.term,
            "landing_page": att.landing_page,
            "referrer": att.referrer,
            "pages": _pages(visit, att.landing_page),
        },
        contact=contact,
    )
    return pop
