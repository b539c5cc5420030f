"""Webhook settings: the `[webhooks]` section and each site's `[[sites.webhooks]]` endpoints
(their semantic checks too, called once from gateway/config.py)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config_error import ConfigError

__all__ = [
    "EVENT_TYPES",
    "MIN_SECRET_CHARS",
    "WebhookEndpointSettings",
    "WebhookSettings",
    "check_webhooks",
    "config_endpoint_id",
    "endpoint_problem",
    "webhooks_problem",
]

# Every event a webhook endpoint may ask for (docs/webhooks.md describes each).
EVENT_TYPES = ("call.started", "call.updated", "call.completed", "contact.updated", "task.created")
MIN_SECRET_CHARS = 16
_MAX_URL = 2000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WebhookEndpointSettings:
    url: str = field(default="", metadata={"help": "https:// URL the events are POSTed to"})
    secret: str = field(
        default="", metadata={"help": f"signing secret, at least {MIN_SECRET_CHARS} characters"}
    )
    events: list[str] = field(
        default_factory=lambda: list(EVENT_TYPES),
        metadata={"help": "event types sent (default: all)"},
    )


@dataclass(frozen=True)
class WebhookSettings:
    enabled: bool = field(default=True, metadata={"help": "run the webhook sender"})
    allow_private_networks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "networks a webhook may reach that are not public, e.g. 10.0.0.0/8 "
            "(loopback, link-local and private addresses are refused otherwise)"
        },
    )
    timeout_seconds: int = field(default=10, metadata={"help": "time one delivery may take"})
    concurrency: int = field(default=8, metadata={"help": "deliveries in flight at once"})
    first_retry_seconds: int = field(
        default=10, metadata={"help": "wait before the first retry (doubles with each failure)"}
    )
    max_retry_seconds: int = field(default=600, metadata={"help": "longest wait between retries"})
    give_up_hours: int = field(
        default=24, metadata={"help": "a delivery not made within this time is parked"}
    )
    keep_delivered_days: int = field(
        default=30,
        metadata={"help": "events delivered to every endpoint (or to none) are kept this long"},
    )
    keep_parked_days: int = field(
        default=90,
        metadata={"help": "a parked delivery (and its event) is kept this long, then deleted"},
    )

    def allowed_networks(self) -> tuple[Network, ...]:
        """The non-public networks webhooks may reach (checked by webhooks_problem)."""
        return tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in self.allow_private_networks
        )


def config_endpoint_id(site: str, url: str) -> str:
    """The stable id of an endpoint from the config file (same site and URL, same id)."""
    return "cfg-" + hashlib.sha256(f"{site}\n{url}".encode()).hexdigest()[:16]


def endpoint_problem(url: str, secret: str | None, events: list[str]) -> str | None:
    """Why an endpoint cannot be used (None when it can): its URL, secret or events."""
    if len(url) > _MAX_URL:
        return f"url is longer than {_MAX_URL} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url {url!r} must be an http:// or https:// URL with a host"
    if parts.username or parts.password:
        return "url must not hold a user name or password (the signature authenticates us)"
    if secret is not None and len(secret) < MIN_SECRET_CHARS:
        return f"secret must be at least {MIN_SECRET_CHARS} characters"
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        return f"unknown event {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})"
    if not events:
        return "events must name at least one event"
    return None


def webhooks_problem(config: Any) -> str | None:
    """The first problem of the webhook settings of a Config, as 'key: reason' (or None)."""
    hooks: WebhookSettings = config.webhooks
    for i, net in enumerate(hooks.allow_private_networks):
        try:
            ipaddress.ip_network(net.strip(), strict=False)
        except ValueError:
            return (
                f"'webhooks.allow_private_networks[{i}]': {net!r} is not a network like 10.0.0.0/8"
            )
    for key in (
        "timeout_seconds",
        "concurrency",
        "first_retry_seconds",
        "give_up_hours",
        "keep_delivered_days",
    ):
        if getattr(hooks, key) == 0:
            return f"'webhooks.{key}' must be at least 1"
    if hooks.keep_parked_days < hooks.keep_delivered_days:
        return "'webhooks.keep_parked_days' must be at least keep_delivered_days"
    if hooks.max_retry_seconds < hooks.first_retry_seconds:
        return "'webhooks.max_retry_seconds' must be at least first_retry_seconds"
    for i, site in enumerate(config.sites):
        seen: set[str] = set()
        for j, hook in enumerate(site.webhooks):
            problem = endpoint_problem(hook.url, hook.secret, hook.events)
            if problem:
                return f"'sites[{i}].webhooks[{j}]': {problem}"
            if hook.url in seen:
                return f"'sites[{i}].webhooks[{j}]': url {hook.url!r} is listed twice"
            seen.add(hook.url)
    return None


def check_webhooks(config: Any) -> None:
    """Raise the config's ConfigError for the first problem of its webhook settings."""
    problem = webhooks_problem(config)
    if problem:
        raise ConfigError(f"{config.source}: {problem}")
