"""The Asterisk Manager Interface wire format: framing, parsing and encoding, no I/O policy.

A message is CRLF-separated `Key: Value` lines ended by a blank line. Everything read from the
socket is untrusted: sizes are bounded, bytes decode leniently and control characters are dropped.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "AmiMessage",
    "AmiProtocolError",
    "MessageReader",
    "encode_action",
    "parse_message",
]

# Control characters other than tab never belong in a header value; dropping them keeps logs,
# the store and any later CSV export clean whatever a caller name or a peer contains.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CHANVAR_KEY = re.compile(r"^(Dest)?ChanVariable(\(.*\))?$", re.IGNORECASE)


class AmiProtocolError(Exception):
    """The peer does not speak AMI (bad banner) or broke the framing beyond repair."""


@dataclass(frozen=True)
class AmiMessage:
    """One AMI message: its header lines in order (keys may repeat, e.g. ChanVariable)."""

    headers: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        """The first value of `key` (case-insensitive), or `default`."""
        wanted = key.lower()
        for k, v in self.headers:
            if k.lower() == wanted:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(k.lower() == key.lower() for k, _ in self.headers)

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def channel_variables(self, *, dest: bool = False) -> dict[str, str]:
        """Variables from `channelvars=`: `ChanVariable: NAME=value` and `ChanVariable(chan): ...`.

        With `dest=True` the `DestChanVariable` lines of Dial events are read instead.
        """
        found: dict[str, str] = {}
        for key, value in self.headers:
            match = _CHANVAR_KEY.match(key)
            if match is None or bool(match.group(1)) != dest:
                continue
            name, sep, val = value.partition("=")
            if sep:
                found[name.strip()] = val
        return found


def parse_message(lines: Iterable[bytes]) -> AmiMessage:
    """Build a message from raw header lines (without line ends); lines without a colon are kept
    under the empty key so nothing the peer sent is silently lost."""
    headers: list[tuple[str, str]] = []
    for raw in lines:
        text = _CONTROL.sub("", raw.decode("utf-8", errors="replace"))
        key, sep, value = text.partition(":")
        if not sep:
            headers.append(("", text))
            continue
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return AmiMessage(tuple(headers))


def _clean_field(value: object) -> str:
    # A CR or LF in a value would end the line and let the rest inject headers or a new action.
    return str(value).replace("\r", " ").replace("\n", " ").replace("\x00", "")


def encode_action(
    name: str, action_id: str, fields: Mapping[str, object] | Iterable[tuple[str, object]] = ()
) -> bytes:
    """Encode one action; `fields` may repeat keys (e.g. several `Variable`)."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    lines = [f"Action: {_clean_field(name)}", f"ActionID: {_clean_field(action_id)}"]
    lines += [f"{_clean_field(k).replace(':', '')}: {_clean_field(v)}" for k, v in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class MessageReader:
    """Reads whole messages from a stream; a message over `max_bytes` is skipped, not kept."""

    def __init__(self, stream: asyncio.StreamReader, max_bytes: int = 65536) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self.skipped = 0  # messages dropped for size; exposed for logs and tests

    async def _line(self) -> tuple[bytes, bool]:
        """One line without its end, and whether it was too long to keep."""
        try:
            line = await self._stream.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            # Drain the overlong line piecewise so the stream stays in sync with the framing.
            await self._stream.readexactly(exc.consumed)
            while True:
                try:
                    await self._stream.readuntil(b"\n")
                    return b"", True
                except asyncio.LimitOverrunError as more:
                    await self._stream.readexactly(more.consumed)
        return line.rstrip(b"\r\n"), False

    async def banner(self) -> str:
        """The greeting line, e.g. `Asterisk Call Manager/11.0.0`."""
        line, too_long = await self._line()
        text = line.decode("utf-8", errors="replace")
        if too_long or not text.startswith("Asterisk Call Manager/"):
            raise AmiProtocolError(f"not an AMI banner: {text[:60]!r}")
        return text

    async def message(self) -> AmiMessage:
        """The next non-empty message; raises IncompleteReadError when the peer closes."""
        while True:
            lines: list[bytes] = []
            size = 0
            oversized = False
            while True:
                line, too_long = await self._line()
                if not line and not too_long:
                    break
                size += len(line) + 2
                oversized = oversized or too_long or size > self._max_bytes
                if not oversized:
                    lines.append(line)
            if oversized:
                self.skipped += 1
                continue
            if lines:
                return parse_message(lines)
