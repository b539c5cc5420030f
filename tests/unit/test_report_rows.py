"""The store side of reports on a seeded store file: calls with their sessions and first
touches, visits by dimension, campaign costs; and the CSV and XLSX files read back."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gateway.store.migrate import apply_migrations
from gateway.store.report_rows import campaign_costs, read_report, report_calls, visit_counts
from reports.call_report import ReportSpec, report_json
from reports.period import Period
from reports.report_files import report_file

NY = "America/New_York"
EVIL = '=HYPERLINK("http://evil.example","x")'


def session(session_id: str, created: str, **fields: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "site": "demo",
        "visitor_id": f"v-{session_id}",
        "created_at": created,
        "last_seen": created,
        "expires_at": created,
        **fields,
    }


def stored_call(call_id: str, started: str, session_id: str = "", **fields: Any) -> dict[str, Any]:
    attribution = fields.pop("attribution", {})
    return {
        "call_id": call_id,
        "site": "demo",
        "dialed": "+14155550101",
        "caller": "+12025550001",
        "started_at": started,
        "state": "answered",
        "agent": "alice",
        "ring_seconds": 4.0,
        "talk_seconds": 30.0,
        "attribution_kind": "active" if session_id else "unattributed",
        "session_id": session_id,
        "attribution": json.dumps(attribution),
        **fields,
    }


def insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))


BRAND = {"source": "google", "medium": "cpc", "campaign": "brand", "gclid": "g1"}
SOCIAL = {"source": "facebook", "medium": "paid_social", "campaign": "spring-social"}
BAIDU = {"source": "baidu", "medium": "cpc", "campaign": "百度品牌"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "ctgw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn)
    sessions = [
        session(
            "s-brand",
            "2026-03-02T14:00:00.000000Z",
            utm_source="google",
            utm_medium="cpc",
            utm_campaign="brand",
            gclid="g1",
            landing_page="https://shop.example/",
            url="https://shop.example/prices",
        ),
        session(
            "s-social",
            "2026-03-08T14:00:00.000000Z",
            utm_source="facebook",
            utm_medium="paid_social",
            utm_campaign="spring-social",
            fbclid="f1",
            landing_page=EVIL,
        ),
        session("s-baidu", "2026-03-08T15:00:00.000000Z", utm_campaign="百度品牌", bd_vid="b1"),
        session("s-bing", "2026-03-08T16:00:00.000000Z", msclkid="m1"),  # no call
        session("s-direct", "2026-03-09T10:00:00.000000Z"),  # no call
        session("s-old", "2026-03-05T10:00:00.000000Z", utm_campaign="brand"),  # before
    ]
    calls = [
        # The repeat caller: first from the brand campaign, then from the social one.
        stored_call("c-first", "2026-03-02T14:05:00.000000Z", "s-brand", attribution=BRAND),
        stored_call(
            "c-repeat",
            "2026-03-08T14:10:00.000000Z",
            "s-social",
            first_time=0,
            attribution={**SOCIAL, "landing_page": EVIL},
        ),
        stored_call(
            "c-baidu",
            "2026-03-08T15:05:00.000000Z",
            "s-baidu",
            caller="+12025550002",
            attribution=BAIDU,
            state="missed",
            talk_seconds=None,
            agent="",
        ),
        # Its session row is gone: still counted, the click id its snapshot kept still read.
        stored_call(
            "c-gone",
            "2026-03-09T03:59:00.000000Z",
            "s-expired",
            caller="+12025550003",
            attribution=BRAND,
        ),
        stored_call("c-spam", "2026-03-08T18:00:00.000000Z", caller="+12025550004", spam=1),
        stored_call("c-test", "2026-03-08T18:30:00.000000Z", caller="+12025550005", test_call=1),
        stored_call("c-before", "2026-03-05T18:30:00.000000Z", caller="+12025550006"),
        stored_call("c-other", "2026-03-08T18:30:00.000000Z", caller="+1202555007", site="other"),
    ]
    costs = [
        {
            "site": "demo",
            "source": "facebook",
            "campaign": "spring-social",
            "first_day": "2026-03-01",
            "last_day": "2026-03-10",
            "amount": 300.0,
        },
        {
            "site": "demo",
            "source": "google",
            "campaign": "brand",
            "first_day": "2026-03-04",
            "last_day": "2026-03-06",
            "amount": 30.0,
        },
    ]
    conn.execute("BEGIN")
    insert(conn, "sessions", sessions)
    insert(conn, "calls", calls)
    insert(conn, "campaign_costs", costs)
    conn.execute("COMMIT")
    conn.close()
    return path


PERIOD = Period.parse("2026-03-07", "2026-03-09", NY)


async def test_the_calls_of_a_period_with_sessions_and_first_touches(store: Path) -> None:
    calls = {c.call_id: c for c in await report_calls(store, "demo", PERIOD)}
    # c-gone at 03:59Z on the 9th is 23:59 on the 8th in New York: inside; c-before is not.
    assert set(calls) == {"c-repeat", "c-baidu", "c-gone", "c-spam", "c-test"}
    repeat = calls["c-repeat"]
    assert (repeat.last_touch.campaign, repeat.last_touch.click_network) == (
        "spring-social",
        "meta",
    )
    assert (repeat.first_touch.campaign, repeat.first_touch.click_network) == ("brand", "google")
    assert calls["c-baidu"].last_touch.click_network == "baidu"
    assert calls["c-baidu"].first_touch == calls["c-baidu"].last_touch
    gone = calls["c-gone"]
    assert (gone.last_touch.campaign, gone.last_touch.click_network, gone.pages) == (
        "brand",
        "google",
        (),
    )
    assert calls["c-spam"].spam and calls["c-test"].test_call
    brand_pages = await report_calls(store, "demo", Period.parse("2026-03-02", "2026-03-02", NY))
    assert brand_pages[0].pages == ("https://shop.example/", "https://shop.example/prices")


async def test_visits_by_dimension_and_costs_of_the_period(store: Path) -> None:
    assert await visit_counts(store, "demo", PERIOD) == {"": 4}
    assert await visit_counts(store, "demo", PERIOD, "click_network") == {
        "meta": 1,
        "baidu": 1,
        "microsoft": 1,
        "": 1,
    }
    assert await visit_counts(store, "demo", PERIOD, "source") == {
        "facebook": 1,
        "baidu": 1,
        "bing": 1,
        "(direct)": 1,
    }
    assert await visit_counts(store, "demo", PERIOD, "medium") == {
        "paid_social": 1,
        "cpc": 2,
        "(none)": 1,
    }
    assert await visit_counts(store, "demo", PERIOD, "kind") == {}
    assert await campaign_costs(store, "demo", PERIOD) == {"spring-social": pytest.approx(90.0)}


async def test_the_summary_compares_with_the_period_before(store: Path) -> None:
    spec = ReportSpec("summary")
    result = await read_report(store, "demo", PERIOD, spec, lambda d: report_json(d, spec))
    now, before = result["summary"], result["previous"]
    assert (now["calls"], now["answered"], now["missed"], now["first_time"]) == (3, 2, 1, 2)
    assert now["visits"] == 4 and now["calls_per_100_visits"] == 75.0
    assert now["cost"] == 90.0 and now["cost_per_call"] == 30.0
    assert result["previous_period"] == {"since": "2026-03-04", "until": "2026-03-06"}
    # The brand cost falls wholly before; the social cost's three days before too.
    assert (before["calls"], before["visits"], before["cost"]) == (1, 1, pytest.approx(120.0))
    assert result["changes"]["calls"]["delta"] == 2
    assert result["changes"]["calls"]["percent"] == 200.0


async def test_breakdown_downloads_round_trip_and_visitor_text_stays_text(store: Path) -> None:
    spec = ReportSpec("breakdown", by="landing_page", touch="last")
    csv_body = await read_report(store, "demo", PERIOD, spec, lambda d: report_file(d, spec, "csv"))
    assert csv_body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(csv_body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["landing_page", "calls", "answered"]
    assert ["'" + EVIL, "1", "1"] in [r[:3] for r in rows]  # quoted: a spreadsheet shows text
    xlsx = await read_report(store, "demo", PERIOD, spec, lambda d: report_file(d, spec, "xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    evil = cells[EVIL]
    assert evil[0].data_type == "s"  # text, never a formula
    assert (evil[1].value, evil[1].data_type) == (1, "n")


async def test_per_day_xlsx_has_dates_and_numbers(store: Path) -> None:
    spec = ReportSpec("days")
    body = await read_report(store, "demo", PERIOD, spec, lambda d: report_file(d, spec, "xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    values = [[c.value for c in row[:2]] for row in sheet.iter_rows(min_row=2)]
    assert [(d.date().isoformat(), n) for d, n in values] == [
        ("2026-03-07", 0),
        ("2026-03-08", 3),
        ("2026-03-09", 0),
    ]
    assert spec.file_name("demo", PERIOD, "xlsx") == "calls-per-day_demo_2026-03-07_2026-03-09.xlsx"
    by = ReportSpec("breakdown", by="campaign", touch="first")
    assert by.file_name("demo", PERIOD, "csv") == (
        "calls-by-campaign_demo_2026-03-07_2026-03-09_first-touch.csv"
    )
