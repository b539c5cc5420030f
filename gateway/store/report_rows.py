"""The rows reports read: a site's calls of a period with their sessions and first touches,
visit counts, campaign costs and the site's time zone.

A report of a busy quarter reads hundreds of thousands of rows and turns each into a Python
object: seconds of CPU. Like the calls download (gateway/store/bulk_read.py) it runs on a thread
of its own with a read-only connection, so no FastAGI route waits behind it. On PostgreSQL the
same readers run on the thread over server-side cursors (gateway/store/pg/thread_reads.py); the
count queries are written once per dialect (gateway/store/report_counts.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from gateway.store.bulk_read import paced
from gateway.store.database import Database
from gateway.store.pg.database import PgDatabase
from gateway.store.pg.thread_reads import on_thread
from gateway.store.report_counts import (
    COUNTED_DIMENSIONS,
    PG_COUNTED_DIMENSIONS,
    PG_SOURCE_SQL,
    SOURCE_SQL,
    Reads,
    count_calls,
    dialect_of,
    local_day_sql,
    local_hour_sql,
    pg_local_day_sql,
    pg_local_hour_sql,
)
from gateway.store.times import ts
from reports.call_report import ReportData, ReportSpec
from reports.call_rows import (
    CLICK_NETWORKS,
    ReportCall,
    Touch,
    first_touch,
    report_call,
    session_value,
)
from reports.costs import CostRow, cost_by
from reports.period import Period

__all__ = [
    "campaign_costs",
    "read_overview",
    "read_report",
    "report_calls",
    "site_keys",
    "site_timezone",
    "visit_counts",
]

T = TypeVar("T")

_CALLS_SQL = (
    "SELECT c.call_id, c.site, c.started_at, c.state, c.agent, c.ring_seconds, c.talk_seconds,"
    " c.first_time, c.dialed, c.caller, c.caller_name, c.spam, c.test_call,"
    " c.attribution_kind, c.session_id, c.attribution, s.url AS s_url,"
    " s.landing_page AS s_landing_page, s.gclid AS s_gclid, s.gbraid AS s_gbraid,"
    " s.wbraid AS s_wbraid, s.msclkid AS s_msclkid, s.fbclid AS s_fbclid, s.bd_vid AS s_bd_vid"
    " FROM calls c LEFT JOIN sessions s ON c.session_id != '' AND s.session_id = c.session_id"
    " WHERE c.site = ? AND c.started_at >= ? AND c.started_at < ? AND c.direction = 'inbound'"
    " ORDER BY c.started_at, c.call_id"
)
# The first counted call of each caller of the period, however long before it (by the index
# calls_caller): its attribution is the caller's first touch.
_FIRSTS_SQL = (
    "SELECT f.caller, f.attribution_kind, f.attribution, s.url AS s_url,"
    " s.landing_page AS s_landing_page, s.gclid AS s_gclid, s.gbraid AS s_gbraid,"
    " s.wbraid AS s_wbraid, s.msclkid AS s_msclkid, s.fbclid AS s_fbclid, s.bd_vid AS s_bd_vid"
    " FROM (SELECT caller, attribution_kind, attribution, session_id,"
    " row_number() OVER (PARTITION BY caller ORDER BY started_at, call_id) AS nth"
    " FROM calls WHERE site = ? AND spam = 0 AND test_call = 0 AND direction = 'inbound'"
    " AND caller IN"
    " (SELECT DISTINCT caller FROM calls WHERE site = ? AND started_at >= ? AND started_at < ?"
    " AND caller != '')) f"
    " LEFT JOIN sessions s ON f.session_id != '' AND s.session_id = f.session_id"
    " WHERE f.nth = 1"
)
# The sessions columns each visit dimension is made from; grouped by them in SQL, so Python
# sees one row per distinct combination, not one per visit.
_CLICK_FLAGS = ", ".join(f"{n} != '' AS {n}" for n, _ in CLICK_NETWORKS)
_VISIT_GROUPS = {
    "source": f"utm_source, referrer, {_CLICK_FLAGS}",
    "medium": f"utm_medium, referrer != '' AS referrer, {_CLICK_FLAGS}",
    "campaign": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
    "landing_page": "landing_page",
    "referrer": "referrer",
    "click_network": _CLICK_FLAGS,
}
_COSTS_SQL = (
    "SELECT source, campaign, first_day, last_day, amount, currency FROM campaign_costs"
    " WHERE site = ? AND first_day <= ? AND last_day >= ? ORDER BY first_day, campaign"
)
_BUSY_TIMEOUT_MS = 5000


def _store_path(db: Database | Path) -> Path:
    # The store's own file; a read-only connection of the thread's own reads it (WAL: one
    # snapshot while the gateway goes on writing).
    return db if isinstance(db, Path) else db.path


def _on_thread(db: Database | Path | PgDatabase, work: Callable[[Reads], T]) -> Any:
    if isinstance(db, PgDatabase):  # a connection of its own, one snapshot, cursors
        return on_thread(db, work)
    path = _store_path(db)

    def run() -> T:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            conn.row_factory = sqlite3.Row
            return work(conn)
        finally:
            conn.close()

    return asyncio.to_thread(run)


def _calls(conn: Reads, site: str, period: Period) -> list[ReportCall]:
    start, end = ts(period.start_utc), ts(period.end_utc)
    firsts: dict[str, Touch] = {
        row["caller"]: first_touch(row)
        for row in paced(conn.execute(_FIRSTS_SQL, (site, site, start, end)))
    }
    return [
        report_call(row, firsts.get(row["caller"]))
        for row in paced(conn.execute(_CALLS_SQL, (site, start, end)))
    ]


def _visit_total(conn: Reads, site: str, period: Period) -> int:
    row = conn.execute(
        "SELECT count(*) FROM sessions WHERE site = ? AND created_at >= ? AND created_at < ?",
        (site, ts(period.start_utc), ts(period.end_utc)),
    ).fetchone()
    return int(row[0])


def _visits_by(conn: Reads, site: str, period: Period, by: str) -> dict[str, int]:
    """Visits of the period by value of `by`; {} for a dimension visits do not have."""
    columns = _VISIT_GROUPS.get(by)
    if columns is None:
        return {}
    sql = (
        f"SELECT {columns}, count(*) AS visits FROM sessions"  # noqa: S608 - fixed columns
        " WHERE site = ? AND created_at >= ? AND created_at < ?"
        f" GROUP BY {', '.join(str(i + 1) for i in range(columns.count(',') + 1))}"
    )
    found: dict[str, int] = {}
    for row in paced(conn.execute(sql, (site, ts(period.start_utc), ts(period.end_utc)))):
        group = {k: row[k] for k in row.keys() if k != "visits"}
        for name, _ in CLICK_NETWORKS:
            if name in group:  # a flag: any text stands for a click id
                group[name] = "x" if group[name] else ""
        if by == "medium" and "referrer" in group:
            group["referrer"] = "x" if group["referrer"] else ""
        value = session_value(by, group)
        found[value] = found.get(value, 0) + int(row["visits"])
    return found


def _costs(conn: Reads, site: str, first: Period, last: Period) -> list[CostRow]:
    """The cost rows that touch any day from `first` to `last`."""
    params = (site, last.last_day.isoformat(), first.first_day.isoformat())
    return [_cost_row(row) for row in conn.execute(_COSTS_SQL, params)]


def _cost_row(row: Any) -> CostRow:
    return CostRow(
        row["source"],
        row["campaign"],
        date.fromisoformat(row["first_day"]),
        date.fromisoformat(row["last_day"]),
        float(row["amount"]),
        row["currency"],
    )


class _CountSql(NamedTuple):
    """The expressions counts are grouped by, in one dialect."""

    dimensions: dict[str, tuple[str, bool]]
    source: str
    local_day: Callable[[Period], str]
    local_hour: Callable[[Period], str]


_SQLITE_COUNTS = _CountSql(COUNTED_DIMENSIONS, SOURCE_SQL, local_day_sql, local_hour_sql)
_PG_COUNTS = _CountSql(PG_COUNTED_DIMENSIONS, PG_SOURCE_SQL, pg_local_day_sql, pg_local_hour_sql)


def _count_sql(conn: Reads) -> _CountSql:
    return _PG_COUNTS if dialect_of(conn) == "postgresql" else _SQLITE_COUNTS


def _counts(conn: Reads, site: str, period: Period, spec: ReportSpec) -> Any:
    """The calls of `period` counted in SQL as `spec` needs them; None when they must be read
    one by one (a first-touch breakdown: each call's first touch is its caller's first call)."""
    sql = _count_sql(conn)
    if spec.kind == "breakdown":
        if spec.touch != "last":
            return None
        key, join = sql.dimensions[spec.by]
        return count_calls(conn, site, period, (key,), join)
    if spec.kind == "agents":
        return count_calls(conn, site, period, ("c.agent",))
    if spec.kind == "summary":
        return count_calls(conn, site, period, ())
    if spec.kind == "days":
        return count_calls(conn, site, period, (sql.local_day(period), sql.source))
    return count_calls(conn, site, period, (sql.local_hour(period),))


def _report_data(conn: Reads, site: str, period: Period, spec: ReportSpec) -> ReportData:
    before = period.previous()
    counts = _counts(conn, site, period, spec)
    # Visits and costs enter the summary and the breakdowns only.
    summary, breakdown = spec.kind == "summary", spec.kind == "breakdown"
    return ReportData(
        site=site,
        period=period,
        calls=_calls(conn, site, period) if counts is None else [],
        visits=_visit_total(conn, site, period) if summary else 0,
        visits_by=_visits_by(conn, site, period, spec.by) if breakdown else {},
        previous_calls=_calls(conn, site, before) if summary and counts is None else [],
        previous_visits=_visit_total(conn, site, before) if summary else 0,
        costs=_costs(conn, site, before, period) if summary or breakdown else [],
        counts=counts,
        previous_counts=(
            _counts(conn, site, before, spec) if summary and counts is not None else None
        ),
    )


async def read_report(
    db: Database | Path | PgDatabase,
    site: str,
    period: Period,
    spec: ReportSpec,
    then: Callable[[ReportData], T],
) -> T:
    """Read what report `spec` needs and run `then` on it, both on a thread of their own (the
    figures and the file are made off the event loop too)."""
    result: T = await _on_thread(db, lambda conn: then(_report_data(conn, site, period, spec)))
    return result


def _overview_data(conn: Reads, site: str, period: Period) -> ReportData:
    before, sql = period.previous(), _count_sql(conn)
    return ReportData(
        site=site,
        period=period,
        calls=[],
        visits=_visit_total(conn, site, period),
        previous_visits=_visit_total(conn, site, before),
        costs=_costs(conn, site, before, period),
        counts=count_calls(conn, site, period, (sql.local_day(period), sql.source)),
        previous_counts=count_calls(conn, site, before, ()),
        hour_counts=count_calls(conn, site, period, (sql.local_hour(period),)),
    )


async def read_overview(
    db: Database | Path | PgDatabase, site: str, period: Period, then: Callable[[ReportData], T]
) -> T:
    """What the summary, days and hours reports need, read at once (the summary made of the
    calls counted by day and source), with `then` run on it off the event loop:
    reports.call_report.overview_json makes the dashboard's overview of it."""
    result: T = await _on_thread(db, lambda conn: then(_overview_data(conn, site, period)))
    return result


async def report_calls(
    db: Database | Path | PgDatabase, site: str, period: Period
) -> list[ReportCall]:
    """The site's calls of `period` (spam and test calls included, flagged), oldest first."""
    result: list[ReportCall] = await _on_thread(db, lambda conn: _calls(conn, site, period))
    return result


async def visit_counts(
    db: Database | Path | PgDatabase, site: str, period: Period, by: str = ""
) -> dict[str, int]:
    """Sessions of the period by value of `by` (a visit dimension); by '' all under ''."""

    def work(conn: Reads) -> dict[str, int]:
        if not by:
            return {"": _visit_total(conn, site, period)}
        return _visits_by(conn, site, period, by)

    result: dict[str, int] = await _on_thread(db, work)
    return result


async def campaign_costs(
    db: Database | Path | PgDatabase, site: str, period: Period, by: str = "campaign"
) -> dict[str, float]:
    """The campaign costs' share of `period`, by campaign (or by source)."""
    rows: list[CostRow] = await _on_thread(db, lambda conn: _costs(conn, site, period, period))
    return cost_by(rows, period.first_day, period.last_day, by)


async def site_timezone(db: Database | PgDatabase, site: str) -> str | None:
    """The site's time zone name ('UTC' when it has none), None when there is no such site."""
    row = await db.fetchone("SELECT settings FROM sites WHERE key = ?", (site,))
    if row is None:
        return None
    return str(json.loads(row["settings"] or "{}").get("timezone") or "UTC")


async def site_keys(db: Database | PgDatabase) -> list[str]:
    """Every site's key, in order."""
    return [str(row["key"]) for row in await db.fetchall("SELECT key FROM sites ORDER BY key")]
