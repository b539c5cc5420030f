"""How many new sessions each client address and each site may open: no one client drains a
site's pool."""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime

import structlog

from gateway.config import LimitSettings
from gateway.metrics import Metrics
from numberpool.rate_limit import RateLimit

__all__ = [
    "ClientLimits",
    "RateLimited",
    "client_key",
]

log = structlog.get_logger()


_METRIC = "ctgw_sessions_limited_total"


class RateLimited(Exception):
    """This client (or the whole site) opened too many sessions just now."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))  # whole seconds, as Retry-After


# Kept here for gateway/http/client_address.py only: it moves there, so that an HTTP front
# reading client addresses loads no leasing code (client_key does not use it).
def client_key(client: str) -> str:
    """The key a client is limited by: its address (as `request_client` gives it); for IPv6 its
    /64, which one household or office holds whole (limiting single addresses of it would limit
    nothing)."""
    if ":" not in client:
        return client
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
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
