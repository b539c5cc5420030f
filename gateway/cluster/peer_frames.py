"""The peer link's frames: how one gateway asks another for what only the owner of a site may
answer (its sessions, heartbeats and calls), and how the owner answers.

A frame: a 4-byte big-endian length of what follows, a 1-byte kind, a 4-byte request id, the
body. At most `MAX_FRAME` bytes; anything else closes the connection. The link opens with a
challenge (the server's nonce), a hello (HMAC-SHA256 of both nonces under the shared secret,
the asker's nonce and node id) and a welcome (the server's HMAC the other way round): each side
proves it holds the secret without sending it. Requests carry an id the reply repeats, so one
connection carries many requests at once, answered in any order.

The bodies of the requests and replies: gateway/cluster/peer_bodies.py.
"""

from __future__ import annotations

import hmac
import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "NONCE_BYTES",
    "BadFrame",
    "Frame",
    "Kind",
    "check_number",
    "check_text",
    "decode_hello",
    "encode",
    "encode_hello",
    "frame_size",
    "hello_mac",
    "json_body",
    "to_frame",
    "welcome_mac",
]

HEADER = struct.Struct("!IBI")  # length of kind + id + body, kind, request id
MAX_FRAME = 1024 * 1024
NONCE_BYTES = 16
_MAC_BYTES = 32
_MAX_NODE_ID = 64


class BadFrame(ValueError):
    """A frame that is not what the link allows: the connection is closed (never the daemon)."""


class Kind(IntEnum):
    CHALLENGE = 0x00
    HELLO = 0x01
    SESSIONS = 0x02
    HEARTBEAT = 0x03
    ROUTE = 0x04
    AMP = 0x05
    NOT_HERE = 0x80  # the node does not hold the unit: re-read the directory
    WELCOME = 0x81
    SESSIONS_REPLY = 0x82
    HEARTBEAT_REPLY = 0x83
    ROUTE_REPLY = 0x84
    AMP_REPLY = 0x85
    REFUSED = 0xFE  # the request was malformed; the connection stays open


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    request_id: int
    body: bytes


def encode(kind: Kind, request_id: int, body: bytes = b"") -> bytes:
    """One frame on the wire."""
    return HEADER.pack(len(body) + 5, kind, request_id) + body


def frame_size(header: bytes) -> tuple[int, int, int]:
    """(body size, kind byte, request id) of a frame's 9-byte header; BadFrame when too big."""
    length, kind, request_id = HEADER.unpack(header)
    if length < 5 or length > MAX_FRAME:
        raise BadFrame(f"frame of {length} bytes")
    return length - 5, kind, request_id


def to_frame(kind: int, request_id: int, body: bytes) -> Frame:
    try:
        return Frame(Kind(kind), request_id, body)
    except ValueError:
        raise BadFrame(f"unknown frame kind {kind}") from None


# -- the handshake ------------------------------------------------------------------------


def hello_mac(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(secret, b"ctgw-peer-hello\0" + server_nonce + client_nonce, "sha256").digest()


def welcome_mac(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(secret, b"ctgw-peer-welcome\0" + client_nonce + server_nonce, "sha256").digest()


def encode_hello(secret: bytes, server_nonce: bytes, client_nonce: bytes, node_id: str) -> bytes:
    body = hello_mac(secret, server_nonce, client_nonce) + client_nonce + node_id.encode()
    return encode(Kind.HELLO, 0, body)


def decode_hello(body: bytes) -> tuple[bytes, bytes, str]:
    """(mac, client nonce, node id) of a hello; BadFrame when it does not have their shape."""
    if not _MAC_BYTES + NONCE_BYTES < len(body) <= _MAC_BYTES + NONCE_BYTES + _MAX_NODE_ID:
        raise BadFrame("hello of the wrong size")
    mac, nonce = body[:_MAC_BYTES], body[_MAC_BYTES : _MAC_BYTES + NONCE_BYTES]
    try:
        node_id = body[_MAC_BYTES + NONCE_BYTES :].decode()
    except UnicodeDecodeError:
        raise BadFrame("hello node id is not UTF-8") from None
    if not node_id.isprintable():
        raise BadFrame("hello node id is not printable")
    return mac, nonce, node_id


# -- checks -------------------------------------------------------------------------------


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadFrame("body is not JSON") from None


def check_text(value: Any, limit: int, name: str) -> None:
    if not isinstance(value, str) or len(value) > limit:
        raise BadFrame(f"{name} must be text of at most {limit} characters")


def check_number(value: Any, low: float, high: float, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise BadFrame(f"{name} out of range")
    return float(value)
