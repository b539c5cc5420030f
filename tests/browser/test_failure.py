"""When the gateway fails, the visitor sees the business's own page, untouched and quiet."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.http.swapjs import load_swap_script
from tests.browser.harness import US_TARGET, CustomerSite, Gateway
from tests.browser.pages import open_page

pytestmark = pytest.mark.browser

# A customer's page on its own origin, with a strict CSP allowing just the gateway.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy"
  content="default-src 'self'; script-src 'self' {gw}; connect-src 'self' {gw}">
<script async src="{gw}/swap.js" data-site="{site}"></script>
</head><body>
<p>Call us: <a id="tel" href="tel:+14155550100">(415) 555-0100</a></p>
<p id="plain">415-555-0100</p>
</body></html>
"""

_BROWSER_LINES = ("Failed to load resource",)


def _network_only(console: list[str]) -> list[str]:
    """Console lines the page or swap.js wrote (Chromium's own failed-request line dropped).

    Chromium logs every failed request ("Failed to load resource: ...") whoever made it; no
    script can prevent that line, so what is asserted is that nothing else appears: no console
    call, no uncaught error, no unhandled rejection, and no CORS error (the gateway lets pages
    read its errors).
    """
    return [line for line in console if not any(b in line for b in _BROWSER_LINES)]


@pytest.fixture
def own_gateway(tmp_path: Path, site: CustomerSite) -> Iterator[Gateway]:
    gw = Gateway(tmp_path, origins=[site.url])
    try:
        yield gw
    finally:
        gw.stop()


def test_cross_origin_site_is_swapped_under_its_csp(
    gateway: Gateway, site: CustomerSite, context: Any
) -> None:
    """A page on another origin with a strict CSP gets its number swapped through CORS."""
    url = site.page("cross.html", PAGE.format(gw=gateway.url, site="demo"))
    visit = open_page(context, url)
    (entry,) = visit.numbers()
    number = entry["number"]
    assert visit.href("#tel") == f"tel:{number}"
    assert visit.text("#plain") == f"{number[2:5]}-{number[5:8]}-{number[8:]}"
    assert visit.page.evaluate("window.__ctgw.violations") == []
    assert visit.console == [] and visit.errors == []


def test_gateway_down_leaves_original_numbers_and_quiet_console(
    own_gateway: Gateway, site: CustomerSite, context: Any
) -> None:
    """With the gateway stopped the page keeps its numbers and swap.js logs nothing."""
    url = site.page("down.html", PAGE.format(gw=own_gateway.url, site="demo"))
    visit = open_page(context, url)
    visit.page.wait_for_load_state("load")
    visit.page.wait_for_timeout(500)
    assert visit.text("#plain") == "415-555-0100"
    assert visit.href("#tel") == f"tel:{US_TARGET}"
    assert visit.errors == []
    assert _network_only(visit.console) == []


def test_api_down_with_cached_script_is_invisible(
    own_gateway: Gateway, site: CustomerSite, context: Any
) -> None:
    """Script from the browser cache, API refused: original numbers, one attempt, no errors."""
    url = site.page("cached.html", PAGE.format(gw=own_gateway.url, site="demo"))
    own_gateway.start()
    open_page(context, url).numbers()
    own_gateway.stop()
    # Forget the stored session (a new visitor), keeping only the browser's HTTP cache.
    blank = open_page(context, site.page("blank.html", "<!doctype html><title>x</title>"))
    blank.page.evaluate("localStorage.clear()")
    blank.page.close()
    context.clear_cookies()
    visit = open_page(context, url)
    visit.page.wait_for_timeout(2500)
    assert visit.page.evaluate("typeof window.ctgw") == "object", "script came from the cache"
    assert visit.text("#plain") == "415-555-0100"
    assert visit.href("#tel") == f"tel:{US_TARGET}"
    assert visit.sessions_created() == 1
    assert visit.errors == []
    assert _network_only(visit.console) == []


def test_unknown_site_answer_leaves_page_alone(
    gateway: Gateway, site: CustomerSite, context: Any
) -> None:
    """A 4xx answer from the gateway changes nothing on the page and raises nothing."""
    url = site.page("unknown.html", PAGE.format(gw=gateway.url, site="no-such-site"))
    visit = open_page(context, url)
    visit.page.wait_for_load_state("load")
    visit.page.wait_for_timeout(800)
    assert visit.sessions_created() == 1
    assert visit.text("#plain") == "415-555-0100"
    assert visit.errors == []
    assert _network_only(visit.console) == []


class _StallingGateway(http.server.BaseHTTPRequestHandler):
    """Serves the real swap.js; accepts POST /v1/sessions and never answers (a hung gateway)."""

    script = b""
    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/javascript")
        self.send_header("Content-Length", str(len(self.script)))
        self.end_headers()
        self.wfile.write(self.script)

    def do_POST(self) -> None:
        self.release.wait(10)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def stalling_gateway() -> Iterator[str]:
    _StallingGateway.script = load_swap_script().body
    _StallingGateway.release = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingGateway)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _StallingGateway.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_hung_gateway_is_given_up_after_two_seconds(
    stalling_gateway: str, site: CustomerSite, context: Any
) -> None:
    """A session request with no answer is aborted at ~2 s; the page stays as it was, quietly."""
    url = site.page("hung.html", PAGE.format(gw=stalling_gateway, site="demo"))
    failed: list[tuple[str, float]] = []
    started = time.monotonic()
    context.on("requestfailed", lambda r: failed.append((r.url, time.monotonic() - started)))
    visit = open_page(context, url)
    visit.page.wait_for_timeout(3500)
    assert visit.page.evaluate("typeof window.ctgw") == "object"
    assert visit.sessions_created() == 1
    ((failed_url, after),) = failed
    assert failed_url.endswith("/v1/sessions")
    assert 1.5 < after < 3.5
    assert visit.text("#plain") == "415-555-0100"
    assert visit.href("#tel") == f"tel:{US_TARGET}"
    assert visit.errors == []
    assert _network_only(visit.console) == []
