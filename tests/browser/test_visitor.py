"""The visitor across pages, tabs and subdomains: one visitor id, one session, one number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP_UA
from tests.browser.harness import CustomerSite, Gateway
from tests.browser.pages import open_page

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script async src="{gw}/swap.js" data-site="demo"{extra}></script>
</head><body><p id="plain">415-555-0100</p></body></html>
"""
# What a browser with cookies blocked for the site looks like to a script.
NO_COOKIES = """
Object.defineProperty(Navigator.prototype, 'cookieEnabled', {
  configurable: true, get: function () { return false; }
});
Object.defineProperty(Document.prototype, 'cookie', {
  configurable: true, get: function () { return ''; }, set: function () {}
});
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CustomerSite]:
    served = CustomerSite(tmp_path_factory.mktemp("shop")).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def shop_gateway(tmp_path_factory: pytest.TempPathFactory, shop: CustomerSite) -> Iterator[Gateway]:
    origins = [f"http://{host}.shop.test:{shop.port}" for host in ("www", "blog")]
    gw = Gateway(tmp_path_factory.mktemp("gateway"), origins=origins)
    try:
        yield gw.start()
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def subdomain_browser(playwright: Any) -> Iterator[Any]:
    """Chromium resolving *.shop.test to loopback, so one site can have two subdomains."""
    rules = "--host-resolver-rules=MAP *.shop.test 127.0.0.1"
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
    yield chromium
    chromium.close()


@pytest.fixture
def shop_visitor(subdomain_browser: Any) -> Iterator[Any]:
    ctx = subdomain_browser.new_context(user_agent=DESKTOP_UA)
    yield ctx
    ctx.close()


def _shop_pages(shop: CustomerSite, gateway: Gateway, extra: str) -> tuple[str, str]:
    name = "shared.html" if extra else "hostonly.html"
    shop.page(name, PAGE.format(gw=gateway.url, extra=extra))
    return (
        f"http://www.shop.test:{shop.port}/{name}",
        f"http://blog.shop.test:{shop.port}/{name}",
    )


def test_cookie_domain_keeps_one_session_across_subdomains(
    shop: CustomerSite, shop_gateway: Gateway, shop_visitor: Any
) -> None:
    """With data-cookie-domain, www. and blog. of one site share the visitor's session."""
    www, blog = _shop_pages(shop, shop_gateway, ' data-cookie-domain=".shop.test"')
    first = open_page(shop_visitor, www)
    (number,) = first.numbers()
    second = open_page(shop_visitor, blog)
    assert second.numbers() == [number]
    assert second.session_id() == first.session_id()
    assert second.sessions_created() == 0
    cookies = {c["name"]: c["domain"] for c in shop_visitor.cookies()}
    assert cookies["ctgw_vid"] == ".shop.test"


def test_without_cookie_domain_each_subdomain_is_its_own(
    shop: CustomerSite, shop_gateway: Gateway, shop_visitor: Any
) -> None:
    """Without data-cookie-domain the cookies are host-only: blog. opens its own session."""
    www, blog = _shop_pages(shop, shop_gateway, "")
    first = open_page(shop_visitor, www)
    first.numbers()
    second = open_page(shop_visitor, blog)
    second.numbers()
    assert second.session_id() != first.session_id()
    assert second.sessions_created() == 1


def test_local_storage_keeps_the_session_when_cookies_are_blocked(
    gateway: Gateway, context: Any
) -> None:
    """With cookies blocked, localStorage carries the session to the visitor's next tab."""
    context.add_init_script(NO_COOKIES)
    first = open_page(context, f"{gateway.url}/demo/")
    numbers = first.numbers()
    assert first.page.evaluate("document.cookie") == ""
    assert first.page.evaluate("localStorage.getItem('ctgw_vid')")
    second = open_page(context, f"{gateway.url}/demo/")
    assert second.numbers() == numbers
    assert second.sessions_created() == 0


def test_ready_callback_and_event_carry_the_numbers(gateway: Gateway, context: Any) -> None:
    """window.ctgwReady is called with the same numbers the ctgw:numbers event carries."""
    context.add_init_script("window.ctgwReady = function (n) { window.__ready = n; };")
    visit = open_page(context, f"{gateway.url}/demo/")
    numbers = visit.numbers()
    assert visit.page.evaluate("window.__ready") == numbers
    assert visit.page.evaluate("window.ctgw.numbers") == numbers
    assert {"target", "number", "display"} <= set(numbers[0])


def test_script_running_before_the_body_swaps_what_is_parsed_later(
    gateway: Gateway, site: CustomerSite, context: Any
) -> None:
    """A blocking tag in <head> with a stored session swaps the body parsed after it runs."""
    head = PAGE.format(gw=gateway.url, extra="").replace(" async ", " ")
    url = site.page("head.html", head)
    open_page(context, url).numbers()
    again = open_page(context, url)
    (entry,) = again.numbers()
    assert again.sessions_created() == 0
    assert again.page.evaluate("window.__ctgw.events[0].body") is False, "ran before <body>"
    shown = entry["number"].removeprefix("+1")
    again.page.wait_for_function(
        "(want) => document.getElementById('plain').textContent === want",
        arg=f"{shown[:3]}-{shown[3:6]}-{shown[6:]}",
        timeout=2000,
    )


def _hold_session_requests(context: Any) -> list[Any]:
    """Intercept POST /v1/sessions and hold each one until the test lets it go."""
    held: list[Any] = []
    context.route("**/v1/sessions", lambda route: held.append(route))
    return held


def _wait_for(page: Any, held: list[Any], count: int) -> None:
    for _ in range(100):
        if len(held) >= count:
            return
        page.wait_for_timeout(20)
    raise AssertionError(f"{len(held)} session requests held, expected {count}")


def test_tabs_opened_at_once_by_a_new_visitor_share_one_session(
    gateway: Gateway, context: Any
) -> None:
    """A brand-new visitor opens two tabs while the first tab's session is still being opened:
    the second tab waits for that session instead of leasing a second number."""
    held = _hold_session_requests(context)
    first = open_page(context, f"{gateway.url}/demo/")
    _wait_for(first.page, held, 1)
    second = open_page(context, f"{gateway.url}/demo/")
    second.page.wait_for_timeout(300)  # long enough for a second request to show up
    for route in held:
        route.continue_()
    number = first.numbers()
    assert second.numbers() == number
    assert second.session_id() == first.session_id()
    assert len(held) == 1, "the second tab asked for a session of its own"
    assert second.sessions_created() == 0


def test_second_tab_opens_its_own_session_when_the_first_tab_fails(
    gateway: Gateway, context: Any
) -> None:
    """If the first tab's request fails, the waiting tab does not wait in vain."""
    held = _hold_session_requests(context)
    first = open_page(context, f"{gateway.url}/demo/")
    _wait_for(first.page, held, 1)
    second = open_page(context, f"{gateway.url}/demo/")
    held[0].abort()
    _wait_for(second.page, held, 2)
    held[1].continue_()
    assert second.numbers()
    assert second.sessions_created() == 1
    assert first.page.evaluate("window.__ctgw.events.length") == 0
    # (the first tab's console has Chromium's own "Failed to load resource" line)
    assert not second.console and not first.errors and not second.errors


def test_a_landing_with_other_campaign_tags_does_not_wait(gateway: Gateway, context: Any) -> None:
    """A tab from another ad click is a new touch: it opens its own session at once."""
    held = _hold_session_requests(context)
    first = open_page(context, f"{gateway.url}/demo/?utm_source=google&gclid=one")
    _wait_for(first.page, held, 1)
    second = open_page(context, f"{gateway.url}/demo/?utm_source=bing&msclkid=two")
    _wait_for(second.page, held, 2)
    for route in held:
        route.continue_()
    assert first.numbers() != second.numbers()


def test_untagged_tab_opened_at_once_waits_for_the_ad_click_tabs_session(
    gateway: Gateway, context: Any
) -> None:
    """An untagged page keeps the visitor's session, so it also waits for one being opened."""
    held = _hold_session_requests(context)
    first = open_page(context, f"{gateway.url}/demo/?utm_source=google&gclid=one")
    _wait_for(first.page, held, 1)
    second = open_page(context, f"{gateway.url}/demo/")
    second.page.wait_for_timeout(300)
    for route in held:
        route.continue_()
    assert second.numbers() == first.numbers()
    assert len(held) == 1


def test_ended_session_in_one_tab_does_not_wipe_the_session_of_another(
    gateway: Gateway, context: Any
) -> None:
    """Tab A's session is superseded when the same visitor lands from an ad click in tab B
    (returning visitor: same number, new session). A's next heartbeat gets 410; A must not
    forget B's session, which is the visitor's stored one now, and goes on with it."""
    first = open_page(context, f"{gateway.url}/demo/")
    first.numbers()
    old_id = first.session_id()
    second = open_page(context, f"{gateway.url}/demo/?utm_source=google&gclid=abc")
    second.numbers()
    new_id = second.session_id()
    assert new_id != old_id
    second.page.close()  # B stops beating (its beats would rewrite the cookie every second)
    first.page.wait_for_timeout(2500)  # A beats (1 s interval here), gets its 410
    cookie = first.page.evaluate("document.cookie")
    assert f"%22i%22%3A%22{new_id}%22" in cookie, "the visitor's current session was wiped"
    last = "window.__ctgw.events[window.__ctgw.events.length - 1].detail.session_id"
    assert first.page.evaluate(last) == new_id, "tab A did not go on with the current session"
    third = open_page(context, f"{gateway.url}/demo/")
    third.numbers()
    assert third.sessions_created() == 0
    assert third.session_id() == new_id
