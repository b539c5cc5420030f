"""A pool's lease rules checked as a whole: timing that would break every lease, or a choice
the pool does not know, is refused.

Used for a pool from the config file or the admin API (both parsed as config) and for a pool
read back from the store (written by an older version, or by hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CHOICES", "TIMING_DEFAULTS", "WHEN_EXHAUSTED", "timing_problem"]

TIMING_DEFAULTS: Mapping[str, int] = {
    "heartbeat_seconds": 60,
    "grace_seconds": 900,
    "cooldown_seconds": 300,
    "attribution_window_seconds": 3600,
    "probation_seconds": 120,
    "amp_lease_seconds": 300,
    "min_cooldown_seconds": 0,
    "dial_delay_seconds": 0,
}

# What a pool with no rested number does; the first is the default (LeaseRules.when_exhausted).
WHEN_EXHAUSTED = ("reuse", "overflow")

# The pool's keys that are choices, not durations; timing_problem checks them too.
CHOICES = ("when_exhausted", "share_called_numbers")

# Ten years: longer is a typo, and lease times past the calendar's end fail every load.
_MAX_SECONDS = 10 * 365 * 24 * 3600
# swap.js times heartbeats with setTimeout, which fires at once past 2**31 ms (24.8 days).
_MAX_HEARTBEAT = 24 * 3600


def timing_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first key of `values` (missing keys take their defaults) that cannot work, with the
    reason, or None."""
    choice = values.get("when_exhausted", WHEN_EXHAUSTED[0])
    if choice not in WHEN_EXHAUSTED:
        return "when_exhausted", f"must be 'reuse' or 'overflow', got {choice!r}"
    # LeaseRules.share_called; a pool stored by hand may hold any JSON value here.
    share = values.get("share_called_numbers", True)
    if not isinstance(share, bool):
        return "share_called_numbers", f"must be true or false, got {share!r}"
    timing: dict[str, int] = {}
    for key, default in TIMING_DEFAULTS.items():
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            return key, f"must be a whole number of seconds, got {value!r}"
        if not 0 <= value <= _MAX_SECONDS:
            return key, f"must be 0-{_MAX_SECONDS} seconds (ten years), got {value}"
        timing[key] = value
    beat = timing["heartbeat_seconds"]
    if not 1 <= beat <= _MAX_HEARTBEAT:
        return "heartbeat_seconds", f"must be 1-{_MAX_HEARTBEAT} seconds (a day), got {beat}"
    if timing["grace_seconds"] < beat:
        return "grace_seconds", (
            f"({timing['grace_seconds']}) must be at least heartbeat_seconds ({beat}): "
            "every lease would end between two heartbeats"
        )
    if timing["probation_seconds"] < beat:
        return "probation_seconds", (
            f"({timing['probation_seconds']}) must be at least heartbeat_seconds ({beat}): "
            "every lease would end before its first heartbeat, one interval after it began"
        )
    if timing["min_cooldown_seconds"] > timing["cooldown_seconds"]:
        return "min_cooldown_seconds", (
            f"({timing['min_cooldown_seconds']}) must be at most cooldown_seconds "
            f"({timing['cooldown_seconds']}): the cooldown under pressure is the shorter one"
        )
    if timing["amp_lease_seconds"] < 1:
        return "amp_lease_seconds", "must be at least 1: an AMP page's number would be free at once"
    return None
