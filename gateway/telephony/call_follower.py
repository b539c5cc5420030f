"""Wires AMI to the call tracker and the store: events in, `CallUpdate`s out to an async sink.

The tracker runs synchronously inside event dispatch, so event order is kept; the sink runs in
its own task behind a queue, so a slow store never stalls the AMI reader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from gateway.config import AmiSettings
from gateway.tasks import cancel_and_wait
from gateway.telephony.ami import AmiClient, AmiLink
from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.call_lifecycle import CallTracker, CallUpdate
from numberpool.clock import Clock

__all__ = ["CallFollower", "CallSink", "CallsResynced", "following_calls"]


@dataclass(frozen=True)
class CallsResynced:
    """After a (re)connect: the calls Asterisk still has. A store closes its open calls not in
    `live_linkedids`: they ended while nobody was listening (e.g. the gateway was down)."""

    live_linkedids: frozenset[str]
    at: datetime


class CallSink(Protocol):
    """Where call updates go (the store). Both methods must be idempotent."""

    async def call_updated(self, update: CallUpdate) -> None: ...

    async def calls_resynced(self, resync: CallsResynced) -> None: ...


class CallFollower:
    """Subscribes a `CallTracker` to an `AmiLink` and drains its updates into a `CallSink`."""

    def __init__(
        self,
        link: AmiLink,
        tracker: CallTracker,
        sink: CallSink,
        clock: Clock,
        *,
        max_queue: int = 10000,
    ) -> None:
        self._link = link
        self._tracker = tracker
        self._sink = sink
        self._clock = clock
        self._queue: asyncio.Queue[CallUpdate | CallsResynced] = asyncio.Queue(max_queue)
        self._unsubscribe: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def _push(self, item: CallUpdate | CallsResynced) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # Updates are whole snapshots, so a later one for the same call supersedes this.
            structlog.get_logger().warning("call_update_dropped", queue=self._queue.maxsize)

    def _on_event(self, event: AmiMessage) -> None:
        for update in self._tracker.handle(event):
            self._push(update)

    def resync_started(self) -> None:
        self._tracker.resync_started()

    def resynced(self, channels: Sequence[AmiMessage]) -> None:
        for update in self._tracker.resynced(channels):
            self._push(update)
        self._push(CallsResynced(self._tracker.live_linkedids, self._clock.now()))

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, CallUpdate):
                log = structlog.get_logger().bind(linkedid=item.linkedid, call_id=item.call_id)
            else:
                log = structlog.get_logger().bind(live_calls=len(item.live_linkedids))
            try:
                if isinstance(item, CallUpdate):
                    await self._sink.call_updated(item)
                    log.info("call_updated", state=item.state, final=item.final)
                else:
                    await self._sink.calls_resynced(item)
                    log.info("calls_resynced")
            except Exception:
                log.exception("call_sink_failed")
            finally:
                self._queue.task_done()

    def start(self) -> None:
        if self._task is not None:
            return
        self._unsubscribe = [self._link.subscribe(self._on_event), self._link.on_resync(self)]
        self._task = asyncio.create_task(self._drain(), name="call-follower")

    async def flush(self) -> None:
        """Wait until every update queued so far reached the sink (for tests and shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        for undo in self._unsubscribe:
            undo()
        self._unsubscribe = []
        task, self._task = self._task, None
        await cancel_and_wait(task)


@contextlib.asynccontextmanager
async def following_calls(
    settings: AmiSettings, sink: CallSink, clock: Clock, *, lookup_context: str = "ctgw-lookup"
) -> AsyncIterator[AmiClient]:
    """The AMI connection and call following for the daemon's lifetime (an aiohttp
    cleanup_ctx body): yields the client."""
    client = AmiClient(settings.host, settings.port, settings.username, settings.secret)
    follower = CallFollower(client, CallTracker(clock, lookup_context=lookup_context), sink, clock)
    follower.start()
    client.start()
    try:
        yield client
    finally:
        await client.close()
        await follower.close()
