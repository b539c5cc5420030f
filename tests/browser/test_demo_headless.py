"""The demo opened by a headless browser that says so: no swap, and the page says why."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest

from tests.browser.harness import US_TARGET, Gateway
from tests.browser.pages import nanp, open_page

pytestmark = pytest.mark.browser


def test_headless_user_agent_sees_the_sites_number_and_why(gateway: Gateway, browser: Any) -> None:
    """With Chromium's own headless user agent (a bot by default) nothing is swapped, the
    status line says there is no tracking number, and the page explains headless browsers."""
    agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"HeadlessChrome/{browser.version} Safari/537.36"
    )
    context = browser.new_context(user_agent=agent)
    try:
        visit = open_page(context, f"{gateway.url}/demo/")
        deadline = time.monotonic() + 10
        while "waiting" in (status := visit.text("#ctgw-status")):
            assert time.monotonic() < deadline, "the demo never heard from swap.js"
            visit.page.wait_for_timeout(50)
        assert status.startswith("No tracking number for this visit"), status
        assert visit.text("#f-dash") == nanp(US_TARGET)["dash"]
        assert visit.href("#f-tel") == f"tel:{US_TARGET}"
        assert "HeadlessChrome" in visit.text("#bot-note")
        assert visit.page.is_visible("#bot-note")
    finally:
        context.close()


def test_demo_page_served_to_curl_explains_it_is_not_swapped(gateway: Gateway) -> None:
    """The demo's HTML itself (what curl shows) carries the note about curl and headless."""
    request = urllib.request.Request(f"{gateway.url}/demo/", headers={"User-Agent": "curl/8.5"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        html = answer.read().decode()
    assert 'id="bot-note"' in html
    assert "curl" in html and "HeadlessChrome" in html
