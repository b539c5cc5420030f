"""The demo's seeded history (gateway/demo_history.py) imported through the store's own write
paths (gateway/store/history_import.py) into SQLite and PostgreSQL: the same rows in both, the
CRM replayed alike, and the dashboard read from each the same (a Los Angeles site across the
clock change of 2026-11-01)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from gateway.demo_history import DemoHistory, generate_history
from gateway.store.database import Database, Write
from gateway.store.history_import import import_history, replay_crm, site_call_count
from gateway.store.pg.database import PgDatabase
from gateway.store.report_rows import read_overview, read_report
from numberpool.crm import CrmRules
from numberpool.pool import Pool
from numberpool.site import Site, StaticNumber
from reports.call_report import ReportData, ReportSpec, overview_json, report_json
from reports.period import Period

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
TZ = "America/Los_Angeles"
# Each table with the columns that order its rows whatever order they were written in.
TABLES = {
    "sessions": "session_id",
    "leases": "lease_id",
    "pool_events": "event_id",
    "calls": "call_id",
    "contacts": "contact_id",
    "campaign_costs": "site, source, campaign, first_day",
    "leads": "site, contact_id",
    "tasks": "task_id",
    "contact_history": "entry_id",
}


class Both(NamedTuple):
    sqlite: Database
    pg: PgDatabase


def _site() -> Site:
    pool = Pool(
        "demo:+14155550100",
        "+14155550100",
        [f"+141555501{i:02d}" for i in range(1, 11)],
        overflow="+14155550120",
    )
    static = [StaticNumber("+14155550150", "print", "offline", "yellow-pages")]
    return Site("demo", [pool], static)


def _history() -> DemoHistory:
    return generate_history(
        _site(), now=NOW, days=30, seed=3, tz=ZoneInfo(TZ), route_for=lambda _: "PJSIP/agent1"
    )


async def _seed(db: Database | PgDatabase, history: DemoHistory) -> None:
    await db.write(
        [
            Write(
                "INSERT INTO sites (key, name, settings, created_at) VALUES (?, ?, ?, ?)",
                ("demo", "Demo", f'{{"timezone": "{TZ}"}}', "2026-01-01T00:00:00.000000Z"),
            )
        ]
    )
    await import_history(
        db,
        "demo",
        sessions=history.sessions,
        leases=history.leases,
        exhausted=history.exhausted,
        calls=history.calls,
        costs=history.costs,
    )
    await replay_crm(db, history.calls, CrmRules(), settled_before=NOW - timedelta(days=2))


@pytest.fixture
async def both(tmp_path: Path, pg_db: str) -> AsyncIterator[Both]:
    history = _history()
    sqlite = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    pg = await PgDatabase.open(pg_db)
    try:
        for db in (sqlite, pg):
            await _seed(db, history)
        yield Both(sqlite, pg)
    finally:
        await pg.close()
        await sqlite.close()


def _rows(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in rows]


async def test_the_imported_history_is_the_same_rows_on_both(both: Both) -> None:
    calls = await site_call_count(both.sqlite, "demo")
    assert calls > 100 and await site_call_count(both.pg, "demo") == calls
    for table, order in TABLES.items():
        sql = f"SELECT * FROM {table} ORDER BY {order}"
        lite = _rows(await both.sqlite.fetchall(sql))
        assert _rows(await both.pg.fetchall(sql)) == lite, table
    tasks = await both.pg.fetchone("SELECT count(*) FROM tasks")
    assert tasks is not None and tasks[0] > 0


def _keep(data: ReportData) -> ReportData:
    return data


async def test_the_dashboard_of_the_imported_history_is_the_same_on_both(
    both: Both, tmp_path: Path
) -> None:
    path = tmp_path / "ctgw.db"
    for since, until in (("2026-10-25", "2026-11-08"), ("2026-11-01", "2026-11-01")):
        period = Period.parse(since, until, TZ)
        lite = await read_overview(path, "demo", period, _keep)
        pg = await read_overview(both.pg, "demo", period, _keep)
        assert lite.counts
        assert overview_json(lite) == overview_json(pg)
        for spec in (ReportSpec("breakdown", "source", "first"), ReportSpec("hours")):
            lite = await read_report(path, "demo", period, spec, _keep)
            pg = await read_report(both.pg, "demo", period, spec, _keep)
            assert report_json(lite, spec) == report_json(pg, spec), spec
