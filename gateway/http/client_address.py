"""Who is asking: the client address of a request, behind trusted proxies and HTTP fronts."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp import web

__all__ = ["Address", "Network", "client_address", "parse_address", "request_client"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> Address | None:
    """An address as a peer or an X-Forwarded-For entry writes it: `1.2.3.4`, `1.2.3.4:80`,
    `2001:db8::1`, `[2001:db8::1]:443`; None for anything else (`unknown`, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


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
