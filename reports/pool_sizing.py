"""Pool sizing from a site's own traffic: a period's sessions and calls replayed against
candidate pool sizes with the real `Pool` and `Site`, the calls judged where their visit is known.

A call's true visit is known when its record credits an `active` lease (the caller dialed the
number while that session held it), or credits a session of the visitor the same caller reached
on an active call. In the replay that session dials the number the replay showed it: right when
the replayed attribution names the same visitor, wrong when another, unattributed when it saw the
overflow number or nobody is credited. A call on the overflow number is judged as made by an
overflowed visit on the page then (pool_replay.overflow_visits): it is the demand of the busiest
moments, which a bigger pool or another policy must serve. Other calls are counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from numberpool.pool import LeaseRules
from reports.late_calls import LateWindows, expected_late_wrong
from reports.pool_replay import (
    CallTrace,
    SessionTrace,
    SizeFigures,
    overflow_visits,
    replay,
    true_sessions,
)

__all__ = [
    "MAX_SIZE",
    "NO_SHARING",
    "POLICIES",
    "SHARING",
    "TARGET_RIGHT",
    "CallTrace",
    "SessionTrace",
    "SizeFigures",
    "SizingReport",
    "describe",
    "parse_moment",
    "parse_sizes",
    "policies_for",
    "policy_rules",
    "replay",
    "size_pool",
]

TARGET_RIGHT = 0.99
MAX_SIZE = 100_000
_MAX_SIZES = 20


def parse_sizes(text: str) -> list[int]:
    """Candidate sizes written '10,20,40'; ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    # int() would also take '1_0' and other scripts' digits.
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts):
        raise ValueError(f"must be pool sizes joined by commas, e.g. 10,20,40 (1-{MAX_SIZE})")
    sizes = sorted({int(p) for p in parts})
    if sizes[0] < 1 or sizes[-1] > MAX_SIZE or len(sizes) > _MAX_SIZES:
        raise ValueError(f"must be at most {_MAX_SIZES} pool sizes, each 1-{MAX_SIZE}")
    return sizes


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or time, in UTC when it names no zone; ValueError when it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-01-31 or 2026-01-31T00:00:00Z"
        ) from None


# The policy keys besides the pool's own `when_exhausted`: "reuse" with sharing a called number
# switched the other way than the pool has it (LeaseRules.share_called).
SHARING = "reuse_sharing"
NO_SHARING = "reuse_no_sharing"
POLICIES = ("reuse", SHARING, NO_SHARING, "overflow")


def policies_for(rules: LeaseRules) -> dict[str, LeaseRules]:
    """The policies a pool is replayed under: its own rules first, then "reuse" (the pool's
    reuse rules, sharing as the pool says), the same with sharing switched, and "overflow"."""
    reuse = replace(rules, when_exhausted="reuse")
    switched = NO_SHARING if rules.share_called else SHARING
    policies = {rules.when_exhausted: rules, "reuse": reuse}
    policies[switched] = replace(reuse, share_called=not rules.share_called)
    policies.setdefault("overflow", replace(rules, when_exhausted="overflow"))
    return policies


def policy_rules(rules: LeaseRules) -> dict[str, object]:
    """What a policy does, as the pool's config keys say it (sharing only ever with "reuse")."""
    reuse = rules.when_exhausted == "reuse"
    return {
        "when_exhausted": rules.when_exhausted,
        "share_called_numbers": reuse and rules.share_called,
    }


def describe(policy: Mapping[str, object]) -> str:
    """A policy_rules entry in words, for the text report."""
    if policy.get("when_exhausted") != "reuse":
        return "the overflow number when no number rested"
    if policy.get("share_called_numbers"):
        return "reuse cooling numbers, share live ones whose holder called"
    return "reuse cooling numbers, never a live one"


@dataclass(frozen=True)
class SizingReport:
    """The replay of one pool's period: figures per policy and size, the smallest that works."""

    pool_id: str
    since: datetime
    until: datetime
    current_size: int
    calls: int
    judged_calls: int
    overflow_calls: int  # dialed the overflow number: their visit is unknown
    unknown_calls: int  # on a pool number, no visit the history can vouch for
    inferred_calls: int = 0  # overflow calls judged as made by an overflowed visit then
    late_calls: int = 0  # late calls the history shows, that size the hidden ones
    figures: list[SizeFigures] = field(default_factory=list)
    smallest: dict[str, int | None] = field(default_factory=dict)
    target: float = TARGET_RIGHT
    # What each policy key means for this pool (policy_rules), in the order replayed.
    policies: dict[str, dict[str, object]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "pool_id": self.pool_id,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "current_size": self.current_size,
            "calls": self.calls,
            "judged_calls": self.judged_calls,
            "overflow_calls": self.overflow_calls,
            "unknown_calls": self.unknown_calls,
            "inferred_calls": self.inferred_calls,
            "late_calls": self.late_calls,
            "target_right": self.target,
            "policies": self.policies,
            "smallest_size": self.smallest,
            "sizes": [f.as_dict() for f in self.figures],
        }

    def lines(self) -> list[str]:
        """The report as text, a line per policy and size."""
        out = [
            f"sizing {self.pool_id} {self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M}"
            f"\tsize now {self.current_size}\tcalls {self.calls}\tjudged {self.judged_calls}"
            f"\ton overflow {self.overflow_calls} ({self.inferred_calls} judged as an overflowed"
            f" visit's)\tvisit unknown {self.unknown_calls}"
        ]
        if self.policies:
            out.append(
                "  policies\t"
                + "\t".join(f"{name}: {describe(rules)}" for name, rules in self.policies.items())
            )
        for f in self.figures:
            shares = "\t".join(
                f"{name} {'-' if s is None else format(s, '.1%')}"
                for name, s in (
                    ("right", f.right_share),
                    ("wrong", f.wrong_share),
                    ("unattributed", f.share(f.unattributed)),
                )
            )
            out.append(
                f"  {f.policy}\tsize {f.size}\tcost {f.size} numbers\t{shares}"
                f"\tpeak live {f.peak_live}\tpeak live+cooling {f.peak_busy}"
                f"\toverflowed {f.overflowed}/{f.sessions}\treused {f.reused}\tshared {f.shared}"
            )
        for policy, size in self.smallest.items():
            found = "none within reach" if size is None else f"{size} numbers"
            if not self.judged_calls:
                found = "unknown (no call with a known visit)"
            out.append(f"  smallest size for {self.target:.0%} right ({policy}): {found}")
        return out


def size_pool(
    pool_id: str,
    sessions: Sequence[SessionTrace],
    calls: Sequence[CallTrace],
    policies: Mapping[str, LeaseRules],
    *,
    since: datetime,
    until: datetime,
    current_size: int,
    sizes: Sequence[int] = (),
    target: float = TARGET_RIGHT,
    pace: Callable[[], None] | None = None,
) -> SizingReport:
    """Replay the period at each size (default: around the peak and today's size) and policy,
    and search each policy's smallest size reaching `target` right."""
    ordered = sorted(sessions, key=lambda s: (s.started_at, s.session_id))
    known = true_sessions(calls, (s.session_id for s in ordered))
    grace = next(iter(policies.values())).grace if policies else timedelta(0)
    inferred = overflow_visits(calls, ordered, grace)
    truth = [k or i for k, i in zip(known, inferred, strict=True)]
    judged = sum(1 for t in truth if t)
    # The history as it ran (the pool's own size and rules) shows the late calls that found
    # their number still resting: their rate per open window sizes the hidden ones.
    late = None
    if current_size and policies:
        history = replay(ordered, calls, current_size, next(iter(policies.values())), truth=truth)
        late = (history.late, history.late_seen)
    report = SizingReport(
        pool_id,
        since,
        until,
        current_size,
        calls=len(calls),
        judged_calls=judged,
        overflow_calls=sum(1 for c in calls if c.on_overflow),
        unknown_calls=sum(
            1 for c, t in zip(calls, truth, strict=True) if not t and not c.on_overflow
        ),
        inferred_calls=sum(1 for i in inferred if i),
        late_calls=sum(late[1]) if late else 0,
        target=target,
        policies={name: policy_rules(rules) for name, rules in policies.items()},
    )
    for policy, rules in policies.items():
        at_size = _Replays(ordered, calls, truth, rules, policy, pace, late)
        wanted = list(sizes) or _default_sizes(at_size(max(len(ordered), 1)), current_size)
        tried = [at_size(n) for n in wanted]
        smallest = _smallest(at_size, tried, len(ordered), target) if judged else None
        report.smallest[policy] = smallest
        shown = sorted({*wanted, *([smallest] if smallest and not sizes else [])})
        report.figures.extend(at_size(n) for n in shown)
    return report


class _Replays:
    """One policy's replays, each size replayed once."""

    def __init__(
        self,
        sessions: Sequence[SessionTrace],
        calls: Sequence[CallTrace],
        truth: Sequence[str],
        rules: LeaseRules,
        policy: str,
        pace: Callable[[], None] | None,
        late: tuple[LateWindows, tuple[int, ...]] | None,
    ) -> None:
        self._args = (sessions, calls)
        self._late = late
        self._truth = truth
        self._rules = rules
        self._policy = policy
        self._pace = pace
        self._done: dict[int, SizeFigures] = {}

    def __call__(self, size: int) -> SizeFigures:
        if size not in self._done:
            self._done[size] = replay(
                *self._args,
                size,
                self._rules,
                policy=self._policy,
                truth=self._truth,
                pace=self._pace,
            )
            done = self._done[size]
            if self._late:
                expected = expected_late_wrong(*self._late, done.late)
                self._done[size] = replace(done, late_wrong=expected - done.late_seen_wrong)
        return self._done[size]


def _default_sizes(unlimited: SizeFigures, current_size: int) -> list[int]:
    """Today's size and multiples of the peak live leases (the issue's 0.8x to 2x)."""
    peak = max(unlimited.peak_live, 1)
    multiples = {max(1, math.ceil(peak * m)) for m in (0.8, 1.0, 1.2, 1.5, 2.0)}
    return sorted({*multiples, unlimited.peak_busy, *([current_size] if current_size else [])})


def _smallest(
    at_size: Callable[[int], SizeFigures], tried: list[SizeFigures], most: int, target: float
) -> int | None:
    """The smallest size whose right share reaches `target`: bisection between the largest
    size tried that misses it and the smallest that reaches it (up to a number per session)."""
    good = [f.size for f in tried if _reaches(f, target)]
    high = min(good) if good else max(most, 1)
    if not good and not _reaches(at_size(high), target):
        return None
    low = max((f.size for f in tried if f.size < high and not _reaches(f, target)), default=0)
    while high - low > 1:
        middle = (low + high) // 2
        if _reaches(at_size(middle), target):
            high = middle
        else:
            low = middle
    return high


def _reaches(figures: SizeFigures, target: float) -> bool:
    share = figures.right_share
    return share is not None and share >= target
