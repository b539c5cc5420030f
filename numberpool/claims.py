"""Which of the visits that could claim a call on a pool number gets it, and how sure that is.

Candidates are a number's live lease and the leases ended within the attribution window, newest
first, then those the caller's repeat call may follow (`Pool.candidates_at`). One visitor's
consecutive leases (a returning visitor's sessions) are one claim. The newest claim's rival is
the claim before it when the number went from one to the other before the full cooldown
(reused under pressure), the call came within the dial delay of the newest holder getting the
number, or the newest holder has called already from another phone; a number that rested its
full cooldown is otherwise not contested, as before issue 11. The decision, in order:

1. a claim whose visitor is in `known_visitors` (the caller called before from that visit) wins,
   confidence KNOWN (0.9). So does a lease that ended more than the window ago when this
   caller's call on the number went to its visitor within the window (`CallNote.follows`: the
   window restarts at each call of that phone), the newest claim as its rival; from any other
   phone such a lease claims nothing;
2. against a rival, the odds of the newest claim: within `dial_delay` of the new lease,
   0.5 - 0.45 * (1 - held / dial_delay) (the holder who just left is the likelier caller);
   after it, 0.5 + 0.45 * min(1, since / window), `since` how long ago the rival's lease ended
   (a coin toss as it leaves, 0.95 at the window's edge). Each side's odds are then weighed
   by how likely that visitor already called from another phone than this caller's (`notes`:
   earlier calls count with the confidence they were decided with): a visitor who surely did
   keeps SECOND_PHONE of its odds. The heavier side wins, confidence its share;
3. alone and live, 1.0 (`active`); alone and ended, 0.95 - 0.45 * since / window (0.95 as it
   ends, 0.5 at the window's edge), at least KNOWN when the caller's earlier call went to it
   (as just past the window: the confidence does not drop at the window's edge).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime, timedelta
from typing import NamedTuple

from numberpool.lease import CallNote, Lease, LeaseRules

__all__ = ["KNOWN", "SECOND_PHONE", "Claim", "decide"]

KNOWN = 0.9  # the caller's own earlier call points at the visit: strong, not certain
# A visitor who surely called from one phone calls from another this much less often.
SECOND_PHONE = 0.1


class Claim(NamedTuple):
    """The lease a call goes to, how sure, and the rival lease that could claim it too.

    `doubt` is the earlier holder the call may still have been, even when the number rested
    its cooldown (no rival reported), and `odds` how likely the call was `lease`'s all the
    same: what a later call weighs this one by (CallNote), never shown as the confidence."""

    lease: Lease
    confidence: float
    rival: Lease | None = None
    doubt: Lease | None = None
    odds: float = 1.0


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


def _past(lease: Lease, at: datetime, window: timedelta) -> bool:
    """Whether the lease ended more than the attribution window before `at`."""
    return lease.until <= at and at - lease.until > window


def _followed(
    lease: Lease, caller: str, at: datetime, window: timedelta, notes: Sequence[CallNote]
) -> bool:
    """Whether a call from `caller` at `at` repeats one of its calls that went to the lease's
    visitor within the window (a claim past the window for that phone only)."""
    return any(n.visitor_id == lease.visitor_id and n.follows(caller, at, window) for n in notes)


def _called_elsewhere(visitor_id: str, caller: str, notes: Sequence[CallNote]) -> float:
    """How likely the visitor already called from another phone than `caller`'s: each earlier
    call from another phone was theirs with its confidence (or 1 - it, if they were its rival)."""
    if not caller:
        return 0.0
    not_yet = 1.0
    for note in notes:
        if note.caller == caller:
            continue
        if note.visitor_id == visitor_id:
            not_yet *= 1.0 - note.confidence
        elif note.rival_id == visitor_id:
            not_yet *= note.confidence
    return 1.0 - not_yet


def decide(
    candidates: Sequence[Lease],
    at: datetime,
    rules: LeaseRules,
    known_visitors: Set[str] = frozenset(),
    *,
    caller: str = "",
    notes: Sequence[CallNote] = (),
) -> Claim | None:
    """The claim a call at `at` from `caller` goes to, from `Pool.candidates_at`; None when
    nobody's. `notes`: the earlier calls from known phones on the number (Pool.calls_on)."""
    window = rules.attribution_window
    runs = [
        run
        for run in _runs(candidates)
        if not _past(run.lease, at, window) or _followed(run.lease, caller, at, window, notes)
    ]
    if not runs:
        return None
    newest = runs[0]
    held = at - newest.since
    elsewhere = _called_elsewhere(newest.lease.visitor_id, caller, notes)
    contested = len(runs) > 1 and (
        newest.since - runs[1].lease.until < rules.cooldown
        or held < rules.dial_delay
        or elsewhere > 0.0
    )
    rival = runs[1] if contested else None
    known = next(
        (
            r
            for r in runs
            if r.lease.visitor_id in known_visitors or _followed(r.lease, caller, at, window, notes)
        ),
        None,
    )
    if known is not None and (
        known is not newest or rival is not None or _past(known.lease, at, window)
    ):
        other = newest if known is not newest else rival
        other_lease = other.lease if other else None
        return Claim(known.lease, KNOWN, other_lease, other_lease, KNOWN)
    if rival is None:
        sure = (
            1.0
            if newest.lease.live_at(at)
            else 0.95 - 0.45 * _fraction(at - newest.lease.until, window)
        )
        if known is newest:
            sure = max(sure, KNOWN)  # the caller's own earlier call points at it too
        if len(runs) == 1:
            return Claim(newest.lease, sure, odds=sure)
        # Rested its cooldown: not contested, yet the holder before may still call within the
        # window; a later call weighs this one as the coin it was.
        before = runs[1].lease
        odds = 0.5 + 0.45 * _fraction(at - before.until, window)
        return Claim(newest.lease, sure, doubt=before, odds=odds)
    early = held < rules.dial_delay
    if early:
        newest_odds = 0.5 - 0.45 * (1 - _fraction(held, rules.dial_delay))
    else:
        newest_odds = 0.5 + 0.45 * _fraction(at - rival.lease.until, window)
    # Weighed by how likely each already called from another phone: people call again from
    # the phone they called from, so such a candidate keeps SECOND_PHONE of its odds.
    mine = newest_odds * (1 - (1 - SECOND_PHONE) * elsewhere)
    theirs = (1 - newest_odds) * (
        1 - (1 - SECOND_PHONE) * _called_elsewhere(rival.lease.visitor_id, caller, notes)
    )
    if theirs > mine or (theirs == mine and early):
        share = theirs / (mine + theirs)
        return Claim(rival.lease, share, newest.lease, newest.lease, share)
    share = mine / (mine + theirs)
    return Claim(newest.lease, share, rival.lease, rival.lease, share)
