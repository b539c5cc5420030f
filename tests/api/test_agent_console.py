"""The agent console over HTTP: the page, the event stream with a pop from a (fake) AMI
DialBegin for a call the gateway routed, agents of other endpoints or sites getting nothing,
and a closed page ending its subscription."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import AGI, AMI, CLOCK, DB, SCREEN_POPS
from gateway.config import parse_config
from gateway.store.agents import set_endpoints
from gateway.store.database import Write
from gateway.store.staff import create_user, open_session
from tests.api.conftest import demo_config
from tests.api.conftest import open_session as open_visit
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.fake_ami import FakeAmi
from tests.unit.test_agi import fake_asterisk

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def fake_ami():
    fake = await FakeAmi().start()
    yield fake
    await fake.close()


@pytest.fixture
async def console(aiohttp_client, tmp_path: Path, clock: FakeClock, fake_ami: FakeAmi):
    """The gateway with AMI on (the fake) and two sites' worth of agents."""
    raw = demo_config(tmp_path)
    raw["ami"] = {"enabled": True, "port": fake_ami.port, "secret": fake_ami.secret}
    other = json.loads(json.dumps(raw["sites"][0]))
    other.update(key="other", allowed_origins=["https://other.example"])
    other["pools"][0].update(target="+14155550200", numbers=["+14155550201"], overflow="")
    other["static_numbers"] = []
    raw["sites"].append(other)
    client = await aiohttp_client(create_app(parse_config(raw, source="test"), clock=clock))
    async with asyncio.timeout(10):
        while not (AMI in client.app and client.app[AMI].connected):
            await asyncio.sleep(0.02)
    return client


async def agent(client: TestClient, email: str, sites: list[str], *endpoints: str) -> str:
    """A user with `endpoints`; returns the Cookie header of a session of theirs."""
    db = client.app[DB]
    user = await create_user(
        db,
        email=email,
        name=email,
        role="agent",
        sites=sites,
        password=PASSWORD,
        at=client.app[CLOCK].now(),
    )
    await set_endpoints(db, user.user_id, endpoints)
    token, _ = await open_session(db, user, client.app[CLOCK].now())
    return f"ctgw_staff={token}"


async def next_event(resp: ClientResponse, timeout: float) -> dict[str, Any]:
    """The next event of a stream (comments skipped) as its fields."""
    fields: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value


def dial_begin(linkedid: str, dest: str) -> str:
    return (
        "Event: DialBegin\nPrivilege: call,all\n"
        "Channel: PJSIP/trunk-00000001\nCallerIDNum: +12025550100\nCallerIDName: Ada\n"
        f"Context: ctgw-inbound\nUniqueid: {linkedid}\nLinkedid: {linkedid}\n"
        "ChanVariable: CTGW_CALL_ID=\n"
        f"DestChannel: {dest}\nDestContext: from-internal\nDestUniqueid: {linkedid}1\n"
        f"DestLinkedid: {linkedid}\nDialString: agent1"
    )


async def test_the_page_loads_its_script_and_names_the_agents_phones(console) -> None:
    cookie = await agent(console, "ann@example.com", ["demo"], "PJSIP/agent1")
    page = await console.get("/staff/agent", headers={"Cookie": cookie})
    text = await page.text()
    assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script src="/staff/static/agent.js" defer></script>' in text
    assert "<code>PJSIP/agent1</code>" in text and "<script>" not in text
    script = await console.get("/staff/static/agent.js")
    assert script.status == 200 and "EventSource" in await script.text()
    anonymous = await console.get("/staff/agent/events", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/staff/login")


async def test_a_dialbegin_pops_the_call_on_its_agents_page_only(console, fake_ami) -> None:
    """A routed call rings PJSIP/agent1: agent1's stream gets the caller, campaign and visit
    within a second; the agent of PJSIP/agent2 and agent1's colleague on another site get
    nothing; closing the page ends its subscription."""
    ann = await agent(console, "ann@example.com", ["demo"], "PJSIP/agent1")
    bob = await agent(console, "bob@example.com", ["demo"], "PJSIP/agent2")
    eve = await agent(console, "eve@example.com", ["other"], "PJSIP/agent1")
    streams = {}
    for name, cookie in (("ann", ann), ("bob", bob), ("eve", eve)):
        resp = await console.get("/staff/agent/events", headers={"Cookie": cookie})
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        hello = await next_event(resp, 2)
        assert hello["retry"] == "2000" and hello["event"] == "hello"
        streams[name] = resp
    hub = console.app[SCREEN_POPS]
    assert hub.subscriptions == 3

    url = "https://www.demo-plumbing.example/p?utm_source=google&utm_campaign=spring&utm_term=tap"
    visit = await (await open_visit(console, url=url)).json()
    number = visit["numbers"][0]["number"]
    answer = routed(await fake_asterisk(console.app[AGI], call_env(number, linkedid="77.1")))
    assert answer["CTGW_ROUTE"] == "PJSIP/agent1"

    await fake_ami.send(dial_begin("77.1", "PJSIP/agent1-0000002a"))
    # The 1 s the issue asks for is held with real parts (tests/integration/test_screen_pop.py:
    # Asterisk, baresip, Chromium); here, on a fake AMI, what counts is whose page gets the
    # pop: a 1 s bound failed once in a loaded full run with nothing wrong.
    event = await next_event(streams["ann"], 5)
    assert event["event"] == "pop" and event["id"].isdigit()
    pop = json.loads(event["data"])
    assert pop["call_id"] == answer["CTGW_CALL_ID"] and pop["endpoint"] == "PJSIP/agent1"
    assert (pop["caller"], pop["caller_name"], pop["site"]) == ("+12025550100", "Ada", "demo")
    assert pop["visit"]["campaign"] == "spring" and pop["visit"]["keyword"] == "tap"
    assert pop["visit"]["source"] == "google" and url in pop["visit"]["pages"]
    assert pop["contact"]["calls"] == 1 and pop["first_time"] is True
    for other in ("bob", "eve"):
        with pytest.raises(TimeoutError):
            await next_event(streams[other], 0.3)

    metrics = await (await console.get("/metrics")).text()
    assert "ctgw_screen_pops_published 1" in metrics and "ctgw_agent_pages 3" in metrics
    streams["ann"].close()
    closed = time.monotonic()
    async with asyncio.timeout(3):
        while hub.subscriptions != 2:
            await asyncio.sleep(0.02)
    gone_after = time.monotonic() - closed
    print(f"closed page unsubscribed after {gone_after * 1000:.0f} ms")
    assert gone_after < 1.0
    for resp in streams.values():
        resp.close()


async def test_a_reconnecting_page_gets_the_ring_it_missed_once(console, fake_ami) -> None:
    ann = await agent(console, "ann@example.com", ["demo"], "PJSIP/agent1")
    first = await console.get("/staff/agent/events", headers={"Cookie": ann})
    await next_event(first, 2)
    await fake_ami.send(dial_begin("78.1", "PJSIP/agent1-0000002b"))
    seen = await next_event(first, 2)
    first.close()
    again = await console.get("/staff/agent/events", headers={"Cookie": ann, "Last-Event-ID": "0"})
    await next_event(again, 2)
    replayed = await next_event(again, 2)
    assert replayed["id"] == seen["id"] and json.loads(replayed["data"])["site"] is None
    later = await console.get(
        "/staff/agent/events", headers={"Cookie": ann, "Last-Event-ID": seen["id"]}
    )
    await next_event(later, 2)
    with pytest.raises(TimeoutError):
        await next_event(later, 0.3)
    # A page that opened a new EventSource itself (no header then) tells it as a parameter.
    fresh = await console.get(
        f"/staff/agent/events?last_event_id={seen['id']}", headers={"Cookie": ann}
    )
    await next_event(fresh, 2)
    with pytest.raises(TimeoutError):
        await next_event(fresh, 0.3)
    odd = await console.get("/staff/agent/events?last_event_id=%C2%B2", headers={"Cookie": ann})
    await next_event(odd, 2)
    assert (await next_event(odd, 2))["id"] == seen["id"]  # not a number: everything recent
    for resp in (again, later, fresh, odd):
        resp.close()


async def test_users_get_endpoints_from_the_admin_form(console) -> None:
    db = console.app[DB]
    admin = await create_user(
        db,
        email="root@example.com",
        name="",
        role="admin",
        sites=[],
        password=PASSWORD,
        at=console.app[CLOCK].now(),
    )
    token, session = await open_session(db, admin, console.app[CLOCK].now())
    headers = {"Cookie": f"ctgw_staff={token}"}
    form = {
        "csrf": session.csrf,
        "email": "cat@example.com",
        "role": "agent",
        "sites": "demo",
        "password": PASSWORD,
        "endpoints": "pjsip/agent3\nPJSIP/agent4",
    }
    made = await console.post("/staff/users", data=form, headers=headers, allow_redirects=False)
    assert made.status == 303
    listed = await (await console.get("/staff/users", headers=headers)).text()
    assert "PJSIP/agent3 PJSIP/agent4" in listed
    bad = await console.post(
        "/staff/users",
        data={**form, "email": "dan@example.com", "endpoints": "PJSIP/a,PJSIP/b"},
        headers=headers,
    )
    assert bad.status == 400 and "technology/resource" in await bad.text()
    assert await db.fetchone("SELECT 1 FROM staff_users WHERE email = 'dan@example.com'") is None


async def test_heartbeats_keep_the_stream_and_a_logout_ends_it(console, monkeypatch) -> None:
    """Comments keep proxies and the browser from closing an idle stream; once the session is
    gone (logged out elsewhere, expired) the stream says so and ends."""
    monkeypatch.setattr("gateway.http.agent_console.HEARTBEAT_SECONDS", 0.2)
    ann = await agent(console, "ann@example.com", ["demo"], "PJSIP/agent1")
    resp = await console.get("/staff/agent/events", headers={"Cookie": ann})
    await next_event(resp, 2)
    async with asyncio.timeout(3):
        assert (await resp.content.readline()) == b": heartbeat\n"
    await console.app[DB].write([Write("DELETE FROM staff_sessions", ())])
    bye = await next_event(resp, 3)
    assert bye["event"] == "bye"
    async with asyncio.timeout(3):
        assert await resp.content.read() == b""
    assert console.app[SCREEN_POPS].subscriptions == 0


async def test_a_marketer_has_no_console(console) -> None:
    db = console.app[DB]
    mia = await create_user(
        db,
        email="mia@example.com",
        name="",
        role="marketer",
        sites=["demo"],
        password=PASSWORD,
        at=console.app[CLOCK].now(),
    )
    token, _ = await open_session(db, mia, console.app[CLOCK].now())
    for path in ("/staff/agent", "/staff/agent/events"):
        resp = await console.get(path, headers={"Cookie": f"ctgw_staff={token}"})
        assert resp.status == 403 and resp.content_type == "text/html"


async def test_the_pop_carries_the_leads_status_open_tasks_and_history(console, fake_ami) -> None:
    """The pop shows this site's lead as it stands (status, tags, open tasks, history)."""
    db = console.app[DB]
    ann = await agent(console, "ann@example.com", ["demo"], "PJSIP/agent1")
    stream = await console.get("/staff/agent/events", headers={"Cookie": ann})
    await next_event(stream, 2)
    visit = await (await open_visit(console)).json()
    env = call_env(visit["numbers"][0]["number"], caller="+12025550142", linkedid="79.1")
    routed(await fake_asterisk(console.app[AGI], env))
    call = await db.fetchone("SELECT call_id, contact_id FROM calls WHERE linkedid = '79.1'")
    contact = call["contact_id"]
    await db.write(
        [
            Write(
                "INSERT OR REPLACE INTO leads (site, contact_id, status, tags) VALUES (?, ?, ?, ?)",
                ("demo", contact, "contacted", '["vip"]'),
            ),
            Write(
                "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at)"
                " VALUES ('t1', 'demo', ?, ?, '2026-05-04T13:00:00Z', '2026-05-04T12:00:00Z')",
                (contact, call["call_id"]),
            ),
            Write(
                "INSERT INTO contact_history (site, contact_id, at, who, what, before, after)"
                " VALUES ('demo', ?, '2026-05-04T12:05Z', 'system', 'status', 'new', 'contacted')",
                (contact,),
            ),
        ]
    )
    await fake_ami.send(dial_begin("79.1", "PJSIP/agent1-0000002c"))
    card = json.loads((await next_event(stream, 1))["data"])["contact"]
    assert (card["status"], card["tags"], card["calls"]) == ("contacted", ["vip"], 1)
    assert [t["task_id"] for t in card["open_tasks"]] == ["t1"]
    assert card["history"][0]["after"] == "contacted"
    stream.close()
