"""One number of a pool with its leases, and the heaps that rank cooling numbers by risk.

A pool leases the number least likely to get a call meant for an earlier holder. Risk, lowest
first:

1. never leased, or its last holder's attribution window is over (nobody can call for them);
2. the last holder called already: a later call of theirs comes from a phone the gateway now
   knows, so it is told apart from the new holder's by caller id (numberpool/claims.py). Such a
   number is taken before one that merely rested the full cooldown: the cooldown is shorter
   than the window, and a holder who rested it silent may still call (bench/attribution.py:
   most wrong calls were late callers on numbers re-leased just after their cooldown);
3. with `share_called`, a live number whose one holder called already: the holder keeps it
   (their calls come from a phone the gateway knows) and a second visitor shares it, before a
   number whose silent last holder may still make a first call;
4. rested the full cooldown, released longest ago;
5. under pressure (none rested): the last holder never heartbeated though its page could (a
   bounce or a bot), then any other, released longest ago (its holder's window ends soonest).

The two risk heaps cost a push per change, so they exist only while they are used (`Pool`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from numberpool.lease import CallNote, Lease

__all__ = ["NEVER", "Entry", "RiskHeaps", "Slot"]

# Sorts before every real time: numbers never leased are the least recently released.
NEVER = datetime.min.replace(tzinfo=UTC)
# A heap entry: (when the slot's last live lease ends, its position, its version, its number).
Entry = tuple[datetime, int, int, str]
# How many numbers that cannot be shared a share looks past (those ending soonest) before it
# gives up: they are numbers whose holder called and whose lease just ended, or shared ones.
SHARE_LOOKS = 16


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

    def heads(self) -> tuple[Lease, ...]:
        """The latest lease and the newest lease of the visitor before it: the only two that
        can be live. A second live lease is a share (`shareable`: its other holder called), a
        returning visitor's new lease ends their old one, so a third visitor never holds it."""
        if not self.history:
            return ()
        other = self._other_head()
        latest = self.history[-1]
        return (latest,) if other is None else (latest, self.history[other])

    def _other_head(self) -> int | None:
        """Where the newest lease of the visitor before the latest one is (None: none). On
        every heartbeat: it is the one just before, unless the latest holder returned."""
        history = self.history
        visitor = history[-1].visitor_id
        for index in range(len(history) - 2, -1, -1):
            if history[index].visitor_id != visitor:
                return index
        return None

    @property
    def busy_until(self) -> datetime:
        """When the number's last live lease ends (NEVER: never leased). On every heartbeat,
        so the common case (the lease before is someone else's) is read in place."""
        history = self.history
        if not history:
            return NEVER
        until = history[-1].until
        if len(history) > 1 and history[-2].visitor_id != history[-1].visitor_id:
            other: int | None = len(history) - 2
        else:
            other = self._other_head()
        return until if other is None or history[other].until <= until else history[other].until

    @property
    def last_seen(self) -> datetime:
        """The last sign of life of the number's holders (NEVER: never leased)."""
        return max((lease.last_seen for lease in self.heads()), default=NEVER)

    def entry(self) -> Entry:
        return (self.busy_until, self.order, self.version, self.number)

    def live(self, at: datetime) -> list[Lease]:
        """The leases live at `at`, newest first (two only when the number is shared)."""
        return [lease for lease in self.heads() if lease.live_at(at)]

    def index_of(self, session_id: str) -> int | None:
        """Where in `history` `session_id`'s lease is if it is one of the `heads`, else None."""
        if not self.history:
            return None
        if self.history[-1].session_id == session_id:
            return len(self.history) - 1  # the latest: most heartbeats
        other = self._other_head()
        return other if other is not None and self.history[other].session_id == session_id else None

    def holder_index(self, visitor_id: str, at: datetime) -> int | None:
        """Where `visitor_id`'s lease is if the number is still theirs at `at`: the latest
        lease (live or not: a returning visitor needs no cooldown), or the other head while it
        is live (they share the number with a newer holder)."""
        if not self.history:
            return None
        if self.history[-1].visitor_id == visitor_id:
            return len(self.history) - 1
        other = self._other_head()
        if other is None:
            return None
        lease = self.history[other]
        return other if lease.visitor_id == visitor_id and lease.live_at(at) else None

    def shareable(self, at: datetime) -> bool:
        """Its one live lease's visitor called already (a call on it went to them from a known
        phone), so a second visitor may share it: the first one's later calls are told apart by
        caller id (numberpool/claims.py). Never a number with two live leases."""
        heads = self.heads()
        if not heads or not heads[0].live_at(at) or not self.called:
            return False
        return len(heads) < 2 or not heads[1].live_at(at)

    def superseded_by(self, lease: Lease) -> Lease | None:
        """The same visitor's earlier lease that `lease` (the latest) cut short, if it did:
        their newest before it (a lease of the visitor they share with may lie between)."""
        if len(self.history) < 2 or self.history[-1] != lease:
            return None
        mine = (x for x in reversed(self.history[:-1]) if x.visitor_id == lease.visitor_id)
        previous = next(mine, None)
        return previous if previous is not None and previous.until == lease.started_at else None

    def holder_at(self, at: datetime) -> tuple[Lease | None, Lease | None]:
        """(the newest lease live at `at`, else the lease that ended last before `at`)."""
        live = next((lease for lease in reversed(self.history) if lease.live_at(at)), None)
        ended = [lease for lease in self.history if lease.until <= at]
        return live, None if live else max(ended, key=lambda lease: lease.until, default=None)

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

    def add_note(self, note: CallNote) -> bool:
        """Keep a call from a known phone as it was decided; False when nothing changed (no
        phone, a visitor who never held the number) or only the time of a call decided alike
        before (weighed once by claims.py, the latest time kept)."""
        if not note.caller:
            return False
        decided = note[:4]  # who, to whom, the rival, how sure: all but the time
        for index, noted in enumerate(self.calls):
            if noted[:4] == decided:
                if noted.at < note.at:
                    self.calls[index] = note
                return False
        if all(lease.visitor_id != note.visitor_id for lease in self.history):
            return False
        self.calls.append(note)
        return True

    def claimable(self, at: datetime, window: timedelta, caller: str) -> list[Lease]:
        """The leases that could claim a call at `at` from `caller`, newest first: the live
        one, those ended within `window`, then the newest lease of each visitor this phone's
        calls on the number went to within `window` before `at`, however long ago that lease
        ended (claims.py: a repeat call follows the one before)."""
        found: list[Lease] = []
        followed: set[str] | None = None  # visitors still to find past the window
        for lease in reversed(self.history):
            if lease.started_at > at:
                continue  # began after the call (a call processed late)
            if lease.until <= at and at - lease.until > window:
                if followed is None:
                    followed = {c.visitor_id for c in self.calls if c.follows(caller, at, window)}
                    followed.difference_update(f.visitor_id for f in found)
                if lease.visitor_id in followed:
                    followed.discard(lease.visitor_id)
                    found.append(lease)
                continue  # no break: a shared number's older lease may still be in its window
            found.append(lease)
        return found

    def kept(self, horizon: datetime) -> list[Lease]:
        """The leases a prune keeps, oldest first: the latest, those ended after `horizon`, and
        each other visitor's newest while a call on the number went to them since."""
        history = self.history
        keep = [lease for lease in history[:-1] if lease.until > horizon] + history[-1:]
        if len(keep) == len(history) or not self.calls:
            return keep
        followed = {c.visitor_id for c in self.calls if c.at > horizon}
        followed.difference_update(lease.visitor_id for lease in keep)
        if not followed:
            return keep
        keep = []
        for lease in reversed(history):
            if not keep or lease.until > horizon:
                keep.append(lease)
            elif lease.visitor_id in followed:
                keep.append(lease)
                followed.discard(lease.visitor_id)
        keep.reverse()
        return keep


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

    def pick_shareable(self, slots: Mapping[str, Slot], at: datetime) -> Slot | None:
        """The live number whose holder called and ends soonest (heard from longest ago), if
        one is shareable at `at`; entries of numbers that are not (cooling, already shared)
        are set aside and put back, at most SHARE_LOOKS of them."""
        heap = self.called
        aside: list[Entry] = []
        found = None
        while heap and len(aside) < SHARE_LOOKS:
            entry = heap[0]
            slot = slots.get(entry[3])
            if slot is None or slot.version != entry[2]:
                heapq.heappop(heap)
            elif slot.shareable(at):
                found = slot
                break
            else:
                aside.append(heapq.heappop(heap))
        for entry in aside:
            heapq.heappush(heap, entry)
        return found


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
