"""The asking end of the peer link: one connection to one peer, opened when first needed and
again after a failure, shared by every request to that peer (each reply carries its request's
id). Session requests of one loop pass go in one frame, which the owner decides and commits as
one batch."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
from collections.abc import Iterator

import structlog

from gateway.cluster.peer_bodies import (
    MAX_SESSIONS,
    decode_amp_answer,
    decode_heartbeat_answer,
    decode_route_answer,
    decode_session_replies,
    encode_amp,
    encode_heartbeat,
    encode_route,
    encode_sessions,
)
from gateway.cluster.peer_frames import (
    NONCE_BYTES,
    BadFrame,
    Frame,
    Kind,
    encode,
    encode_hello,
    welcome_mac,
)
from gateway.cluster.peer_link import NotHere, PeerUnavailable, read_frame
from gateway.http.session_request import SessionReply, SessionRequest
from gateway.leasing.elsewhere import AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.tasks import cancel_and_wait
from gateway.telephony.agi import AgiRequest, RouteDecision

__all__ = ["PeerClient"]

log = structlog.get_logger()

CONNECT_S = 2.0
# Sessions and heartbeats wait this long for the owner (a route waits its deadline only).
_ANSWER_S = 10.0
# How an older gateway refuses a route request with a field it does not know.
_WRONG_FIELDS = b"a route request has the wrong fields"


class PeerClient:
    """One connection to one peer, opened when first needed and again after a failure;
    requests share it, each waiting for the reply with its id."""

    def __init__(self, host: str, port: int, secret: bytes, my_node_id: str) -> None:
        self.host = host
        self.port = port
        self._secret = secret
        self._me = my_node_id
        self._ids: Iterator[int] = itertools.cycle(range(1, 2**32))
        self._waiting: dict[int, asyncio.Future[Frame]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        # Session requests queued this loop pass: one frame carries them all (the owner decides
        # and commits a frame as one batch, as it does its own requests).
        self._queued: list[tuple[SessionRequest, asyncio.Future[SessionReply | None]]] = []
        self._flushing: set[asyncio.Task[None]] = set()
        # The connection to a peer that refused a route's answer_within_ms (an older version):
        # not sent there again. A new connection (the peer restarted, maybe upgraded) tries.
        self._older: asyncio.StreamWriter | None = None

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply | None]:
        """The owner's answers (None: it does not hold that site); PeerUnavailable, TimeoutError."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[SessionReply | None]] = []
        if not self._queued:
            loop.call_soon(self._flush_sessions)
        for req in requests:
            future: asyncio.Future[SessionReply | None] = loop.create_future()
            self._queued.append((req, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    def _flush_sessions(self) -> None:
        queued, self._queued = self._queued, []
        for at in range(0, len(queued), MAX_SESSIONS):
            task = asyncio.create_task(self._send_sessions(queued[at : at + MAX_SESSIONS]))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _send_sessions(
        self, batch: list[tuple[SessionRequest, asyncio.Future[SessionReply | None]]]
    ) -> None:
        try:
            frame = await self.ask(Kind.SESSIONS, encode_sessions([r for r, _ in batch]), _ANSWER_S)
            if frame.kind is Kind.NOT_HERE:
                replies: list[SessionReply | None] = [None] * len(batch)
            else:
                _expect(frame, Kind.SESSIONS_REPLY)
                got = decode_session_replies(frame.body, len(batch))
                replies = [reply if reply.status else None for reply in got]
        except BaseException as exc:  # cancelled too (close()): nobody is left waiting
            failure = exc if isinstance(exc, Exception) else PeerUnavailable("link closed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(reply)

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer:
        frame = await self.ask(Kind.HEARTBEAT, encode_heartbeat(session_id, origin), _ANSWER_S)
        _not_here(frame)
        _expect(frame, Kind.HEARTBEAT_REPLY)
        return decode_heartbeat_answer(frame.body)

    async def route(
        self, request: AgiRequest, timeout_s: float, answer_within_s: float | None = None
    ) -> RouteDecision | None:
        """The owner's route, waited for at most `timeout_s`. `answer_within_s`: when the owner
        is to give the route up (record the call as gone to the fallback and answer None),
        sent unless this connection's peer is of a version that refuses it."""
        within = None if answer_within_s is None else int(answer_within_s * 1000)
        if self._writer is not None and self._writer is self._older:
            within = None
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        frame = await self.ask(Kind.ROUTE, encode_route(request, within), timeout_s)
        if within is not None and _refused_field(frame):
            # An older gateway (a rolling upgrade): its own deadline applies, as before.
            log.info("peer_route_deadline_unknown", peer=f"{self.host}:{self.port}")
            self._older = self._writer
            frame = await self.ask(Kind.ROUTE, encode_route(request), until - loop.time())
        _not_here(frame)
        _expect(frame, Kind.ROUTE_REPLY)
        return decode_route_answer(frame.body)

    async def amp(self, ask: AmpAsk) -> AmpAnswer:
        frame = await self.ask(Kind.AMP, encode_amp(ask), _ANSWER_S)
        _not_here(frame)
        _expect(frame, Kind.AMP_REPLY)
        return decode_amp_answer(frame.body)

    async def ask(self, kind: Kind, body: bytes, timeout_s: float) -> Frame:
        """Send one request and wait at most `timeout_s` for its reply (connecting first if
        need be); PeerUnavailable when the peer cannot be reached or breaks off."""
        async with asyncio.timeout(timeout_s):
            writer = await self._connected()
            rid = next(self._ids)
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._waiting[rid] = future
            try:
                writer.write(encode(kind, rid, body))
                return await future
            finally:
                self._waiting.pop(rid, None)

    async def _connected(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                async with asyncio.timeout(CONNECT_S):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                    try:
                        await self._hello(reader, writer)
                    except BaseException:
                        writer.close()
                        raise
            except (OSError, TimeoutError, asyncio.IncompleteReadError, BadFrame) as exc:
                raise PeerUnavailable(f"peer {self.host}:{self.port}: {exc!r}") from None
            self._writer = writer
            self._receiver = asyncio.create_task(self._receive(reader, writer))
            return writer

    async def _hello(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        challenge = await read_frame(reader)
        if challenge.kind is not Kind.CHALLENGE or len(challenge.body) != NONCE_BYTES:
            raise BadFrame("the peer did not open with a challenge")
        client_nonce = os.urandom(NONCE_BYTES)
        writer.write(encode_hello(self._secret, challenge.body, client_nonce, self._me))
        welcome = await read_frame(reader)
        expected = welcome_mac(self._secret, challenge.body, client_nonce)
        if welcome.kind is not Kind.WELCOME or not hmac.compare_digest(welcome.body, expected):
            raise BadFrame("the peer did not prove it holds the cluster secret")

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await read_frame(reader)
                future = self._waiting.get(frame.request_id)
                if future is not None and not future.done():
                    future.set_result(frame)
        except asyncio.CancelledError:
            raise
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer closed: the next request connects again
        except BadFrame as exc:
            log.warning("peer_bad_reply", peer=f"{self.host}:{self.port}", error=str(exc))
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            for future in list(self._waiting.values()):
                if not future.done():
                    future.set_exception(PeerUnavailable("the peer closed the link"))

    async def close(self) -> None:
        """Close the link; requests still waiting fail with PeerUnavailable."""
        queued, self._queued = self._queued, []
        for _, future in queued:
            if not future.done():
                future.set_exception(PeerUnavailable("link closed"))
        for task in list(self._flushing):
            task.cancel()
        await asyncio.gather(*self._flushing, return_exceptions=True)
        if self._receiver is not None:
            await cancel_and_wait(self._receiver)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def _not_here(frame: Frame) -> None:
    if frame.kind is Kind.NOT_HERE:
        raise NotHere()


def _refused_field(frame: Frame) -> bool:
    """Whether a route was refused for its fields (an older peer's answer to answer_within_ms)."""
    return frame.kind is Kind.REFUSED and frame.body.startswith(_WRONG_FIELDS)


def _expect(frame: Frame, kind: Kind) -> None:
    if frame.kind is Kind.REFUSED:
        raise BadFrame(f"the peer refused the request: {frame.body[:200]!r}")
    if frame.kind is not kind:
        raise BadFrame(f"expected {kind.name}, got {frame.kind.name}")
