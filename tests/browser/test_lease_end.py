"""A lease that ends while the page stays shown: the tab opens a new session at once."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP_UA
from tests.browser.harness import Gateway
from tests.browser.pages import Visit, nanp, open_page, uk

pytestmark = pytest.mark.browser

US_OVERFLOW = "+14155550199"
UK_OVERFLOW = "+442079460099"
SESSIONS = "/v1/sessions"

# Changes to the page's own content after it was swapped (the demo's status line, rewritten on
# every ctgw:numbers event, aside).
WATCH_CHANGES = """() => {
  window.__changes = [];
  new MutationObserver(function (list) {
    list.forEach(function (r) {
      var el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && !el.closest('#ctgw-status')) window.__changes.push(r.type + ' ' + el.nodeName);
    });
  }).observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true});
}"""


@pytest.fixture
def one_number(tmp_path: Path) -> Iterator[Gateway]:
    """One tracking number a site, a heartbeat a second, leases ending 2 s after the last one,
    no cooldown: an ended lease's number can go to the next visitor at once."""
    gw = Gateway(tmp_path, heartbeat_seconds=1, grace_seconds=2, pool_size=1, cooldown_seconds=0)
    try:
        yield gw.start()
    finally:
        gw.stop()


@dataclass
class Traffic:
    """Session requests and heartbeat answers seen by a context or a page, in order."""

    log: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def of(cls, source: Any) -> Traffic:
        traffic = cls()
        source.on("request", traffic._request)
        source.on("response", traffic._response)
        return traffic

    def _request(self, request: Any) -> None:
        if request.method == "POST" and request.url.endswith(SESSIONS):
            self.log.append((time.monotonic(), "open"))

    def _response(self, response: Any) -> None:
        if response.url.endswith("/heartbeat"):
            self.log.append((time.monotonic(), f"beat {response.status}"))

    def opened(self) -> list[float]:
        """When each session request was sent."""
        return [at for at, what in self.log if what == "open"]

    def after(self, status: int) -> list[str]:
        """What happened after the first heartbeat answered `status`."""
        kinds = [what for _, what in self.log]
        return kinds[kinds.index(f"beat {status}") + 1 :]


@dataclass
class HeartbeatGate:
    """Lets a page's heartbeats through, aborts them (a network that drops them) or holds them."""

    mode: str = "pass"
    blocked: int = 0
    held: list[Any] = field(default_factory=list)

    @classmethod
    def on(cls, page: Any) -> HeartbeatGate:
        gate = cls()
        page.route("**/heartbeat", gate._route)
        return gate

    def _route(self, route: Any) -> None:
        if self.mode == "block":
            self.blocked += 1
            route.abort()
        elif self.mode == "hold":
            self.held.append(route)
        else:
            route.continue_()

    def open(self) -> None:
        """Let heartbeats through again, the held ones too (unless the page gave up on them)."""
        from playwright.sync_api import Error

        self.mode = "pass"
        for route in self.held:
            try:
                route.continue_()
            except Error:
                pass  # swap.js aborted it after 2 s: its next heartbeat goes through
        self.held.clear()


def _until(page: Any, ready: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        page.wait_for_timeout(50)


def _sessions(visit: Visit) -> list[dict[str, Any]]:
    """The detail of every ctgw:numbers event the page has seen."""
    details: list[dict[str, Any]] = visit.page.evaluate(
        "window.__ctgw.events.map(function (e) { return e.detail; })"
    )
    return details


def _session_count(visit: Visit, count: int, what: str, seconds: float = 10) -> dict[str, Any]:
    _until(visit.page, lambda: len(_sessions(visit)) >= count, what, seconds)
    return _sessions(visit)[count - 1]


def _end_lease(visit: Visit, *gates: HeartbeatGate) -> None:
    """Drop the page's heartbeats until the gateway has ended its lease, the page still shown.

    Three lost in a row are three heartbeat intervals (3 s) after the last answered one, past
    the 2 s grace."""
    for gate in gates:
        gate.mode = "block"
    _until(visit.page, lambda: all(g.blocked >= 3 for g in gates), "three heartbeats dropped")


def _number(session: dict[str, Any]) -> str:
    (entry,) = session["numbers"]
    return str(entry["number"])


def _us_page_shows(visit: Visit, number: str) -> None:
    shown = nanp(number)
    for fmt in ("paren", "dash", "dot", "intl", "plain"):
        assert visit.text(f"#f-{fmt}") == shown[fmt], fmt
    assert visit.text("#f-split") == shown["paren"]
    assert visit.text("#f-split b") == shown["paren"][6:9]
    assert visit.text("#f-tel") == f"Call +1 {shown['paren']}"
    assert visit.href("#f-tel") == f"tel:{number}"
    assert visit.text("#f-sms") == f"Text {shown['dash']}"
    assert visit.href("#f-sms") == f"sms:{shown['plain']}"
    assert visit.text("#header-tel") == shown["paren"]
    assert visit.href("#header-tel") == f"tel:{number}"
    assert visit.text("#f-footer") == shown["dash"]
    assert visit.text("#popup-number") == shown["paren"]
    assert visit.href("#popup-tel") == f"tel:{shown['plain']}"
    assert "(415) 555-0100" in visit.text("#f-noswap")


def _uk_page_shows(visit: Visit, number: str) -> None:
    shown = uk(number)
    for fmt in ("national", "intl", "trunk", "idd"):
        assert visit.text(f"#uk-{fmt}") == shown[fmt], fmt
    assert visit.text("#uk-tel") == f"Call {shown['national']}"
    assert visit.href("#uk-tel") == f"tel:{number}"
    assert visit.text("#header-tel") == shown["national"]
    assert visit.href("#header-tel") == f"tel:{number}"


def _popup(visit: Visit) -> None:
    """Wait for the demo's popup (added 0.8 s after load), so it is swapped content too."""
    _until(visit.page, lambda: visit.page.query_selector("#popup") is not None, "the popup")


def test_lease_ended_while_shown_is_renewed_at_once_with_the_same_number(
    one_number: Gateway, context: Any
) -> None:
    """A lease that ends while the page stays shown is replaced by one new session right after
    the 410; the visitor gets their number back and nothing on the page changes."""
    traffic = Traffic.of(context)
    visit = open_page(context, f"{one_number.url}/demo/")
    gate = HeartbeatGate.on(visit.page)
    first = _session_count(visit, 1, "the first session")
    number = _number(first)
    _popup(visit)
    _us_page_shows(visit, number)
    visit.page.evaluate(WATCH_CHANGES)
    _end_lease(visit, gate)
    gate.open()
    second = _session_count(visit, 2, "a new session while the page stays shown", 5)
    assert second["session_id"] != first["session_id"]
    assert _number(second) == number, "the returning visitor gets the number back"
    assert traffic.after(410)[:1] == ["open"], "the next request after the 410 opens a session"
    # The new session is kept alive: its heartbeats are answered.
    _until(visit.page, lambda: "beat 200" in traffic.after(410), "a heartbeat of the new session")
    assert len(traffic.opened()) == 2
    assert visit.page.evaluate("window.__changes") == []
    _us_page_shows(visit, number)
    assert visit.errors == []


@pytest.mark.parametrize("path", ["/demo/", "/demo/uk.html"])
def test_number_given_to_someone_else_is_replaced_in_every_format(
    one_number: Gateway, browser: Any, path: str
) -> None:
    """When the ended lease's number went to another visitor, the new session's number takes
    its place everywhere the page shows it: every text format, split text, tel:/sms: links,
    later content and national formats."""
    us = path == "/demo/"
    shows, overflow = (_us_page_shows, US_OVERFLOW) if us else (_uk_page_shows, UK_OVERFLOW)
    mine, theirs = [browser.new_context(user_agent=DESKTOP_UA) for _ in range(2)]
    try:
        visit = open_page(mine, f"{one_number.url}{path}")
        gate = HeartbeatGate.on(visit.page)
        old = _number(_session_count(visit, 1, "the first session"))
        if us:
            _popup(visit)
        shows(visit, old)
        _end_lease(visit, gate)
        other = open_page(theirs, f"{one_number.url}{path}")
        assert _number(_session_count(other, 1, "the other visitor's session")) == old
        gate.open()
        new = _number(_session_count(visit, 2, "a new session while the page stays shown", 5))
        assert new == overflow, "the pool's one number is the other visitor's now"
        shows(visit, new)
        assert visit.page.evaluate("window.ctgw.numbers[0].number") == new
        assert visit.errors == []
    finally:
        mine.close()
        theirs.close()


def test_sessions_ending_at_once_are_renewed_further_and_further_apart(
    one_number: Gateway, context: Any
) -> None:
    """If every new session has ended by its first heartbeat, the tab waits 2, then 4 heartbeat
    intervals before the next: no session request every heartbeat."""
    gone = '{"error": {"code": "session_ended", "message": "the session has ended"}}'
    context.route(
        "**/heartbeat",
        lambda route: route.fulfill(status=410, content_type="application/json", body=gone),
    )
    traffic = Traffic.of(context)
    visit = open_page(context, f"{one_number.url}/demo/")
    last = _session_count(visit, 4, "four sessions", 30)
    at = traffic.opened()
    gaps = [b - a for a, b in itertools.pairwise(at)]
    # One heartbeat interval (1 s) to the 410, then no wait, 2 s, 4 s.
    assert gaps[1] > 2.5, gaps
    assert gaps[2] > 4.5, gaps
    _us_page_shows(visit, _number(last))
    assert visit.errors == []


def test_renewal_the_gateway_does_not_answer_is_retried_later(
    one_number: Gateway, context: Any
) -> None:
    """A new session that cannot be opened (the request fails) is asked for again 2 s later,
    then 4 s later, and the page shows the one it finally gets."""
    traffic = Traffic.of(context)
    visit = open_page(context, f"{one_number.url}/demo/")
    gate = HeartbeatGate.on(visit.page)
    number = _number(_session_count(visit, 1, "the first session"))
    refused: list[float] = []

    def refuse(route: Any) -> None:
        if len(refused) < 2:
            refused.append(time.monotonic())
            route.abort()
        else:
            route.continue_()

    visit.page.route(f"**{SESSIONS}", refuse)
    _end_lease(visit, gate)
    gate.open()
    second = _session_count(visit, 2, "a session after two refused requests", 15)
    at = traffic.opened()
    assert len(at) == 4, "first session, two refused, one answered"
    assert at[2] - at[1] > 1.5, "the second try came before the 2 s back-off"
    assert at[3] - at[2] > 3.5, "the third try came before the 4 s back-off"
    assert _number(second) == number
    _us_page_shows(visit, number)
    assert visit.errors == []


def test_gateway_restarted_with_an_empty_store_gets_a_new_session_at_once(
    tmp_path: Path, context: Any
) -> None:
    """After the gateway restarts without the session (a wiped store), the shown tab's next
    heartbeat gets a 404 and the tab opens a new session at once and shows its number."""
    gw = Gateway(tmp_path, heartbeat_seconds=1).start()
    try:
        traffic = Traffic.of(context)
        visit = open_page(context, f"{gw.url}/demo/")
        first = _session_count(visit, 1, "the first session")
        gw.stop()
        for path in tmp_path.glob("ctgw.db*"):
            path.unlink()
        gw.start()
        second = _session_count(visit, 2, "a new session after the restart", 10)
        assert second["session_id"] != first["session_id"]
        assert traffic.after(404)[:1] == ["open"]
        _us_page_shows(visit, _number(second))
        assert len(traffic.opened()) == 2
    finally:
        gw.stop()


def test_lease_end_seen_by_two_shown_tabs_opens_one_session(
    one_number: Gateway, context: Any
) -> None:
    """Two shown tabs of one visitor whose lease ends open one new session between them: the
    tab whose 410 comes second takes the session the first is opening, and both show it."""
    traffic = Traffic.of(context)
    url = f"{one_number.url}/demo/"
    first = open_page(context, url)
    first_gate = HeartbeatGate.on(first.page)
    old = _session_count(first, 1, "the first tab's session")
    second = open_page(context, url)
    second_gate = HeartbeatGate.on(second.page)
    assert _session_count(second, 1, "the second tab's session") == old
    second_beats = Traffic.of(second.page)
    _end_lease(first, first_gate, second_gate)
    second_gate.mode = "hold"
    first_gate.open()
    _until(first.page, lambda: len(traffic.opened()) == 2, "the first tab opening a session", 5)
    second_gate.open()
    renewed = _session_count(first, 2, "the first tab's new session")
    assert renewed["session_id"] != old["session_id"]
    assert _session_count(second, 2, "the second tab's new session") == renewed
    assert "beat 410" in [what for _, what in second_beats.log], "the second tab saw the end"
    _until(second.page, lambda: "beat 200" in second_beats.after(410), "the second tab beating")
    assert len(traffic.opened()) == 2, "each tab opened its own session"
