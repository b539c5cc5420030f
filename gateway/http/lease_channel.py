"""The lease channel: HTTP fronts hand their session requests to the process that owns leases.

With `[http] workers` set, HTTP front processes read and check POST /v1/sessions and send the
requests over a Unix socket to the gateway process, which holds every lease. One frame carries
the sessions a front read in one pass of its event loop (at most `CHUNK`); the owner decides
them back to back, commits them together, and answers with one frame in the same order.

Frame: a 4-byte big-endian length, then the payload. Front to owner: UTF-8 JSON, a list of
`[site, url, referrer, visitor_id, user_agent, origin, client]` (client: the address the front
resolved). Owner to front: a 4-byte length, JSON `[[status, headers, body_bytes], ...]` (one
per request, in order), then the bodies back to back: they are JSON already, and escaping them
again into a JSON string cost more than the rest of the reply.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from gateway.http.errors import ApiError
from gateway.http.public import (
    SessionReply,
    SessionRequest,
    begin_session,
    finish_session,
    session_error,
)
from gateway.leasing.desk import Opening, SessionDesk
from gateway.store.sites import SiteEntry
from gateway.tasks import cancel_and_wait

__all__ = ["CHUNK", "ChannelClosed", "LeaseChannel", "answer_batch", "serving_lease_channel"]

log = structlog.get_logger()

_LENGTH = struct.Struct("!I")
_MAX_FRAME = 64 * 1024 * 1024
# Sessions per frame. A front sends a frame once this many are queued, so the owner starts on
# them while the front reads the rest: without it fronts and owner took turns (bench: 0.44x
# -> 0.51x of the ceiling at 64 connections).
CHUNK = 16
_INTERNAL = ApiError(500, "internal", "internal error; the gateway logged the details")


class ChannelClosed(ConnectionError):
    """The other end of the lease channel went away."""


def _frame(payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return _LENGTH.pack(len(data)) + data


async def _read_bytes(reader: asyncio.StreamReader) -> bytes:
    size = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))[0]
    if size > _MAX_FRAME:
        raise ValueError(f"lease channel frame of {size} bytes")
    return await reader.readexactly(size)


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    return json.loads(await _read_bytes(reader))


def _reply_frame(replies: list[SessionReply]) -> bytes:
    bodies = [r.body.encode() for r in replies]
    index = json.dumps(
        [[r.status, r.headers, len(b)] for r, b in zip(replies, bodies, strict=True)],
        separators=(",", ":"),
    ).encode()
    payload = b"".join([_LENGTH.pack(len(index)), index, *bodies])
    return _LENGTH.pack(len(payload)) + payload


def _read_replies(payload: bytes) -> list[SessionReply]:
    size = _LENGTH.unpack_from(payload)[0]
    at = _LENGTH.size + size
    replies = []
    for status, headers, length in json.loads(payload[_LENGTH.size : at]):
        replies.append(SessionReply(int(status), payload[at : at + length].decode(), headers))
        at += length
    if at != len(payload):
        raise ValueError("lease channel reply frame does not add up")
    return replies


def _request(item: Any) -> SessionRequest:
    """A request as a front sent it; a malformed one is a bug in the front, not user input."""
    if (
        not isinstance(item, list)
        or len(item) != 7
        or not all(isinstance(v, str) for v in item[:5])
        or not (item[5] is None or isinstance(item[5], str))
        or not isinstance(item[6], str)
    ):
        raise ValueError("malformed lease channel request")
    return SessionRequest(*item)


def answer_batch(desk: SessionDesk, requests: list[SessionRequest]) -> list[SessionReply]:
    """Answer many session requests as one batch of the desk, at once: the decisions and one
    commit happen in this call, with no task, future wait or loop pass per session or frame."""
    replies: list[SessionReply | None] = [None] * len(requests)
    started: list[tuple[int, Opening, SiteEntry]] = []
    for index, req in enumerate(requests):
        try:
            job, entry = begin_session(desk, req)
        except ApiError as exc:
            replies[index] = session_error(exc, req, allowed=False)
            continue
        except Exception:  # a bug: that request fails, as the error middleware would do it
            log.exception("http_unhandled_error", path="/v1/sessions", method="POST")
            replies[index] = session_error(_INTERNAL, req, allowed=False)
            continue
        started.append((index, job, entry))
    if started:
        try:
            desk.settle()
        except Exception:  # a bug: the jobs left undone answer 500 below
            log.exception("lease_channel_settle_failed")
    for index, job, entry in started:
        req = requests[index]
        try:
            replies[index] = finish_session(desk, req, job, entry)
        except ApiError as exc:
            replies[index] = session_error(exc, req, allowed=True)
        except Exception:
            log.exception("http_unhandled_error", path="/v1/sessions", method="POST")
            replies[index] = session_error(_INTERNAL, req, allowed=True)
    return [reply for reply in replies if reply is not None]


async def _serve_front(
    desk: SessionDesk, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One front's connection: each frame answered as soon as it is read, so the front gets
    the answers of one frame while the next is decided (answering frames that came together
    as one batch made the two processes take turns)."""
    try:
        while True:
            items = await _read_frame(reader)
            if not isinstance(items, list):
                raise ValueError("lease channel frame is not a list")
            requests = [_request(item) for item in items]
            writer.write(_reply_frame(answer_batch(desk, requests)))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the front stopped
    except ValueError as exc:
        log.error("lease_channel_bad_frame", error=str(exc))
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def serving_lease_channel(desk: SessionDesk, path: Path) -> AsyncIterator[None]:
    """Serve the lease channel on a Unix socket at `path` while the context is open."""
    connections: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await _serve_front(desk, reader, writer)
        finally:
            connections.discard(task)

    server = await asyncio.start_unix_server(on_connect, path=str(path))
    try:
        yield
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


class LeaseChannel:
    """A front's end: `ask()` queues a request; one frame goes per loop pass or `CHUNK`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._queued: list[list[Any]] = []
        self._waiting: list[asyncio.Future[SessionReply]] = []
        self._in_flight: collections.deque[list[asyncio.Future[SessionReply]]] = collections.deque()
        self._scheduled = False
        self._closed = False
        self.closed = asyncio.Event()
        self._receiver = asyncio.create_task(self._receive(), name="lease-channel")

    @classmethod
    async def connect(cls, path: Path) -> LeaseChannel:
        reader, writer = await asyncio.open_unix_connection(str(path))
        return cls(reader, writer)

    async def ask(self, req: SessionRequest) -> SessionReply:
        if self._closed:
            raise ChannelClosed("the lease channel is closed")
        future: asyncio.Future[SessionReply] = asyncio.get_running_loop().create_future()
        self._queued.append(
            [
                req.site,
                req.url,
                req.referrer,
                req.visitor_id,
                req.user_agent,
                req.origin,
                req.client,
            ]
        )
        self._waiting.append(future)
        if len(self._queued) >= CHUNK:
            self._send()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send_scheduled)
        return await future

    def _send_scheduled(self) -> None:
        self._scheduled = False
        self._send()

    def _send(self) -> None:
        if not self._queued:
            return
        if self._closed:
            self._fail(self._waiting)
        else:
            self._writer.write(_frame(self._queued))
            self._in_flight.append(self._waiting)
        self._queued, self._waiting = [], []

    async def _receive(self) -> None:
        try:
            while True:
                replies = _read_replies(await _read_bytes(self._reader))
                waiting = self._in_flight.popleft()
                for future, reply in zip(waiting, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # EOF, a reset, or a frame that does not fit: the end
            log.error("lease_channel_closed", error=repr(exc))
        finally:
            self._closed = True
            while self._in_flight:
                self._fail(self._in_flight.popleft())
            self._fail(self._waiting)
            self.closed.set()

    @staticmethod
    def _fail(futures: list[asyncio.Future[SessionReply]]) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(ChannelClosed("the gateway's core process is not answering"))

    async def close(self) -> None:
        """Stop receiving and close the socket; a cancelled caller stops waiting."""
        self._writer.close()
        await cancel_and_wait(self._receiver)
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
