"""Heartbeats follow the Page Visibility API in a Chromium whose tabs really hide."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.harness import Gateway
from tests.browser.pages import open_page

pytestmark = pytest.mark.browser


@pytest.fixture
def cdp_browser(playwright: Any, tmp_path: Path) -> Iterator[Any]:
    """Chromium started by hand and attached over CDP.

    Pages opened the usual Playwright way always report "visible" (focus emulation); attached
    this way, opening a second tab really hides the first and fires visibilitychange.
    """
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--remote-debugging-port=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            *CHROMIUM_ARGS,
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = ""
        deadline = time.monotonic() + 20
        assert proc.stderr is not None
        while not endpoint and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found.group(1) if found else ""
        assert endpoint, "chromium did not print its DevTools endpoint"
        browser = playwright.chromium.connect_over_cdp(endpoint, no_defaults=True)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


def _visibility(visit: Any) -> str:
    return str(visit.page.evaluate("document.visibilityState"))


def test_heartbeats_stop_while_the_tab_is_hidden(gateway: Gateway, cdp_browser: Any) -> None:
    """A visible tab beats every heartbeat_seconds (1 s here); a hidden one sends none."""
    context = cdp_browser.contexts[0]
    visit = open_page(context, f"{gateway.url}/demo/")
    visit.numbers()
    assert _visibility(visit) == "visible"
    visit.page.wait_for_timeout(3500)
    visible_beats = visit.count("/heartbeat")
    assert visible_beats >= 2

    other = context.new_page()
    other.goto("about:blank")
    visit.page.wait_for_function("() => document.visibilityState === 'hidden'", timeout=3000)
    hidden_from = visit.count("/heartbeat")
    other.wait_for_timeout(3500)
    assert visit.count("/heartbeat") == hidden_from

    visit.page.bring_to_front()
    visit.page.wait_for_function("() => document.visibilityState === 'visible'", timeout=3000)
    visit.page.wait_for_timeout(2500)
    assert visit.count("/heartbeat") >= hidden_from + 1
    assert visit.sessions_created() == 1
    assert visit.errors == []


def test_no_heartbeat_after_pagehide(gateway: Gateway, context: Any) -> None:
    """After a pagehide event the page sends no more heartbeats."""
    visit = open_page(context, f"{gateway.url}/demo/")
    visit.numbers()
    visit.page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide'))")
    before = visit.count("/heartbeat")
    visit.page.wait_for_timeout(2500)
    assert visit.count("/heartbeat") == before


@pytest.fixture
def brief_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose leases end two seconds after the last heartbeat (one a second): a shown
    page keeps its lease, a page hidden for longer than that loses it."""
    gw = Gateway(tmp_path, grace_seconds=2)
    try:
        yield gw.start()
    finally:
        gw.stop()


def _hide(context: Any, visit: Any) -> Any:
    other = context.new_page()
    other.goto("about:blank")
    visit.page.wait_for_function("() => document.visibilityState === 'hidden'", timeout=3000)
    return other


def _show(visit: Any) -> None:
    visit.page.bring_to_front()
    visit.page.wait_for_function("() => document.visibilityState === 'visible'", timeout=3000)


def test_lease_ended_while_hidden_renews_once_when_shown(
    brief_gateway: Gateway, cdp_browser: Any
) -> None:
    """A lease that ran out in a hidden tab is replaced by one new session when it is shown."""
    context = cdp_browser.contexts[0]
    visit = open_page(context, f"{brief_gateway.url}/demo/")
    visit.numbers()
    _hide(context, visit)
    visit.page.wait_for_timeout(4000)
    _show(visit)
    visit.page.wait_for_function("() => window.__ctgw.events.length > 1", timeout=3000)
    (second,) = visit.numbers()
    renewed = visit.page.evaluate("window.__ctgw.events[1].detail.session_id")
    assert renewed != visit.session_id()
    # The gateway may hand the same visitor its number back; either way the page shows it.
    shown = second["number"].removeprefix("+1")
    assert visit.text("#f-dash") == f"{shown[:3]}-{shown[3:6]}-{shown[6:]}"
    assert visit.href("#f-tel") == f"tel:{second['number']}"
    visit.page.wait_for_timeout(1500)
    assert visit.sessions_created() == 2
    assert visit.errors == []


def test_heartbeat_410_after_a_show_opens_one_new_session_at_once(
    brief_gateway: Gateway, cdp_browser: Any
) -> None:
    """A tab shown again that still holds its lease beats, gets a 410 and opens exactly one new
    session while it stays shown; no heartbeats go to the ended session after the 410."""
    context = cdp_browser.contexts[0]
    visit = open_page(context, f"{brief_gateway.url}/demo/")
    visit.numbers()
    # The browser's clock runs behind the gateway's: it still thinks the lease is alive.
    visit.page.evaluate(
        """() => {
          const key = 'ctgw_demo';
          const raw = document.cookie.match('(?:^|; )' + key + '=([^;]*)')[1];
          const s = JSON.parse(decodeURIComponent(raw));
          s.e = Date.now() + 3600e3;
          document.cookie = key + '=' + encodeURIComponent(JSON.stringify(s)) + ';path=/';
        }"""
    )
    _hide(context, visit)
    visit.page.wait_for_timeout(4000)
    old = visit.session_id()
    _show(visit)
    for _ in range(100):
        if visit.page.evaluate("window.__ctgw.events.length") > 1:
            break
        visit.page.wait_for_timeout(50)
    assert visit.page.evaluate("window.__ctgw.events.length") > 1, "no new session when shown"
    renewed = visit.page.evaluate("window.__ctgw.events[1].detail.session_id")
    assert renewed != old
    visit.page.wait_for_timeout(2500)
    assert visit.sessions_created() == 2, "one new session while the page stays shown"
    assert visit.count(f"/sessions/{old}/heartbeat") == 1, "heartbeats after the 410"
    assert visit.count(f"/sessions/{renewed}/heartbeat") >= 1
    assert visit.errors == []


def test_renewed_session_with_a_new_number_replaces_the_old_one_on_the_page(
    brief_gateway: Gateway, cdp_browser: Any
) -> None:
    """When the renewed session brings another number, the page's old tracking number changes."""
    context = cdp_browser.contexts[0]
    visit = open_page(context, f"{brief_gateway.url}/demo/")
    (first,) = visit.numbers()
    _hide(context, visit)
    # The visitor cookie is gone too (cleared, expired): the gateway sees a new visitor.
    visit.page.evaluate("() => { document.cookie = 'ctgw_vid=;path=/;max-age=0'; }")
    visit.page.wait_for_timeout(4000)
    _show(visit)
    visit.page.wait_for_function("() => window.__ctgw.events.length > 1", timeout=3000)
    (second,) = visit.numbers()
    assert second["number"] != first["number"]
    visit.page.wait_for_timeout(200)
    shown = second["number"].removeprefix("+1")
    assert visit.text("#f-dash") == f"{shown[:3]}-{shown[3:6]}-{shown[6:]}"
    assert visit.text("#f-paren") == f"({shown[:3]}) {shown[3:6]}-{shown[6:]}"
    assert visit.href("#f-tel") == f"tel:{second['number']}"


# Gives the stored session an id the gateway has never seen (a wiped store, a copied cookie).
_FORGE_SESSION = """() => {
  const m = document.cookie.match(/(?:^|; )ctgw_demo=([^;]*)/);
  const s = JSON.parse(decodeURIComponent(m[1]));
  s.i = '0'.repeat(32);
  s.b = Date.now();
  document.cookie = 'ctgw_demo=' + encodeURIComponent(JSON.stringify(s)) + ';path=/;max-age=86400';
}"""


def test_heartbeat_for_a_session_the_gateway_does_not_know_opens_a_new_one(
    gateway: Gateway, context: Any
) -> None:
    """A 404 on a heartbeat (the gateway has no such session) ends the session like a 410: no
    more heartbeats for it; a new session is opened at once and stored for the visitor."""
    first = open_page(context, f"{gateway.url}/demo/")
    first.numbers()
    first.page.evaluate(_FORGE_SESSION)
    first.page.close()
    visit = open_page(context, f"{gateway.url}/demo/")
    visit.numbers()
    assert visit.sessions_created() == 0, "the forged session was used from the cookie"
    forged = "0" * 32
    visit.page.wait_for_timeout(3500)  # three heartbeat intervals
    assert visit.count(f"/sessions/{forged}/heartbeat") == 1, "heartbeats went on after the 404"
    assert visit.sessions_created() == 1
    renewed = visit.page.evaluate("window.__ctgw.events[1].detail.session_id")
    assert renewed != forged
    assert f"%22i%22%3A%22{renewed}%22" in visit.page.evaluate("document.cookie")


def test_tab_hidden_while_waiting_for_another_tabs_session_still_gets_one(
    gateway: Gateway, cdp_browser: Any
) -> None:
    """A tab waiting for another tab's session, hidden meanwhile, asks for its own session when
    shown again if that other tab's request failed."""
    context = cdp_browser.contexts[0]
    held: list[Any] = []
    context.route("**/v1/sessions", lambda route: held.append(route))
    first = open_page(context, f"{gateway.url}/demo/")
    for _ in range(100):
        if held:
            break
        first.page.wait_for_timeout(20)
    second = open_page(context, f"{gateway.url}/demo/")
    other = _hide(context, second)
    held[0].abort()
    first.page.wait_for_timeout(300)
    _show(second)
    for _ in range(100):
        if len(held) > 1:
            break
        second.page.wait_for_timeout(20)
    assert len(held) == 2, "the shown tab did not ask for a session"
    held[1].continue_()
    assert second.numbers()
    other.close()
