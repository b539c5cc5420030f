"""A small asyncio AMI client for tests only: log in, send actions, wait for events.

Not the gateway's AMI client (that lives in gateway/): no reconnects, no filtering, it keeps
every event it sees so a test can assert on what Asterisk said.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

__all__ = ["AmiEvent", "TestAmi"]

AmiEvent = dict[str, str]


class TestAmi:
    """One AMI session; `events` holds every event received, in order."""

    __test__ = False  # not a pytest test class

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._responses: dict[str, asyncio.Future[AmiEvent]] = {}
        self.events: list[AmiEvent] = []
        # A hook for benchmarks, which follow thousands of calls without rescanning `events`.
        self.on_event: Callable[[AmiEvent], None] | None = None
        self._changed = asyncio.Condition()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int, username: str, secret: str) -> TestAmi:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # banner: "Asterisk Call Manager/..."
        ami = cls(reader, writer)
        ami._pump = asyncio.create_task(ami._read_messages())
        answer = await ami.action("Login", Username=username, Secret=secret)
        if answer.get("Response") != "Success":
            await ami.close()
            raise ConnectionError(f"AMI login refused: {answer}")
        return ami

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def action(self, name: str, timeout: float = 10, **fields: str) -> AmiEvent:
        """Send one action and return its response."""
        action_id = f"t{next(self._ids)}"
        future: asyncio.Future[AmiEvent] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in fields.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        async with asyncio.timeout(timeout):
            return await future

    async def originate(
        self, dialed: str, context: str, caller: str, channel_id: str, wait: int = 5
    ) -> AmiEvent:
        """Play a caller dialing `dialed` into `context` (the Local ;2 half runs the dialplan).

        `channel_id` becomes the ;1 half's uniqueid, hence the Linkedid of the whole call.
        """
        return await self.action(
            "Originate",
            Channel=f"Local/{dialed}@{context}",
            ChannelId=channel_id,
            Application="Wait",
            Data=str(wait),
            CallerID=caller,
            Async="true",
        )

    async def wait_for(
        self, match: Callable[[AmiEvent], bool], timeout: float = 10, start: int = 0
    ) -> AmiEvent:
        """The first event (from index `start`) that matches, waiting up to `timeout` seconds."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for event in self.events[start:]:
                    if match(event):
                        return event
                await self._changed.wait()

    async def _read_messages(self) -> None:
        message: AmiEvent = {}
        while True:
            raw = await self._reader.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(": ")
                message.setdefault(key, value)
                continue
            if "Event" in message:
                if self.on_event is not None:
                    self.on_event(message)
                async with self._changed:
                    self.events.append(message)
                    self._changed.notify_all()
            elif (future := self._responses.pop(message.get("ActionID", ""), None)) is not None:
                if not future.done():
                    future.set_result(message)
            message = {}
