"""A pool of tracking numbers leased to visits: least recently released first, with cooldown."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

__all__ = ["Lease", "LeaseRules", "Pool"]


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


@dataclass
class _Slot:
    number: str
    order: int
    history: list[Lease] = field(default_factory=list)
    version: int = 0  # bumped on every change, so heap entries of older states are skipped

    @property
    def latest(self) -> Lease | None:
        return self.history[-1] if self.history else None


# Sorts before every real time: numbers never leased are the least recently released.
_NEVER = datetime.min.replace(tzinfo=UTC)


class Pool:
    """The in-memory truth of one pool's leases; the caller persists what it returns.

    All methods are synchronous and take the time explicitly, so one event loop thread serialises
    them: no number can be leased to two live sessions. Choosing a number is O(log n): a heap
    orders slots by when their latest lease ends (never-leased first, then by position).
    """

    def __init__(
        self,
        pool_id: str,
        target: str,
        numbers: Iterable[str],
        rules: LeaseRules | None = None,
        overflow: str = "",
        require_params: tuple[str, ...] = (),
    ) -> None:
        self.pool_id = pool_id
        self.target = target
        self.overflow = overflow
        self.require_params = require_params
        self.rules = rules or LeaseRules()
        self.exhausted_count = 0
        self.peak_live = 0
        self._slots: dict[str, _Slot] = {}
        self._last_number_of: dict[str, str] = {}
        self._by_release: list[tuple[datetime, int, int, str]] = []
        self._expiry: list[tuple[datetime, int, str]] = []
        self._live: set[str] = set()
        for number in numbers:
            self.add_number(number)

    # -- numbers ---------------------------------------------------------------------------

    @property
    def numbers(self) -> list[str]:
        return list(self._slots)

    def __contains__(self, number: str) -> bool:
        return number in self._slots

    def add_number(self, number: str) -> None:
        """Add a tracking number; adding one already present changes nothing."""
        if number not in self._slots:
            slot = self._slots[number] = _Slot(number, len(self._slots))
            heapq.heappush(self._by_release, (_NEVER, slot.order, slot.version, number))

    def remove_number(self, number: str, at: datetime) -> bool:
        """Remove a number unless a live lease holds it; True when removed."""
        slot = self._slots.get(number)
        if slot is None:
            return False
        if slot.latest is not None and slot.latest.live_at(at):
            return False
        del self._slots[number]
        self._live.discard(number)
        return True

    # -- leasing ---------------------------------------------------------------------------

    def lease(
        self,
        lease_id: str,
        session_id: str,
        visitor_id: str,
        at: datetime,
        *,
        heartbeats: bool = True,
    ) -> Lease | None:
        """Lease a number to a session, or None when the pool is exhausted (counted).

        A session that will heartbeat holds the number for the probation until its first
        heartbeat; one that cannot (an AMP page) holds it for `rules.amp_lease`.
        """
        slot = self._returning_slot(visitor_id) or self._free_slot(at)
        if slot is None:
            self.exhausted_count += 1
            return None
        previous = slot.latest
        if previous is not None and previous.live_at(at):
            # Only a returning visitor gets here: their old lease ends as the new one starts.
            slot.history[-1] = previous._replace(until=at)
        lease = Lease(
            lease_id=lease_id,
            pool_id=self.pool_id,
            number=slot.number,
            session_id=session_id,
            visitor_id=visitor_id,
            started_at=at,
            last_seen=at,
            until=at
            + min(self.rules.probation if heartbeats else self.rules.amp_lease, self.rules.grace),
        )
        slot.history.append(lease)
        self._last_number_of[visitor_id] = slot.number
        self._changed(slot, at)
        self.peak_live = max(self.peak_live, len(self._live))
        return lease

    def heartbeat(self, number: str, session_id: str, at: datetime) -> Lease | None:
        """Extend a live lease of `session_id` on `number`; None when it has ended."""
        slot = self._slots.get(number)
        lease = slot.latest if slot else None
        if slot is None or lease is None or lease.session_id != session_id or not lease.live_at(at):
            return None
        renewed = lease._replace(last_seen=at, until=at + self.rules.grace)
        slot.history[-1] = renewed
        self._changed(slot, at)
        return renewed

    def release(self, number: str, session_id: str, at: datetime) -> Lease | None:
        """End a session's live lease now (e.g. its write failed); returns the ended lease."""
        slot = self._slots.get(number)
        lease = slot.latest if slot else None
        if slot is None or lease is None or lease.session_id != session_id or not lease.live_at(at):
            return None
        ended = lease._replace(until=at)
        slot.history[-1] = ended
        self._changed(slot, at)
        return ended

    def restore(self, lease: Lease, now: datetime | None = None) -> bool:
        """Put a persisted lease back (oldest first); False when its number left the pool."""
        slot = self._slots.get(lease.number)
        if slot is None:
            return False
        slot.history.append(lease)
        self._last_number_of[lease.visitor_id] = lease.number
        self._changed(slot, now or lease.last_seen)
        return True

    def adopt(self, older: Pool, now: datetime) -> None:
        """Take over the leases and counters of the object this pool replaces (a reload)."""
        for lease in sorted(older.leases(), key=lambda lease: lease.started_at):
            self.restore(lease, now)
        self.exhausted_count = older.exhausted_count
        self.peak_live = older.peak_live

    # -- questions -------------------------------------------------------------------------

    def superseded_by(self, lease: Lease) -> Lease | None:
        """The same visitor's earlier lease that `lease` cut short, if it did."""
        slot = self._slots.get(lease.number)
        if slot is None or len(slot.history) < 2 or slot.history[-1] != lease:
            return None
        previous = slot.history[-2]
        if previous.visitor_id == lease.visitor_id and previous.until == lease.started_at:
            return previous
        return None

    def holds(self, visitor_id: str, at: datetime) -> bool:
        """Whether `visitor_id` holds a live lease here (its next session gets that number)."""
        slot = self._returning_slot(visitor_id)
        return slot is not None and slot.latest is not None and slot.latest.live_at(at)

    def live_count(self, at: datetime) -> int:
        return sum(1 for s in self._slots.values() if s.latest is not None and s.latest.live_at(at))

    def holder_at(self, number: str, at: datetime) -> tuple[Lease | None, Lease | None]:
        """(lease live at `at`, else the last lease ended before `at`) on `number`."""
        slot = self._slots.get(number)
        if slot is None:
            return None, None
        for lease in reversed(slot.history):
            if lease.live_at(at):
                return lease, None
            if lease.until <= at:
                return None, lease
        return None, None

    def leases(self) -> Iterator[Lease]:
        for slot in self._slots.values():
            yield from slot.history

    def prune(self, at: datetime) -> int:
        """Forget leases too old to attribute a call to; returns how many were dropped."""
        horizon = at - self.rules.attribution_window
        dropped = 0
        for slot in self._slots.values():
            keep = [lease for lease in slot.history[:-1] if lease.until > horizon]
            if slot.history:
                keep.append(slot.history[-1])
            dropped += len(slot.history) - len(keep)
            slot.history = keep
        # Only the latest holder of a number can get it back: forget every other visitor, so
        # this map stays as small as the pool however many visitors come.
        self._last_number_of = {
            slot.latest.visitor_id: number
            for number, slot in self._slots.items()
            if slot.latest is not None
        }
        return dropped

    # -- choosing --------------------------------------------------------------------------

    def _changed(self, slot: _Slot, at: datetime) -> None:
        slot.version += 1
        latest = slot.latest
        until = latest.until if latest else _NEVER
        heapq.heappush(self._by_release, (until, slot.order, slot.version, slot.number))
        heapq.heappush(self._expiry, (until, slot.version, slot.number))
        if until > at:
            self._live.add(slot.number)
        else:
            self._live.discard(slot.number)
        self._settle(at)
        if len(self._by_release) > 4 * len(self._slots) + 64:
            self._rebuild()

    def _settle(self, at: datetime) -> None:
        """Drop from the live set the numbers whose leases have ended by `at`."""
        while self._expiry and self._expiry[0][0] <= at:
            _, version, number = heapq.heappop(self._expiry)
            slot = self._slots.get(number)
            if slot is not None and slot.version == version:
                self._live.discard(number)

    def _rebuild(self) -> None:
        # Heartbeats leave superseded heap entries behind; start afresh when they pile up.
        self._by_release = []
        self._expiry = []
        for slot in self._slots.values():
            until = slot.latest.until if slot.latest else _NEVER
            self._by_release.append((until, slot.order, slot.version, slot.number))
            self._expiry.append((until, slot.version, slot.number))
        heapq.heapify(self._by_release)
        heapq.heapify(self._expiry)

    def _returning_slot(self, visitor_id: str) -> _Slot | None:
        number = self._last_number_of.get(visitor_id)
        slot = self._slots.get(number) if number else None
        if slot is None or slot.latest is None or slot.latest.visitor_id != visitor_id:
            return None
        # Cooldown protects the next visitor from the last one's calls; the same visitor needs none.
        return slot

    def _free_slot(self, at: datetime) -> _Slot | None:
        heap = self._by_release
        while heap:
            until, _, version, number = heap[0]
            slot = self._slots.get(number)
            if slot is None or slot.version != version:
                heapq.heappop(heap)
                continue
            if until > _NEVER and at < until + self.rules.cooldown:
                return None  # the slot released longest ago is still live or cooling down
            return slot
        return None
