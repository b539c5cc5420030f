"""Conversions in the store: the calls a period's conversions are made from (with the click ids
of the visit each came from), and which went to which platform, when, with what answer.

A conversion is claimed with INSERT ... ON CONFLICT DO NOTHING under a batch id and the batch
read back, so two exports or senders at once (the daemon and a cron CLI) never send the same call
twice. Both backends run every statement here; the call facts' JSON reads are per dialect."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.store.database import Database, Write
from gateway.store.times import from_ts, ts
from reports.conversions import CallFacts, Conversion

__all__ = [
    "CONVERSION_STATES",
    "ClaimedUpload",
    "call_facts",
    "claim_writes",
    "claimed_call_ids",
    "claimed_uploads",
    "exported_facts",
    "list_conversions",
    "new_batch",
    "reclaim_write",
    "upload_result_write",
]

CONVERSION_STATES = ("sending", "sent", "retry", "rejected", "failed")

# The calls of a site's period that ended, with the click ids of their visit (the call's own
# snapshot keeps only the gclid) and whether the call or its lead was marked spam. `done`
# is the call's state on the platform asked about, NULL when it never went there.
_FACTS_SQL = (
    "SELECT c.call_id, c.site, c.caller, c.started_at, c.ended_at, c.answered_at,"
    " c.talk_seconds, c.first_time, c.spam, c.test_call, c.direction, c.disposition,"
    " coalesce(json_extract(c.attribution, '$.gclid'), '') AS snap_gclid,"
    " coalesce(s.gclid, '') AS gclid, coalesce(s.gbraid, '') AS gbraid,"
    " coalesce(s.wbraid, '') AS wbraid, coalesce(s.msclkid, '') AS msclkid,"
    " coalesce(s.bd_vid, '') AS bd_vid, coalesce(s.url, '') AS url,"
    " coalesce(s.landing_page, json_extract(c.attribution, '$.landing_page'), '') AS page,"
    " coalesce(l.spam, 0) AS lead_spam, k.state AS done"
    " FROM calls c"
    " LEFT JOIN sessions s ON c.session_id != '' AND s.session_id = c.session_id"
    " LEFT JOIN leads l ON l.site = c.site AND l.contact_id = c.contact_id"
    " LEFT JOIN conversions k ON k.call_id = c.call_id AND k.platform = ?"
)
# PostgreSQL reads the snapshot's JSON text with `->>` (json_extract is SQLite's).
_PG_FACTS_SQL = _FACTS_SQL.replace(
    "json_extract(c.attribution, '$.gclid')", "(c.attribution::json ->> 'gclid')"
).replace(
    "json_extract(c.attribution, '$.landing_page')", "(c.attribution::json ->> 'landing_page')"
)
_PERIOD_WHERE = (
    " WHERE c.site = ? AND c.started_at >= ? AND c.started_at < ?"
    " AND c.ended_at IS NOT NULL{unsent} ORDER BY c.started_at, c.call_id"
)
# The calls a new-only file held: its name is their stored answer.
_FILE_WHERE = (
    " WHERE c.site = ? AND k.state = 'sent' AND k.answer = ? ORDER BY c.started_at, c.call_id"
)
_PERIOD_SQL = {"sqlite": _FACTS_SQL + _PERIOD_WHERE, "postgresql": _PG_FACTS_SQL + _PERIOD_WHERE}
_FILE_SQL = {"sqlite": _FACTS_SQL + _FILE_WHERE, "postgresql": _PG_FACTS_SQL + _FILE_WHERE}
_CLAIM_SQL = (
    "INSERT INTO conversions (call_id, platform, site, click_id, state, batch,"
    " created_at, sent_at, next_attempt_at, payload, answer)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# Uploads waiting for a retry, and claims left 'sending' by a process that stopped mid-send
# (their next_attempt_at is the end of the sender's lease), join the new batch.
_RECLAIM_SQL = (
    "UPDATE conversions SET batch = ?, state = 'sending', next_attempt_at = ?"
    " WHERE site = ? AND platform = ? AND state IN ('retry', 'sending') AND next_attempt_at <= ?"
)
_RESULT_SQL = (
    "UPDATE conversions SET state = ?, attempts = attempts + 1, sent_at = ?,"
    " next_attempt_at = ?, answer = ? WHERE platform = ? AND batch = ? AND call_id = ?"
)
_LIST_COLUMNS = (
    "call_id, platform, site, click_id, state, attempts, created_at, sent_at, next_attempt_at,"
    " answer"
)
_LIST_ORDER = " ORDER BY created_at DESC, call_id LIMIT ? OFFSET ?"


def new_batch() -> str:
    """A fresh batch id: one export, or one sender's claim."""
    return secrets.token_hex(8)


async def call_facts(
    db: Database,
    site: str,
    since: datetime,
    until: datetime,
    platform: str,
    *,
    unsent_only: bool = False,
) -> list[CallFacts]:
    """The ended calls of `site` that began in [since, until), oldest first; with
    `unsent_only`, only those never claimed for `platform`."""
    sql = _PERIOD_SQL[db.dialect].format(unsent=" AND k.call_id IS NULL" if unsent_only else "")
    rows = await db.fetchall(sql, (platform, site, ts(since), ts(until)))
    return [_facts(row) for row in rows]


async def exported_facts(db: Database, site: str, platform: str, file_name: str) -> list[CallFacts]:
    """The calls a new-only file of `site` held on `platform` (its name is the stored answer),
    oldest first: to make the same file again."""
    rows = await db.fetchall(_FILE_SQL[db.dialect], (platform, site, file_name))
    return [_facts(row) for row in rows]


def _facts(row: Any) -> CallFacts:
    ended = row["ended_at"]
    return CallFacts(
        call_id=row["call_id"],
        site=row["site"],
        caller=row["caller"],
        started_at=from_ts(row["started_at"]),
        ended_at=from_ts(ended) if ended else None,
        answered=row["answered_at"] is not None,
        talk_seconds=row["talk_seconds"],
        first_time=bool(row["first_time"]),
        spam=bool(row["spam"]) or bool(row["lead_spam"]),
        test_call=bool(row["test_call"]),
        inbound=row["direction"] == "inbound",
        disposition=row["disposition"],
        gclid=row["gclid"] or row["snap_gclid"],
        gbraid=row["gbraid"],
        wbraid=row["wbraid"],
        msclkid=row["msclkid"],
        bd_vid=row["bd_vid"],
        landing_url=row["url"],
        landing_page=row["page"],
    )


def claim_writes(
    rows: Sequence[Conversion],
    site: str,
    batch: str,
    at: datetime,
    *,
    state: str,
    answer: str = "",
    lease_until: datetime | None = None,
) -> list[Write]:
    """Claims of `rows` under `batch`: 'sent' for a file (sent_at now, answer the file name),
    'sending' for an upload (held until `lease_until`). A call claimed before stays as it was."""
    sent_at = ts(at) if state == "sent" else None
    until = ts(lease_until) if lease_until is not None else None
    return [
        Write(
            _CLAIM_SQL,
            (
                row.call_id,
                row.platform,
                site,
                row.click_id,
                state,
                batch,
                ts(at),
                sent_at,
                until,
                row.logid_url,
                answer,
            ),
        )
        for row in rows
    ]


def reclaim_write(
    site: str, platform: str, batch: str, now: datetime, lease_until: datetime
) -> Write:
    """Uploads due for a retry (or left mid-send) joined to `batch`, held until `lease_until`."""
    return Write(_RECLAIM_SQL, (batch, ts(lease_until), site, platform, ts(now)))


async def claimed_call_ids(db: Database, platform: str, batch: str) -> set[str]:
    """The calls `batch` holds on `platform`: the ones this export or sender may send."""
    rows = await db.fetchall(
        "SELECT call_id FROM conversions WHERE platform = ? AND batch = ?", (platform, batch)
    )
    return {row["call_id"] for row in rows}


@dataclass(frozen=True)
class ClaimedUpload:
    """One claimed upload: the call, its click id and what is sent (Baidu: the logidUrl)."""

    call_id: str
    click_id: str
    payload: str
    attempts: int
    created_at: datetime


async def claimed_uploads(db: Database, platform: str, batch: str) -> list[ClaimedUpload]:
    """The uploads `batch` holds, oldest claim first."""
    rows = await db.fetchall(
        "SELECT call_id, click_id, payload, attempts, created_at FROM conversions"
        " WHERE platform = ? AND batch = ? ORDER BY created_at, call_id",
        (platform, batch),
    )
    return [
        ClaimedUpload(
            r["call_id"], r["click_id"], r["payload"], r["attempts"], from_ts(r["created_at"])
        )
        for r in rows
    ]


def upload_result_write(
    platform: str,
    batch: str,
    call_id: str,
    state: str,
    answer: str,
    *,
    at: datetime,
    retry_at: datetime | None = None,
) -> Write:
    """An upload's outcome: 'sent' (sent_at `at`), 'retry' at `retry_at`, 'rejected' or
    'failed'; only while the call is still in `batch` (a later claim wins)."""
    if state not in CONVERSION_STATES:
        raise ValueError(f"unknown conversion state {state!r}")
    sent_at = ts(at) if state == "sent" else None
    retry = ts(retry_at) if retry_at is not None else None
    return Write(_RESULT_SQL, (state, sent_at, retry, answer[:2000], platform, batch, call_id))


async def list_conversions(
    db: Database,
    site: str,
    *,
    platform: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The conversions of `site` the store keeps, newest claim first, in the API's shape."""
    clauses, params = ["site = ?"], [site]
    if platform:
        clauses.append("platform = ?")
        params.append(platform)
    if state:
        clauses.append("state = ?")
        params.append(state)
    where = " AND ".join(clauses)
    sql = f"SELECT {_LIST_COLUMNS} FROM conversions WHERE {where}{_LIST_ORDER}"  # noqa: S608
    rows = await db.fetchall(sql, [*params, limit, offset])
    return [
        {
            "call_id": r["call_id"],
            "platform": r["platform"],
            "site": r["site"],
            "click_id": r["click_id"],
            "state": r["state"],
            "attempts": r["attempts"],
            "claimed_at": r["created_at"],
            "sent_at": r["sent_at"],
            "next_attempt_at": r["next_attempt_at"] if r["state"] == "retry" else None,
            "answer": r["answer"],
        }
        for r in rows
    ]
