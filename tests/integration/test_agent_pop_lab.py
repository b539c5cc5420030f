"""What the agent console's pop draws, and how the page lives, with real parts: Asterisk 22, the
agent's baresip phone (PJSIP/agent1), headless Chromium on /staff/agent.

- The pop of a returning caller draws the whole visit (source, campaign, keyword, landing page,
  pages seen) and the lead as it stands (status, tags, open tasks, history); the contact's first
  and last touch through the API are its first and its latest call's visits.
- A page whose event stream is cut says so, reconnects by itself (no reload) telling the last
  event id it saw, and pops the next call.
- A ring while the page is reconnecting is shown once it is back (the replay), and a
  reconnection refused once with an HTTP error (a proxy's 503) does not end the page: it comes
  back by itself after a wait.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB, SCREEN_POPS
from gateway.store.database import Write
from gateway.store.keys import create_key
from tests.api.conftest import open_session
from tests.integration.conftest import new_call_id
from tests.integration.test_agent_crm_lab import ended_call, lead, tasks, unanswered_call, until
from tests.integration.test_screen_pop import (  # noqa: F401 - fixtures
    chromium,
    console_page,
    dial_begin,
    gateway,
)
from tests.lab.ami import TestAmi

pytestmark = [pytest.mark.asterisk, pytest.mark.browser, pytest.mark.timeout(120)]

SITE = "https://www.demo-plumbing.example"


async def _text(pop: Any, css: str) -> str:
    node = await pop.query_selector(css)
    return " ".join((await node.text_content()).split()) if node is not None else ""


async def test_the_pop_draws_the_whole_visit_and_the_lead_as_it_stands(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    ami: TestAmi,
    agent_phone: Any,
    chromium: Any,  # noqa: F811
) -> None:
    caller = "+12025550166"
    db = gateway.app[DB]
    auth = {"Authorization": f"Bearer {await create_key(db, 'h4', datetime.now(UTC))}"}

    # A first, missed call (the no-answer line: static source "flyer") makes the lead and a task.
    missed = await unanswered_call(ami, caller)
    await until(lambda: ended_call(db, missed))
    found = await until(lambda: lead(db, caller))
    contact_id = found["contact_id"]
    await until(lambda: tasks(db, contact_id))
    # A person qualifies the lead and tags it through the API: the pop must show it as it stands.
    url = f"/v1/contacts/{contact_id}"
    edit = {"site": "demo", "status": "qualified", "tags": ["vip"]}
    assert (await gateway.patch(url, json=edit, headers=auth)).status == 200

    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    landing = f"{SITE}/taps?utm_source=google&utm_campaign=spring&utm_term=leaky+tap"
    visit = await (
        await open_session(gateway, url=landing, referrer="https://www.google.com/")
    ).json()
    call = new_call_id()
    await ami.originate(visit["numbers"][0]["number"], "test-inbound", f"<{caller}>", call, 3)
    await dial_begin(ami, call, "PJSIP/agent1-")
    pop = await page.wait_for_selector(f'article.pop[data-linkedid="{call}"]', timeout=5000)

    assert (await _text(pop, ".source")).startswith("google")
    assert await _text(pop, ".campaign") == "spring"
    assert await _text(pop, ".keyword") == "leaky tap"
    assert await _text(pop, ".landing-page") == f"{SITE}/taps"
    assert landing in await _text(pop, ".pages-seen")
    assert await _text(pop, ".referrer") == "https://www.google.com/"
    assert await _text(pop, ".contact-status") == "qualified"
    assert await _text(pop, ".contact-tags") == "vip"
    assert await _text(pop, ".contact-calls") == "2"
    assert "call back" in await _text(pop, ".contact-tasks")
    history = await _text(pop, ".contact-history")
    assert "status: new → qualified" in history and "task" in history, history

    # The answered call closes the task; a qualified lead is not moved back to contacted.
    answered = await until(lambda: ended_call(db, call))
    assert answered["state"] == "answered"

    async def closed() -> bool:
        return all(t["closed_at"] for t in await tasks(db, contact_id))

    await until(closed)
    assert (await lead(db, caller))["status"] == "qualified"

    # First and last touch: the missed call's static line, then the visit of the answered call.
    body = await (await gateway.get(f"{url}?site=demo", headers=auth)).json()
    (shown,) = body["sites"]
    assert shown["first_touch"]["source"] == "flyer", shown["first_touch"]
    assert shown["last_touch"]["source"] == "google", shown["last_touch"]
    assert shown["last_touch"]["campaign"] == "spring"
    assert len(shown["calls"]) == 2
    assert page.problems == []
    await page.context.close()


async def _watch_states(page: Any) -> None:
    """Keep every data-state the console's status line takes, in window.__states."""
    await page.evaluate(
        """() => {
            window.__states = [];
            const line = document.getElementById('console-status');
            new MutationObserver(() => window.__states.push(line.dataset.state))
                .observe(line, {attributes: true, attributeFilter: ['data-state']});
        }"""
    )


def _cut_streams(client: TestClient) -> None:
    """Close every connection the gateway holds, as a proxy or a network blip would."""
    for handler in client.server.runner.server.connections:  # type: ignore[union-attr]
        if handler.transport is not None:
            handler.transport.close()


async def _ring(ami: TestAmi, caller: str, wait: int = 1) -> str:
    call = new_call_id()
    await ami.originate("+14155550150", "test-inbound", f"<{caller}>", call, wait)
    await dial_begin(ami, call, "PJSIP/agent1-")
    return call


async def test_a_cut_page_reconnects_by_itself_and_pops_the_next_call(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    ami: TestAmi,
    agent_phone: Any,
    chromium: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream is cut by the server's side after a first pop; the page says so, comes back
    by itself (no reload) telling the last event id it saw, and the next call pops on it."""
    from gateway.http import agent_console

    asked: list[str] = []
    real_after_seq = agent_console._after_seq

    def after_seq(request: Any) -> int:
        asked.append(request.headers.get("Last-Event-ID", ""))
        return real_after_seq(request)

    monkeypatch.setattr(agent_console, "_after_seq", after_seq)
    hub = gateway.app[SCREEN_POPS]
    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    first = await _ring(ami, "+12025550154")
    await page.wait_for_selector(f'article.pop[data-linkedid="{first}"]', timeout=5000)
    await until(lambda: ended_call(gateway.app[DB], first))
    await _watch_states(page)

    _cut_streams(gateway)
    # "live" again only after the page noticed the cut: the states it took are kept in order.
    await page.wait_for_function("() => window.__states.includes('live')", timeout=15000)
    states = await page.evaluate("() => window.__states")
    assert states[:1] == ["connecting"] and states[-1] == "live", states
    assert len(asked) == 2 and asked[0] == "" and asked[1].isdigit(), asked
    assert hub.subscriptions == 1

    second = await _ring(ami, "+12025550155")
    pop = await page.wait_for_selector(f'article.pop[data-linkedid="{second}"]', timeout=5000)
    assert (await _text(pop, ".caller")).startswith("+12025550155")
    await until(lambda: ended_call(gateway.app[DB], second))
    # The cut itself is logged by Chromium (net::ERR_INCOMPLETE_CHUNKED_ENCODING); nothing else.
    assert [p for p in page.problems if not p.startswith("Failed to load resource: net::")] == []
    await page.context.close()


async def test_a_ring_during_a_reconnection_is_shown_once_the_page_is_back(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    ami: TestAmi,
    agent_phone: Any,
    chromium: Any,  # noqa: F811
) -> None:
    """The browser's reconnection is held back until the call has rung, so the pop can only
    come from the replay of recent pops the (re)connecting page is given."""
    hub = gateway.app[SCREEN_POPS]
    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    released = asyncio.Event()
    held: list[str] = []

    async def hold(route: Any) -> None:
        held.append(route.request.url)
        await released.wait()
        await route.continue_()

    await page.route("**/staff/agent/events", hold)
    _cut_streams(gateway)
    async with asyncio.timeout(10):
        while hub.subscriptions or not held:
            await asyncio.sleep(0.05)
    call = await _ring(ami, "+12025550156", wait=3)
    await asyncio.sleep(0.5)
    assert hub.subscriptions == 0
    released.set()
    try:
        await page.wait_for_selector(f'article.pop[data-linkedid="{call}"]', timeout=5000)
    finally:
        await until(lambda: ended_call(gateway.app[DB], call))
        await page.unroute("**/staff/agent/events")
        await page.context.close()


async def test_a_page_refused_once_while_reconnecting_comes_back_by_itself(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    chromium: Any,  # noqa: F811
) -> None:
    """A proxy's 503 to the browser's own reconnection: the page waits and opens a new stream
    by itself (no reload), and is live again."""
    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    await _watch_states(page)
    asked = 0

    async def refuse_once(route: Any) -> None:
        nonlocal asked
        asked += 1
        if asked == 1:
            await route.fulfill(status=503, body="restarting")
        else:
            await route.continue_()

    await page.route("**/staff/agent/events", refuse_once)
    _cut_streams(gateway)
    try:
        async with asyncio.timeout(20):
            while asked < 2 or "live" not in (await page.evaluate("() => window.__states"))[1:]:
                await asyncio.sleep(0.2)
    finally:
        await page.unroute("**/staff/agent/events")
        await page.context.close()


async def test_a_page_whose_session_ended_says_so_and_stops_trying(
    gateway: TestClient,  # noqa: F811 - the fixture imported above
    chromium: Any,  # noqa: F811
) -> None:
    """Logged out while the stream is cut (the reconnection is sent to the login page): the
    page checks once, says it is logged out, and asks for no stream any more."""
    page = await console_page(chromium, gateway, "ann@example.com", "PJSIP/agent1")
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/agent/events" in r.url else None)
    await gateway.app[DB].write([Write("DELETE FROM staff_sessions", ())])
    _cut_streams(gateway)
    try:
        await page.wait_for_selector('#console-status[data-state="down"]', timeout=20000)
        assert "Logged out" in await page.text_content("#console-status")
        asked = len(streams)
        await asyncio.sleep(3)  # longer than the first wait: no new stream is opened
        assert len(streams) == asked
    finally:
        await page.context.close()
