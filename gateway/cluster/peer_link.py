"""The peer link: each gateway of a cluster listens for its peers (`PeerServer`) and keeps one
connection to each peer it forwards to (`PeerClient`, gateway/cluster/peer_client.py), reused
and opened again after a failure.

The owner of a site answers a peer's sessions, heartbeats and routes with the code paths of its
own requests (`PeerAnswers`, gateway/cluster/peer_answers.py), or "not here" when it does not
hold the site. Frames and checks: gateway/cluster/peer_frames.py. Whatever a peer sends, the
worst it gets is its connection closed.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Protocol

import structlog

from gateway.cluster.peer_bodies import (
    decode_amp,
    decode_heartbeat,
    decode_route,
    decode_sessions,
    encode_amp_answer,
    encode_heartbeat_answer,
    encode_route_answer,
    encode_session_replies,
)
from gateway.cluster.peer_frames import (
    HEADER,
    NONCE_BYTES,
    BadFrame,
    Frame,
    Kind,
    decode_hello,
    encode,
    frame_size,
    hello_mac,
    to_frame,
    welcome_mac,
)
from gateway.http.session_request import SessionReply, SessionRequest
from gateway.leasing.elsewhere import AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.telephony.agi import AgiRequest, RouteDecision

__all__ = ["NotHere", "PeerAnswers", "PeerServer", "PeerUnavailable", "read_frame"]

log = structlog.get_logger()

HANDSHAKE_S = 5.0
# Requests one connection may have in hand at once; past it the server reads no more frames.
MAX_IN_FLIGHT = 256
_DRAIN_S = 10.0  # a peer not taking its replies for this long is closed
_CLOSE_S = 2.0  # a closing server waits this long for its peers' handlers to end


class NotHere(Exception):
    """The node asked does not hold the unit: re-read the directory and ask again."""


class PeerUnavailable(ConnectionError):
    """The peer cannot be reached, refused the hello, or broke the connection."""


class PeerAnswers(Protocol):
    """What the owner of a unit answers (each raises NotHere for a unit it does not hold). A
    route's `answer_within_s` is how long its asker still waits (None: not said)."""

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply]: ...

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer: ...

    async def route(
        self, request: AgiRequest, answer_within_s: float | None
    ) -> RouteDecision | None: ...

    async def amp(self, ask: AmpAsk) -> AmpAnswer: ...


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    size, kind, request_id = frame_size(await reader.readexactly(HEADER.size))
    return to_frame(kind, request_id, await reader.readexactly(size))


class PeerServer:
    """Listens for peers on `host:port` and answers their requests with `answers`."""

    def __init__(self, secret: bytes, answers: PeerAnswers) -> None:
        self._secret = secret
        self._answers = answers
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every peer's connection; their handlers end on their own
        (cancelling them makes Python 3.11's stream callback log a traceback)."""
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()
        tasks = list(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_CLOSE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        address = str(writer.get_extra_info("peername"))
        try:
            node = await self._handshake(reader, writer, address)
            if node is not None:
                await self._serve(reader, writer, node)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer went away
        except TimeoutError:
            log.warning("peer_handshake_timeout", peer=address)
        except BadFrame as exc:
            log.warning("peer_bad_frame", peer=address, error=str(exc))
        except Exception:  # never the daemon: this connection ends, the rest go on
            log.exception("peer_link_failed", peer=address)
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str
    ) -> str | None:
        """The peer's node id once it proved it holds the secret; None (logged) when not."""
        async with asyncio.timeout(HANDSHAKE_S):
            server_nonce = os.urandom(NONCE_BYTES)
            writer.write(encode(Kind.CHALLENGE, 0, server_nonce))
            frame = await read_frame(reader)
            if frame.kind is not Kind.HELLO:
                raise BadFrame("the first frame must be a hello")
            mac, client_nonce, node = decode_hello(frame.body)
            if not hmac.compare_digest(mac, hello_mac(self._secret, server_nonce, client_nonce)):
                log.warning("peer_refused", peer=address)  # no detail: nothing to learn from it
                return None
            writer.write(
                encode(Kind.WELCOME, 0, welcome_mac(self._secret, server_nonce, client_nonce))
            )
            await writer.drain()
        log.info("peer_connected", peer=address, node=node)
        return node

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, node: str
    ) -> None:
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        answering: set[asyncio.Task[None]] = set()
        try:
            while True:
                frame = await read_frame(reader)
                await slots.acquire()
                task = asyncio.create_task(self._answer(frame, writer, slots, node))
                answering.add(task)
                task.add_done_callback(answering.discard)
        finally:
            for task in list(answering):
                task.cancel()

    async def _answer(
        self, frame: Frame, writer: asyncio.StreamWriter, slots: asyncio.Semaphore, node: str
    ) -> None:
        """Answer one request; its slot is free again once the reply is written out (a peer
        that stops reading stops being read from, and is closed after `_DRAIN_S`)."""
        rid = frame.request_id
        try:
            try:
                reply = await self._reply(frame)
            except NotHere:
                reply = encode(Kind.NOT_HERE, rid)
            except BadFrame as exc:
                log.warning("peer_bad_request", node=node, error=str(exc))
                reply = encode(Kind.REFUSED, rid, str(exc)[:200].encode())
            except Exception:  # a bug: that request is refused, the link goes on
                log.exception("peer_request_failed", node=node, kind=frame.kind.name)
                reply = encode(Kind.REFUSED, rid, b"internal error")
            if writer.is_closing():
                return
            writer.write(reply)
            try:
                async with asyncio.timeout(_DRAIN_S):
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                writer.close()
        finally:
            slots.release()

    async def _reply(self, frame: Frame) -> bytes:
        rid, answers = frame.request_id, self._answers
        if frame.kind is Kind.SESSIONS:
            replies = await answers.sessions(decode_sessions(frame.body))
            return encode(Kind.SESSIONS_REPLY, rid, encode_session_replies(replies))
        if frame.kind is Kind.HEARTBEAT:
            answer = await answers.heartbeat(*decode_heartbeat(frame.body))
            return encode(Kind.HEARTBEAT_REPLY, rid, encode_heartbeat_answer(answer))
        if frame.kind is Kind.ROUTE:
            decision = await answers.route(*decode_route(frame.body))
            return encode(Kind.ROUTE_REPLY, rid, encode_route_answer(decision))
        if frame.kind is Kind.AMP:
            amp = await answers.amp(decode_amp(frame.body))
            return encode(Kind.AMP_REPLY, rid, encode_amp_answer(amp))
        raise BadFrame(f"{frame.kind.name} is not a request")
