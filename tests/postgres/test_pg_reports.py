"""The report side of the store on both backends: one generated history (a few hundred calls
across both clock changes of March 2026) in SQLite and in PostgreSQL, and every store function
of the reports held row for row to SQLite's answer (SQLite is the reference)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from gateway.store.bulk_read import read_rendered
from gateway.store.calls import CallFilter, calls_select, record_from_row
from gateway.store.database import Database
from gateway.store.pg.database import PgDatabase
from gateway.store.pg.thread_reads import read_rendered_pg
from gateway.store.report_rows import (
    campaign_costs,
    read_overview,
    read_report,
    report_calls,
    site_keys,
    site_timezone,
    visit_counts,
)
from gateway.store.sizing import pool_history, replay_sizing
from numberpool.pool import Pool
from reports.call_export import csv_chunks
from reports.call_figures import DIMENSIONS, TOUCHES
from reports.call_report import REPORTS, ReportData, ReportSpec, overview_json, report_json
from reports.period import Period
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, migrated_database
from tests.postgres.test_pg_reports_history import (
    POOL,
    SITE,
    TARGET,
    copy_to_postgres,
    write_sqlite_history,
)

pytestmark = pytest.mark.postgres

# Periods in two zones, each across its clock change, and one day of the change alone.
PERIODS = (
    ("2026-03-01", "2026-03-31", "America/New_York"),
    ("2026-03-08", "2026-03-08", "America/New_York"),
    ("2026-03-15", "2026-04-04", "Europe/Paris"),
    ("2026-03-29", "2026-03-29", "Europe/Paris"),
    ("2026-03-02", "2026-03-30", "UTC"),
)


class Both(NamedTuple):
    path: Path
    sqlite: Database
    pg: PgDatabase


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "ctgw.db"
    write_sqlite_history(path)
    return path


@pytest.fixture
async def both(history_file: Path, pg_cluster: PgCluster) -> AsyncIterator[Both]:
    """The history in a SQLite store and, copied row for row, in a PostgreSQL store."""
    url = await migrated_database(pg_cluster)
    try:
        copied = await copy_to_postgres(history_file, url)
        assert copied["calls"] > 400 and copied["sessions"] == 1600
        sqlite = await Database.open(f"sqlite:///{history_file}")
        pg = await PgDatabase.open(url)
        try:
            yield Both(history_file, sqlite, pg)
        finally:
            await pg.close()
            await sqlite.close()
    finally:
        await drop_database(pg_cluster, url)


def _period(since: str, until: str, tz: str) -> Period:
    return Period.parse(since, until, tz)


def _same_data(a: ReportData, b: ReportData) -> None:
    """Two reads of one report: the same figures (counts in any order, calls in order)."""
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("counts", "previous_counts", "hour_counts") and x is not None:
            assert y is not None, field.name
            x, y = sorted(x, key=repr), sorted(y, key=repr)
        assert x == y, field.name


def _keep(data: ReportData) -> ReportData:
    return data


async def test_the_dashboard_overview_is_the_same_on_both(both: Both) -> None:
    for since, until, tz in PERIODS:
        period = _period(since, until, tz)
        lite = await read_overview(both.path, SITE, period, _keep)
        pg = await read_overview(both.pg, SITE, period, _keep)
        _same_data(lite, pg)
        assert lite.counts, (since, tz)
        assert overview_json(lite) == overview_json(pg)


async def test_local_days_and_hours_bucket_the_clock_change_edges_alike(both: Both) -> None:
    """The edge calls fall in the same local day and hour on both backends (not only the
    same totals): the counts by day and by weekday-hour, key by key."""
    for since, until, tz in PERIODS[:4]:
        period = _period(since, until, tz)
        for kind in ("days", "hours"):
            spec = ReportSpec(kind)
            lite = await read_report(both.path, SITE, period, spec, _keep)
            pg = await read_report(both.pg, SITE, period, spec, _keep)
            assert lite.counts and pg.counts
            assert sorted(lite.counts, key=repr) == sorted(pg.counts, key=repr), (kind, tz)
    day = await read_report(
        both.pg, SITE, _period("2026-03-08", "2026-03-08", "America/New_York"),
        ReportSpec("hours"), _keep,
    )  # fmt: skip
    hours = {c.key[0] for c in day.counts or []}
    # The edges of that Sunday: 00h (05:00Z), 01h (06:59:59Z), 03h (07:00Z); no 02h exists.
    assert {"000", "001", "003"} <= hours and "002" not in hours


async def test_every_report_reads_the_same_on_both(both: Both) -> None:
    period = _period("2026-03-01", "2026-03-31", "America/New_York")
    specs = [ReportSpec(kind) for kind in REPORTS if kind != "breakdown"]
    specs += [ReportSpec("breakdown", by, touch) for by in DIMENSIONS for touch in TOUCHES]
    for spec in specs:
        lite = await read_report(both.path, SITE, period, spec, _keep)
        pg = await read_report(both.pg, SITE, period, spec, _keep)
        _same_data(lite, pg)
        assert report_json(lite, spec) == report_json(pg, spec), spec


async def test_calls_visits_costs_and_the_site_are_the_same_on_both(both: Both) -> None:
    for since, until, tz in PERIODS:
        period = _period(since, until, tz)
        lite_calls = await report_calls(both.path, SITE, period)
        assert lite_calls and lite_calls == await report_calls(both.pg, SITE, period)
        for by in ("", *DIMENSIONS):
            assert await visit_counts(both.path, SITE, period, by) == await visit_counts(
                both.pg, SITE, period, by
            ), by
        for by in ("campaign", "source"):
            costs = await campaign_costs(both.path, SITE, period, by)
            assert costs == await campaign_costs(both.pg, SITE, period, by)
    assert await site_timezone(both.pg, SITE) == await site_timezone(both.sqlite, SITE)
    assert await site_timezone(both.pg, "nowhere") is None
    assert await site_keys(both.pg) == await site_keys(both.sqlite) == [SITE]


def _csv_of(rows: Iterable[Any]) -> Iterable[str]:
    return csv_chunks(record_from_row(row) for row in rows)


async def _joined(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_the_calls_csv_export_streams_the_same_bytes(both: Both) -> None:
    filters = [
        CallFilter(site=SITE, limit=100_000),
        CallFilter(
            since=datetime(2026, 3, 8, 5, tzinfo=UTC),
            until=datetime(2026, 3, 29, 22, tzinfo=UTC),
            site=SITE,
            state="answered",
            limit=50,
            offset=7,
        ),
        CallFilter(site="nowhere"),
    ]
    for flt in filters:
        sql, params = calls_select(flt)
        lite = await _joined(read_rendered(both.path, sql, params, _csv_of))
        pg = await _joined(read_rendered_pg(both.pg, sql, params, _csv_of))
        assert lite == pg
        assert lite.count(b"\n") >= 1
    whole = await _joined(read_rendered_pg(both.pg, *calls_select(filters[0]), _csv_of))
    assert whole.count(b"\n") > 400  # more rows than a cursor's chunk


async def test_a_pg_export_closed_early_gives_its_connection_back(both: Both) -> None:
    sql, params = calls_select(CallFilter(site=SITE, limit=100_000))
    for _ in range(6):  # more than the read pool's 4 connections
        async with contextlib.aclosing(read_rendered_pg(both.pg, sql, params, _csv_of, 1)) as it:
            assert await anext(it)
    row = await both.pg.fetchone("SELECT count(*) FROM calls WHERE site = ?", (SITE,))
    assert row is not None and row[0] > 400


async def test_a_pg_export_error_comes_before_the_first_chunk(both: Both) -> None:
    chunks = read_rendered_pg(both.pg, "SELECT * FROM no_such_table", (), _csv_of)
    with pytest.raises(Exception, match="no_such_table"):
        await anext(chunks)
    await chunks.aclose()
    assert await both.pg.fetchone("SELECT 1") is not None


def _pool() -> Pool:
    return Pool(POOL, TARGET, [f"+1415555010{i}" for i in range(10)], overflow="+14155550150")


async def test_the_sizing_traces_and_replay_are_the_same_on_both(both: Both) -> None:
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)
    lite = await pool_history(both.sqlite, SITE, _pool(), since, until)
    pg = await pool_history(both.pg, SITE, _pool(), since, until)
    assert lite.sessions and lite.calls
    assert any(s.overflowed for s in lite.sessions) and any(c.on_overflow for c in lite.calls)
    assert lite == pg
    sizes = (4, 10)
    lite_report = await replay_sizing(both.sqlite, SITE, _pool(), since, until, sizes)
    assert lite_report == await replay_sizing(both.pg, SITE, _pool(), since, until, sizes)


async def _connections(db: PgDatabase) -> int:
    row = await db.fetchone(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    )
    assert row is not None
    return int(row[0])


async def _back_to(db: PgDatabase, count: int) -> bool:
    """Whether the database's connections come back to `count` within 5 s (a closed
    connection's server process ends a moment after the client closed it)."""
    for _ in range(100):
        if await _connections(db) == count:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_pg_big_reads_leave_the_read_pool_to_the_call_path(both: Both) -> None:
    """Six downloads held open at once (more than the pool's 4 connections): a lookup still
    answers at once, and each download's own connection is closed with it."""
    before = await _connections(both.pg)
    sql, params = calls_select(CallFilter(site=SITE, limit=100_000))
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(6):
            it = read_rendered_pg(both.pg, sql, params, _csv_of, 1)
            await anext(await stack.enter_async_context(contextlib.aclosing(it)))
        row = await asyncio.wait_for(both.pg.lookup("SELECT 1 AS one"), 2.0)
        assert row is not None and row["one"] == 1
        assert await _connections(both.pg) >= before + 6
    assert await _back_to(both.pg, before)


async def test_a_cancelled_pg_report_stops_its_thread_and_closes_its_connection(
    both: Both,
) -> None:
    before = await _connections(both.pg)
    period = _period("2026-03-01", "2026-03-31", "America/New_York")
    spec = ReportSpec("breakdown", "campaign", "first")  # reads calls row by row
    for delay in (0.0, 0.01, 0.05):
        task = asyncio.create_task(read_report(both.pg, SITE, period, spec, _keep))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await _back_to(both.pg, before)
    data = await read_report(both.pg, SITE, period, spec, _keep)
    assert data.calls
