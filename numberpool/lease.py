"""One lease of a tracking number, and the rules of how long leases live, rest and claim calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

__all__ = ["NO_TIME", "CallNote", "Lease", "LeaseRules"]

# The time of a call note whose time is not known: too old to keep anything claimable.
NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LeaseRules:
    """How long a lease lives and rests; defaults are the field-tested ones in PRODUCT.md."""

    heartbeat: timedelta = timedelta(seconds=60)
    grace: timedelta = timedelta(minutes=15)
    cooldown: timedelta = timedelta(minutes=5)
    attribution_window: timedelta = timedelta(minutes=60)
    # A session that never sends a heartbeat (a bot that runs scripts) holds its number only this
    # long; the first heartbeat extends the lease to the full grace.
    probation: timedelta = timedelta(minutes=2)
    # A page that cannot send heartbeats (AMP) holds its number this long (at most the grace):
    # its reader calls within minutes or not at all, and a later call is still matched to the
    # visit as probable while the number cools down and stays unleased.
    amp_lease: timedelta = timedelta(minutes=5)
    # A pool with no number rested the full cooldown: "reuse" leases the least risky cooling
    # number (never a live one), "overflow" serves the overflow number. Reusing keeps far more
    # calls attributed than the overflow number does (issue 11's figures).
    when_exhausted: str = "reuse"
    # Under pressure a cooling number may be leased again once it has rested this long: the
    # cooldown adapts, full while rested numbers exist, down to this when none do.
    min_cooldown: timedelta = timedelta(0)
    # A call this soon after a number's new holder got it goes to the previous holder (a visitor
    # needs time to read the number and dial it). Off by default: bench/attribution.py measured
    # 10 s costing far more on-page calls than it saved late ones (docs/decisions.md).
    dial_delay: timedelta = timedelta(0)
    # With "reuse": a number whose live holder already called may be leased to a second visitor
    # before a number whose silent last holder may still call (the holder's later calls come
    # from a phone the gateway knows; numberpool/slot.py). Off: never a live number.
    share_called: bool = True


class Lease(NamedTuple):
    """One number held by one session from `started_at` until `until` (exclusive).

    A named tuple rather than a dataclass: one is made per session, on the hot path.
    """

    lease_id: str
    pool_id: str
    number: str
    session_id: str
    visitor_id: str
    started_at: datetime
    last_seen: datetime
    until: datetime

    def live_at(self, at: datetime) -> bool:
        """Whether the lease covers the instant `at`."""
        return self.started_at <= at < self.until


class CallNote(NamedTuple):
    """A call on a number as it was decided: who it went to, from which phone, how sure, the
    rival visitor it could have been ('' when none), and when it came. Later calls weigh it
    (claims.py); the same phone's next call within the window may still go to its visitor."""

    caller: str
    visitor_id: str
    rival_id: str
    confidence: float
    at: datetime = NO_TIME

    def follows(self, caller: str, at: datetime, window: timedelta) -> bool:
        """Whether a call from `caller` at `at` is this one's repeat: the same known phone,
        within `window` after it."""
        return bool(caller) and caller == self.caller and timedelta(0) <= at - self.at <= window
