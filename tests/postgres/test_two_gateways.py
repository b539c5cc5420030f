"""Two gateways on one PostgreSQL, in one test process: the site is served by the one that
holds it, whichever gateway the page or the call reaches; when that one stops, the other
takes the site over with its leases, and calls on its numbers are still attributed."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.app import create_app
from gateway.appkeys import AGI, DESK
from gateway.config import parse_config
from gateway.http.lease_owner import answer_frame
from gateway.http.session_request import SessionRequest
from gateway.leasing.desk import SessionDesk
from gateway.leasing.restore import let_go_site, take_site
from gateway.leasing.site_book import SiteBook
from gateway.metrics import Metrics
from gateway.store.pg.database import PgDatabase
from gateway.store.sites import seed_sites
from gateway.store.store_types import StoreError
from numberpool.clock import SystemClock
from numberpool.visit import visit_from_url
from tests.api.conftest import BROWSER, ORIGIN, POOL
from tests.api.test_call_routing import call_env, routed
from tests.daemon.test_restart import free_port, start_daemon, stop_daemon
from tests.fake_ami import FakeAmi, load_transcript
from tests.unit.test_agi import fake_asterisk

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

SECRET = "two-gateways-secret-0123456789"
URL = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=spring&gclid=G2"

Node = Callable[..., Awaitable[TestClient]]


def site(key: str, target: str, numbers: list[str]) -> dict[str, Any]:
    return {
        "key": key,
        "allowed_origins": [ORIGIN],
        "destination": "PJSIP/agent1",
        "pools": [{"target": target, "numbers": numbers}],
        "limits": {"client_per_minute": 0, "client_live_numbers": 0},
    }


# Two more sites for the tests that need each gateway to hold one (4 units: 2 each).
MORE_SITES = [
    site(f"more{i}", f"+1415555{i}200", [f"+1415555{i}2{n:02d}" for n in range(1, 4)])
    for i in (1, 2)
]


def node_config(url: str, more_sites: bool, ami: dict[str, Any] | None = None) -> dict[str, Any]:
    sites = [site("demo", "+14155550100", POOL), *(MORE_SITES if more_sites else [])]
    return {
        "store": {"url": url},
        "agi": {"port": 0},
        "ami": ami or {},
        "cluster": {"peer_host": "127.0.0.1", "peer_port": free_port()},
        "sites": sites,
    }


@pytest.fixture
async def start_node(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[], Awaitable[TestClient]]]:
    """Starts a gateway of the cluster on the test's database; stops the ones left at the end."""
    monkeypatch.setenv("CTGW_CLUSTER_SECRET", SECRET)
    started: list[TestClient] = []

    async def start(*, more_sites: bool = False, ami: dict[str, Any] | None = None) -> TestClient:
        raw = node_config(pg_db, more_sites, ami)
        config = parse_config(raw, source="test", environ=dict(os.environ))
        client = TestClient(TestServer(create_app(config)))
        try:
            await client.start_server()
        except BaseException:
            await client.close()
            raise
        started.append(client)
        return client

    try:
        yield start
    finally:
        for client in reversed(started):
            await client.close()


def serves(node: TestClient, site: str = "demo") -> bool:
    return site in node.app[DESK].book.sites


async def until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


async def rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def number_of(session: Any) -> str:
    return str(session.leases[0].number) if session.leases else ""


async def settled(url: str, units: int, nodes: int) -> None:
    """Until every unit (the sites and `leader`) is held and each node holds its share."""
    share = -(-units // nodes)
    async with asyncio.timeout(20):
        while True:
            owners = await rows(url, "SELECT node_id FROM cluster.owners")
            counts = Counter(r["node_id"] for r in owners)
            if len(owners) == units and len(counts) == nodes and max(counts.values()) <= share:
                return
            await asyncio.sleep(0.1)


async def holder_and_other(start_node: Node, url: str) -> tuple[TestClient, TestClient]:
    """Two gateways, settled: the one serving the site `demo`, and the other."""
    a = await start_node()
    b = await start_node()
    await settled(url, 2, 2)
    await until(lambda: serves(a) != serves(b))
    return (a, b) if serves(a) else (b, a)


async def call_on(node: TestClient, number: str, linkedid: str) -> dict[str, str]:
    return routed(await fake_asterisk(node.app[AGI], call_env(number, linkedid=linkedid)))


async def test_a_site_is_served_by_its_holder_through_either_gateway(
    start_node: Node, pg_db: str
) -> None:
    """A session opened through B for A's site is leased by A and stored once; its heartbeat
    through B renews it in A; an AMP number through B is leased by A; a call routed through B
    is attributed by A to that session; with A stopped, B takes the site, restores the lease,
    and attributes the next call."""
    a, b = await holder_and_other(start_node, pg_db)

    opened = await b.post(
        "/v1/sessions", json={"site": "demo", "url": URL}, headers={**BROWSER, "Origin": ORIGIN}
    )
    assert opened.status == 201, await opened.text()
    assert opened.headers["Access-Control-Allow-Origin"] == ORIGIN
    body = await opened.json()
    session_id, number = body["session_id"], body["numbers"][0]["number"]
    assert number in POOL
    assert a.app[DESK].live.get(session_id) is not None  # leased by A ...
    assert b.app[DESK].live.get(session_id) is None  # ... not by B
    stored = await rows(pg_db, "SELECT site FROM sessions WHERE session_id = $1", session_id)
    assert [r["site"] for r in stored] == ["demo"]
    leases = await rows(pg_db, "SELECT number, until FROM leases WHERE session_id = $1", session_id)
    assert [r["number"] for r in leases] == [number]

    await asyncio.sleep(0.01)
    beat = await b.post(f"/v1/sessions/{session_id}/heartbeat", headers={"Origin": ORIGIN})
    assert beat.status == 200, await beat.text()
    assert beat.headers["Access-Control-Allow-Origin"] == ORIGIN
    renewed = await rows(pg_db, "SELECT until FROM leases WHERE session_id = $1", session_id)
    assert renewed[0]["until"] > leases[0]["until"]

    amp_query = {"url": URL, "__amp_source_origin": ORIGIN}
    amp = await b.get("/v1/amp/demo", params=amp_query, headers=BROWSER)
    assert amp.status == 200, await amp.text()
    amp_number = (await amp.json())["phoneNumber"]
    assert amp_number in POOL and amp_number != number
    assert amp.headers["AMP-Access-Control-Allow-Source-Origin"] == ORIGIN
    assert any(number_of(s) == amp_number for s in a.app[DESK].live.by_id.values())

    variables = await call_on(b, number, "two.1")
    assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
    assert variables["CTGW_SOURCE"] == "google spring"
    (call,) = await rows(
        pg_db, "SELECT session_id, attribution_kind FROM calls WHERE call_id = $1",
        variables["CTGW_CALL_ID"],
    )  # fmt: skip
    assert (call["session_id"], call["attribution_kind"]) == (session_id, "active")

    await a.close()
    await until(lambda: serves(b))
    live = b.app[DESK].live.get(session_id)
    assert live is not None and [lease.number for lease in live.leases] == [number]
    variables = await call_on(b, number, "two.2")
    (call,) = await rows(
        pg_db, "SELECT session_id, attribution_kind FROM calls WHERE call_id = $1",
        variables["CTGW_CALL_ID"],
    )  # fmt: skip
    assert (call["session_id"], call["attribution_kind"]) == (session_id, "active")
    beat = await b.post(f"/v1/sessions/{session_id}/heartbeat")
    assert beat.status == 200, await beat.text()


async def test_a_front_frame_is_split_between_here_and_the_holder(
    start_node: Node, pg_db: str
) -> None:
    """The lease channel's frames (`[http] workers`) reach the holder too: a frame answered by
    the gateway that does not hold the site comes back whole, in order, leased by the holder;
    an unknown site is 404 there as it is anywhere."""
    a, b = await holder_and_other(start_node, pg_db)
    requests = [
        SessionRequest("demo", URL, "", f"visitor{i:04d}", "UA", None, "10.0.0.9") for i in range(3)
    ]
    requests.insert(1, SessionRequest("nosuch", URL, "", "", "UA", None, "10.0.0.9"))
    replies = await answer_frame(b.app[DESK], requests)
    assert [r.status for r in replies] == [201, 404, 201, 201]
    assert '"unknown_site"' in replies[1].body
    live = a.app[DESK].live
    assert sum(1 for s in live.by_id.values() if s.visitor_id.startswith("visitor")) == 3


async def test_the_taker_gets_what_the_holder_committed_before_it_let_go(
    start_node: Node, pg_db: str
) -> None:
    """Sessions opened on A right before it stops are all restored by B, none leased twice."""
    a, b = await holder_and_other(start_node, pg_db)
    answers = await asyncio.gather(
        *(
            a.post("/v1/sessions", json={"site": "demo", "url": URL}, headers=BROWSER)
            for _ in range(5)
        )
    )
    bodies = [await r.json() for r in answers]
    numbers = [body["numbers"][0]["number"] for body in bodies]
    assert len(set(numbers)) == 5
    await a.close()
    await until(lambda: serves(b))
    for body in bodies:
        assert b.app[DESK].live.get(body["session_id"]) is not None
    more = await b.post("/v1/sessions", json={"site": "demo", "url": URL}, headers=BROWSER)
    assert (await more.json())["numbers"][0]["number"] not in numbers


async def test_one_gateway_sends_webhooks_and_the_other_takes_over(
    start_node: Node, pg_db: str
) -> None:
    """The webhook sender runs on the holder of the unit `leader` only; when it stops, the
    other gateway takes the unit and starts it."""
    leader_sql = "SELECT node_id FROM cluster.owners WHERE unit = 'leader'"
    with capture_logs() as logs:
        holder, other = await holder_and_other(start_node, pg_db)
        await asyncio.sleep(1.5)  # three more ticks: nothing moves once settled
        assert sum(e["event"] == "webhooks_sending" for e in logs) == 1
        (first,) = await rows(pg_db, leader_sql)
        await other.close()  # the other gateway holds the unit `leader`
        await until(lambda: sum(e["event"] == "webhooks_sending" for e in logs) == 2)
        assert serves(holder)
    (second,) = await rows(pg_db, leader_sql)
    (only,) = await rows(pg_db, "SELECT node_id FROM cluster.nodes")
    assert second["node_id"] == only["node_id"] != first["node_id"]
    events = [e["event"] for e in logs]
    assert events.count("leader_duties_started") == 2
    assert events.count("leader_duties_stopped") == 1


async def test_a_gateway_with_http_fronts_forwards_through_its_lease_channel(
    start_node: Node, pg_db: str, tmp_path: Path
) -> None:
    """`ctgw serve` with `[http] workers = 1` as the second gateway: a session its front reads
    goes over the lease channel to its gateway process and on to the holder; the heartbeat
    too."""
    a = await start_node(more_sites=True)
    await until(lambda: len(a.app[DESK].book.sites) == 3)
    port = free_port()
    config = tmp_path / "b.toml"
    config.write_text(
        f"""
[http]
port = {port}
workers = 1
[store]
url = "{pg_db}"
[agi]
enabled = false
[cluster]
peer_port = {free_port()}
[[sites]]
key = "demo"
allowed_origins = ["{ORIGIN}"]
destination = "PJSIP/agent1"
[[sites.pools]]
target = "+14155550100"
numbers = [{", ".join(f'"{n}"' for n in POOL)}]
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
""",
        encoding="utf-8",
    )
    proc = await start_daemon(config, port)
    try:
        await settled(pg_db, 4, 2)
        (held_by_a, *_) = sorted(a.app[DESK].book.sites)
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            body = {"site": held_by_a, "url": URL}
            async with http.post(f"http://127.0.0.1:{port}/v1/sessions", json=body) as r:
                assert r.status == 201, await r.text()
                session_id = (await r.json())["session_id"]
            assert a.app[DESK].live.get(session_id) is not None
            beat = f"http://127.0.0.1:{port}/v1/sessions/{session_id}/heartbeat"
            async with http.post(beat) as r:
                assert r.status == 200, await r.text()
    finally:
        code, log = stop_daemon(proc)
    assert code == 0, log[-2000:]
    assert SECRET not in log


async def test_a_lone_gateway_and_a_cluster_never_share_a_database(
    start_node: Node, pg_db: str
) -> None:
    """A gateway without [cluster] refuses to start beside a cluster's node (it would lease
    the same numbers), and a node refuses to start beside a lone gateway; each says why."""
    node = await start_node()
    lone = parse_config({**node_config(pg_db, False), "cluster": {}}, source="test")
    refused = TestClient(TestServer(create_app(lone)))
    with pytest.raises(StoreError, match="another gateway already serves"):
        await refused.start_server()
    await refused.close()
    await node.close()

    alone = TestClient(TestServer(create_app(lone)))
    await alone.start_server()
    try:
        with pytest.raises(StoreError, match="a gateway without \\[cluster\\] serves"):
            await start_node()
    finally:
        await alone.close()


async def test_letting_go_commits_the_queued_sessions_first(pg_db: str) -> None:
    """Letting go of a site decides and commits its queued sessions before it returns (the
    next holder reads them), keeps none of them in memory, and taking the site back restores
    them with their leases."""
    config = parse_config({**node_config(pg_db, False), "cluster": {}}, source="test")
    db = await PgDatabase.open(pg_db)
    try:
        clock = SystemClock()
        await seed_sites(db, config, clock.now())
        book = SiteBook(db, clock)
        book.serve_held()
        await book.reload_if_changed()
        desk = SessionDesk(db, book, clock, Metrics())
        desk.elsewhere = FakeElsewhere()
        await take_site(desk, "demo")
        visit = visit_from_url(URL, "", BROWSER["User-Agent"])
        jobs = [desk.begin("demo", visit, None, client="10.0.0.1") for _ in range(3)]
        assert not any(job.done.done() for job in jobs)
        await let_go_site(desk, "demo")
        assert all(job.done.done() and job.done.exception() is None for job in jobs)
        ids = [desk.finish(job).session.session_id for job in jobs]
        assert "demo" not in book.sites and not desk.live.by_id
        stored = await rows(pg_db, "SELECT session_id FROM sessions")
        assert sorted(r["session_id"] for r in stored) == sorted(ids)

        await take_site(desk, "demo")
        assert sorted(desk.live.by_id) == sorted(ids)
        assert all(len(desk.live.by_id[i].leases) == 1 for i in ids)
    finally:
        await db.close()


class FakeElsewhere:
    """The cluster's side of the desk, unused here but present (the desk is a node's)."""

    def here(self, site: str) -> bool:
        return True


async def test_both_follow_ami_and_the_leader_alone_writes_it(start_node: Node, pg_db: str) -> None:
    """Both gateways follow the same Asterisk; a routed call's AMI updates complete its record
    once, with one call.completed event (not one per gateway)."""
    fake = await FakeAmi().start()
    try:
        ami = {"enabled": True, "port": fake.port, "secret": fake.secret}
        a = await start_node(ami=ami)
        b = await start_node(ami=ami)
        await settled(pg_db, 2, 2)
        await until(lambda: fake.logins == 2)
        # Events are queued only for an endpoint that asks for them (loopback: never sent).
        await rows(
            pg_db,
            "INSERT INTO webhook_endpoints (endpoint_id, site, url, events, secret, origin,"
            " created_at) VALUES ('wh_t', 'demo', 'http://127.0.0.1:9/', $1, 's', 'api', $2)",
            '["call.updated", "call.completed"]',
            "2026-01-01T00:00:00.000000Z",
        )
        linkedid = "1795591690.0"  # the transcript's first call, on +14155550101
        variables = await call_on(b, "+14155550101", linkedid)
        assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
        for block in load_transcript("answered-then-unanswered.txt"):
            await fake.send(block)
        sql = "SELECT state, ended_at FROM calls WHERE linkedid = $1"
        async with asyncio.timeout(20):
            while not (found := await rows(pg_db, sql, linkedid)) or found[0]["ended_at"] is None:
                await asyncio.sleep(0.1)
        assert found[0]["state"] == "answered"
        await asyncio.sleep(0.5)  # the other gateway's follower had the same events
        events = await rows(
            pg_db, "SELECT topic FROM outbox WHERE payload LIKE $1 ORDER BY topic",
            f'%{variables["CTGW_CALL_ID"]}%',
        )  # fmt: skip
        topics = Counter(e["topic"] for e in events)  # no endpoint asks for call.started
        assert topics["call.completed"] == 1 and set(topics.values()) == {1}, topics
        del a
    finally:
        await fake.close()
