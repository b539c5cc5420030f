"""Which of the visits that could claim a call on a pool number gets it, and how sure that is.

Candidates are a number's live lease and the leases ended within the attribution window, newest
first (`Pool.candidates_at`). One visitor's consecutive leases (a returning visitor's sessions)
are one claim. The newest claim's rival is the claim before it when the number went from one to
the other before the full cooldown (reused under pressure) or the call came within the dial
delay of the newest holder getting the number; a number that rested its full cooldown is not
contested, as before issue 11. The decision, in order:

1. a claim whose visitor is in `known_visitors` (the caller called before from that visit) wins,
   confidence KNOWN (0.9);
2. the newest claim began less than `dial_delay` before the call: the rival wins, confidence
   0.5 + 0.45 * (1 - held / dial_delay) (0.95 right at the new lease's start, 0.5 at the delay);
3. otherwise the newest claim wins: against a rival, 0.5 + 0.45 * min(1, since / window) where
   `since` is how long ago the rival's lease ended (a coin toss as it leaves, 0.95 at the
   window's edge); alone and live, 1.0 (`active`); alone and ended, 0.95 - 0.45 * since / window
   (0.95 as it ends, 0.5 at the window's edge).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime, timedelta
from typing import NamedTuple

from numberpool.lease import Lease, LeaseRules

__all__ = ["KNOWN", "Claim", "decide"]

KNOWN = 0.9  # the caller's own earlier call points at the visit: strong, not certain


class Claim(NamedTuple):
    """The lease a call goes to, how sure, and the rival lease that could claim it too."""

    lease: Lease
    confidence: float
    rival: Lease | None = None


class _Run(NamedTuple):
    """One visitor's consecutive leases of a number: the newest, and when the first began."""

    lease: Lease
    since: datetime


def _runs(candidates: Sequence[Lease]) -> list[_Run]:
    runs: list[_Run] = []
    for lease in candidates:
        if runs and runs[-1].lease.visitor_id == lease.visitor_id:
            runs[-1] = runs[-1]._replace(since=lease.started_at)
        else:
            runs.append(_Run(lease, lease.started_at))
    return runs


def _fraction(part: timedelta, whole: timedelta) -> float:
    """part / whole clamped to 0..1; a zero `whole` counts as fully elapsed."""
    if whole <= timedelta(0):
        return 1.0
    return min(1.0, max(0.0, part / whole))


def decide(
    candidates: Sequence[Lease],
    at: datetime,
    rules: LeaseRules,
    known_visitors: Set[str] = frozenset(),
) -> Claim | None:
    """The claim a call at `at` goes to, from `Pool.candidates_at`; None when nobody's."""
    runs = _runs(candidates)
    if not runs:
        return None
    newest = runs[0]
    held = at - newest.since
    contested = len(runs) > 1 and (
        newest.since - runs[1].lease.until < rules.cooldown or held < rules.dial_delay
    )
    rival = runs[1] if contested else None
    known = next((run for run in runs if run.lease.visitor_id in known_visitors), None)
    if known is not None and (known is not newest or rival is not None):
        other = newest if known is not newest else rival
        return Claim(known.lease, KNOWN, other.lease if other else None)
    window = rules.attribution_window
    if rival is None:
        if newest.lease.live_at(at):
            return Claim(newest.lease, 1.0)
        return Claim(newest.lease, 0.95 - 0.45 * _fraction(at - newest.lease.until, window))
    if held < rules.dial_delay:
        hardly = 1 - _fraction(held, rules.dial_delay)
        return Claim(rival.lease, 0.5 + 0.45 * hardly, newest.lease)
    since = at - rival.lease.until
    return Claim(newest.lease, 0.5 + 0.45 * _fraction(since, window), rival.lease)
