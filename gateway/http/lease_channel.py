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

This module is the front's end (`LeaseChannel`) and the frames; the owner's end, which answers
them with the session desk, is gateway/http/lease_owner.py. A front loads no leasing or store
code.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import structlog

from gateway.http.session_request import SessionReply, SessionRequest
from gateway.tasks import cancel_and_wait

__all__ = [
    "CHUNK",
    "ChannelClosed",
    "LeaseChannel",
    "read_payload",
    "read_replies",
    "read_requests",
    "reply_frame",
    "request_frame",
]

log = structlog.get_logger()

_LENGTH = struct.Struct("!I")
_MAX_FRAME = 64 * 1024 * 1024
# Sessions per frame. A front sends a frame once this many are queued, so the owner starts on
# them while the front reads the rest: without it fronts and owner took turns (bench: 0.44x
# -> 0.51x of the ceiling at 64 connections).
CHUNK = 16


class ChannelClosed(ConnectionError):
    """The other end of the lease channel went away."""


def request_frame(requests: list[list[Any]]) -> bytes:
    """A front's frame of requests, each as the list `LeaseChannel.ask` makes."""
    data = json.dumps(requests, separators=(",", ":")).encode()
    return _LENGTH.pack(len(data)) + data


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next frame, either way."""
    size = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))[0]
    if size > _MAX_FRAME:
        raise ValueError(f"lease channel frame of {size} bytes")
    return await reader.readexactly(size)


def read_requests(payload: bytes) -> list[SessionRequest]:
    """The requests of a front's frame; ValueError for a malformed one (a bug in the front,
    not user input)."""
    items = json.loads(payload)
    if not isinstance(items, list):
        raise ValueError("lease channel frame is not a list")
    return [_request(item) for item in items]


def _request(item: Any) -> SessionRequest:
    if (
        not isinstance(item, list)
        or len(item) != 7
        or not all(isinstance(v, str) for v in item[:5])
        or not (item[5] is None or isinstance(item[5], str))
        or not isinstance(item[6], str)
    ):
        raise ValueError("malformed lease channel request")
    return SessionRequest(*item)


def reply_frame(replies: list[SessionReply]) -> bytes:
    """The owner's frame of replies, in the order of the requests."""
    bodies = [r.body.encode() for r in replies]
    index = json.dumps(
        [[r.status, r.headers, len(b)] for r, b in zip(replies, bodies, strict=True)],
        separators=(",", ":"),
    ).encode()
    payload = b"".join([_LENGTH.pack(len(index)), index, *bodies])
    return _LENGTH.pack(len(payload)) + payload


def read_replies(payload: bytes) -> list[SessionReply]:
    """The replies of an owner's frame; ValueError when it does not add up."""
    size = _LENGTH.unpack_from(payload)[0]
    at = _LENGTH.size + size
    replies = []
    for status, headers, length in json.loads(payload[_LENGTH.size : at]):
        replies.append(SessionReply(int(status), payload[at : at + length].decode(), headers))
        at += length
    if at != len(payload):
        raise ValueError("lease channel reply frame does not add up")
    return replies


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
            self._writer.write(request_frame(self._queued))
            self._in_flight.append(self._waiting)
        self._queued, self._waiting = [], []

    async def _receive(self) -> None:
        try:
            while True:
                replies = read_replies(await read_payload(self._reader))
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
