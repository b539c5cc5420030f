"""One request with text the store cannot take never silences the others of its group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import CONFIG, DB, DESK, METRICS
from gateway.config import SiteSettings
from gateway.http.front import create_front_app
from gateway.http.lease_owner import answer_batch, serving_lease_channel
from gateway.http.session_request import SessionRequest
from gateway.store.database import Database, StoreError, Write
from tests.api.conftest import POOL, demo_config

_ANSWER_WITHIN = 10.0
_CALL_SQL = (
    "INSERT INTO calls (call_id, site, dialed, started_at, state, attribution_kind, attribution)"
    " VALUES (?, 'demo', '+14155550101', '2026-01-05T09:00:00.000000Z', 'ringing', 'active', ?)"
)


def unlimited(tmp_path: Path) -> dict[str, Any]:
    """The demo site without a per-client session limit, where the build has such limits:
    every test request comes from one address."""
    raw = demo_config(tmp_path)
    if "limits" in {f.name for f in dataclasses.fields(SiteSettings)}:
        raw["sites"][0]["limits"] = {"client_per_minute": 0, "client_live_numbers": 0}
    return raw


async def raw_http(host: str, port: int, request: bytes) -> tuple[int, bytes]:
    """Send `request` as bytes on its own connection; the status and body of the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), _ANSWER_WITHIN)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head, "the gateway closed the connection without an answer"
    return int(head.split(b" ", 2)[1]), body


def session_post(i: int, user_agent: bytes, host: str = "127.0.0.1") -> bytes:
    body = json.dumps(
        {
            "site": "demo",
            "url": "https://www.demo-plumbing.example/",
            "referrer": f"https://ref.example/{i}",
        }
    ).encode()
    return (
        b"POST /v1/sessions HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b"User-Agent: " + user_agent + b"\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def post_batch(client: TestClient, poisoned: int, count: int) -> list[int]:
    """`count` session requests written at once, one of them with a non-UTF-8 User-Agent."""
    host, port = client.server.host, client.server.port
    assert port is not None
    agents = [b"M \xff" if i == poisoned else f"Agent {i}".encode() for i in range(count)]
    answers = await asyncio.gather(
        *(raw_http(host, port, session_post(i, agent)) for i, agent in enumerate(agents))
    )
    return [status for status, _ in answers]


async def test_one_non_utf8_user_agent_leaves_the_other_59_answered_and_stored(
    make_client, tmp_path: Path
) -> None:
    """59 requests sharing a batch with a non-UTF-8 User-Agent are answered 201 and stored."""
    client = await make_client(unlimited(tmp_path))
    statuses = await post_batch(client, poisoned=17, count=60)
    assert statuses == [201] * 60  # the poisoned one too: its text is made valid
    rows = await client.app[DB].fetchall("SELECT referrer, user_agent FROM sessions")
    agents = {row["referrer"]: row["user_agent"] for row in rows}
    assert len(agents) == 60
    assert agents["https://ref.example/17"] == "M \ufffd"
    assert agents["https://ref.example/3"] == "Agent 3"


async def test_amp_with_non_utf8_headers_is_answered_and_stored_valid(client) -> None:
    """AMP requests with a non-UTF-8 User-Agent and odd query text are answered and stored."""
    host, port = client.server.host, client.server.port
    assert port is not None
    query = "url=https%3A%2F%2Fwww.demo-plumbing.example%2F%ff&referrer=http%3A%2F%2F%5Bbad%00"
    status, body = await raw_http(
        host,
        port,
        b"GET /v1/amp/demo?" + query.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"User-Agent: AMP \xed\xa0\x80 \xff\r\nConnection: close\r\n\r\n",
    )
    assert status == 200 and json.loads(body)["phoneNumber"]
    row = (await client.app[DB].fetchall("SELECT url, referrer, user_agent FROM sessions"))[0]
    assert "\ufffd" in row["user_agent"] and row["user_agent"].startswith("AMP ")
    for text in row:
        text.encode("utf-8")  # what is stored is valid text


async def test_a_front_answers_a_non_utf8_user_agent_and_the_rest_of_its_batch(
    make_client, aiohttp_client, tmp_path: Path
) -> None:
    """Through an HTTP front, a non-UTF-8 User-Agent does not silence its lease channel frame."""
    core = await make_client(unlimited(tmp_path))
    channel = tmp_path / "leases.sock"
    async with serving_lease_channel(core.app[DESK], channel):
        front = await aiohttp_client(
            create_front_app(core.app[CONFIG], channel, tmp_path / "core.sock")
        )
        statuses = await post_batch(front, poisoned=5, count=20)
    assert statuses == [201] * 20
    rows = await core.app[DB].fetchall("SELECT user_agent FROM sessions")
    assert len(rows) == 20 and "M \ufffd" in {row["user_agent"] for row in rows}


async def test_a_poisoned_request_on_the_lease_channel_fails_alone(make_client) -> None:
    """A request that reaches the owner with text the store rejects fails; the rest are stored."""
    client = await make_client()
    desk = client.app[DESK]
    url = "https://www.demo-plumbing.example/"
    requests = [
        SessionRequest("demo", url, f"https://ref.example/{i}", "", agent, None)
        for i, agent in enumerate(["ok"] * 7 + ["M \udcff"] + ["ok"] * 7)
    ]
    replies = answer_batch(desk, requests)
    statuses = [r.status for r in replies]
    assert statuses == [201] * 7 + [503] + [201] * 7
    rows = await client.app[DB].fetchall("SELECT referrer FROM sessions")
    assert len(rows) == 14 and "https://ref.example/7" not in {row["referrer"] for row in rows}


@pytest.mark.parametrize(
    "poison",
    ["lone surrogate \udcff", 2**70, object()],
    ids=["surrogate", "int-over-64-bits", "unbindable"],
)
async def test_a_poisoned_write_fails_alone_and_the_call_records_beside_it_commit(
    tmp_path: Path, poison: Any
) -> None:
    """Call records committed in one batch with an unstorable write are stored and answered."""
    db = await Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        loop = asyncio.get_running_loop()
        futures = []
        for i in range(100):
            done: asyncio.Future[None] = loop.create_future()
            attribution = poison if i == 37 else json.dumps({"n": i})
            db.submit([Write(_CALL_SQL, (f"call-{i}", attribution), rank=60)], done)
            futures.append(done)
        db.flush()  # the whole batch in one group commit
        assert all(f.done() for f in futures)
        failed = [i for i, f in enumerate(futures) if f.exception() is not None]
        assert failed == [37]
        assert isinstance(futures[37].exception(), StoreError)
        rows = await db.fetchall("SELECT call_id FROM calls")
        assert len(rows) == 99 and "call-37" not in {row["call_id"] for row in rows}
    finally:
        await db.close()


async def test_a_store_that_refuses_writes_fails_the_batch_in_one_try(tmp_path: Path) -> None:
    """A store-wide failure answers every request at once, without a retry for each."""
    db = await Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        begun: list[str] = []
        db._writer.set_trace_callback(lambda sql: begun.append(sql) if "BEGIN" in sql else None)
        db._writer.execute("PRAGMA query_only = 1")  # every write fails: a read-only store
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(20)]
        for i, done in enumerate(futures):
            db.submit([Write(_CALL_SQL, (f"call-{i}", "{}"), rank=60)], done)
        db.flush()
        assert all(isinstance(f.exception(), StoreError) for f in futures)
        assert len(begun) == 1  # one group commit tried, not one per request
        db._writer.execute("PRAGMA query_only = 0")
        await db.write([Write(_CALL_SQL, ("call-after", "{}"), rank=60)])
        assert len(await db.fetchall("SELECT call_id FROM calls")) == 1
    finally:
        await db.close()


async def test_a_session_that_failed_to_commit_leaves_no_lease_a_call_could_go_to(
    make_client,
) -> None:
    """Its leases are taken back, not just ended: a call on its number finds no session the
    store lacks, and the number goes to the next visitor as if never leased."""
    client = await make_client()
    desk = client.app[DESK]
    url = "https://www.demo-plumbing.example/"
    failed = answer_batch(desk, [SessionRequest("demo", url, "", "", "M \udcff", None)])
    assert [r.status for r in failed] == [503]
    site = desk.book.sites["demo"].site
    assert [lease for pool in site.pools for lease in pool.leases()] == []
    stored = await client.app[DB].fetchall("SELECT session_id FROM sessions")
    assert stored == []
    ok = answer_batch(desk, [SessionRequest("demo", url, "", "", "ok", None)])
    assert [r.status for r in ok] == [201]
    (lease,) = [lease for pool in site.pools for lease in pool.leases()]
    assert (await client.app[DB].fetchall("SELECT session_id FROM sessions"))[0][
        "session_id"
    ] == lease.session_id


async def test_a_session_that_failed_to_commit_is_not_counted_as_pressure(
    make_client, tmp_path: Path
) -> None:
    """A full pool: the stored session that saw the overflow number is counted and stored as a
    pool event; the one whose commit failed neither (its lease was taken back)."""
    client = await make_client(demo_config(tmp_path, numbers=POOL[:1]))
    desk, metrics = client.app[DESK], client.app[METRICS]
    url = "https://www.demo-plumbing.example/"
    ok = [SessionRequest("demo", url, "", "", "ok", None) for _ in range(2)]
    assert [r.status for r in answer_batch(desk, ok)] == [201, 201]
    await asyncio.sleep(0)  # the counts follow the commit (its future's callbacks)
    labels = {"site": "demo", "pool": "demo:+14155550100"}
    assert metrics.value("ctgw_pool_exhausted_total", **labels) == 1
    failed = answer_batch(desk, [SessionRequest("demo", url, "", "", "M \udcff", None)])
    assert [r.status for r in failed] == [503]
    await asyncio.sleep(0)
    assert metrics.value("ctgw_pool_exhausted_total", **labels) == 1
    events = await client.app[DB].fetchall("SELECT session_id FROM pool_events")
    assert len(events) == 1
