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

__all__ = ["answer_batch", "answer_frame", "serving_lease_channel"]

log = structlog.get_logger()

# Frames answered but not yet written, per front: the front sends more only as replies come.
_FRAMES_IN_HAND = 64

_INTERNAL = ApiError(500, "internal", "internal error; the gateway logged the details")


def answer_batch(desk: SessionDesk, requests: list[SessionRequest]) -> list[SessionReply]:
    """Answer a front's frame of session requests (steps 3 to 6 of the session path, see
    gateway/leasing/desk.py) as one batch of the desk, at once: the decisions and one commit
    happen in this call, with no task, future wait or loop pass per session or frame."""
    replies, started, _ = _begin_batch(desk, requests)
    return _finish_batch(desk, requests, replies, started)


async def answer_frame(desk: SessionDesk, requests: list[SessionRequest]) -> list[SessionReply]:
    """`answer_batch` on any store: SQLite commits within `settle()`; PostgreSQL's commit is a
    round trip, so the batch's jobs are awaited before they are answered. With several
    gateways on the database, the sessions of sites another one holds are answered there."""
    elsewhere = desk.elsewhere
    if elsewhere is not None and not all(elsewhere.here(r.site) for r in requests):
        return await _answer_split(desk, requests)
    replies, started, settled = _begin_batch(desk, requests)
    # After a settle() that raised, a job may never have been queued: it answers 500 below.
    waiting = [job.done for _, job, _ in started if not job.done.done()]
    if waiting and settled:
        await asyncio.wait(waiting)
    return _finish_batch(desk, requests, replies, started)


_Started = list[tuple[int, Opening, SiteEntry]]


async def _answer_split(desk: SessionDesk, requests: list[SessionRequest]) -> list[SessionReply]:
    """The frame's sessions of held sites answered here, the others by their sites' holders,
    side by side; the answers in the order of the requests."""
    assert desk.elsewhere is not None
    held = [desk.elsewhere.here(r.site) for r in requests]
    here = [i for i, h in enumerate(held) if h]
    there = [i for i, h in enumerate(held) if not h]
    local, remote = await asyncio.gather(
        answer_frame(desk, [requests[i] for i in here]) if here else _nothing(),
        desk.elsewhere.sessions([requests[i] for i in there]),
    )
    replies: list[SessionReply | None] = [None] * len(requests)
    for i, reply in zip(here, local, strict=True):
        replies[i] = reply
    for i, reply in zip(there, remote, strict=True):
        replies[i] = reply
    return [reply for reply in replies if reply is not None]


async def _nothing() -> list[SessionReply]:
    return []


def _begin_batch(
    desk: SessionDesk, requests: list[SessionRequest]
) -> tuple[list[SessionReply | None], _Started, bool]:
    """Steps 3 to 5: the requests' jobs decided and their commit begun (done on SQLite);
    False when `settle()` failed."""
    replies: list[SessionReply | None] = [None] * len(requests)
    started: _Started = []
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
            return replies, started, False
    return replies, started, True


def _finish_batch(
    desk: SessionDesk,
    requests: list[SessionRequest],
    replies: list[SessionReply | None],
    started: _Started,
) -> list[SessionReply]:
    """Step 6 for each started job, in the order of the requests."""
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
    """One front's connection: each frame answered in a task of its own as soon as it is read,
    the replies written in frame order. On SQLite a frame is decided and committed within its
    task's first step, as before; on PostgreSQL the frames read while a commit is in flight join
    the desk's next group commit instead of waiting their turn one round trip each (bench:
    1,535-1,570 sessions/s with one front before, 7,309-7,416 after; helper H3, session 9)."""
    answers: asyncio.Queue[asyncio.Task[list[SessionReply]] | None] = asyncio.Queue(
        maxsize=_FRAMES_IN_HAND
    )
    replier = asyncio.create_task(_write_replies(answers, writer))
    try:
        while True:
            requests = read_requests(await read_payload(reader))
            await answers.put(asyncio.create_task(answer_frame(desk, requests)))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the front stopped
    except ValueError as exc:
        log.error("lease_channel_bad_frame", error=str(exc))
    finally:
        try:
            await _end_replies(answers, replier)
        except asyncio.CancelledError:
            replier.cancel()  # the gateway is stopping: no reply is awaited any more
            raise
        finally:
            writer.close()


async def _write_replies(
    answers: asyncio.Queue[asyncio.Task[list[SessionReply]] | None], writer: asyncio.StreamWriter
) -> None:
    """Write each frame's replies, in the order the frames came, until told to stop (None)."""
    while (task := await answers.get()) is not None:
        try:
            writer.write(reply_frame(await task))
        except Exception:  # a bug in answering: the front's waiters fail, not the gateway
            log.exception("lease_channel_answer_failed")
            writer.close()
            return


async def _end_replies(
    answers: asyncio.Queue[asyncio.Task[list[SessionReply]] | None],
    replier: asyncio.Task[None],
) -> None:
    """Let the frames in hand be answered (their sessions may be committed already), then stop."""
    if replier.done():
        return
    await answers.put(None)
    await replier


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
