"""The TOML of a site's pool as the session and cluster benches configure it."""

from __future__ import annotations

import json

__all__ = ["pool_toml"]


def pool_toml(target: str, numbers: list[str]) -> str:
    """A site's pool as the benches configure it (TOML, after the site's own keys): leases
    that end a second after their last heartbeat and rest not at all, no limit per client."""
    return f"""[[sites.pools]]
target = "{target}"
numbers = {json.dumps(numbers)}
heartbeat_seconds = 1
grace_seconds = 1
probation_seconds = 1
cooldown_seconds = 0
# wrk is one address asking as fast as it can: no limit per client.
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
"""
