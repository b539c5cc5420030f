"""Click-to-call: AMI Originate rings the agent's own endpoint first, then the contact's number
through the configured outbound context. The record is written first, under the call id the
gateway makes (Originate's ChannelId, so the call's linkedid), and AMI's follower completes it.

Nothing from a request reaches the dial: the channel is the agent's stored endpoint, the exten
a validated E.164 number, the context and caller id come from the config.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog

from gateway.store.calls import outbound_call_writes, outbound_dropped_write
from gateway.store.database import Database
from gateway.store.times import ts
from gateway.telephony.ami_link import AmiActionError, AmiDisconnected, AmiLink
from gateway.telephony.call_lifecycle import OUTBOUND_PREFIX
from numberpool.calls import CallAttribution, CallRecord

__all__ = ["ClickToCallError", "Outbound", "outbound_number", "place_call"]

log = structlog.get_logger()

# E.164: a plus, then 7-15 digits, the first not 0. Nothing else may reach Originate's Exten.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)
_ORIGINATE_TIMEOUT_S = 5.0
_RING_AGENT_MS = 30000


class ClickToCallError(Exception):
    """A call that cannot be placed; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def outbound_number(text: str) -> str:
    """`text` if it is an E.164 number (digits and a leading +), else ClickToCallError 400."""
    if not _E164.fullmatch(text):
        raise ClickToCallError(400, f"{text[:40]!r} is not an E.164 number like +14155550100")
    return text


@dataclass(frozen=True)
class Outbound:
    """One click: who calls whom, for which site, on which context, showing which caller id."""

    site: str
    contact_id: str
    number: str  # the contact's E.164 number (checked by outbound_number)
    endpoint: str  # the agent's stored endpoint (gateway/store/agents.py)
    context: str  # [calls] outbound_context (checked by the config)
    caller_id: str = ""  # the site's or [calls] outbound_caller_id, E.164 or ''


def outbound_record(call: Outbound, call_id: str, at: datetime) -> CallRecord:
    """The record of a click-to-call call before it rings. Like an inbound record, `caller` is
    the customer (so the contact's page and the CRM find it) and `dialed` the line it went on:
    the caller id shown, else the agent's endpoint."""
    return CallRecord(
        call_id=call_id,
        site=call.site,
        dialed=call.caller_id or call.endpoint,
        started_at=ts(at),
        state="ringing",
        attribution=CallAttribution("outbound"),
        caller=call.number,
        linkedid=call_id,
        agent=call.endpoint,
        first_time=False,
        contact_id=call.contact_id,
        direction="outbound",
    )


async def place_call(db: Database, link: AmiLink, call: Outbound, at: datetime) -> str:
    """Record the call, then originate it; returns its call id. ClickToCallError 503 when AMI
    is not there or refuses (the record is then removed: no call happened)."""
    outbound_number(call.number)
    call_id = f"{OUTBOUND_PREFIX}{uuid.uuid4().hex}"
    await db.write(outbound_call_writes(outbound_record(call, call_id, at)))
    fields: dict[str, object] = {
        "Channel": call.endpoint,
        "Context": call.context,
        "Exten": call.number,
        "Priority": 1,
        "Timeout": _RING_AGENT_MS,
        "Async": "true",
        "ChannelId": call_id,
        "OtherChannelId": f"{call_id}-2",  # used when the endpoint is a Local channel
        "Variable": f"CTGW_CALL_ID={call_id}",
    }
    if call.caller_id:
        fields["CallerID"] = call.caller_id
    try:
        await link.action("Originate", fields, timeout_s=_ORIGINATE_TIMEOUT_S)
    except (AmiDisconnected, AmiActionError, TimeoutError) as exc:
        await db.write([outbound_dropped_write(call_id)])
        log.warning("click_to_call_failed", call_id=call_id, error=str(exc))
        raise ClickToCallError(503, f"the call could not be placed: {exc}") from None
    log.info("click_to_call_placed", call_id=call_id, site=call.site, endpoint=call.endpoint)
    return call_id
