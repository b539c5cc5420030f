"""The owner's end of the lease channel: the gateway process answers the session requests of
its HTTP fronts with its session desk, a frame at a time (frames: gateway/http/lease_channel.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from gateway.http.errors import ApiError
from gateway.http.lease_channel import read_payload, read_requests, reply_frame
from gateway.http.public import begin_session, finish_session
from gateway.http.session_request import SessionReply, SessionRequest, session_error
from gateway.leasing.desk import Opening, SessionDesk
from gateway.store.sites import SiteEntry

__all__ = ["answer_batch", "serving_lease_channel"]

log = structlog.get_logger()

_INTERNAL = ApiError(500, "internal", "internal error; the gateway logged the details")


def answer_batch(desk: SessionDesk, requests: list[SessionRequest]) -> list[SessionReply]:
    """Answer a front's frame of session requests (steps 3 to 6 of the session path, see
    gateway/leasing/desk.py) as one batch of the desk, at once: the decisions and one commit
    happen in this call, with no task, future wait or loop pass per session or frame."""
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
            requests = read_requests(await read_payload(reader))
            writer.write(reply_frame(answer_batch(desk, requests)))
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
