"""The call model of bench/attribution_traffic.py as a tracker that knew it would use it: how
likely a visit is to make its first call at an instant, from what a tracker can see by then.

What a tracker sees of a visit by time t: when it landed, its heartbeats so far (every HEARTBEAT
seconds while the page is open) and whether it has called (by caller id). Not the future: how
long the page will stay open, whether or when the visitor will call. The traffic's rules
(attribution_traffic.py): dwell 2-8 s for a quarter of the visits (bounces), else 5 s plus an
exponential of mean 35 s, at most 150 s; half the visits call, first call on the page
(55 %, uniform from landing + 2 s to closing), just after (25 %, from closing to the last
heartbeat + grace) or late (20 %, uniform over the 45 s after that). Repeat calls come from a
phone already seen, so they are not first calls.

`hazard_seen` integrates over the dwell times the heartbeats so far allow (what a real tracker
could compute); `hazard_closing` is told when the page closes (more than a tracker knows: used
only where a relaxation keeps a lower bound valid).
"""

from __future__ import annotations

import math

from bench.attribution_traffic import (
    BOUNCE_SHARE,
    CALL_KINDS,
    CALL_SHARE,
    GRACE,
    HEARTBEAT,
    MAX_DWELL,
    MEAN_DWELL,
    WINDOW,
)

__all__ = ["first_call", "hazard_closing", "hazard_seen", "silent_share"]

_KIND = dict(CALL_KINDS)
P_IN = CALL_SHARE * _KIND["in_session"]
P_AFTER = CALL_SHARE * _KIND["just_after"]
P_LATE = CALL_SHARE * _KIND["late"]
LATE_SPAN = WINDOW - GRACE
_STEP = 0.05  # dwell grid, seconds


def _last_beat(dwell: float) -> float:
    """Seconds from landing to the last heartbeat (0 when none)."""
    return HEARTBEAT * math.floor(dwell / HEARTBEAT)


def first_call(dwell: float, u: float) -> tuple[float, float]:
    """(density of the first call at u seconds after landing, probability it comes after u),
    for a page open `dwell` seconds."""
    s_in = min(2.0, dwell)
    last = _last_beat(dwell)
    after_end = last + GRACE
    density = 0.0
    later = 1.0 - CALL_SHARE  # never calls
    # on the page: [s_in, dwell)
    span = dwell - s_in
    if span > 0:
        if s_in <= u < dwell:
            density += P_IN / span
        later += P_IN * min(1.0, max(0.0, (dwell - u) / span))
    elif u < dwell:
        later += P_IN
    span = after_end - dwell
    if dwell <= u < after_end:
        density += P_AFTER / span
    later += P_AFTER * min(1.0, max(0.0, (after_end - u) / span))
    if after_end <= u < after_end + LATE_SPAN:
        density += P_LATE / LATE_SPAN
    later += P_LATE * min(1.0, max(0.0, (after_end + LATE_SPAN - u) / LATE_SPAN))
    return density, later


def hazard_closing(dwell: float, u: float) -> float:
    """The first call's hazard at u seconds after landing, knowing the page's dwell."""
    density, later = first_call(dwell, u)
    return density / later if later > 0 else 0.0


def _dwell_prior(d: float) -> float:
    bounce = BOUNCE_SHARE / 6.0 if 2.0 <= d < 8.0 else 0.0
    stay = 0.0
    if 5.0 <= d < MAX_DWELL:
        stay = (1 - BOUNCE_SHARE) * math.exp(-(d - 5.0) / MEAN_DWELL) / MEAN_DWELL
    return bounce + stay


def _grid() -> list[tuple[float, float]]:
    out = []
    d = 2.0 + _STEP / 2
    while d < MAX_DWELL:
        out.append((d, _dwell_prior(d) * _STEP))
        d += _STEP
    # the cap: every longer stay is 150 s
    out.append((MAX_DWELL, (1 - BOUNCE_SHARE) * math.exp(-(MAX_DWELL - 5.0) / MEAN_DWELL)))
    return out


_GRID = _grid()


def hazard_seen(u: float, beats: int, closed: bool) -> float:
    """The first call's hazard u seconds after landing, for a silent visit that sent `beats`
    heartbeats so far; `closed`: a heartbeat was due and did not come (the page closed
    between the last one and that one)."""
    low = HEARTBEAT * beats
    high = HEARTBEAT * (beats + 1) if closed else math.inf
    num = den = 0.0
    for dwell, weight in _GRID:
        if low <= dwell < high:
            density, later = first_call(dwell, u)
            num += weight * density
            den += weight * later
    return num / den if den > 0 else 0.0


def silent_share(u: float, beats: int, closed: bool) -> float:
    """How likely a visit seen so is still to make its first call at or after u (given it has
    made none): 1 - P(never calls | silent so far)."""
    low = HEARTBEAT * beats
    high = HEARTBEAT * (beats + 1) if closed else math.inf
    later_total = never = 0.0
    for dwell, weight in _GRID:
        if low <= dwell < high:
            _, later = first_call(dwell, u)
            later_total += weight * later
            never += weight * (1.0 - CALL_SHARE)
    return 1.0 - never / later_total if later_total > 0 else 0.0
