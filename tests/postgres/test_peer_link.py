"""The peer link between the gateways of a cluster, on real sockets with a fake owner: the hello
proves the shared secret both ways, the request kinds (sessions, heartbeat, route, AMP) and
"not here" come back to the right asker, and whatever a peer sends the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.cluster.forwarding import HANDOVER_WAIT_S, Forwarding
from gateway.cluster.membership import site_unit
from gateway.cluster.nodes import Peer
from gateway.cluster.peer_answers import OwnerAnswers
from gateway.cluster.peer_bodies import encode_route, encode_route_answer
from gateway.cluster.peer_client import PeerClient
from gateway.cluster.peer_frames import (
    HEADER,
    MAX_FRAME,
    NONCE_BYTES,
    BadFrame,
    Kind,
    encode,
    encode_hello,
    welcome_mac,
)
from gateway.cluster.peer_link import NotHere, PeerServer, PeerUnavailable
from gateway.config import parse_config
from gateway.http.session_request import SessionReply, SessionRequest
from gateway.leasing.desk import SessionDesk
from gateway.leasing.elsewhere import AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.leasing.site_book import SiteBook
from gateway.metrics import Metrics
from gateway.store.database import Database
from gateway.store.sessions import session_write
from gateway.store.sites import seed_sites
from gateway.telephony.agi import AgiRequest, RouteDecision
from gateway.telephony.route import CallRouter
from numberpool.visit import visit_from_url
from tests.api.conftest import ORIGIN, POOL, demo_config
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(30)

SECRET = b"peer-secret-0123456789abcdef"


def session(site: str, visitor: str = "") -> SessionRequest:
    return SessionRequest(
        site, "https://shop.example/?gclid=G", "", visitor, "UA", None, "10.0.0.7"
    )


def call(dialed: str) -> AgiRequest:
    return AgiRequest(dialed, "+12025550100", "Ann", "17.1", "17.2", "PJSIP/x", {}, 1.7e9, 2.0)


class FakeOwner:
    """Holds the site 'mine' (and what a test adds to `held`); records what it was asked."""

    def __init__(self) -> None:
        self.held = {"mine"}
        self.frames: list[list[SessionRequest]] = []
        self.slow = asyncio.Event()
        self.withins: list[float | None] = []  # each route's answer_within_s

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply]:
        self.frames.append(requests)
        if all(r.site not in self.held for r in requests):
            raise NotHere()
        return [
            SessionReply(201, f'{{"site": "{r.site}", "client": "{r.client}"}}', {"X-A": "1"})
            if r.site in self.held
            else SessionReply(0, "", {})
            for r in requests
        ]

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer:
        if session_id == "gone":
            raise NotHere()
        return HeartbeatAnswer(200, "", "", "2026-12-01T10:00:00.000000Z", 60.0, origin is not None)

    async def amp(self, ask: AmpAsk) -> AmpAnswer:
        if ask.site != "mine":
            raise NotHere()
        if ask.client == "10.0.0.99":
            return AmpAnswer(429, "rate_limited", "too many", retry_after=7)
        return AmpAnswer(200, number="+14155550101")

    async def route(
        self, request: AgiRequest, answer_within_s: float | None
    ) -> RouteDecision | None:
        self.withins.append(answer_within_s)
        if request.dialed == "elsewhere":
            raise NotHere()
        if request.dialed == "slow":
            await self.slow.wait()
        if request.dialed == "nobody":
            return None
        return RouteDecision("PJSIP/agent1", "call-" + request.linkedid, "google", "")


@pytest.fixture
async def owner() -> AsyncIterator[tuple[FakeOwner, PeerServer]]:
    fake = FakeOwner()
    server = PeerServer(SECRET, fake)
    await server.start("127.0.0.1", 0)
    try:
        yield fake, server
    finally:
        await server.close()


@pytest.fixture
async def client(owner: tuple[FakeOwner, PeerServer]) -> AsyncIterator[PeerClient]:
    peer = PeerClient("127.0.0.1", owner[1].port, SECRET, "node-b")
    try:
        yield peer
    finally:
        await peer.close()


async def raw_hello(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has said a correct hello by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = await reader.readexactly(HEADER.size)
    nonce = await reader.readexactly(HEADER.unpack(header)[0] - 5)
    mine = os.urandom(NONCE_BYTES)
    writer.write(encode_hello(SECRET, nonce, mine, "raw"))
    size, kind, _ = HEADER.unpack(await reader.readexactly(HEADER.size))
    assert kind == Kind.WELCOME
    assert await reader.readexactly(size - 5) == welcome_mac(SECRET, nonce, mine)
    return reader, writer


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    size, kind, request_id = HEADER.unpack(await reader.readexactly(HEADER.size))
    return kind, request_id, await reader.readexactly(size - 5)


async def test_the_three_kinds_come_back_to_their_asker(client: PeerClient) -> None:
    """Sessions (with the client address as the asker resolved it), a heartbeat and a route are
    answered over one connection; a site the owner does not hold comes back as None."""
    replies = await client.sessions([session("mine"), session("other")])
    assert replies[0] is not None and replies[0].status == 201
    assert replies[0].body == '{"site": "mine", "client": "10.0.0.7"}'
    assert replies[0].headers == {"X-A": "1"}
    assert replies[1] is None
    beat = await client.heartbeat("s1", "https://shop.example")
    assert beat == HeartbeatAnswer(200, "", "", "2026-12-01T10:00:00.000000Z", 60.0, True)
    decision = await client.route(call("+14155550101"), 2.0)
    assert decision == RouteDecision("PJSIP/agent1", "call-17.1", "google", "")
    assert await client.route(call("nobody"), 2.0) is None
    ask = AmpAsk("mine", "https://shop.example/amp", "", "UA", "visitor-1", "10.0.0.7")
    assert await client.amp(ask) == AmpAnswer(200, number="+14155550101")
    limited = await client.amp(AmpAsk("mine", ask.url, "", "UA", "", "10.0.0.99"))
    assert (limited.status, limited.retry_after) == (429, 7)
    with pytest.raises(NotHere):
        await client.amp(AmpAsk("other", ask.url, "", "UA", "", "10.0.0.7"))


async def test_not_here_is_its_own_answer(client: PeerClient) -> None:
    """A unit the owner does not hold is "not here" (NotHere), not an error of the link."""
    with pytest.raises(NotHere):
        await client.heartbeat("gone", None)
    with pytest.raises(NotHere):
        await client.route(call("elsewhere"), 2.0)
    assert await client.sessions([session("other")]) == [None]
    assert (await client.heartbeat("s2", None)).status == 200  # the link is still up


async def test_sessions_of_one_loop_pass_go_in_one_frame(
    owner: tuple[FakeOwner, PeerServer], client: PeerClient
) -> None:
    """Concurrent session requests to one owner travel as one frame (one batch there)."""
    fake, _ = owner
    answers = await asyncio.gather(*(client.sessions([session("mine", f"v{i}")]) for i in range(5)))
    assert all(a[0] is not None and a[0].status == 201 for a in answers)
    assert [len(frame) for frame in fake.frames] == [5]


async def test_replies_come_back_out_of_order(
    owner: tuple[FakeOwner, PeerServer], client: PeerClient
) -> None:
    """A slow route does not hold up a heartbeat asked after it on the same connection."""
    fake, _ = owner
    slow = asyncio.ensure_future(client.route(call("slow"), 10.0))
    await asyncio.sleep(0.05)
    assert (await client.heartbeat("s3", None)).status == 200
    assert not slow.done()
    fake.slow.set()
    assert (await slow) is not None


async def test_a_wrong_secret_is_refused_without_detail(
    owner: tuple[FakeOwner, PeerServer],
) -> None:
    """A peer with another secret gets the connection closed; the server logs the refusal
    (without either secret) and goes on serving the right ones."""
    _, server = owner
    wrong = PeerClient("127.0.0.1", server.port, b"another-secret-0123456789", "intruder")
    with capture_logs() as logs:
        with pytest.raises(PeerUnavailable):
            await wrong.heartbeat("s1", None)
        await asyncio.sleep(0.05)
    await wrong.close()
    assert any(e["event"] == "peer_refused" for e in logs)
    assert SECRET.decode() not in repr(logs) and "another-secret" not in repr(logs)
    right = PeerClient("127.0.0.1", server.port, SECRET, "node-c")
    try:
        assert (await right.heartbeat("s1", None)).status == 200
    finally:
        await right.close()


async def test_a_server_with_a_wrong_secret_is_not_believed(
    owner: tuple[FakeOwner, PeerServer],
) -> None:
    """The asker checks the welcome too: a server without the secret gets nothing asked."""
    impostor = PeerServer(b"impostor-secret-0123456789", owner[0])
    await impostor.start("127.0.0.1", 0)
    peer = PeerClient("127.0.0.1", impostor.port, SECRET, "node-b")
    try:
        with pytest.raises(PeerUnavailable):
            await peer.route(call("+14155550101"), 2.0)
    finally:
        await peer.close()
        await impostor.close()


async def test_oversized_and_unknown_frames_close_only_that_connection(
    owner: tuple[FakeOwner, PeerServer], client: PeerClient
) -> None:
    """A frame over the size limit (before or after the hello) or of an unknown kind closes
    that connection; the server and the other peers' links go on."""
    _, server = owner
    with capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readexactly(HEADER.size + NONCE_BYTES)  # the challenge
        writer.write(struct.pack("!IBI", MAX_FRAME + 1, Kind.HELLO, 0))
        assert await reader.read() == b""  # closed
        writer.close()

        reader, writer = await raw_hello(server.port)
        writer.write(struct.pack("!IBI", 50 * MAX_FRAME, Kind.SESSIONS, 1) + b"x" * 100)
        assert await reader.read() == b""
        writer.close()

        reader, writer = await raw_hello(server.port)
        writer.write(struct.pack("!IBI", 5 + 3, 0x7F, 1) + b"[1]")  # no such kind
        assert await reader.read() == b""
        writer.close()
    events = [e["event"] for e in logs]
    assert events.count("peer_bad_frame") == 3
    assert (await client.heartbeat("s4", None)).status == 200


async def test_garbage_requests_are_refused_and_the_link_stays(
    owner: tuple[FakeOwner, PeerServer],
) -> None:
    """Bodies that are not JSON, have the wrong shape, or overlong fields are refused one by
    one (REFUSED with their id); the same connection then gets its answers as usual."""
    _, server = owner
    reader, writer = await raw_hello(server.port)
    bad = [
        (Kind.SESSIONS, b"\xff\xfe not json"),
        (Kind.SESSIONS, b"[]"),
        (Kind.SESSIONS, b'[["mine", "javascript:alert(1)", "", "", "", null, ""]]'),
        (Kind.SESSIONS, b'[["' + b"s" * 65 + b'", "https://x.example/", "", "", "", null, ""]]'),
        (Kind.HEARTBEAT, b'{"session_id": "s1"}'),
        (Kind.ROUTE, b'{"dialed": 5}'),
        (Kind.ROUTE, b"[" * 100000 + b"]" * 100000),
        (Kind.AMP, b'["mine", "https://x.example/", "", "UA", "", 5]'),
        (Kind.WELCOME, b""),  # a reply kind is no request
    ]
    try:
        for rid, (kind, body) in enumerate(bad, start=1):
            writer.write(encode(kind, rid, body))
        got = {}
        for _ in bad:
            kind, rid, _body = await read_reply(reader)
            got[rid] = kind
        assert got == {rid: Kind.REFUSED for rid in range(1, len(bad) + 1)}
        writer.write(encode(Kind.HEARTBEAT, 99, b'["s5", null]'))
        kind, rid, _body = await read_reply(reader)
        assert (kind, rid) == (Kind.HEARTBEAT_REPLY, 99)
    finally:
        writer.close()


async def test_the_asker_connects_again_after_the_link_breaks(
    owner: tuple[FakeOwner, PeerServer],
) -> None:
    """The owner restarting (its connections closed) costs the asker one failed request at
    most; the next one opens a new connection."""
    fake, server = owner
    port = server.port
    peer = PeerClient("127.0.0.1", port, SECRET, "node-b")
    try:
        assert (await peer.heartbeat("s1", None)).status == 200
        await server.close()
        again = PeerServer(SECRET, fake)
        await again.start("127.0.0.1", port)
        try:
            for _ in range(3):
                try:
                    assert (await peer.heartbeat("s1", None)).status == 200
                    break
                except PeerUnavailable:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the asker never connected again")
        finally:
            await again.close()
    finally:
        await peer.close()


async def test_nobody_listening_is_unavailable_quickly() -> None:
    """A peer that is not there fails the request with PeerUnavailable (no hang)."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    peer = PeerClient("127.0.0.1", port, SECRET, "node-b")
    try:
        with pytest.raises(PeerUnavailable):
            await peer.heartbeat("s1", None)
    finally:
        await peer.close()


# -- the asking side: "not here" and nobody ------------------------------------------------


class FakeDirectory:
    """A directory that names `peer` as every unit's holder (None: nobody)."""

    def __init__(self, peer: Peer | None) -> None:
        self.peer = peer
        self.refreshed = 0

    def holds(self, unit: str) -> bool:
        return False

    def owner(self, unit: str) -> Peer | None:
        return self.peer

    async def refresh(self) -> None:
        self.refreshed += 1


@pytest.fixture
async def asker(tmp_path: Path) -> AsyncIterator[tuple[SessionDesk, CallRouter]]:
    """A gateway's desk and router that hold no site (SQLite: no PostgreSQL needed here)."""
    clock = FakeClock()
    config = parse_config(demo_config(tmp_path), source="test")
    db = await Database.open(config.store.url)
    try:
        await seed_sites(db, config, clock.now())
        book = SiteBook(db, clock)
        book.serve_held()
        await book.reload_if_changed()
        metrics = Metrics()
        yield SessionDesk(db, book, clock, metrics), CallRouter(db, book, clock, metrics, "US")
    finally:
        await db.close()


def forwarding(asker: tuple[SessionDesk, CallRouter], directory: FakeDirectory) -> Forwarding:
    desk, router = asker
    return Forwarding(directory, desk, router, site_unit, secret=SECRET, node_id="node-b")


async def test_nobody_holding_the_site_gives_503_retry_after_and_no_route(
    asker: tuple[SessionDesk, CallRouter],
) -> None:
    """With no holder known (after looking at the directory again for a handover's time): the
    session is 503 with Retry-After and the CORS grant of an allowed origin, the heartbeat 503,
    the AMP number 503, the call no route (the dialplan's fallback), counted; an unknown site
    is 404 without asking anyone."""
    directory = FakeDirectory(None)
    ahead = forwarding(asker, directory)
    req = SessionRequest("demo", "https://x.example/", "", "", "UA", ORIGIN, "10.0.0.7")
    (reply,) = await ahead.sessions([req])
    assert reply.status == 503 and '"site_unavailable"' in reply.body
    assert reply.headers["Retry-After"] == "2"
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    # Read again and again, at most once per 0.1 s, for HANDOVER_WAIT_S (2 s).
    assert 2 <= directory.refreshed <= HANDOVER_WAIT_S / 0.1 + 2
    before = directory.refreshed
    (unknown,) = await ahead.sessions([SessionRequest("nosuch", req.url, "", "", "UA", None, "")])
    assert unknown.status == 404 and directory.refreshed == before

    desk, router = asker
    visit = visit_from_url(req.url, "", "UA")
    stamp = "2026-01-05T09:00:00.000000Z"
    await desk.db.write([session_write("s-held", "demo", "v-1", visit, [], stamp, stamp)])
    beat = await ahead.heartbeat("s-held", ORIGIN)
    assert (beat.status, beat.code, beat.origin_allowed) == (503, "site_unavailable", True)
    assert (await ahead.heartbeat("s-none", None)).status == 404

    amp = await ahead.amp(AmpAsk("demo", req.url, "", "UA", "", "10.0.0.7"))
    assert (amp.status, amp.code, amp.retry_after) == (503, "site_unavailable", 2)
    assert await ahead.route("demo", call(POOL[0]), 0.5) is None
    assert router.metrics.value("ctgw_calls_unrouted_total", reason="site_unheld") == 1


async def test_not_here_makes_the_asker_look_again_once(
    asker: tuple[SessionDesk, CallRouter], owner: tuple[FakeOwner, PeerServer]
) -> None:
    """A holder that says "not here" (a stale directory) makes the asker re-read the directory
    and ask once more; still not there, the page gets 503 and the call no route."""
    _, server = owner
    directory = FakeDirectory(Peer("node-a", "127.0.0.1", server.port))
    ahead = forwarding(asker, directory)
    req = SessionRequest("demo", "https://x.example/", "", "", "UA", None, "10.0.0.7")
    (reply,) = await ahead.sessions([req])  # the fake holds only the site "mine"
    assert reply.status == 503 and directory.refreshed >= 1
    before = directory.refreshed
    assert await ahead.route("demo", call("elsewhere"), 0.3) is None
    assert directory.refreshed > before
    await ahead.close()


async def test_a_site_changing_hands_is_waited_for(
    asker: tuple[SessionDesk, CallRouter], owner: tuple[FakeOwner, PeerServer]
) -> None:
    """A session asked while nobody holds its site (a handover) is answered by the new holder
    as soon as the directory names it, within the wait; many waiting requests share one
    directory read at a time."""
    fake, server = owner
    fake.held.add("demo")
    directory = FakeDirectory(None)
    ahead = forwarding(asker, directory)
    req = SessionRequest("demo", "https://x.example/", "", "", "UA", None, "10.0.0.7")
    waiting = [asyncio.ensure_future(ahead.sessions([req])) for _ in range(50)]
    await asyncio.sleep(0.5)
    assert not any(w.done() for w in waiting)
    directory.peer = Peer("node-a", "127.0.0.1", server.port)
    replies = await asyncio.gather(*waiting)
    assert [r.status for (r,) in replies] == [201] * 50
    assert directory.refreshed <= 0.5 / 0.1 + 3  # not one read per request
    await ahead.close()


async def test_one_odd_request_does_not_sink_its_frame(
    asker: tuple[SessionDesk, CallRouter], owner: tuple[FakeOwner, PeerServer]
) -> None:
    """A session with an origin too long for any site (POST /v1/sessions lets the header
    through) is answered 403 by the asker; the others of its frame reach the holder."""
    fake, server = owner
    fake.held.add("demo")
    ahead = forwarding(asker, FakeDirectory(Peer("node-a", "127.0.0.1", server.port)))
    good = SessionRequest("demo", "https://x.example/", "", "", "UA", None, "10.0.0.7")
    odd = SessionRequest("demo", good.url, "", "", "UA", "https://" + "o" * 3000, "10.0.0.7")
    replies = await ahead.sessions([good, odd, good])
    assert [r.status for r in replies] == [201, 403, 201]
    assert [len(frame) for frame in fake.frames] == [2]
    await ahead.close()


async def test_a_peer_answering_garbage_fails_only_its_requests() -> None:
    """An owner that proves the secret but then answers a frame over the limit, or a reply of
    the wrong kind, fails the requests waiting on it (PeerUnavailable or BadFrame); the asker
    connects again for the next request."""
    answers = [struct.pack("!IBI", MAX_FRAME + 1, Kind.ROUTE_REPLY, 1), None]

    async def owner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonce = os.urandom(NONCE_BYTES)
        writer.write(encode(Kind.CHALLENGE, 0, nonce))
        size, _, _ = HEADER.unpack(await reader.readexactly(HEADER.size))
        hello = await reader.readexactly(size - 5)
        writer.write(encode(Kind.WELCOME, 0, welcome_mac(SECRET, nonce, hello[32:48])))
        size, _, rid = HEADER.unpack(await reader.readexactly(HEADER.size))
        await reader.readexactly(size - 5)
        garbage = answers.pop(0)
        writer.write(garbage if garbage is not None else encode(Kind.HEARTBEAT_REPLY, rid, b"{}"))
        await writer.drain()
        await reader.read()  # until the asker closes
        writer.close()

    server = await asyncio.start_server(owner, "127.0.0.1", 0)
    peer = PeerClient("127.0.0.1", server.sockets[0].getsockname()[1], SECRET, "node-b")
    try:
        with pytest.raises(PeerUnavailable):
            await peer.route(call("+14155550101"), 2.0)
        with pytest.raises(BadFrame):  # connected again; a heartbeat reply to a route
            await peer.route(call("+14155550101"), 2.0)
    finally:
        await peer.close()
        server.close()


# -- a route's time left -----------------------------------------------------------------


def route_body(**extra: object) -> bytes:
    item = json.loads(encode_route(call("+14155550101")))
    return json.dumps({**item, **extra}).encode()


async def test_a_route_says_how_long_its_asker_waits_and_a_bad_value_is_refused(
    owner: tuple[FakeOwner, PeerServer], client: PeerClient
) -> None:
    """The asker's time left reaches the owner in seconds; a request without it (an older
    gateway's) is answered too, with None. A value that is not whole milliseconds in 0-600,000
    is refused on its own (REFUSED, with what is wrong) and the link goes on."""
    fake, server = owner
    assert await client.route(call("+14155550101"), 2.0, 0.25) is not None
    assert await client.route(call("+14155550101"), 2.0) is not None
    assert fake.withins == [0.25, None]
    reader, writer = await raw_hello(server.port)
    bad: list[object] = [-1, "250", True, None, 2.5, 600_001, 10**20, float("nan"), [250]]
    try:
        for rid, value in enumerate(bad, start=1):
            writer.write(encode(Kind.ROUTE, rid, route_body(answer_within_ms=value)))
        refused = {}
        for _ in bad:
            kind, rid, body = await read_reply(reader)
            refused[rid] = (kind, body.startswith(b"answer_within_ms"))
        assert refused == {rid: (Kind.REFUSED, True) for rid in range(1, len(bad) + 1)}
        writer.write(encode(Kind.ROUTE, 99, route_body(answer_within_ms=600_000)))
        writer.write(encode(Kind.ROUTE, 100, route_body(answer_within_ms=0)))
        answered = {(await read_reply(reader))[:2] for _ in range(2)}
        assert answered == {(Kind.ROUTE_REPLY, 99), (Kind.ROUTE_REPLY, 100)}
        assert sorted(fake.withins[2:]) == [0.0, 600.0]
    finally:
        writer.close()


async def test_an_older_owner_is_asked_again_without_the_time_left() -> None:
    """An owner of the previous version refuses a route with the time left ("wrong fields"):
    the route is asked again without it (the owner's own deadline, as before), and not sent
    with it again on that connection; a new connection (the owner restarted, perhaps
    upgraded) tries it again."""
    seen: list[bool] = []
    links: list[asyncio.StreamWriter] = []

    async def older(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        links.append(writer)
        nonce = os.urandom(NONCE_BYTES)
        writer.write(encode(Kind.CHALLENGE, 0, nonce))
        size, _, _ = HEADER.unpack(await reader.readexactly(HEADER.size))
        hello = await reader.readexactly(size - 5)
        writer.write(encode(Kind.WELCOME, 0, welcome_mac(SECRET, nonce, hello[32:48])))
        try:
            while True:
                _, rid, body = await read_reply(reader)
                with_time = "answer_within_ms" in json.loads(body)
                seen.append(with_time)
                if with_time:  # what gateway/cluster/peer_bodies.py said before
                    writer.write(encode(Kind.REFUSED, rid, b"a route request has the wrong fields"))
                else:
                    answer = RouteDecision("PJSIP/agent1", f"call-{rid}", "google", "")
                    writer.write(encode(Kind.ROUTE_REPLY, rid, encode_route_answer(answer)))
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(older, "127.0.0.1", 0)
    peer = PeerClient("127.0.0.1", server.sockets[0].getsockname()[1], SECRET, "node-b")
    try:
        for _ in range(2):
            decision = await peer.route(call("+14155550101"), 5.0, 0.3)
            assert decision is not None and decision.route == "PJSIP/agent1"
        assert seen == [True, False, False]
        links[0].close()  # the owner restarts
        for _ in range(20):
            try:
                await peer.route(call("+14155550101"), 5.0, 0.3)
                break
            except PeerUnavailable:
                await asyncio.sleep(0.05)  # the link's end not seen yet
        assert seen[3:] == [True, False]
    finally:
        await peer.close()
        server.close()


class HoldingDirectory(FakeDirectory):
    def holds(self, unit: str) -> bool:
        return True


async def test_a_store_timeout_is_not_taken_for_the_askers_time(
    asker: tuple[SessionDesk, CallRouter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route that fails with the store's own timeout (asyncpg's command_timeout raises
    TimeoutError) fails as the error it is (the peer link refuses it, logged), not as a route
    whose asker stopped waiting."""
    desk, router = asker
    desk.book.sites = dict(desk.book.known)  # this gateway serves the site
    answers = OwnerAnswers(forwarding(asker, HoldingDirectory(None)), 5.0)

    async def store_timed_out(request: AgiRequest, **_: object) -> RouteDecision | None:
        raise TimeoutError

    monkeypatch.setattr(router, "decide", store_timed_out)
    with capture_logs() as logs:
        with pytest.raises(TimeoutError):
            await answers.route(call(POOL[0]), 2.0)
    assert not [e for e in logs if e["event"] == "peer_route_deadline"]
