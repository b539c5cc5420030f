"""The store side of call following: AMI snapshots complete the call records the route began."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime

import structlog

from gateway.metrics import Metrics
from gateway.store.database import Database, Write, from_ts, ts
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_lifecycle import CallUpdate

__all__ = ["CallLedger"]

log = structlog.get_logger()

# Unanswered calls shorter than this are abandoned, longer ones missed (PRODUCT.md).
_ABANDON_SECONDS = 15.0

# Only open records change: a finished call is never rewritten by a late or duplicate event.
# The route is what Asterisk really dialed, as AMI saw it: it corrects the route the gateway
# decided when the dialplan had given up waiting and dialed its fallback.
_UPDATE_SQL = (
    "UPDATE calls SET state = ?, agent = ?, answered_at = ?, ended_at = ?, ring_seconds = ?,"
    " talk_seconds = ?, recording = ?, hangup_cause = ?, route = coalesce(?, route)"
    " WHERE linkedid = ? AND ended_at IS NULL"
)
_OUTBOX_SQL = "INSERT INTO outbox (topic, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?)"


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

    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics
        # A gateway that was frozen reads a call's AMI events, even its end, before the lookup
        # that records the call: the newest snapshot of each such call waits here for it.
        self._unrecorded: OrderedDict[str, CallUpdate] = OrderedDict()
        # Calls the route has recorded whose row may not be committed yet (linkedid -> call_id,
        # site): an update read meanwhile is queued behind the row, in its commit or a later one.
        self._recorded: OrderedDict[str, tuple[str, str]] = OrderedDict()

    async def call_updated(self, update: CallUpdate) -> None:
        row = self.db.lookup(
            "SELECT call_id, site, ended_at FROM calls WHERE linkedid = ?", (update.linkedid,)
        )
        recorded = self._recorded.get(update.linkedid) if row is None else None
        if recorded is not None:
            call_id, site = recorded
            await self.db.write(self._writes(update, call_id, site))
            log.debug("call_record_updated", call_id=call_id, state=update.state)
            return
        if row is None:
            # Not (yet) a call the gateway routed: most are other calls; they age out.
            self._unrecorded[update.linkedid] = update
            self._unrecorded.move_to_end(update.linkedid)
            while len(self._unrecorded) > _MAX_UNRECORDED:
                self._unrecorded.popitem(last=False)
            return
        if row["ended_at"] is not None:
            return  # already final
        writes = self._writes(update, row["call_id"], row["site"])
        await self.db.write(writes)
        log.debug(
            "call_record_updated",
            call_id=row["call_id"],
            state=update.state,
            agent=update.agent,
            final=update.final,
        )

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
            Write(
                _UPDATE_SQL,
                (
                    update.state,
                    update.agent or "",
                    ts(update.answered_at) if update.answered_at else None,
                    ts(ended) if ended else None,
                    update.ring_seconds,
                    update.talk_seconds,
                    update.recording or "",
                    _cause(update),
                    update.route,
                    update.linkedid,
                ),
                rank=70,
            )
        ]
        if update.final and ended is not None:
            payload = {"call_id": call_id, "site": site, "state": update.state}
            writes.append(
                Write(
                    _OUTBOX_SQL,
                    ("call.completed", json.dumps(payload), ts(ended), ts(ended)),
                    rank=80,
                )
            )
            self.metrics.inc("ctgw_calls_completed_total", site=site, state=update.state)
        return writes

    async def calls_resynced(self, resync: CallsResynced) -> None:
        """Close open records whose calls Asterisk no longer has (ended while nobody listened)."""
        rows = await self.db.fetchall(
            "SELECT call_id, linkedid, started_at, answered_at FROM calls"
            " WHERE ended_at IS NULL AND started_at < ?",
            (ts(resync.at),),
        )
        writes = []
        for row in rows:
            if row["linkedid"] in resync.live_linkedids:
                continue
            state = _closed_state(from_ts(row["started_at"]), row["answered_at"], resync.at)
            writes.append(
                Write(
                    "UPDATE calls SET state = ?, ended_at = ?, hangup_cause = 'closed on resync'"
                    " WHERE call_id = ? AND ended_at IS NULL",
                    (state, ts(resync.at), row["call_id"]),
                    rank=70,
                )
            )
            log.info("call_closed_on_resync", call_id=row["call_id"], state=state)
        await self.db.write(writes)


def _closed_state(started_at: datetime, answered_at: str | None, at: datetime) -> str:
    if answered_at:
        return "answered"
    if (at - started_at).total_seconds() < _ABANDON_SECONDS:
        return "abandoned"
    return "missed"
