"""Late calls the history cannot show: a caller who dials after their lease ended, on a number
already leased again, is credited to the next holder and looks like any other call. The sizing
replay counts how much of each ended lease's attribution window the next lease covered, and
learns from the late calls it can see (on numbers still resting) how often callers call late at
each age; together they give the wrong calls to expect. Only a caller whose phone has not yet
reached their visitor counts: a known phone finds its visitor whoever holds the number then
(the gateway's known_visitors); nor does a holder's window while the holder before them (whose
number they shared, or took before its cooldown) is the rival of its late calls. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["AGE_SLICES", "LateWindows", "age_slice", "expected_late_wrong", "late_windows"]

# The attribution window after a lease ends, cut into slices of age: callers call late more
# often soon after leaving than near the window's end, and a busy pool covers the later ages.
AGE_SLICES = 12


@dataclass(frozen=True, slots=True)
class LateWindows:
    """Per slice of age after a lease ended: leases whose window was still open then (their
    number not leased again) and leases whose window the next lease covered."""

    open: tuple[float, ...] = (0.0,) * AGE_SLICES
    covered: tuple[float, ...] = (0.0,) * AGE_SLICES


def age_slice(age: timedelta, window: timedelta) -> int | None:
    """The slice of an age after a lease ended, or None outside the window."""
    if age < timedelta(0) or age >= window or not window:
        return None
    return min(int(age / window * AGE_SLICES), AGE_SLICES - 1)


def late_windows(
    leases: Iterable[tuple[str, datetime, datetime, str]],
    window: timedelta,
    called: Mapping[str, datetime] | None = None,
    cooldown: timedelta = timedelta(0),
) -> LateWindows:
    """For leases (number, started_at, until, visitor_id), how much of each slice of each
    one's window after `until` the number's next lease covered (from its start on); the same
    visitor's next lease covers nothing (a late call of theirs still finds them).

    `called`: when each visitor's phone first reached them. A window counts only until then:
    after that, a late call of theirs comes from a phone the gateway knows, and finds them
    whoever holds the number.

    A lease that began less than `cooldown` after the lease before it ended, or while it was
    live (a shared number), has that holder as its rival (numberpool/claims.py): until the
    rival's own window ends, a late call goes to the newer holder, its own, but is stored
    contested, so the history never shows it. Those slices count neither as open nor covered."""
    by_number: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for number, started, until, visitor in leases:
        by_number.setdefault(number, []).append((started, until, visitor))
    open_ = [0.0] * AGE_SLICES
    covered = [0.0] * AGE_SLICES
    width = window / AGE_SLICES if window else timedelta(0)
    first_calls = called or {}
    for spans in by_number.values():
        spans.sort()
        for index, (started, until, visitor) in enumerate(spans):
            after = spans[index + 1] if index + 1 < len(spans) else None
            following = None if after is None or after[2] == visitor else after[0]
            before = spans[index - 1] if index else None
            hidden_until = None  # late calls stored against the holder before, until then
            if before is not None and before[2] != visitor and started - before[1] < cooldown:
                hidden_until = before[1] + window
                if following is not None:
                    hidden_until = min(hidden_until, following)
            known_from = first_calls.get(visitor)
            for k in range(AGE_SLICES):
                if not width:
                    break
                begin = until + k * width
                # The part of the slice before their phone became known.
                end = begin + width if known_from is None else min(begin + width, known_from)
                exposed = _part(begin, end, begin, end, width)
                share = 0.0 if following is None else _part(begin, end, following, end, width)
                hidden = (
                    0.0 if hidden_until is None else _part(begin, end, begin, hidden_until, width)
                )
                covered[k] += share
                open_[k] += max(exposed - share - hidden, 0.0)
    return LateWindows(tuple(open_), tuple(covered))


def _part(begin: datetime, end: datetime, low: datetime, high: datetime, width: timedelta) -> float:
    """How much of the slice [begin, end) lies in [low, high), in slices of `width`."""
    return min(max((min(end, high) - max(begin, low)) / width, 0.0), 1.0)


def expected_late_wrong(history: LateWindows, seen: Sequence[int], candidate: LateWindows) -> float:
    """Wrong calls expected at a candidate size: per slice, the late calls seen per open
    window in the history, times the windows the candidate's next leases cover."""
    return sum(
        count / opened * covered
        for count, opened, covered in zip(seen, history.open, candidate.covered, strict=True)
        if opened
    )
