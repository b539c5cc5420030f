"""The report routes: figures in the site's zone, downloads with the filters in their names,
call marks and campaign costs; every route checks the caller's role and site."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import ConfigError, parse_config
from gateway.store.database import Write
from gateway.store.keys import create_key
from tests.api.conftest import demo_config
from tests.api.test_staff_login import add_user, log_in
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)

EVIL = "=cmd|'/c calc'!A1"


def _config(tmp_path: Path) -> dict:
    raw = demo_config(tmp_path)
    raw["sites"][0]["timezone"] = "America/New_York"
    shop = {"key": "shop", "allowed_origins": ["https://shop.example"], "timezone": "UTC"}
    return {**raw, "sites": [*raw["sites"], shop]}


def _call(call_id: str, started: str, campaign: str, **extra) -> Write:
    attribution = {"source": "google", "medium": "cpc", "campaign": campaign}
    row = {
        "call_id": call_id,
        "site": "demo",
        "dialed": "+14155550101",
        "caller": extra.pop("caller", "+12025550001"),
        "started_at": started,
        "state": "answered",
        "attribution_kind": "active",
        "attribution": json.dumps(attribution),
        "talk_seconds": 42.0,
        **extra,
    }
    names, marks = ", ".join(row), ", ".join("?" for _ in row)
    return Write(f"INSERT INTO calls ({names}) VALUES ({marks})", tuple(row.values()))


@pytest.fixture
async def reports(aiohttp_client, tmp_path: Path, clock: FakeClock) -> tuple[TestClient, dict]:
    client = await aiohttp_client(create_app(parse_config(_config(tmp_path)), clock=clock))
    await client.app[DB].write(
        [
            # 23:59 on March 8th in New York (03:59 UTC on the 9th), and 00:00 on the 9th.
            _call("c1", "2026-03-09T03:59:00.000000Z", "spring"),
            _call("c2", "2026-03-09T04:00:00.000000Z", EVIL, caller="+12025550002"),
            _call("c3", "2026-03-08T12:00:00.000000Z", "spring", caller="+12025550003"),
            _call("c-shop", "2026-03-08T12:00:00.000000Z", "x", site="shop"),
        ]
    )
    key = await create_key(client.app[DB], "reports", datetime.now(UTC))
    return client, {"Authorization": f"Bearer {key}"}


async def test_a_summary_counts_days_in_the_sites_zone_and_marks_leave_calls_out(
    reports: tuple[TestClient, dict],
) -> None:
    client, auth = reports
    query = "site=demo&since=2026-03-08&until=2026-03-08"
    resp = await client.get(f"/v1/reports/summary?{query}", headers=auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["timezone"], body["summary"]["calls"]) == ("America/New_York", 2)
    mark = await client.post("/v1/calls/c3/marks", json={"spam": True}, headers=auth)
    assert mark.status == 200
    assert await mark.json() == {"call_id": "c3", "site": "demo", "spam": True, "test": False}
    after = await (await client.get(f"/v1/reports/summary?{query}", headers=auth)).json()
    assert after["summary"]["calls"] == 1
    shown = await client.get("/v1/calls/c3", headers=auth)
    assert shown.status == 200  # marked, never deleted
    unmark = await client.post("/v1/calls/c3/marks", json={"spam": False}, headers=auth)
    assert (await unmark.json())["spam"] is False


async def test_downloads_carry_their_filters_and_keep_visitor_text_as_text(
    reports: tuple[TestClient, dict],
) -> None:
    client, auth = reports
    query = "site=demo&since=2026-03-08&until=2026-03-09&by=campaign&touch=last"
    resp = await client.get(f"/v1/reports/breakdown?{query}&format=xlsx", headers=auth)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == (
        'attachment; filename="calls-by-campaign_demo_2026-03-08_2026-03-09_last-touch.xlsx"'
    )
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert rows["spring"][1].value == 2
    assert rows[EVIL][0].data_type == "s"
    csv_resp = await client.get(f"/v1/reports/breakdown?{query}&format=csv", headers=auth)
    assert csv_resp.content_type == "text/csv"
    assert f"'{EVIL}" in (await csv_resp.read()).decode("utf-8-sig")
    assert csv_resp.headers["Content-Disposition"].endswith('_last-touch.csv"')


async def test_every_report_answers_and_costs_give_cost_per_call(
    reports: tuple[TestClient, dict],
) -> None:
    client, auth = reports
    cost = {
        "source": "google",
        "campaign": "spring",
        "first_day": "2026-03-08",
        "last_day": "2026-03-09",
        "amount": 50,
    }
    put = await client.put("/v1/sites/demo/costs", json={"costs": [cost]}, headers=auth)
    assert put.status == 200, await put.text()
    assert (await put.json())["costs"][0]["amount"] == 50.0
    query = "site=demo&since=2026-03-08&until=2026-03-09"
    for kind in ("summary", "breakdown", "days", "hours", "agents"):
        for fmt in ("json", "csv", "xlsx"):
            resp = await client.get(f"/v1/reports/{kind}?{query}&format={fmt}", headers=auth)
            assert resp.status == 200, (kind, fmt, await resp.text())
    summary = await (await client.get(f"/v1/reports/summary?{query}", headers=auth)).json()
    assert (summary["summary"]["cost"], summary["summary"]["cost_per_call"]) == (50.0, 16.6667)
    days = await (await client.get(f"/v1/reports/days?{query}", headers=auth)).json()
    assert [d["calls"] for d in days["days"]] == [2, 1]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("site=demo&since=2026-3-8&until=2026-03-09", "'since' must be a day"),
        ("site=demo&since=2026-03-09&until=2026-03-08", "is before 'since'"),
        ("site=demo&since=2025-01-01&until=2026-03-08", "at most 400"),
        ("site=demo&since=2026-03-08&until=2026-03-09&by=colour", "'by' must be one of"),
        ("site=demo&since=2026-03-08&until=2026-03-09&touch=middle", "'touch' must be"),
        ("site=demo&format=pdf", "'format' must be one of"),
        ("since=2026-03-08&until=2026-03-09", "'site' is required"),
    ],
)
async def test_bad_inputs_are_400_with_their_reason(
    reports: tuple[TestClient, dict], query: str, message: str
) -> None:
    client, auth = reports
    resp = await client.get(f"/v1/reports/breakdown?{query}", headers=auth)
    assert resp.status == 400
    assert message in (await resp.json())["error"]["message"]


async def test_unknown_sites_and_calls_are_404_and_bad_marks_and_costs_400(
    reports: tuple[TestClient, dict],
) -> None:
    client, auth = reports
    resp = await client.get("/v1/reports/summary?site=nope", headers=auth)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "unknown_site")
    assert (
        await client.post("/v1/calls/nope/marks", json={"spam": True}, headers=auth)
    ).status == 404
    bad = await client.post("/v1/calls/c1/marks", json={"spam": "yes"}, headers=auth)
    assert bad.status == 400
    assert (await client.post("/v1/calls/c1/marks", json={}, headers=auth)).status == 400
    cost = {"campaign": "x", "first_day": "2026-03-09", "last_day": "2026-03-08", "amount": 1}
    resp = await client.put("/v1/sites/demo/costs", json={"costs": [cost]}, headers=auth)
    assert resp.status == 400 and "costs[0]" in (await resp.json())["error"]["message"]
    resp = await client.put("/v1/sites/nope/costs", json={"costs": [cost]}, headers=auth)
    assert resp.status == 404


async def test_roles_and_sites_are_checked_on_every_report_route(
    reports: tuple[TestClient, dict],
) -> None:
    client, _ = reports
    routes = [
        ("GET", "/v1/reports/summary?site=shop"),
        ("GET", "/v1/reports/breakdown?site=shop&format=csv"),
        ("GET", "/v1/reports/days?site=shop"),
        ("GET", "/v1/reports/hours?site=shop"),
        ("GET", "/v1/reports/agents?site=shop&format=xlsx"),
        ("GET", "/v1/sites/shop/costs"),
        ("PUT", "/v1/sites/shop/costs"),
        ("POST", "/v1/calls/c-shop/marks"),
    ]
    for method, path in routes:
        assert (await client.request(method, path, json={"spam": True})).status == 401
    await add_user(client, "mia@example.com", "marketer", ["demo"])
    csrf = await log_in(client, "mia@example.com")
    headers = {"X-CSRF-Token": csrf}
    for method, path in routes:
        resp = await client.request(method, path, json={"spam": True}, headers=headers)
        assert resp.status == 403, (method, path)
    mine = await client.get("/v1/reports/summary?site=demo", headers=headers)
    assert mine.status == 200
    client.session.cookie_jar.clear()
    await add_user(client, "al@example.com", "agent", ["demo"])
    await log_in(client, "al@example.com")
    assert (await client.get("/v1/reports/summary?site=demo")).status == 403


def test_an_unknown_time_zone_in_config_names_its_key(tmp_path: Path) -> None:
    raw = _config(tmp_path)
    raw["sites"][1]["timezone"] = "Mars/Olympus_Mons"
    with pytest.raises(ConfigError, match=r"'sites\[1\]\.timezone': 'Mars/Olympus_Mons'"):
        parse_config(raw)
