"""Who is asking: the client address of a request, behind trusted proxies and HTTP fronts."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp import web

from gateway.leasing.client_limits import parse_address

__all__ = ["Network", "client_address", "request_client"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    peer: str | None,
    forwarded_for: Sequence[str],
    trusted: Sequence[Network],
    *,
    peer_trusted: bool = False,
) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy (or
    `peer_trusted`: an HTTP front on the Unix socket), the nearest X-Forwarded-For entry that
    is not a trusted proxy. Read from the right: each trusted proxy appends the address it saw,
    so entries left of the first untrusted one may be made up by the client. "" when unknown.
    """
    address = parse_address(peer) if peer else None
    if not peer_trusted and (address is None or not any(address in n for n in trusted)):
        return str(address) if address is not None else ""
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        found = parse_address(hop)
        if found is None:
            break  # an entry we cannot read: the last proxy we trust is as far as we know
        address = found
        if not any(address in n for n in trusted):
            break
    return str(address) if address is not None else ""


def _plain(peer: str | None) -> str:
    """The TCP peer as the client (no proxy trusted): without parsing it, on the hot path."""
    if not peer:
        return ""
    if peer.startswith("::ffff:") and "." in peer:
        return peer[7:]  # IPv4 on a dual-stack socket
    return peer


def request_client(request: web.Request, trusted: Sequence[Network]) -> str:
    """The client address of an aiohttp request (see `client_address`)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    # A request on the gateway's Unix socket was passed on by an HTTP front, which appended
    # the address it saw to X-Forwarded-For.
    from_front = sock is not None and sock.family == socket.AF_UNIX
    if not trusted and not from_front:
        return _plain(request.remote)
    return client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        trusted,
        peer_trusted=from_front,
    )
