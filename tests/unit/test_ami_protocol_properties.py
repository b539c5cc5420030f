"""Properties of the AMI reader over arbitrary bytes: no surprise errors, bounded messages."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.telephony.ami_protocol import (
    AmiMessage,
    AmiProtocolError,
    MessageReader,
    parse_message,
)

EXAMPLES = settings(max_examples=300, deadline=None)

# Input dense in what the framing decides on: AMI-like messages whose lines end in CRLF or LF,
# some long, some binary, between stray bytes; plus plain random bytes.
_EOL = st.sampled_from([b"\r\n", b"\n"])
_VALUE = st.one_of(
    st.binary(max_size=40), st.integers(0, 700).map(lambda n: b"v" * n), st.just(b"")
)
_KEY = st.one_of(
    st.sampled_from([b"Event", b"Channel", b"Linkedid", b"ActionID"]), st.binary(max_size=8)
)
_LINE = st.one_of(st.builds(lambda k, v: k + b": " + v, _KEY, _VALUE), st.binary(max_size=30))
_MESSAGE = st.builds(
    lambda lines, eol: b"".join(line + eol for line in lines) + eol,
    st.lists(_LINE, min_size=1, max_size=12),
    _EOL,
)
WIRE = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.one_of(_MESSAGE, _MESSAGE, st.binary(max_size=40)), max_size=10).map(b"".join),
)
MAX_BYTES = st.integers(min_value=16, max_value=512)


def fed(data: bytes, max_bytes: int) -> tuple[asyncio.StreamReader, MessageReader]:
    """A reader over `data` then EOF, with the stream limit the client uses."""
    stream = asyncio.StreamReader(limit=max_bytes)
    stream.feed_data(data)
    stream.feed_eof()
    return stream, MessageReader(stream, max_bytes)


async def read_all(reader: MessageReader) -> list[AmiMessage]:
    """Every message until the peer's EOF, the only way reading may end."""
    messages = []
    while True:
        try:
            messages.append(await reader.message())
        except asyncio.IncompleteReadError:
            return messages


async def read_in_pieces(data: bytes, cuts: list[int], max_bytes: int) -> list[AmiMessage]:
    """Every message of `data` arriving in pieces cut at `cuts`, read while it arrives."""
    stream = asyncio.StreamReader(limit=max_bytes)
    reading = asyncio.ensure_future(read_all(MessageReader(stream, max_bytes)))
    start = 0
    for end in [*sorted(cuts), len(data)]:
        stream.feed_data(data[start:end])
        start = max(start, end)
        await asyncio.sleep(0)
    stream.feed_eof()
    return await reading


def expected(data: bytes, max_bytes: int) -> list[AmiMessage]:
    """What the framing means, told plainly: blank-line separated groups of lines, a group over
    `max_bytes` (or with a line over it) dropped whole, an unfinished line or group at EOF lost."""
    messages, lines, size, oversized = [], [], 0, False
    for raw in data.split(b"\n")[:-1]:
        too_long = len(raw) > max_bytes
        line = b"" if too_long else raw.rstrip(b"\r")
        if not line and not too_long:
            if lines and not oversized:
                messages.append(parse_message(lines))
            lines, size, oversized = [], 0, False
            continue
        size += len(line) + 2
        oversized = oversized or too_long or size > max_bytes
        lines.append(line)
    return messages


def bounded(message: AmiMessage, max_bytes: int) -> bool:
    """A kept message holds no more than its bytes on the wire allowed."""
    size = sum(len(key) + len(value) + 2 for key, value in message.headers)
    return 0 < len(message.headers) <= max_bytes // 2 and size <= max_bytes + 2


@EXAMPLES
@given(data=WIRE, max_bytes=MAX_BYTES)
async def test_any_bytes_end_only_at_eof_with_every_message_bounded(data, max_bytes):
    """Arbitrary bytes raise nothing but EOF at their end, and no kept message is oversized."""
    stream, reader = fed(data, max_bytes)
    messages = await read_all(reader)
    assert stream.at_eof()
    assert all(bounded(m, max_bytes) for m in messages)
    assert all(not any(c in v for _, v in m.headers for c in "\r\n\x00") for m in messages)


@EXAMPLES
@given(data=WIRE, max_bytes=MAX_BYTES, cuts=st.lists(st.integers(0, 4000), max_size=8))
async def test_messages_are_exactly_the_framing_whatever_the_pieces_they_arrive_in(
    data, max_bytes, cuts
):
    """Every whole message within the size bound is read, in order; every other one is skipped
    whole, never cut short, however the bytes are split into reads."""
    assert await read_in_pieces(data, cuts, max_bytes) == expected(data, max_bytes)


@EXAMPLES
@given(data=WIRE, max_bytes=MAX_BYTES)
async def test_any_banner_is_accepted_or_refused_with_a_protocol_error(data, max_bytes):
    """A greeting of arbitrary bytes is an AMI banner, an AmiProtocolError, or EOF."""
    _, reader = fed(data, max_bytes)
    try:
        banner = await reader.banner()
    except (AmiProtocolError, asyncio.IncompleteReadError):
        return
    assert banner.startswith("Asterisk Call Manager/") and len(banner) <= max_bytes


@EXAMPLES
@given(garbage=WIRE, max_bytes=st.integers(min_value=64, max_value=512))
async def test_a_good_message_after_any_garbage_and_a_blank_line_arrives_intact(garbage, max_bytes):
    """Whatever came before, the framing recovers at a blank line: the next message is whole."""
    good = b"Event: Newchannel\r\nChannel: PJSIP/a-00000001\r\nLinkedid: 1.1\r\n\r\n"
    _, reader = fed(garbage + b"\r\n\r\n" + good, max_bytes)
    messages = await read_all(reader)
    assert messages and messages[-1].headers == (
        ("Event", "Newchannel"),
        ("Channel", "PJSIP/a-00000001"),
        ("Linkedid", "1.1"),
    )
