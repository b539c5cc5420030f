"""The lease channel between HTTP fronts and the gateway process, against a real desk and store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest

from gateway.appkeys import DESK
from gateway.http.lease_channel import CHUNK, ChannelClosed, LeaseChannel, read_replies, reply_frame
from gateway.http.lease_owner import answer_batch, serving_lease_channel
from gateway.http.session_request import SessionReply, SessionRequest
from gateway.store.ids import id_maker
from gateway.store.sessions import shown_json
from numberpool.site import NumberOffer, OfferKind
from tests.api.conftest import BROWSER, ORIGIN, POOL

AGENT = BROWSER["User-Agent"]


def request(site: str = "demo", origin: str | None = None, visitor: str = "") -> SessionRequest:
    return SessionRequest(site, "https://www.demo-plumbing.example/", "", visitor, AGENT, origin)


async def test_a_batch_is_answered_in_order_with_each_request_s_own_outcome(make_client) -> None:
    client = await make_client()
    desk = client.app[DESK]
    replies = answer_batch(
        desk,
        [
            request(),
            request(site="nope", origin=ORIGIN),
            request(origin="https://evil.example"),
            request(origin=ORIGIN),
        ],
    )
    assert [r.status for r in replies] == [201, 404, 403, 201]
    first, unknown, refused, allowed = replies
    assert "Access-Control-Allow-Origin" not in first.headers
    assert unknown.headers == {"Access-Control-Allow-Origin": "*"}
    assert json.loads(refused.body)["error"]["code"] == "origin_not_allowed"
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    numbers = [json.loads(r.body)["numbers"][0]["number"] for r in (first, allowed)]
    assert numbers[0] != numbers[1] and set(numbers) <= set(POOL)
    # Both sessions are in the store before their answers exist.
    ids = [json.loads(r.body)["session_id"] for r in (first, allowed)]
    for session_id in ids:
        assert await desk.db.lookup("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,))


async def test_a_failed_commit_answers_503_and_frees_the_batch_s_numbers(make_client) -> None:
    client = await make_client()
    desk = client.app[DESK]
    desk.db._writer.execute(
        "CREATE TEMP TRIGGER no_sessions BEFORE INSERT ON sessions"
        " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    replies = answer_batch(desk, [request(origin=ORIGIN), request()])
    assert [r.status for r in replies] == [503, 503]
    assert json.loads(replies[0].body)["error"]["code"] == "store_unavailable"
    assert replies[0].headers["Access-Control-Allow-Origin"] == ORIGIN  # the origin was allowed
    pool = desk.sites["demo"].site.pools[0]
    assert pool.live_count(desk.clock.now()) == 0  # neither number is held by a session


async def test_the_channel_carries_many_requests_and_fails_them_when_closed(make_client) -> None:
    client = await make_client()
    desk = client.app[DESK]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leases.sock"
        async with serving_lease_channel(desk, path):
            channel = await LeaseChannel.connect(path)
            replies = await asyncio.gather(*(channel.ask(request()) for _ in range(CHUNK * 2 + 3)))
            assert {r.status for r in replies} == {201}
            sessions = {json.loads(r.body)["session_id"] for r in replies}
            assert len(sessions) == CHUNK * 2 + 3
            pooled = [json.loads(r.body)["numbers"][0] for r in replies]
            assert sorted(n["number"] for n in pooled if n["kind"] == "pool") == sorted(POOL)
        # The gateway side went away: what is asked now fails at once, it does not hang.
        await asyncio.wait_for(channel.closed.wait(), 5)
        with pytest.raises(ChannelClosed):
            await channel.ask(request())
        await channel.close()
    db = sqlite3.connect(Path(desk.db._path))
    stored = {row[0] for row in db.execute("SELECT session_id FROM sessions")}
    db.close()
    assert sessions <= stored


def test_stored_offers_are_the_json_they_always_were() -> None:
    offers = [
        NumberOffer("+14155550100", "+14155550101", OfferKind.POOL),
        NumberOffer("+14155550100", "+14155550120", OfferKind.OVERFLOW),
    ]
    expected = [{"target": o.target, "number": o.number, "kind": o.kind.value} for o in offers]
    assert shown_json(offers) == json.dumps(expected)
    assert shown_json([]) == "[]"


def test_buffered_ids_are_unique_time_ordered_hex() -> None:
    make = id_maker(buffer_ids=4)
    ids = [make() for _ in range(50)]  # crosses the buffer refill many times
    assert len(set(ids)) == 50
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)
    assert len({i[12:] for i in ids}) == 50


def test_reply_frames_carry_bodies_byte_for_byte() -> None:
    replies = [
        SessionReply(201, '{"a": "José"}', {"Vary": "Origin"}),
        SessionReply(404, "", {}),
        SessionReply(503, '{"error": "\\n"}', {"Access-Control-Allow-Origin": "*"}),
    ]
    frame = reply_frame(replies)
    assert read_replies(frame[4:]) == replies
    with pytest.raises(ValueError):
        read_replies(frame[4:] + b"x")


async def test_a_bug_fails_its_own_request_only(make_client, monkeypatch) -> None:
    client = await make_client()
    desk = client.app[DESK]
    decide = desk._decide

    def flaky(job, now, stamps):
        if job.visitor_id == "buggy-visitor":
            raise RuntimeError("a bug")
        return decide(job, now, stamps)

    monkeypatch.setattr(desk, "_decide", flaky)
    replies = answer_batch(
        desk, [request(), request(visitor="buggy-visitor", origin=ORIGIN), request()]
    )
    assert [r.status for r in replies] == [201, 500, 201]
    assert json.loads(replies[1].body)["error"]["code"] == "internal"
    assert replies[1].headers["Access-Control-Allow-Origin"] == ORIGIN
