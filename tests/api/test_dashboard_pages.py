"""The staff report pages: who may open them, what they show, and that every value a visitor
or caller sent is shown as text (escaped), under the strict CSP with no inline script or style."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from gateway.http.pages import CSP
from gateway.store.call_marks import call_marks
from gateway.store.database import Write
from tests.api.conftest import demo_config
from tests.api.test_staff_login import add_user, log_in
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)

EVIL = "<script>alert(1)</script>"
EVIL_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"
EVIL_NAME = "<script>alert('caller')</script>"
SHOWN = "site=demo&since=2026-01-01&until=2026-01-04"
PAGES = (
    f"/staff/dashboard?{SHOWN}",
    f"/staff/calls?{SHOWN}",
    "/staff/calls/c-evil",
    f"/staff/campaigns?{SHOWN}",
    f"/staff/pools?{SHOWN}",
)


def _insert(table: str, **row: object) -> Write:
    names, marks = ", ".join(row), ", ".join("?" for _ in row)
    return Write(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))


def _call(call_id: str, started: str, site: str = "demo", **extra: object) -> Write:
    attribution = extra.pop("attribution", {"source": "google", "medium": "cpc"})
    row = {
        "call_id": call_id,
        "site": site,
        "dialed": "+14155550101",
        "caller": "+12025550001",
        "started_at": started,
        "state": "answered",
        "attribution_kind": "active",
        "attribution": json.dumps(attribution),
        "talk_seconds": 42.0,
        **extra,
    }
    return _insert("calls", **row)


def _history() -> list[Write]:
    evil_visit = {
        "source": "google",
        "medium": "cpc",
        "campaign": EVIL,
        "term": "<b>plumber</b>",
        "landing_page": "https://www.demo-plumbing.example/?utm_campaign=<script>",
        "referrer": "https://evil.example/<img src=x onerror=alert(2)>",
        "session_id": "s-evil",
    }
    return [
        _insert(
            "sessions",
            session_id="s-evil",
            site="demo",
            visitor_id="v-evil",
            created_at="2026-01-04T14:55:00.000000Z",
            last_seen="2026-01-04T14:59:00.000000Z",
            expires_at="2026-01-04T15:30:00.000000Z",
            url="https://www.demo-plumbing.example/pricing?<script>",
            landing_page=evil_visit["landing_page"],
            referrer=evil_visit["referrer"],
            utm_source="google",
            utm_medium="cpc",
            utm_campaign=EVIL,
            gclid="gclid-<script>",
        ),
        _call(
            "c-evil",
            "2026-01-04T15:00:00.000000Z",
            caller_name=EVIL_NAME,
            session_id="s-evil",
            visitor_id="v-evil",
            attribution=evil_visit,
        ),
        _call("c-missed", "2026-01-02T10:00:00.000000Z", state="missed", caller="+12025550002"),
        _call("c-shop", "2026-01-03T10:00:00.000000Z", site="shop", caller="+12025550003"),
    ]


@pytest.fixture
async def staff(aiohttp_client, tmp_path: Path, clock: FakeClock) -> TestClient:
    """The demo site (a pool, UTC) and a site `shop`, with a visit and calls of early 2026."""
    raw = demo_config(tmp_path)
    shop = {"key": "shop", "allowed_origins": ["https://shop.example"], "timezone": "UTC"}
    raw = {**raw, "sites": [*raw["sites"], shop]}
    client = await aiohttp_client(create_app(parse_config(raw, source="test"), clock=clock))
    await client.app[DB].write(_history())
    return client


async def _as(client: TestClient, role: str, sites: list[str]) -> str:
    email = f"{role}-{'-'.join(sites) or 'all'}@example.com"
    await add_user(client, email, role, sites)
    client.session.cookie_jar.clear()
    return await log_in(client, email)


async def test_admins_and_marketers_of_the_site_open_every_page(staff: TestClient) -> None:
    for role, sites in (("admin", []), ("marketer", ["demo"])):
        await _as(staff, role, sites)
        for path in PAGES:
            resp = await staff.get(path, allow_redirects=False)
            assert resp.status == 200, (role, path, await resp.text())
            assert resp.headers["Content-Security-Policy"] == CSP
            assert resp.headers["Cache-Control"] == "no-store"
            text = await resp.text()
            assert "<script" not in text and not re.search(r"\sstyle\s*=", text), path


async def test_agents_and_marketers_of_another_site_get_403(staff: TestClient) -> None:
    await _as(staff, "agent", ["demo"])
    for path in PAGES:
        resp = await staff.get(path, allow_redirects=False)
        assert resp.status == 403, ("agent", path)
    await _as(staff, "marketer", ["shop"])
    for path in PAGES:
        resp = await staff.get(path, allow_redirects=False)
        assert resp.status == 403, ("marketer of shop", path)
        assert EVIL_TEXT not in await resp.text()
    # Without a site asked for, the marketer of shop sees shop, never demo's calls.
    own = await staff.get("/staff/calls?since=2026-01-01&until=2026-01-04")
    text = await own.text()
    assert own.status == 200 and 'data-call-id="c-shop"' in text and "c-evil" not in text


async def test_without_a_session_every_page_sends_to_the_login(staff: TestClient) -> None:
    for path in PAGES:
        resp = await staff.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/staff/login?next=")
    post = await staff.post("/staff/calls/c-evil/marks", data={"spam": "1"}, allow_redirects=False)
    assert post.status == 303 and post.headers["Location"].startswith("/staff/login")


async def test_what_visitors_and_callers_sent_is_shown_as_text(staff: TestClient) -> None:
    await _as(staff, "admin", [])
    checks = {
        f"/staff/campaigns?{SHOWN}": [EVIL_TEXT],
        f"/staff/calls?{SHOWN}": [EVIL_TEXT, "&lt;script&gt;alert(&#x27;caller&#x27;)"],
        "/staff/calls/c-evil": [
            EVIL_TEXT,
            "&lt;script&gt;alert(&#x27;caller&#x27;)",
            "&lt;b&gt;plumber&lt;/b&gt;",
            "&lt;img src=x onerror=alert(2)&gt;",
            "gclid-&lt;script&gt;",
            "pricing?&lt;script&gt;",
        ],
        f"/staff/campaigns?{SHOWN}&by=referrer": ["&lt;img src=x onerror=alert(2)&gt;"],
    }
    for path, shown in checks.items():
        text = await (await staff.get(path)).text()
        for value in shown:
            assert value in text, (path, value)
        assert "<script>" not in text and "<img" not in text and "<b>" not in text, path


async def test_the_dashboard_draws_a_point_per_day_and_the_figures(staff: TestClient) -> None:
    await _as(staff, "marketer", ["demo"])
    text = await (await staff.get(f"/staff/dashboard?{SHOWN}")).text()
    points = re.findall(
        r'<circle [^>]*class="point [^"]*" data-series="all calls" data-label="([^"]+)"'
        r' data-value="(\d+)"',
        text,
    )
    assert points == [
        ("2026-01-01", "0"),
        ("2026-01-02", "1"),
        ("2026-01-03", "0"),
        ("2026-01-04", "1"),
    ]
    days = re.findall(r'class="bar s0" data-series="answered" data-label="([^"]+)"', text)
    assert days == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    assert len(re.findall(r'class="cell level-\d"', text)) == 7 * 24
    calls = re.search(r'data-figure="calls"><dt>Calls</dt><dd class="value">(\d+)<', text)
    assert calls is not None and calls.group(1) == "2"
    assert "Pool use" in text and 'data-series="size"' in text
    week = await (await staff.get("/staff/dashboard?site=demo")).text()
    assert len(re.findall(r'data-series="all calls"', week)) == 30  # the last 30 days


async def test_a_marketer_of_several_sites_picks_one(staff: TestClient) -> None:
    await _as(staff, "marketer", ["demo", "shop"])
    text = await (await staff.get("/staff/dashboard?site=shop")).text()
    assert '<select name="site">' in text and '<option value="shop" selected>' in text
    await _as(staff, "marketer", ["demo"])
    text = await (await staff.get("/staff/dashboard")).text()
    assert '<select name="site">' not in text and 'name="site" value="demo"' in text
    bad = await staff.get("/staff/dashboard?site=demo&since=2026-02-01&until=2026-01-01")
    assert bad.status == 400


async def test_the_call_list_filters_and_marks_leave_calls_out(staff: TestClient) -> None:
    csrf = await _as(staff, "marketer", ["demo"])
    missed = await (await staff.get(f"/staff/calls?{SHOWN}&state=missed")).text()
    assert 'data-call-id="c-missed"' in missed and 'data-call-id="c-evil"' not in missed
    refused = await staff.post(
        "/staff/calls/c-evil/marks", data={"spam": "1"}, allow_redirects=False
    )
    assert refused.status == 403
    assert await call_marks(staff.app[DB], "c-evil") == {"spam": False, "test": False}
    marked = await staff.post(
        "/staff/calls/c-evil/marks", data={"csrf": csrf, "spam": "1"}, allow_redirects=False
    )
    assert marked.status == 303 and marked.headers["Location"] == "/staff/calls/c-evil?marked=1"
    assert await call_marks(staff.app[DB], "c-evil") == {"spam": True, "test": False}
    listed = await (await staff.get(f"/staff/calls?{SHOWN}")).text()
    assert 'data-call-id="c-evil"' not in listed and 'data-call-id="c-missed"' in listed
    shown = await (await staff.get(f"/staff/calls?{SHOWN}&marked=1")).text()
    assert 'data-call-id="c-evil"' in shown
    page = await (await staff.get("/staff/calls/c-evil?marked=1")).text()
    assert "Marks saved." in page and 'name="spam" value="1" checked' in page


async def test_the_campaign_table_sorts_and_links_its_downloads(staff: TestClient) -> None:
    await _as(staff, "admin", [])
    await staff.app[DB].write(
        [
            _call("c-a1", "2026-01-03T09:00:00.000000Z", attribution={"campaign": "aaa"}),
            _call("c-a2", "2026-01-03T09:05:00.000000Z", attribution={"campaign": "aaa"}),
        ]
    )
    path = f"/staff/campaigns?{SHOWN}"

    def order(text: str) -> list[str]:
        return re.findall(r'<tr class="row"><td class="value">([^<]*)</td>', text)

    most = order(await (await staff.get(f"{path}&sort=calls&dir=desc")).text())
    assert most[0] == "aaa"
    least = order(await (await staff.get(f"{path}&sort=calls&dir=asc")).text())
    assert least[-1] == "aaa"
    by_name = order(await (await staff.get(f"{path}&sort=value&dir=asc")).text())
    assert by_name == ["(none)", EVIL_TEXT, "aaa"]  # '' first, then by the raw text
    by_name = order(await (await staff.get(f"{path}&sort=value&dir=desc")).text())
    assert by_name == ["aaa", EVIL_TEXT, "(none)"]
    text = await (await staff.get(path)).text()
    links = re.findall(r'<a class="download" href="([^"]+)"', text)
    assert len(links) == 2
    for href, kind in zip(links, ("text/csv", "spreadsheetml"), strict=True):
        url = href.replace("&amp;", "&")
        assert "by=campaign" in url and "touch=last" in url and "since=2026-01-01" in url
        got = await staff.get(url)
        assert got.status == 200 and kind in got.headers["Content-Type"]


async def test_the_pools_page_shows_the_sizing_replay(staff: TestClient) -> None:
    await _as(staff, "admin", [])
    text = await (await staff.get("/staff/pools?site=demo")).text()
    assert 'data-pool="demo:+14155550100"' in text
    assert "Smallest size for 99% right" in text
    assert re.search(r'<tr class="size[^"]*" data-policy="reuse" data-size="\d+"', text)
    # The pool's reuse rules share called numbers: the same without sharing is shown beside.
    assert re.search(r'<tr class="size[^"]*" data-policy="reuse_no_sharing"', text)
    assert '<th scope="col">Shared</th>' in text
    assert "reuse_no_sharing (reuse cooling numbers, never a live one)" in text
