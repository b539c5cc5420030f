"""Reports counted in SQL (gateway/store/report_counts.py, reports/call_counts.py) give the
figures the one-call-at-a-time path gives, on a generated history and on odd rows: time zones
with a DST change or a 45-minute offset, a historical offset of minutes and seconds, a call a
microsecond before midnight, snapshots with numbers, nulls or nothing in them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.report_history import SITE, write_history
from gateway.store import report_rows
from reports.call_counts import zone_shifts
from reports.call_figures import DIMENSIONS
from reports.call_report import REPORTS, ReportSpec, overview_json, report_json
from reports.period import Period

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ODD_CALLS = [
    # attribution, started_at, kind, state, ring, talk
    ("", "2026-11-05T04:59:59.999999Z", "unattributed", "answered", None, None),
    (
        '{"source": 7, "campaign": null, "term": 1.5}',
        "2026-11-01T05:30:00.000000Z",
        "active",
        "answered",
        3.0,
        20.0,
    ),
    (
        '{"source": "print", "medium": "offline"}',
        "2026-11-01T06:15:00.000000Z",
        "static",
        "missed",
        9.5,
        None,
    ),
    (
        '{"source": "x", "gclid": "G"}',
        "2026-11-08T23:59:00.000000Z",
        "probable",
        "abandoned",
        None,
        None,
    ),
    (
        '{"source": "google", "campaign": "brand"}',
        "1970-01-10T12:40:00.000000Z",
        "active",
        "answered",
        2.0,
        5.0,
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("counts") / "ctgw.db"
    write_history(path, calls=3000, sessions=30_000, days=40, end=END)
    conn = sqlite3.connect(path, isolation_level=None)
    for i, (attribution, at, kind, state, ring, talk) in enumerate(ODD_CALLS):
        conn.execute(
            "INSERT INTO calls (call_id, site, dialed, caller, started_at, state, ring_seconds,"
            " talk_seconds, attribution_kind, session_id, attribution, first_time)"
            " VALUES (?, ?, '+14155550150', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"odd{i}",
                SITE,
                f"+1999{i}",
                at,
                state,
                ring,
                talk,
                kind,
                f"s{i:010d}",
                attribution,
                i % 2,
            ),
        )
    conn.close()
    return path


def close(a: Any, b: Any, where: str = "") -> None:
    """`a` equals `b`, floats within 1e-6 (SQL adds them up in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-4), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), where  # the order of keys means nothing in JSON
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


SPECS = [ReportSpec(k) for k in REPORTS if k != "breakdown"] + [
    ReportSpec("breakdown", by) for by in DIMENSIONS
]
PERIODS = [
    Period.parse("2026-10-25", "2026-11-19", "America/New_York"),  # the DST change of Nov 1
    Period.parse("2026-10-20", "2026-11-19", "Asia/Kathmandu"),  # UTC+05:45
    Period.parse("2026-11-01", "2026-11-09", "UTC"),
]


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.tz.key)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}-{s.by}")
async def test_counted_in_sql_as_one_by_one(
    store: Path, period: Period, spec: ReportSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = await report_rows.read_report(store, SITE, period, spec, lambda d: d)
    assert counted.counts is not None and counted.calls == []
    monkeypatch.setattr(report_rows, "_counts", lambda *args: None)
    each = await report_rows.read_report(store, SITE, period, spec, lambda d: d)
    assert each.counts is None and each.calls
    got, want = report_json(counted, spec), report_json(each, spec)
    if spec.kind == "summary":
        assert want["summary"]["calls"] > 50 and want["previous"]["calls"] > 0
    close(got, want)
    json.dumps(got)


@pytest.mark.parametrize("kind", ["days", "hours"])
async def test_a_zone_seconds_off_the_hour_counts_in_its_own_hours(
    store: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monrovia was 44 min 30 s behind UTC in 1970: 12:40 UTC was 11:55:30 there."""
    monrovia = Period.parse("1970-01-05", "1970-01-15", "Africa/Monrovia")
    spec = ReportSpec(kind)
    counted = await report_rows.read_report(store, SITE, monrovia, spec, lambda d: d)
    monkeypatch.setattr(report_rows, "_counts", lambda *args: None)
    each = await report_rows.read_report(store, SITE, monrovia, spec, lambda d: d)
    assert counted.counts and [c.call_id for c in each.calls] == ["odd4"]
    close(report_json(counted, spec), report_json(each, spec))
    if kind == "hours":
        assert report_json(counted, spec)["grid"][5][11] == 1  # a Saturday


def test_zone_shifts_find_each_clock_change_to_the_second() -> None:
    autumn = Period.parse("2026-10-25", "2026-11-19", "America/New_York")
    assert zone_shifts(autumn) == [
        (autumn.start_utc, -4 * 3600),
        (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), -5 * 3600),
    ]
    assert zone_shifts(Period.parse("2026-01-01", "2026-12-31", "UTC")) == [
        (datetime(2026, 1, 1, tzinfo=UTC), 0)
    ]
    lord_howe = zone_shifts(Period.parse("2026-01-01", "2026-12-31", "Australia/Lord_Howe"))
    assert [offset for _, offset in lord_howe] == [39600, 37800, 39600]  # half-hour DST


async def test_a_period_without_calls_still_compares_with_the_one_before(store: Path) -> None:
    """No call after the history ends: the summary's previous period still has its calls."""
    after = Period.parse("2026-11-21", "2026-12-10", "UTC")
    spec = ReportSpec("summary")
    data = await report_rows.read_report(store, SITE, after, spec, lambda d: d)
    assert data.counts == [] and data.previous_counts
    got = report_json(data, spec)
    assert got["summary"]["calls"] == 0 and got["previous"]["calls"] > 1000


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.tz.key)
async def test_the_overview_read_at_once_is_the_three_reports(store: Path, period: Period) -> None:
    """read_overview gives the summary, days and hours the three report reads give."""
    got = await report_rows.read_overview(store, SITE, period, overview_json)
    for kind in ("summary", "days", "hours"):
        spec = ReportSpec(kind)
        want = await report_rows.read_report(
            store, SITE, period, spec, lambda d, s=spec: report_json(d, s)
        )
        close(
            {k: got[k] for k in want if k != "report"},
            {k: v for k, v in want.items() if k != "report"},
        )
    assert got["report"] == "overview"
