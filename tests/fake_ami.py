"""Fakes for AMI tests: an Asterisk manager on a real loopback socket replaying recorded
transcripts, and an in-memory call sink standing in for the store."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from gateway.telephony.ami_protocol import AmiMessage, MessageReader
from gateway.telephony.call_follower import CallsResynced
from gateway.telephony.call_lifecycle import CallUpdate

__all__ = ["FakeAmi", "MemorySink", "load_transcript", "transcript_messages"]

FIXTURES = Path(__file__).parent / "fixtures" / "ami"


def load_transcript(name: str) -> list[str]:
    """Messages of a transcript file: blank-line separated, '#' lines are comments."""
    text = (FIXTURES / name).read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    blocks = "\n".join(lines).split("\n\n")
    return [b.strip("\n") for b in blocks if b.strip()]


def transcript_messages(name: str) -> list[AmiMessage]:
    """A transcript parsed into messages, as the client would see them."""
    from gateway.telephony.ami_protocol import parse_message

    return [parse_message(b.encode().split(b"\n")) for b in load_transcript(name)]


def _wire(block: str) -> bytes:
    return (block.replace("\n", "\r\n") + "\r\n\r\n").encode()


@dataclass
class FakeAmi:
    """Answers Login, Ping and CoreShowChannels; sends `after_login` blocks after each login."""

    secret: str = "s3cret"
    banner: str = "Asterisk Call Manager/11.0.0"
    after_login: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # CoreShowChannel blocks for the resync
    answer_pings: bool = True
    answer_actions: bool = True
    actions: list[AmiMessage] = field(default_factory=list)
    logins: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, port: int = 0) -> FakeAmi:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            writer.write(f"{self.banner}\r\n".encode())
            messages = MessageReader(reader)
            while True:
                action = await messages.message()
                self.actions.append(action)
                await self._answer(action, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        name, aid = action.get("Action").lower(), action.action_id
        if not self.answer_actions or (name == "ping" and not self.answer_pings):
            return
        if name == "login":
            if action.get("Secret") != self.secret:
                writer.write(
                    _wire(f"Response: Error\nActionID: {aid}\nMessage: Authentication failed")
                )
                return
            self.logins += 1
            writer.write(
                _wire(f"Response: Success\nActionID: {aid}\nMessage: Authentication accepted")
            )
            for block in self.after_login:
                writer.write(_wire(block))
        elif name == "ping":
            writer.write(_wire(f"Response: Success\nActionID: {aid}\nPing: Pong\nTimestamp: 1.0"))
        elif name == "coreshowchannels":
            writer.write(_wire(f"Response: Success\nActionID: {aid}\nEventList: start"))
            for block in self.channels:
                lines = [ln for ln in block.split("\n") if not ln.startswith("ActionID:")]
                writer.write(_wire("\n".join([lines[0], f"ActionID: {aid}", *lines[1:]])))
            writer.write(
                _wire(
                    f"Event: CoreShowChannelsComplete\nActionID: {aid}\nEventList: Complete\n"
                    f"ListItems: {len(self.channels)}"
                )
            )
        elif name == "originate":
            writer.write(
                _wire(f"Response: Success\nActionID: {aid}\nMessage: Originate successfully queued")
            )
        else:
            writer.write(
                _wire(f"Response: Error\nActionID: {aid}\nMessage: Invalid/unknown command")
            )
        await writer.drain()

    async def send(self, block: str | bytes) -> None:
        """Send a message (or raw bytes) to every connected client."""
        data = block if isinstance(block, bytes) else _wire(block)
        for writer in list(self._writers):
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def drop_clients(self) -> None:
        """Close every client connection, as an Asterisk that stops does."""
        # Closing is enough: each handler then reads EOF and ends. Cancelling the handlers
        # made asyncio (3.11) log an error per connection from its stream callback.
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        await self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class MemorySink:
    """A store stand-in keeping the newest snapshot per linkedid."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: dict[str, CallUpdate] = {}
        self.resyncs: list[CallsResynced] = []
        self.fail_first = fail_first

    async def call_updated(self, update: CallUpdate) -> None:
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("store hiccup")
        self.calls[update.linkedid] = update

    async def calls_resynced(self, resync: CallsResynced) -> None:
        self.resyncs.append(resync)
