"""The replay of a pool's stored sessions and calls at one size, with the real `Pool` and `Site`
and an injected clock (the events' own times); reports/pool_sizing.py runs it per size and policy.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from numberpool.pool import LeaseRules, Pool
from numberpool.site import AttributionKind, Site
from reports.late_calls import AGE_SLICES, LateWindows, age_slice, late_windows

__all__ = [
    "CallTrace",
    "SessionTrace",
    "SizeFigures",
    "overflow_visits",
    "replay",
    "true_sessions",
]

_OVERFLOW = "overflow"
# Events between two prunes of the pool and two calls of `pace` (the caller's chance to yield).
_PACE_EVERY = 2048
_START, _BEAT, _CALL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SessionTrace:
    """A stored session that asked the pool for a number (shown one, or its overflow number)."""

    session_id: str
    visitor_id: str
    started_at: datetime
    last_seen: datetime  # its last heartbeat; its start when it sent none
    heartbeated: bool
    overflowed: bool = False  # the page was shown the overflow number, not one of the pool


@dataclass(frozen=True, slots=True)
class CallTrace:
    """A stored call on one of the pool's numbers or on its overflow number."""

    at: datetime
    on_overflow: bool
    kind: str  # the stored attribution kind
    session_id: str = ""  # the session the stored record credits
    visitor_id: str = ""
    caller: str = ""
    # The stored decision named a rival visit: the record's visit is a judgement, not a fact.
    contested: bool = False
    rival_visitor: str = ""  # that rival's visitor, when the store says


@dataclass(frozen=True, slots=True)
class SizeFigures:
    """What the replay at one pool size and policy expects of the calls with a known visit."""

    policy: str
    size: int  # also its cost, in numbers
    right: int
    wrong: int
    unattributed: int
    sessions: int
    overflowed: int  # sessions the replay showed the overflow number
    reused: int  # leases of a number still cooling (policy "reuse")
    shared: int  # leases of a live number whose holder called (LeaseRules.share_called)
    peak_live: int
    peak_busy: int  # live and cooling numbers at the busiest instant
    # Late calls (reports/late_calls.py): the windows after leases ended, open or covered by
    # the number's next lease, each until its holder's phone first reached them (a late call
    # from a known phone finds its visitor); the first calls after a lease ended the history
    # shows, by age, and how many of them this replay judged wrong; and the wrong calls to
    # expect beyond those (set by the sizing: all late calls expected in covered windows, less
    # the ones judged here).
    late: LateWindows = field(default_factory=LateWindows, repr=False)
    late_seen: tuple[int, ...] = field(default=(0,) * AGE_SLICES, repr=False)
    late_seen_wrong: int = 0
    late_wrong: float = 0.0

    @property
    def judged(self) -> int:
        return self.right + self.wrong + self.unattributed

    def share(self, count: float) -> float | None:
        return round(count / self.judged, 4) if self.judged else None

    @property
    def right_share(self) -> float | None:
        """Right calls, less the late ones expected to go to the number's next holder."""
        return self.share(min(max(self.right - self.late_wrong, 0.0), self.right + self.wrong))

    @property
    def wrong_share(self) -> float | None:
        return self.share(min(max(self.wrong + self.late_wrong, 0.0), self.right + self.wrong))

    def as_dict(self) -> dict[str, object]:
        figures = asdict(self)
        del figures["late"], figures["late_seen"]
        return {
            **figures,
            "late_wrong": round(self.late_wrong, 2),
            "cost_numbers": self.size,
            "right_share": self.right_share,
            "wrong_share": self.wrong_share,
            "unattributed_share": self.share(self.unattributed),
        }


def true_sessions(calls: Sequence[CallTrace], sessions: Iterable[str]) -> list[str]:
    """Per call, the session whose visitor made it, or '' when the history cannot tell."""
    known = set(sessions)
    reached: dict[str, set[str]] = {}
    for call in calls:
        if call.kind == AttributionKind.ACTIVE and _real_caller(call.caller):
            reached.setdefault(call.caller, set()).add(call.visitor_id)
    phones: dict[str, set[str]] = {}  # visitor -> the phones whose active calls reached it
    for caller, visitors in reached.items():
        for visitor in visitors:
            phones.setdefault(visitor, set()).add(caller)
    truth = []
    for call in calls:
        # A probable call with no rival had one visit that could claim it (a late call on a
        # number nobody held since): as good as known. Contested ones are vouched for by the
        # caller's own active call, or by the rival's from another phone: people call again
        # from the phone they called from (as the gateway assumes), so the rival is not this
        # caller (a number shared with a holder who called, or one whose holder called).
        rival_phones = phones.get(call.rival_visitor, set())
        not_rival = (
            _real_caller(call.caller) and call.caller not in rival_phones and bool(rival_phones)
        )
        vouched = call.kind == AttributionKind.ACTIVE or (
            call.kind == AttributionKind.PROBABLE
            and (not call.contested or call.visitor_id in reached.get(call.caller, ()) or not_rival)
        )
        ok = not call.on_overflow and vouched and call.session_id in known
        truth.append(call.session_id if ok else "")
    return truth


def overflow_visits(
    calls: Sequence[CallTrace], sessions: Sequence[SessionTrace], grace: timedelta
) -> list[str]:
    """Per call on the overflow number, the overflowed visit that most likely made it ('' for
    other calls, or when no overflowed visit was on the page or within `grace` of leaving).

    Which of them called, the history cannot say; but those calls are the pool's demand at its
    busiest, and leaving them out makes every size look better than it is. So each goes to a
    visit that saw the overflow number then: the caller's own visitor if one was, else one on
    the page, else the one that left last; a visit is given one such call while others remain.
    """
    shown = sorted((s for s in sessions if s.overflowed), key=lambda s: s.started_at)
    starts = [s.started_at for s in shown]
    longest = max((s.last_seen - s.started_at for s in shown), default=timedelta(0)) + grace
    reached: dict[str, set[str]] = {}
    for call in calls:
        if call.kind == AttributionKind.ACTIVE and _real_caller(call.caller):
            reached.setdefault(call.caller, set()).add(call.visitor_id)
    used: set[str] = set()
    guesses = []
    for call in calls:
        guess = ""
        if call.on_overflow:
            first, last = bisect_left(starts, call.at - longest), bisect_right(starts, call.at)
            near = [s for s in shown[first:last] if call.at <= s.last_seen + grace]
            mine = reached.get(call.caller, set())
            near.sort(
                key=lambda s: (
                    s.visitor_id in mine,
                    s.session_id not in used,
                    call.at <= s.last_seen,
                    s.last_seen,
                )
            )
            guess = near[-1].session_id if near else ""
            used.add(guess)
        guesses.append(guess)
    return guesses


def _real_caller(caller: str) -> bool:
    return caller.removeprefix("+").isdigit()


def _events(
    sessions: Sequence[SessionTrace],
    calls: Sequence[CallTrace],
    truth: Sequence[str],
    rules: LeaseRules,
) -> list[tuple[datetime, int, int]]:
    """Sessions starting, heartbeats and judged calls, in time order: (at, kind, index)."""
    events = [(s.started_at, _START, i) for i, s in enumerate(sessions)]
    first = min(rules.heartbeat, rules.probation, rules.grace) / 2
    step = max(rules.grace / 2, timedelta(seconds=1))
    for i, s in enumerate(sessions):
        if not s.heartbeated:
            continue
        # Enough beats to keep the lease alive as the real ones did; the last sets its end.
        beat = s.started_at + first
        while beat < s.last_seen:
            events.append((beat, _BEAT, i))
            beat += step
        events.append((s.last_seen, _BEAT, i))
    events += [(c.at, _CALL, i) for i, c in enumerate(calls) if truth[i]]
    events.sort()
    return events


def replay(
    sessions: Sequence[SessionTrace],
    calls: Sequence[CallTrace],
    size: int,
    rules: LeaseRules,
    *,
    policy: str = "configured",
    truth: Sequence[str] | None = None,
    pace: Callable[[], None] | None = None,
) -> SizeFigures:
    """Lease `size` numbers to `sessions` in time order under `rules` and judge the calls."""
    truth = true_sessions(calls, (s.session_id for s in sessions)) if truth is None else truth
    index = {s.session_id: i for i, s in enumerate(sessions)}
    pool = Pool("replay", "target", [f"n{i}" for i in range(size)], rules, overflow=_OVERFLOW)
    site = Site("replay", pools=[pool])
    shown: dict[int, str] = {}  # session index -> its number; absent when it saw the overflow
    held: dict[int, _Held] = {}  # session index -> its lease's number, start and end
    known: dict[str, set[str]] = {}  # caller -> visitors the replay credited their calls to
    # Visitor -> when the replay first credited them a call from a real phone: from then on
    # that phone finds them, so a late call of theirs goes to nobody else.
    called: dict[str, datetime] = {}
    right = wrong = unattributed = 0
    late_seen = [0] * AGE_SLICES
    late_seen_wrong = 0
    for step, (at, kind, i) in enumerate(_events(sessions, calls, truth, rules)):
        if step % _PACE_EVERY == _PACE_EVERY - 1:
            pool.prune(at)
            if pace is not None:
                pace()
        if kind == _START:
            s = sessions[i]
            lease = pool.lease(s.session_id, s.session_id, s.visitor_id, at)
            if lease is not None:
                shown[i] = lease.number
                held[i] = _Held(lease.number, lease.started_at, lease.until, s.visitor_id)
                cut = pool.superseded_by(lease)
                if cut is not None and cut.session_id in index:
                    j = index[cut.session_id]
                    held[j] = held[j]._replace(until=cut.until)
        elif kind == _BEAT:
            number = shown.get(i)
            renewed = pool.heartbeat(number, sessions[i].session_id, at) if number else None
            if renewed is not None:
                held[i] = held[i]._replace(until=renewed.until)
        else:
            session = sessions[index[truth[i]]]
            # Only a visitor's first call can be one from a phone nobody knows yet.
            mine = None if session.visitor_id in called else held.get(index[truth[i]])
            late = _count_late(late_seen, calls[i], mine, at, rules)
            number = shown.get(index[truth[i]])
            # As the gateway does: the visitors this caller's earlier calls went to.
            reached = known.setdefault(calls[i].caller, set())
            phone = calls[i].caller if _real_caller(calls[i].caller) else ""
            found = (
                site.attribute(number, at, known_visitors=reached, caller=phone) if number else None
            )
            if found is not None and found.visitor_id and _real_caller(calls[i].caller):
                reached.add(found.visitor_id)
            if found is None or not found.visitor_id:
                unattributed += 1
            elif found.visitor_id == session.visitor_id:
                right += 1
                if phone:
                    called.setdefault(session.visitor_id, at)
            else:
                wrong += 1
                late_seen_wrong += late
    return SizeFigures(
        policy=policy,
        size=size,
        right=right,
        wrong=wrong,
        unattributed=unattributed,
        sessions=len(sessions),
        overflowed=len(sessions) - len(shown),
        reused=pool.reused_count,
        shared=pool.shared_count,
        peak_live=_peak(held.values(), timedelta(0)),
        peak_busy=_peak(held.values(), rules.cooldown),
        late=late_windows(held.values(), rules.attribution_window, called, rules.cooldown),
        late_seen=tuple(late_seen),
        late_seen_wrong=late_seen_wrong,
    )


def _count_late(
    seen: list[int], call: CallTrace, lease: _Held | None, at: datetime, rules: LeaseRules
) -> bool:
    """Count a late call the history shows (no rival could claim it) by its age after the
    lease; True when it is one."""
    if lease is not None and call.kind == AttributionKind.PROBABLE and not call.contested:
        k = age_slice(at - lease.until, rules.attribution_window)
        if k is not None:
            seen[k] += 1
            return True
    return False


class _Held(NamedTuple):
    number: str
    started_at: datetime
    until: datetime
    visitor_id: str = ""


def _peak(leases: Iterable[_Held], rest: timedelta) -> int:
    """The most numbers busy at one instant: leased, or resting `rest` after a lease."""
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for lease in leases:
        spans.setdefault(lease.number, []).append((lease.started_at, lease.until + rest))
    edges: list[tuple[datetime, int]] = []
    for busy in spans.values():
        # A number leased again while it still rests (reuse) is one number busy, not two.
        busy.sort()
        start, end = busy[0]
        for next_start, next_end in busy[1:]:
            if next_start > end:
                edges += [(start, 1), (end, -1)]
                start = next_start
            end = max(end, next_end)
        edges += [(start, 1), (end, -1)]
    # Ends sort before starts at the same instant: [start, end) intervals.
    edges.sort()
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak
