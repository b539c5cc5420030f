"""One delivery attempt: a signed POST with a bounded time, no redirect followed, to an
address the guard allows. Its outcome is an `Attempt`; it never raises for the receiver's
faults."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

import aiohttp
from yarl import URL

from gateway.webhooks.address_guard import AddressRefused, GuardedResolver, literal_problem

__all__ = ["Attempt", "open_session", "post_event"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Enough of an answer's body to say what went wrong; the rest is not read.
_MAX_ANSWER = 65536


class Attempt(NamedTuple):
    """What one POST came to: `ok` for a 2xx answer read in full."""

    ok: bool
    status: int | None
    error: str


def open_session(allowed: Sequence[Network], concurrency: int) -> aiohttp.ClientSession:
    """The client every delivery goes through: the guard's resolver, no cookies, no proxies
    from the environment."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allowed),
        limit=concurrency,
        ttl_dns_cache=30,
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
    )


async def post_event(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    allowed: Sequence[Network],
) -> Attempt:
    """POST one event; 2xx is delivered, anything else (a 3xx too) is a failure to retry."""
    host = URL(url).host or ""
    refused = literal_problem(host, allowed)
    if refused:
        return Attempt(False, None, refused)
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 5.0))
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as resp:
            await _read_answer(resp)
            if 200 <= resp.status < 300:
                return Attempt(True, resp.status, "")
            if 300 <= resp.status < 400:
                where = resp.headers.get("Location", "")[:200]
                return Attempt(
                    False, resp.status, f"HTTP {resp.status} redirect to {where!r} not followed"
                )
            return Attempt(False, resp.status, f"HTTP {resp.status} {resp.reason or ''}".strip())
    except TimeoutError:
        return Attempt(False, None, f"no answer within {timeout_s:g} s")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressRefused):
            return Attempt(False, None, str(exc.os_error))
        return Attempt(False, None, f"cannot connect: {exc.os_error.strerror or exc.os_error}")
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        return Attempt(False, None, f"connection failed: {type(exc).__name__}: {exc}"[:300])


async def _read_answer(resp: aiohttp.ClientResponse) -> None:
    """Read the answer to its end (a connection closed mid-answer raises), keeping none of it
    and stopping after enough to know the receiver is talking."""
    seen = 0
    while seen < _MAX_ANSWER:
        chunk = await resp.content.read(_MAX_ANSWER)
        if not chunk:
            return
        seen += len(chunk)
