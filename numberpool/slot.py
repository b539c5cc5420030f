"""One number of a pool with its leases, and the heaps that rank cooling numbers by risk.

A pool leases the number least likely to get a call meant for an earlier holder. Risk, lowest
first:

1. never leased, or its last holder's attribution window is over (nobody can call for them);
2. the last holder called already: a later call of theirs comes from a phone the gateway now
   knows, so it is told apart from the new holder's by caller id (numberpool/claims.py). Such a
   number is taken before one that merely rested the full cooldown: the cooldown is shorter
   than the window, and a holder who rested it silent may still call (bench/attribution.py:
   most wrong calls were late callers on numbers re-leased just after their cooldown);
3. rested the full cooldown, released longest ago;
4. under pressure (none rested): the last holder never heartbeated though its page could (a
   bounce or a bot), then any other, released longest ago (its holder's window ends soonest).

The two risk heaps cost a push per change, so they exist only while they are used (`Pool`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from numberpool.lease import CallNote, Lease

__all__ = ["NEVER", "Entry", "RiskHeaps", "Slot"]

# Sorts before every real time: numbers never leased are the least recently released.
NEVER = datetime.min.replace(tzinfo=UTC)
# A heap entry: (when the slot's latest lease ends, its position, its version, its number).
Entry = tuple[datetime, int, int, str]


@dataclass
class Slot:
    number: str
    order: int
    history: list[Lease] = field(default_factory=list)
    version: int = 0  # bumped on every change, so heap entries of older states are skipped
    amp: bool = False  # the latest lease's page cannot heartbeat: its quiet is no bounce
    # The calls from known phones decided on this number while its `history` is kept.
    calls: list[CallNote] = field(default_factory=list)

    @property
    def latest(self) -> Lease | None:
        return self.history[-1] if self.history else None

    def entry(self) -> Entry:
        latest = self.latest
        return (latest.until if latest else NEVER, self.order, self.version, self.number)

    @property
    def quiet(self) -> bool:
        """The latest lease never heartbeated though its page could (a bounce or a bot)."""
        latest = self.latest
        return latest is not None and latest.last_seen == latest.started_at and not self.amp

    @property
    def called(self) -> bool:
        """A call went to the latest lease's visitor: their next one is known by caller id."""
        latest = self.latest
        return latest is not None and any(c.visitor_id == latest.visitor_id for c in self.calls)


class RiskHeaps:
    """The cooling numbers whose last holder called, and those whose last holder was quiet."""

    def __init__(self, slots: Iterable[Slot]) -> None:
        self.called: list[Entry] = []
        self.quiet: list[Entry] = []
        for slot in slots:
            self.push(slot)
        heapq.heapify(self.called)
        heapq.heapify(self.quiet)

    def push(self, slot: Slot) -> None:
        """Rank the slot's current state (older entries of it are skipped by version)."""
        if slot.called:
            heapq.heappush(self.called, slot.entry())
        elif slot.quiet:
            heapq.heappush(self.quiet, slot.entry())

    def size(self) -> int:
        return len(self.called) + len(self.quiet)

    def pick_called(self, slots: Mapping[str, Slot], rested_by: datetime) -> Slot | None:
        """The slot released longest ago by `rested_by` whose latest holder called."""
        return pick(self.called, slots, rested_by)

    def pick_quiet(self, slots: Mapping[str, Slot], rested_by: datetime) -> Slot | None:
        """The slot released longest ago by `rested_by` whose latest holder never heartbeated."""
        return pick(self.quiet, slots, rested_by)


def pick(heap: list[Entry], slots: Mapping[str, Slot], rested_by: datetime) -> Slot | None:
    """The top of `heap` if it ended by `rested_by`; stale entries are dropped on the way."""
    while heap:
        until, _, version, number = heap[0]
        slot = slots.get(number)
        if slot is None or slot.version != version:
            heapq.heappop(heap)
        elif until <= rested_by:
            return slot
        else:
            return None  # the heap's earliest end is too recent: so are all the others
    return None
