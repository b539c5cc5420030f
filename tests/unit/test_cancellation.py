"""Closing background work never swallows the cancellation of the task that closes it."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.http.lease_channel import LeaseChannel
from gateway.tasks import cancel_and_wait
from gateway.telephony.ami import AmiClient
from gateway.telephony.call_follower import CallFollower
from gateway.telephony.call_lifecycle import CallTracker
from numberpool.clock import SystemClock


async def cancel_while_closing(close: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
    """Start `close()`, cancel it while it waits for what it stopped, and return it ended."""
    closing = asyncio.ensure_future(close())
    await asyncio.sleep(0)  # close() has cancelled its task and waits for it to end
    closing.cancel()
    await asyncio.wait({closing}, timeout=30)
    return closing


async def test_cancel_and_wait_ends_every_task_and_drops_their_errors():
    """Every task is over when it returns; their errors and cancellations do not reach it."""

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    tasks = [
        asyncio.create_task(asyncio.Event().wait()),
        asyncio.create_task(fails_when_cancelled()),
        asyncio.create_task(asyncio.sleep(0)),
    ]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)
    assert all(task.done() for task in tasks)


async def test_a_cancelled_caller_of_cancel_and_wait_ends_cancelled():
    """The caller's own cancellation propagates even while the tasks are still ending."""

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)

    task = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    closing = await cancel_while_closing(lambda: cancel_and_wait(task))
    assert closing.cancelled()
    await asyncio.wait({task}, timeout=30)
    assert task.cancelled()


async def test_a_cancelled_caller_of_call_follower_close_ends_cancelled():
    """CallFollower.close() lets its caller's cancellation through."""
    link = AmiClient("127.0.0.1", 1, "ctgw", "secret")
    follower = CallFollower(link, CallTracker(SystemClock()), _NoSink(), SystemClock())
    follower.start()
    await asyncio.sleep(0)
    closing = await cancel_while_closing(follower.close)
    assert closing.cancelled()


async def test_a_cancelled_caller_of_lease_channel_close_ends_cancelled():
    """LeaseChannel.close() lets its caller's cancellation through."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leases.sock"
        server = await asyncio.start_unix_server(silent, path=str(path))
        try:
            channel = await LeaseChannel.connect(path)
            await asyncio.sleep(0)
            closing = await cancel_while_closing(channel.close)
            assert closing.cancelled()
            with pytest.raises(asyncio.CancelledError):
                closing.result()
        finally:
            server.close()
            await server.wait_closed()


class _NoSink:
    async def call_updated(self, update: object) -> None:
        raise AssertionError("no call expected")

    async def calls_resynced(self, resync: object) -> None:
        raise AssertionError("no resync expected")
