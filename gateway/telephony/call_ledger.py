"""AMI->store glue: AMI's call snapshots complete the call records the route began."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime

import structlog

from gateway.metrics import Metrics
from gateway.store.calls import (
    call_closed_write,
    call_progress_write,
    linked_call,
    open_calls,
)
from gateway.store.crm import crm_after_call, facts_write
from gateway.store.database import Database, Write
from gateway.store.outbox import call_changed_write
from gateway.store.times import from_ts, ts
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_lifecycle import CallUpdate
from numberpool.calls import CallRecord, unanswered_state
from numberpool.crm import CrmRules, number_facts

__all__ = ["CallLedger"]

log = structlog.get_logger()


def _cause(update: CallUpdate) -> str:
    if update.closed_by_resync:
        return "closed on resync"
    if update.hangup_cause is None:
        return ""
    return f"{update.hangup_cause} {update.hangup_cause_txt or ''}".strip()


# Snapshots of calls without a record yet, kept for the route to pick up (newest last).
_MAX_UNRECORDED = 2000


class CallLedger:
    """A `CallSink` writing AMI call snapshots into the calls table, keyed by linkedid."""

    def __init__(self, db: Database, metrics: Metrics, crm: CrmRules | None = None) -> None:
        self.db = db
        self.metrics = metrics
        self.crm = crm or CrmRules()
        # Lookups of a new contact's number facts running on a thread (kept to be awaited).
        self._facts: set[asyncio.Task[None]] = set()
        # A gateway that was frozen reads a call's AMI events, even its end, before the lookup
        # that records the call: the newest snapshot of each such call waits here for it.
        self._unrecorded: OrderedDict[str, CallUpdate] = OrderedDict()
        # Calls the route has recorded whose row may not be committed yet (linkedid -> call_id,
        # site): an update read meanwhile is queued behind the row, in its commit or a later one.
        self._recorded: OrderedDict[str, tuple[str, str]] = OrderedDict()

    async def call_updated(self, update: CallUpdate) -> None:
        stored = await linked_call(self.db, update.linkedid)
        # The maps below are read after the lookup's await, never before it: a route recorded
        # while a lookup was away (only where lookups suspend) is in _recorded by now.
        recorded = self._recorded.get(update.linkedid) if stored is None else None
        if recorded is not None:
            call_id, site = recorded
            await self.db.write(self._writes(update, call_id, site))
            log.debug("call_record_updated", call_id=call_id, state=update.state)
            await self._after_final(call_id, update)
            return
        if stored is None:
            # Not (yet) a call the gateway routed: most are other calls; they age out.
            self._unrecorded[update.linkedid] = update
            self._unrecorded.move_to_end(update.linkedid)
            while len(self._unrecorded) > _MAX_UNRECORDED:
                self._unrecorded.popitem(last=False)
            return
        if stored.ended:
            return  # already final
        await self.db.write(self._writes(update, stored.call_id, stored.site))
        log.debug(
            "call_record_updated",
            call_id=stored.call_id,
            state=update.state,
            agent=update.agent,
            final=update.final,
        )
        await self._after_final(stored.call_id, update)

    def writes_for_new_call(self, linkedid: str, call_id: str, site: str) -> list[Write]:
        """The update of a call AMI followed before its route recorded it, to commit with the
        record (the route path calls this: no wait, no extra commit)."""
        if not linkedid:
            return []
        self._recorded[linkedid] = (call_id, site)
        while len(self._recorded) > _MAX_UNRECORDED:
            self._recorded.popitem(last=False)
        update = self._unrecorded.pop(linkedid, None)
        return self._writes(update, call_id, site) if update is not None else []

    def _writes(self, update: CallUpdate, call_id: str, site: str) -> list[Write]:
        ended = update.ended_at if update.final else None
        writes = [
            call_progress_write(
                update.linkedid,
                update.state,
                agent=update.agent or "",
                answered_at=update.answered_at,
                ended_at=ended,
                ring_seconds=update.ring_seconds,
                talk_seconds=update.talk_seconds,
                recording=update.recording or "",
                hangup_cause=_cause(update),
                route=update.route,
            )
        ]
        if update.final and ended is not None:
            self.metrics.inc("ctgw_calls_completed_total", site=site, state=update.state)
            event, at = "call.completed", ended
        elif update.state == "answered" and update.answered_at is not None:
            event, at = "call.updated", update.answered_at  # the first answer only
        else:
            return writes
        changes = _changes(update, ended)
        first_answer = event == "call.updated"
        writes.append(
            call_changed_write(
                event,
                call_id,
                site,
                changes,
                at,
                linkedid=update.linkedid,
                first_answer=first_answer,
            )
        )
        return writes

    async def calls_resynced(self, resync: CallsResynced) -> None:
        """Close open records whose calls Asterisk no longer has (ended while nobody listened)."""
        writes = []
        closed: list[tuple[str, str]] = []
        for call in await open_calls(self.db, started_before=resync.at):
            if call.linkedid in resync.live_linkedids:
                continue
            state = _closed_state(call, resync.at)
            changes = {
                "state": state,
                "ended_at": ts(resync.at),
                "hangup_cause": "closed on resync",
            }
            writes.append(
                call_changed_write("call.completed", call.call_id, call.site, changes, resync.at)
            )
            writes.append(call_closed_write(call.call_id, state, resync.at))
            closed.append((call.call_id, state))
            log.info("call_closed_on_resync", call_id=call.call_id, state=state)
        await self.db.write(writes)
        for call_id, state in closed:
            await self._crm_step(call_id, state, None, resync.at)

    async def _after_final(self, call_id: str, update: CallUpdate) -> None:
        if update.final and update.ended_at is not None:
            await self._crm_step(call_id, update.state, update.talk_seconds, update.ended_at)

    async def _crm_step(self, call_id: str, state: str, talk: float | None, at: datetime) -> None:
        """The CRM's rules for a call whose final record is committed: their rows go into the
        next group commit as a request of their own, so a CRM fault (logged) never touches
        the call record, and nothing here waits but the point lookup."""
        try:
            step = await crm_after_call(self.db, self.crm, call_id, state, talk, at)
            if step.writes:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                done.add_done_callback(_crm_committed)
                self.db.submit(step.writes, done)
        except Exception:
            log.exception("crm_step_failed", call_id=call_id)
            return
        if step.facts_for is not None:
            task = asyncio.create_task(self._look_up_facts(*step.facts_for, at))
            self._facts.add(task)
            task.add_done_callback(self._facts.discard)

    async def _look_up_facts(self, contact_id: str, number: str, at: datetime) -> None:
        """A new contact's region, line type, carrier and place, looked up on a thread."""
        try:
            facts = await asyncio.to_thread(number_facts, number)
            await self.db.write([facts_write(contact_id, facts, at)])
        except Exception:
            log.exception("contact_facts_failed", contact_id=contact_id)


def _changes(update: CallUpdate, ended: datetime | None) -> dict[str, object]:
    """What an AMI update changes of a call record, as the API shows those fields."""
    changes: dict[str, object] = {
        "state": update.state,
        "agent": update.agent or "",
        "answered_at": ts(update.answered_at) if update.answered_at else None,
        "ended_at": ts(ended) if ended else None,
        "ring_seconds": update.ring_seconds,
        "talk_seconds": update.talk_seconds,
        "recording": update.recording or "",
        "hangup_cause": _cause(update),
    }
    if update.route is not None:
        changes["route"] = update.route
    return changes


def _crm_committed(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("crm_write_failed", error=str(done.exception()))


def _closed_state(call: CallRecord, at: datetime) -> str:
    """How an open call that ended unseen by `at` ended, as far as its record tells."""
    if call.answered_at:
        return "answered"
    return unanswered_state((at - from_ts(call.started_at)).total_seconds())
