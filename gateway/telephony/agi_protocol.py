"""The FastAGI wire protocol as Asterisk speaks it: the env block, commands and their answers.

Everything read from the socket is untrusted: lines and counts are bounded, bytes that are not
UTF-8 are replaced, and nothing read is ever copied into a command except through `quote()`.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MAX_ENV_BYTES",
    "MAX_ENV_LINES",
    "MAX_LINE_BYTES",
    "MAX_VALUE_CHARS",
    "VARIABLE_NAMES",
    "AgiProtocolError",
    "Answer",
    "AnswerKind",
    "env_value",
    "parse_env",
    "quote",
    "read_answer",
    "read_env",
    "set_variable",
]

# Asterisk sends about 25 env keys plus one per argument; 64 leaves room for many arguments.
# (Lines that continue a value, such as a caller name with line breaks, do not count.)
MAX_ENV_LINES = 64
# One env value holds at most this much (a longer caller name is cut, not refused).
MAX_LINE_BYTES = 2048
# The whole env block (Asterisk 22 sends about 800 bytes); also the stream's read limit.
MAX_ENV_BYTES = 16384
# A 520 usage text is a few dozen lines; anything longer is not Asterisk.
MAX_USAGE_LINES = 200
# Values we set are labels and dial strings; longer is a bug upstream, cut it.
MAX_VALUE_CHARS = 256

VARIABLE_NAMES = frozenset({"CTGW_ROUTE", "CTGW_CALL_ID", "CTGW_SOURCE", "CTGW_WHISPER"})

_ENV_NAME = re.compile(r"agi_[a-z0-9_]{1,40}")
_NAME_KEY = b"agi_calleridname:"
_AFTER_NAME_KEY = b"agi_callingpres:"


class AgiProtocolError(Exception):
    """The peer sent something that is not FastAGI as Asterisk speaks it."""


class AnswerKind(enum.Enum):
    OK = "200"
    INVALID = "510"
    DEAD_CHANNEL = "511"
    USAGE = "520"
    HANGUP = "HANGUP"
    CLOSED = "EOF"


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    result: str = ""
    text: str = ""


async def _read_line(reader: asyncio.StreamReader) -> str | None:
    """One line without its end, or None at end of stream; oversize lines raise."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raw = exc.partial
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("line longer than the limit") from exc
    if len(raw) > MAX_LINE_BYTES:
        raise AgiProtocolError("line longer than the limit")
    return raw.rstrip(b"\r\n").decode("utf-8", errors="replace")


async def read_env(reader: asyncio.StreamReader) -> dict[str, str]:
    """Read the env block up to the blank line that ends it, and parse it (`parse_env`)."""
    # One read for the whole block: Asterisk sends it in one write, and a read per line costs
    # a third of the session's time.
    block = await _read_block(reader)
    # A caller name holding a blank line ends the block early: the name's end, the
    # agi_callingpres line Asterisk writes next, is then still to come. Read on for it.
    while _name_unfinished(block):
        if len(block) >= MAX_ENV_BYTES:
            raise AgiProtocolError("env block longer than the limit")
        block += await _read_block(reader)
    return parse_env(block)


async def _read_block(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiProtocolError("connection closed inside the env block") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("env block longer than the limit") from exc


def _name_unfinished(block: bytes) -> bool:
    at = block.find(b"\n" + _NAME_KEY) if not block.startswith(_NAME_KEY) else 0
    return at >= 0 and block.find(b"\n" + _AFTER_NAME_KEY, at) < 0


def parse_env(block: bytes) -> dict[str, str]:
    """The `agi_name: value` lines of an env block (its blank line included or not).

    Asterisk writes values raw, so a caller name with line breaks arrives as several lines,
    some of which may look like `agi_callerid: +1...`. Asterisk writes agi_calleridname right
    after agi_callerid and agi_callingpres right after it, and nothing else a caller controls
    comes before it: so the name is everything from the first agi_calleridname line to the
    last agi_callingpres line, and a line elsewhere that is not a new `agi_name: value` is the
    continuation of the value before it. A key is never replaced once read.
    """
    lines = block.rstrip(b"\n").split(b"\n")
    name_at = next((i for i, raw in enumerate(lines) if raw.startswith(_NAME_KEY)), -1)
    name_end = -1
    if name_at >= 0:
        name_end = max(
            (i for i in range(name_at + 1, len(lines)) if lines[i].startswith(_AFTER_NAME_KEY)),
            default=-1,
        )
    env: dict[str, str] = {}
    last = ""
    for index, raw in enumerate(lines):
        text = raw[:MAX_LINE_BYTES].decode("utf-8", errors="replace").rstrip("\r")
        if name_at < index < name_end:
            env[last] = _joined(env[last], text)  # `last` is agi_calleridname here
            continue
        name, sep, value = text.partition(":")
        if sep and _ENV_NAME.fullmatch(name) and name not in env:
            if len(env) >= MAX_ENV_LINES:
                raise AgiProtocolError("env block has too many lines")
            env[name] = value.removeprefix(" ")
            last = name
        elif last:
            env[last] = _joined(env[last], text)
        else:
            raise AgiProtocolError("env line is not 'agi_name: value'")
    return env


def _joined(value: str, line: str) -> str:
    """A value with one more of its lines, bounded like a single line."""
    return (value + "\n" + line)[:MAX_LINE_BYTES]


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Read the answer to one command, skipping `100 Trying` lines, accepting a bare HANGUP."""
    while True:
        line = await _read_line(reader)
        if line is None:
            return Answer(AnswerKind.CLOSED)
        if line == "HANGUP":
            return Answer(AnswerKind.HANGUP)
        code, _, rest = line.partition(" ")
        if code == "100":
            continue
        if code == "200":
            if not rest.startswith("result="):
                raise AgiProtocolError("200 answer without result=")
            result = rest.removeprefix("result=").partition(" ")[0]
            return Answer(AnswerKind.OK, result=result, text=rest)
        if code == "510":
            return Answer(AnswerKind.INVALID, text=rest)
        if code == "511":
            return Answer(AnswerKind.DEAD_CHANNEL, text=rest)
        if code == "520":
            return Answer(AnswerKind.USAGE, text=rest)
        if line.startswith("520-"):
            return await _read_usage(reader, line[4:])
        raise AgiProtocolError("answer is not 100/200/510/511/520/HANGUP")


async def _read_usage(reader: asyncio.StreamReader, first: str) -> Answer:
    """Read a multi-line `520-` usage answer up to its `520 End of proper usage.` line."""
    lines = [first]
    for _ in range(MAX_USAGE_LINES):
        line = await _read_line(reader)
        if line is None:
            return Answer(AnswerKind.CLOSED)
        if line.startswith("520 "):
            return Answer(AnswerKind.USAGE, text="\n".join(lines))
        lines.append(line)
    raise AgiProtocolError("520 usage answer too long")


def quote(value: str) -> str:
    """Quote a value for an AGI command: control characters cut, backslash and quote escaped."""
    cleaned = value.replace("\r", "").replace("\n", "").replace("\0", "")[:MAX_VALUE_CHARS]
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: str) -> bytes:
    """The `SET VARIABLE` command line for one of the fixed ctgw variable names."""
    if name not in VARIABLE_NAMES:
        raise ValueError(f"ctgw sets only {sorted(VARIABLE_NAMES)}, not {name!r}")
    return f"SET VARIABLE {name} {quote(value)}\n".encode()


def env_value(env: Mapping[str, str], name: str) -> str:
    """An env value with Asterisk's "unknown" placeholder read as empty."""
    value = env.get(name, "")
    return "" if value == "unknown" else value
