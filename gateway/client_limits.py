"""Who is asking (the client address behind trusted proxies), and how many new sessions each
client and each site may open: no one client drains a site's pool."""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Sequence
from datetime import datetime

import structlog
from aiohttp import web

from gateway.config import LimitSettings
from gateway.metrics import Metrics
from numberpool.rate_limit import RateLimit

__all__ = [
    "ClientLimits",
    "RateLimited",
    "client_address",
    "client_key",
    "request_client",
]

log = structlog.get_logger()

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_METRIC = "ctgw_sessions_limited_total"


class RateLimited(Exception):
    """This client (or the whole site) opened too many sessions just now."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))  # whole seconds, as Retry-After


def _address(text: str) -> Address | None:
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
    address = _address(peer) if peer else None
    if not peer_trusted and (address is None or not any(address in n for n in trusted)):
        return str(address) if address is not None else ""
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        found = _address(hop)
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


def client_key(client: str) -> str:
    """The key a client is limited by: its address; for IPv6 its /64, which one household or
    office holds whole (limiting single addresses of it would limit nothing)."""
    if ":" not in client:
        return client
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return client


class ClientLimits:
    """New sessions allowed per client address and per site, by each site's `limits`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._clients = RateLimit()
        self._sites = RateLimit()
        metrics.describe(_METRIC, "New sessions refused (429), by site and limit (client, site).")

    def admit(self, site: str, limits: LimitSettings, client: str, at: datetime) -> None:
        """Count a new session of `client` on `site`, or raise RateLimited (nothing counted)."""
        key = f"{site} {client_key(client)}"
        client_wait = self._clients.wait(key, at, limits.client_per_minute, limits.client_burst)
        site_burst = limits.site_burst or limits.site_per_minute
        site_wait = self._sites.wait(site, at, limits.site_per_minute, site_burst)
        if client_wait > 0.0 or site_wait > 0.0:
            which = "client" if client_wait >= site_wait else "site"
            self.metrics.inc(_METRIC, site=site, limit=which)
            log.debug("session_rate_limited", site=site, client=client, limit=which)
            if which == "client":
                raise RateLimited(
                    client_wait,
                    f"too many new sessions from {client or 'this client'} on this site just now;"
                    " the page keeps its own number until the next one",
                )
            raise RateLimited(
                site_wait,
                "too many new sessions on this site just now; the page keeps its own number",
            )
        self._clients.take(key, at, limits.client_per_minute)
        self._sites.take(site, at, limits.site_per_minute)

    def forget_idle(self, at: datetime) -> None:
        """Forget the clients and sites whose allowance is whole again."""
        self._clients.forget_full(at)
        self._sites.forget_full(at)
