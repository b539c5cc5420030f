"""Where webhooks may connect: public addresses only, unless the config allows a network
(SSRF). The check runs on the addresses the connection is really made to: the resolver hands
aiohttp only the allowed ones, and a URL that names an IP address is checked as it is."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

__all__ = [
    "AddressRefused",
    "GuardedResolver",
    "address_problem",
    "is_ip_literal",
    "literal_problem",
    "url_refusal",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HINT = "allow its network in [webhooks] allow_private_networks if that is meant"


class AddressRefused(OSError):
    """A webhook host that is, or resolves only to, an address webhooks may not reach."""


def _kind(ip: IpAddress) -> str | None:
    """What makes an address one webhooks may not reach by default (None: public)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _kind(ip.ipv4_mapped)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def address_problem(text: str, allowed: Sequence[Network]) -> str | None:
    """Why webhooks may not connect to the address `text` (None when they may)."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"{text!r} is not an IP address"
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    kind = _kind(ip)
    return None if kind is None else f"{ip}, a {kind} address"


def is_ip_literal(host: str) -> bool:
    """Whether a URL's host is an IP address (aiohttp connects to it without resolving)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def literal_problem(host: str, allowed: Sequence[Network]) -> str | None:
    """For a URL host that is an IP address, why it is refused (None: allowed, or a name)."""
    if not is_ip_literal(host):
        return None  # a name: the resolver checks what it resolves to
    problem = address_problem(host.strip("[]"), allowed)
    return None if problem is None else f"webhook host is {problem}: refused ({_HINT})"


class GuardedResolver(AbstractResolver):
    """The system resolver, keeping only the addresses webhooks may connect to."""

    def __init__(self, allowed: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self._allowed = tuple(allowed)
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if address_problem(r["host"], self._allowed) is None]
        if not kept:
            reason = address_problem(found[0]["host"], self._allowed) if found else "no address"
            raise AddressRefused(f"webhook host {host} resolves to {reason}: refused ({_HINT})")
        return kept

    async def close(self) -> None:
        await self._inner.close()


async def url_refusal(url: str, allowed: Sequence[Network], timeout_s: float = 5.0) -> str | None:
    """Why a new endpoint's URL is refused (None: it may be used): its host is, or resolves
    to, a refused address, or does not resolve. Deliveries check again, each time."""
    host = URL(url).host or ""
    problem = literal_problem(host, allowed)
    if problem or is_ip_literal(host):
        return problem
    resolver = GuardedResolver(allowed)
    try:
        async with asyncio.timeout(timeout_s):
            await resolver.resolve(host, 0, socket.AF_UNSPEC)
    except AddressRefused as exc:
        return str(exc)
    except (OSError, TimeoutError):
        return f"webhook host {host} does not resolve"
    finally:
        await resolver.close()
    return None
