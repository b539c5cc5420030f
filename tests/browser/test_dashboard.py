"""The staff dashboard in real headless Chromium against a real gateway with a seeded history:
log in through the form, filter by days, count the chart's points, a visitor's `<script>` UTM
shown as text, and no CSP violation or console error on any page."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP_UA
from tests.browser.harness import Gateway
from tests.browser.staff_fixtures import PASSWORD, WatchedPage, log_in, watch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

EVIL = "<script>alert(1)</script>"
MARKETER = "mia@example.com"
_WAIT_MS = 10_000


def _ctgw(gw: Gateway, *args: str, stdin: str = "") -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("ctgw")), *args, "--config", str(gw.config)],
        input=stdin.encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seed_evil_visit(db: Path, at: datetime) -> None:
    """A visit whose UTM campaign is a script, and the call attributed to it."""
    visit = {
        "source": "google",
        "medium": "cpc",
        "campaign": EVIL,
        "landing_page": "https://www.demo-plumbing.example/?utm_campaign=%3Cscript%3E",
        "session_id": "s-evil",
    }
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, site, visitor_id, created_at, last_seen, expires_at,"
            " url, landing_page, utm_source, utm_medium, utm_campaign, gclid)"
            " VALUES ('s-evil', 'demo', 'v-evil', ?, ?, ?, ?, ?, 'google', 'cpc', ?, 'g-1')",
            (
                _stamp(at),
                _stamp(at),
                _stamp(at + timedelta(minutes=30)),
                visit["landing_page"],
                visit["landing_page"],
                EVIL,
            ),
        )
        conn.execute(
            "INSERT INTO calls (call_id, site, dialed, caller, caller_name, started_at, state,"
            " attribution_kind, session_id, visitor_id, attribution)"
            " VALUES ('c-evil', 'demo', '+14155550101', '+12025550199', ?, ?, 'answered',"
            " 'active', 's-evil', 'v-evil', ?)",
            (EVIL, _stamp(at + timedelta(minutes=2)), json.dumps(visit)),
        )


@pytest.fixture(scope="module")
def staff_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose demo site holds the seeded 90-day history, the script visit of
    yesterday, and a marketer of the demo site."""
    gw = Gateway(tmp_path_factory.mktemp("staff-gateway"))
    _ctgw(gw, "demo", "seed")
    _seed_evil_visit(gw.workdir / "ctgw.db", datetime.now(UTC) - timedelta(days=1))
    _ctgw(
        gw,
        "users",
        "create",
        MARKETER,
        "--role",
        "marketer",
        "--site",
        "demo",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    try:
        yield gw.start()
    finally:
        gw.stop()


@pytest.fixture
def staff_page(browser: Any, staff_gateway: Gateway) -> Iterator[WatchedPage]:
    """A logged-in marketer's page, watched for console errors, CSP violations, dialogs."""
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(_WAIT_MS)
    try:
        watched = watch(context)
        log_in(watched.page, staff_gateway.url, MARKETER)
        yield watched
    finally:
        context.close()


def _clean(watched: WatchedPage) -> None:
    assert watched.problems() == []
    assert watched.dialogs == []


def test_logging_in_through_the_form_opens_the_dashboard(
    staff_page: WatchedPage, staff_gateway: Gateway
) -> None:
    page = staff_page.page
    assert page.url.endswith("/staff/dashboard")
    assert page.text_content("h1") == "Dashboard"
    assert page.locator('dl.cards [data-figure="calls"] .value').inner_text() not in ("", "0")
    assert page.locator("figure.line-chart svg").count() == 1
    assert page.locator("figure.heat-map rect.cell").count() == 7 * 24
    # The default period is the last 30 days: a point a day.
    assert page.locator('circle.point[data-series="all calls"]').count() == 30
    _clean(staff_page)


def test_filtering_by_days_draws_a_point_per_day(staff_page: WatchedPage) -> None:
    page = staff_page.page
    until = datetime.now(UTC).date()
    since = until - timedelta(days=13)
    page.fill('form.filters input[name="since"]', since.isoformat())
    page.fill('form.filters input[name="until"]', until.isoformat())
    with page.expect_navigation():
        page.click('form.filters button[type="submit"]')
    assert f"since={since.isoformat()}" in page.url
    points = page.locator('circle.point[data-series="all calls"]')
    assert points.count() == 14
    labels = [points.nth(i).get_attribute("data-label") for i in range(14)]
    assert labels[0] == since.isoformat() and labels[-1] == until.isoformat()
    assert page.locator('rect.bar[data-series="answered"]').count() == 14
    # Every point of the busiest source's line too.
    assert page.locator("figure.line-chart polyline.line").count() >= 2
    _clean(staff_page)


def test_a_script_campaign_shows_as_text_in_the_table_and_the_call(
    staff_page: WatchedPage, staff_gateway: Gateway
) -> None:
    page = staff_page.page
    page.click('nav a[href="/staff/campaigns"]')
    page.wait_for_url("**/staff/campaigns")
    cell = page.locator("table.breakdown td.value", has_text="alert(1)")
    assert cell.count() == 1 and cell.inner_text() == EVIL
    page.click('nav a[href="/staff/calls"]')
    page.wait_for_url("**/staff/calls")
    page.select_option('form.filters select[name="campaign"]', EVIL)
    with page.expect_navigation():
        page.click('form.filters button[type="submit"]')
    row = page.locator('tr.call[data-call-id="c-evil"]')
    assert row.locator("td.campaign").inner_text() == EVIL
    with page.expect_navigation():
        row.locator("a").click()
    assert page.url.endswith("/staff/calls/c-evil")
    campaign = page.locator('table.last-touch tr:has(th:text-is("Campaign")) td')
    assert campaign.inner_text() == EVIL
    name = page.locator('table.call tr:has(th:text-is("Caller name")) td')
    assert name.inner_text() == EVIL
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    _clean(staff_page)


def test_the_pages_keep_the_csp_and_the_watch_would_see_a_breach(
    staff_page: WatchedPage,
) -> None:
    """Calls, campaigns, pools open without a violation; an inline style set on the page is
    refused and seen (the watch works)."""
    page = staff_page.page
    for name in ("calls", "campaigns", "pools", "dashboard"):
        page.click(f'nav a[href="/staff/{name}"]')
        page.wait_for_url(f"**/staff/{name}")
        assert page.locator("main h1").count() == 1
    _clean(staff_page)
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_timeout(200)
    assert any("style-src" in v for v in staff_page.csp_violations())
