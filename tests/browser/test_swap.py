"""swap.js on the demo site, in headless Chromium, against `ctgw serve`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP_UA
from tests.browser.harness import UK_TARGET, US_TARGET, Gateway
from tests.browser.pages import nanp, open_page, uk

pytestmark = pytest.mark.browser


def _us_number(numbers: list[dict[str, str]]) -> str:
    (entry,) = [n for n in numbers if n["target"] == US_TARGET]
    assert entry["number"] != US_TARGET
    return entry["number"]


def test_every_format_is_swapped_and_keeps_its_format(
    gateway: Gateway, context: Any, artifacts: Path
) -> None:
    """Each way the demo page writes the number shows the tracking number in that same format."""
    visit = open_page(context, f"{gateway.url}/demo/")
    tracking = nanp(_us_number(visit.numbers()))
    original = nanp(US_TARGET)
    for fmt in ("paren", "dash", "dot", "intl", "plain"):
        assert visit.text(f"#f-{fmt}") == tracking[fmt], fmt
        assert tracking[fmt] != original[fmt]
    assert visit.text("#f-split") == tracking["paren"]
    assert visit.text("#f-split b") == tracking["paren"][6:9]
    assert visit.text("#f-tel") == f"Call +1 {tracking['paren']}"
    assert visit.text("#f-sms") == f"Text {tracking['dash']}"
    assert visit.text("#f-footer") == tracking["dash"]
    assert visit.text("#header-tel") == tracking["paren"]
    visit.page.screenshot(path=str(artifacts / "demo-landing.png"), full_page=True)
    assert visit.errors == []
    assert visit.console == []
    assert visit.page.evaluate("window.__ctgw.shift") < 0.01


def test_tel_and_sms_links_dial_the_tracking_number(gateway: Gateway, context: Any) -> None:
    """tel: and sms: hrefs point at the tracking number, written as the href wrote the target."""
    visit = open_page(context, f"{gateway.url}/demo/")
    number = _us_number(visit.numbers())
    assert visit.href("#f-tel") == f"tel:{number}"
    assert visit.href("#header-tel") == f"tel:{number}"
    assert visit.href("#f-sms") == f"sms:{number.removeprefix('+1')}"


def test_noswap_block_and_form_fields_are_left_alone(gateway: Gateway, context: Any) -> None:
    """data-ctgw-noswap content, textareas and inputs keep the business's own number."""
    visit = open_page(context, f"{gateway.url}/demo/")
    visit.numbers()
    assert "(415) 555-0100" in visit.text("#f-noswap")
    assert visit.href("#f-noswap-tel") == f"tel:{US_TARGET}"
    assert visit.page.input_value("#f-textarea") == "Call (415) 555-0100"
    assert visit.page.input_value("#f-input") == "415-555-0100"


def test_london_number_is_swapped_in_every_national_format(gateway: Gateway, context: Any) -> None:
    """A +44 target is found as 020 ..., +44 20 ..., +44 (0)20 ... and 0044 ... and kept so."""
    visit = open_page(context, f"{gateway.url}/demo/uk.html")
    (entry,) = visit.numbers()
    assert entry["target"] == UK_TARGET
    tracking = uk(entry["number"])
    for fmt in ("national", "intl", "trunk", "idd"):
        assert visit.text(f"#uk-{fmt}") == tracking[fmt], fmt
        assert tracking[fmt] != uk(UK_TARGET)[fmt]
    assert visit.href("#uk-tel") == f"tel:{entry['number']}"


def test_popup_and_client_side_route_are_swapped(
    gateway: Gateway, context: Any, artifacts: Path
) -> None:
    """Content added after load (a popup, a pushState route) shows the tracking number."""
    visit = open_page(context, f"{gateway.url}/demo/")
    number = _us_number(visit.numbers())
    tracking = nanp(number)
    visit.page.wait_for_selector("#popup")
    visit.page.wait_for_function(
        "(want) => document.getElementById('popup-number').textContent === want",
        arg=tracking["paren"],
        timeout=2000,
    )
    assert visit.href("#popup-tel") == f"tel:{tracking['plain']}"
    visit.page.screenshot(path=str(artifacts / "demo-popup.png"))
    visit.page.click("a[data-route=pricing]")
    visit.page.wait_for_selector("#route-number")
    visit.page.wait_for_function(
        "(want) => document.getElementById('route-number').textContent === want",
        arg=tracking["dash"],
        timeout=2000,
    )
    assert visit.href("#route-tel") == f"tel:+1-{tracking['dash']}"
    assert visit.page.url.endswith("/demo/pricing")
    assert visit.sessions_created() == 1


def test_window_ctgw_swap_rescans_on_demand(gateway: Gateway, context: Any) -> None:
    """ctgw.swap(root) swaps content the page adds without a DOM mutation being observed."""
    visit = open_page(context, f"{gateway.url}/demo/")
    tracking = nanp(_us_number(visit.numbers()))
    swapped = visit.page.evaluate(
        """() => {
          const div = document.createElement('div');
          div.textContent = 'Call 415-555-0100';
          window.ctgw.swap(div);  // detached: the observer never sees it
          return div.textContent;
        }"""
    )
    assert swapped == f"Call {tracking['dash']}"


def test_two_tabs_of_one_visitor_show_one_number(gateway: Gateway, context: Any) -> None:
    """A second tab of the same visitor reuses the session: one session, one number."""
    first = open_page(context, f"{gateway.url}/demo/")
    number = _us_number(first.numbers())
    second = open_page(context, f"{gateway.url}/demo/")
    assert _us_number(second.numbers()) == number
    assert second.text("#f-paren") == nanp(number)["paren"]
    assert second.session_id() == first.session_id()
    assert first.sessions_created() + second.sessions_created() == 1


def test_two_visitors_get_two_numbers(gateway: Gateway, browser: Any) -> None:
    """Two visitors (separate browser contexts) hold different tracking numbers."""
    one, two = [browser.new_context(user_agent=DESKTOP_UA) for _ in range(2)]
    try:
        a = _us_number(open_page(one, f"{gateway.url}/demo/").numbers())
        b = _us_number(open_page(two, f"{gateway.url}/demo/").numbers())
    finally:
        one.close()
        two.close()
    assert a != b


def test_demo_pages_run_under_strict_csp(gateway: Gateway, context: Any) -> None:
    """The demo is served with script-src 'self' and swapping triggers no CSP violation."""
    page = context.new_page()
    response = page.goto(f"{gateway.url}/demo/?ctgw=off")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.close()
    visit = open_page(context, f"{gateway.url}/demo/")
    visit.numbers()
    assert visit.page.evaluate("window.__ctgw.violations") == []
    assert visit.console == []


def _admin_session(gateway: Gateway, key: str, session_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{gateway.url}/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        stored: dict[str, Any] = json.load(answer)
    return stored


def test_ad_click_visit_is_stored_with_its_gclid(gateway: Gateway, context: Any) -> None:
    """Arriving by a link with UTM and gclid opens a new session that stores them (admin API)."""
    key = gateway.ctgw("keys", "create", "browser-tests").strip()
    first = open_page(context, f"{gateway.url}/demo/")
    first.numbers()
    untagged = first.session_id()
    with first.page.expect_navigation():
        first.page.click("#link-gclid")
    first.numbers()
    clicked = first.session_id()
    assert clicked != untagged
    stored = _admin_session(gateway, key, clicked)
    assert stored["gclid"] == "demo-gclid-123"
    assert stored["utm_source"] == "google"
    assert stored["utm_campaign"] == "spring-sale"
    assert "gclid=demo-gclid-123" in stored["landing_page"] + stored["url"]
    assert stored["referrer"] == f"{gateway.url}/demo/"
    assert _admin_session(gateway, key, untagged)["gclid"] in (None, "")


def test_pages_without_tags_keep_the_ad_click_session(gateway: Gateway, context: Any) -> None:
    """After an ad landing, moving on to an untagged page keeps the session and its number."""
    landing = open_page(
        context, f"{gateway.url}/demo/?utm_source=google&utm_medium=cpc&gclid=keep-me"
    )
    number = _us_number(landing.numbers())
    inner = open_page(context, f"{gateway.url}/demo/uk.html")
    inner.numbers()
    again = open_page(context, f"{gateway.url}/demo/")
    assert _us_number(again.numbers()) == number
    assert again.sessions_created() == 0
