"""Follows each call by its Asterisk `Linkedid` from AMI events to a final state. Pure: no I/O.

Every channel of a call (caller, agents, Local halves) shares the linkedid. The FastAGI lookup
leg runs on a Local channel in the lookup context and shares it too; it is ignored so it never
counts as an agent or a ring. A call ends when its last live channel hangs up, or when a resync
after a reconnect shows its channels are gone. Handling is idempotent: a duplicate or late event
for a finished call changes nothing, and a hung-up channel is never made live again.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gateway.telephony.ami_protocol import AmiMessage
from numberpool.calls import ABANDON_SECONDS, unanswered_state
from numberpool.clock import Clock

__all__ = ["OUTBOUND_PREFIX", "CallTracker", "CallUpdate", "agent_endpoint"]

# The linkedid (Originate's ChannelId) of a click-to-call call starts so. Asterisk sets linkedids:
# a caller cannot forge one, and the lab's own Originates (test callers) do not use it.
OUTBOUND_PREFIX = "ctgw-out-"

_SUFFIX = re.compile(r"(-[0-9a-fA-F]+)?(;[12])?$")
_MAX_TEXT = 256
_HANGUPS = frozenset({"hangup", "hanguprequest", "softhanguprequest"})


def agent_endpoint(channel: str) -> str:
    """The device behind a channel name: `PJSIP/agent1-0000000a` -> `PJSIP/agent1`."""
    return _SUFFIX.sub("", channel, count=1)[:_MAX_TEXT]


@dataclass(frozen=True)
class CallUpdate:
    """A snapshot of one call, keyed by `linkedid`; the newest snapshot wins (upsert)."""

    linkedid: str
    state: str  # ringing, answered, missed or abandoned
    started_at: datetime
    started_exact: bool = True  # False when first seen mid-call (after a restart)
    call_id: str | None = None  # CTGW_CALL_ID, when channelvars lists it
    agent: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    recording: str | None = None
    dial_status: str | None = None
    route: str | None = None  # what the call's first Dial really dialed (gateway or fallback)
    hangup_cause: int | None = None
    hangup_cause_txt: str | None = None
    final: bool = False
    closed_by_resync: bool = False  # ended while AMI was down: ended_at is the resync time


@dataclass
class _Call:
    linkedid: str
    started_at: datetime
    started_exact: bool = True
    call_id: str | None = None
    live: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    agent_legs: dict[str, str] = field(default_factory=dict)  # dialed uniqueid -> endpoint
    ring_started_at: datetime | None = None
    answered_at: datetime | None = None
    agent: str | None = None
    recording: str | None = None
    dial_status: str | None = None
    route: str | None = None
    cause: int | None = None
    cause_txt: str | None = None
    cause_from_main: bool = False
    last: CallUpdate | None = None


class CallTracker:
    """Turns AMI events into `CallUpdate`s, timed by the injected clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        lookup_context: str = "ctgw-lookup",
        abandon_seconds: float = ABANDON_SECONDS,
        remember_finished: int = 10000,
    ) -> None:
        self._clock = clock
        self._lookup = lookup_context
        self._abandon = abandon_seconds
        self._remember = remember_finished
        self._calls: dict[str, _Call] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._resync_seen: set[str] | None = None

    @property
    def live_linkedids(self) -> frozenset[str]:
        return frozenset(self._calls)

    def _is_lookup(self, context: str, channel: str) -> bool:
        return context == self._lookup or f"@{self._lookup}-" in channel

    def _call(self, linkedid: str, *, create: bool) -> _Call | None:
        if not linkedid or linkedid in self._finished:
            return None
        call = self._calls.get(linkedid)
        if call is None and create:
            call = self._calls[linkedid] = _Call(linkedid[:_MAX_TEXT], self._clock.now())
        return call

    def _note_channel(self, call: _Call, event: AmiMessage, uniqueid: str) -> None:
        if uniqueid and uniqueid not in call.gone:
            call.live.add(uniqueid)
        if self._resync_seen is not None and uniqueid:
            self._resync_seen.add(uniqueid)
        self._note_variables(call, event)

    def _note_variables(self, call: _Call, event: AmiMessage) -> None:
        variables = event.channel_variables()
        if variables.get("MIXMONITOR_FILENAME"):
            call.recording = variables["MIXMONITOR_FILENAME"][:_MAX_TEXT]
        if variables.get("CTGW_CALL_ID") and call.call_id is None:
            call.call_id = variables["CTGW_CALL_ID"][:_MAX_TEXT]

    def handle(self, event: AmiMessage) -> list[CallUpdate]:
        """Apply one event; returns the snapshots that changed (zero or one)."""
        name = event.event.lower()
        channel, context = event.get("Channel"), event.get("Context")
        uniqueid = event.get("Uniqueid")
        if channel and self._is_lookup(context, channel):
            return []
        # A hangup of a call never seen alive is ignored: opening a record only to close it
        # at once would invent a zero-second call.
        linkedid = event.get("Linkedid")
        if not channel and name in ("dialbegin", "dialend"):
            linkedid = event.get("DestLinkedid")  # Originate's first leg: only Dest* fields
        call = self._call(linkedid, create=bool(channel) and name not in _HANGUPS)
        if call is None:
            return []
        if channel and name not in _HANGUPS:
            self._note_channel(call, event, uniqueid)
        elif channel:
            # A hangup may be the first event carrying a variable set just before it.
            self._note_variables(call, event)
        now = self._clock.now()
        if name in ("dialbegin", "dialend"):
            self._dial(call, event, name, now)
        elif name == "bridgeenter":
            if call.answered_at is None:
                call.answered_at = now
            call.agent = call.agent or call.agent_legs.get(uniqueid)
        elif name == "hangup":
            return self._hangup(call, event, uniqueid, now)
        return self._emit(call, self._snapshot(call))

    def _dial(self, call: _Call, event: AmiMessage, name: str, now: datetime) -> None:
        dest = event.get("DestChannel")
        if not dest or self._is_lookup(event.get("DestContext"), dest):
            return
        if not event.get("Channel"):
            # Originate's own first leg. In click-to-call it rings the agent's phone first, so
            # its device is the agent; the call is answered when the customer answers. Other
            # Originates (a test's caller) are no agent ringing.
            if call.linkedid.startswith(OUTBOUND_PREFIX):
                call.agent = call.agent or agent_endpoint(dest)
            return
        dest_id = event.get("DestUniqueid")
        endpoint = agent_endpoint(dest)
        if name == "dialbegin":
            if call.route is None:
                # The inbound dialplan's Dial comes first: the gateway's route, or the fallback
                # when the gateway did not answer in time. DialString lacks the technology.
                tech, sep, _ = dest.partition("/")
                dialed = event.get("DialString")
                if sep and dialed:
                    call.route = f"{tech}/{dialed}"[:_MAX_TEXT]
            call.agent_legs.setdefault(dest_id, endpoint)
            call.ring_started_at = call.ring_started_at or now
            return
        status = event.get("DialStatus").upper()[:32]
        if status == "ANSWER":
            call.answered_at = call.answered_at or now
            call.agent = call.agent or endpoint
            call.ring_started_at = call.ring_started_at or call.started_at
        elif call.answered_at is None:
            call.dial_status = status

    def _hangup(
        self, call: _Call, event: AmiMessage, uniqueid: str, now: datetime
    ) -> list[CallUpdate]:
        call.live.discard(uniqueid)
        call.gone.add(uniqueid)
        is_main = uniqueid == call.linkedid
        if is_main or not call.cause_from_main:
            cause = event.get("Cause")
            call.cause = int(cause) if cause.isdigit() and len(cause) < 4 else None
            call.cause_txt = event.get("Cause-txt")[:_MAX_TEXT] or None
            call.cause_from_main = is_main
        if call.live:
            return self._emit(call, self._snapshot(call))
        return self._finish(call, now, closed_by_resync=False)

    def _snapshot(self, call: _Call) -> CallUpdate:
        ring = None
        if call.answered_at is not None:
            ring = (call.answered_at - (call.ring_started_at or call.started_at)).total_seconds()
        return CallUpdate(
            linkedid=call.linkedid,
            state="answered" if call.answered_at is not None else "ringing",
            started_at=call.started_at,
            started_exact=call.started_exact,
            call_id=call.call_id,
            agent=call.agent,
            answered_at=call.answered_at,
            ring_seconds=ring,
            # With MixMonitor's `b` option nothing is recorded before the bridge: an unanswered
            # call's file is empty or absent, so it is not reported.
            recording=call.recording if call.answered_at is not None else None,
            dial_status=call.dial_status,
            route=call.route,
        )

    def _emit(self, call: _Call, update: CallUpdate) -> list[CallUpdate]:
        if update == call.last:
            return []
        call.last = update
        return [update]

    def _finish(self, call: _Call, now: datetime, *, closed_by_resync: bool) -> list[CallUpdate]:
        update = self._snapshot(call)
        if call.answered_at is not None:
            talk = max(0.0, (now - call.answered_at).total_seconds())
            update = replace(update, talk_seconds=talk)
        else:
            state = unanswered_state((now - call.started_at).total_seconds(), self._abandon)
            ring = (now - call.ring_started_at).total_seconds() if call.ring_started_at else None
            update = replace(update, state=state, ring_seconds=ring)
        update = replace(
            update,
            ended_at=now,
            hangup_cause=call.cause,
            hangup_cause_txt=call.cause_txt,
            final=True,
            closed_by_resync=closed_by_resync,
        )
        del self._calls[call.linkedid]
        self._finished[call.linkedid] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)
        return [update]

    # --- resync after (re)connect ------------------------------------------------------------

    def resync_started(self) -> None:
        """From now on remember which channels show signs of life, from events or the list."""
        self._resync_seen = set()

    def resynced(self, channels: Sequence[AmiMessage]) -> list[CallUpdate]:
        """Apply the CoreShowChannel list: adopt live calls, close calls whose channels vanished."""
        now = self._clock.now()
        seen = self._resync_seen if self._resync_seen is not None else set()
        self._resync_seen = None
        updates: list[CallUpdate] = []
        touched: set[str] = set()
        for item in channels:
            channel, uniqueid = item.get("Channel"), item.get("Uniqueid")
            if not channel or self._is_lookup(item.get("Context"), channel):
                continue
            linkedid = item.get("Linkedid")
            known = linkedid in self._calls
            call = self._call(linkedid, create=True)
            if call is None:
                continue
            age = timedelta(seconds=_duration_seconds(item.get("Duration")))
            if not known:
                call.started_at, call.started_exact = now - age, False
            elif not call.started_exact:
                call.started_at = min(call.started_at, now - age)
            self._note_channel(call, item, uniqueid)
            seen.add(uniqueid)
            if item.get("Application") == "AppDial":  # an agent leg: ringing or talking
                call.agent_legs.setdefault(uniqueid, agent_endpoint(channel))
                call.ring_started_at = call.ring_started_at or now - age
                if item.get("BridgeId"):
                    call.agent = call.agent or agent_endpoint(channel)
            if item.get("BridgeId") and call.answered_at is None:
                call.answered_at = now
            touched.add(call.linkedid)
        for call in list(self._calls.values()):
            call.live &= seen
            if not call.live:
                updates += self._finish(call, now, closed_by_resync=True)
            elif call.linkedid in touched:
                updates += self._emit(call, self._snapshot(call))
        return updates


def _duration_seconds(text: str) -> int:
    """`HH:MM:SS` from CoreShowChannel, 0 when absent or malformed."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return 0
    hours, minutes, seconds = (int(p) for p in parts)
    return hours * 3600 + minutes * 60 + seconds
