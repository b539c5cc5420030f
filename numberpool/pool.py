"""A pool of tracking numbers leased to visits: the least risky number first (numberpool/slot.py
ranks them: nobody left to call for, else a holder who called, else one shared with a live holder
who called, else rested longest ago), with cooldown. Under pressure (no number rested the full
cooldown) the cooldown adapts: "reuse" leases the least risky cooling number once it has rested
`min_cooldown`, rather than the overflow number."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from numberpool.lease import CallNote, Lease, LeaseRules
from numberpool.slot import NEVER, Entry, RiskHeaps, Slot, pick

__all__ = ["Lease", "LeaseRules", "Pool"]

_How = Literal["beat", "end", "drop"]  # what Pool._amend does: renew, end now, take back


class Pool:
    """The in-memory truth of one pool's leases; the caller persists what it returns.

    All methods are synchronous and take the time explicitly, so one event loop thread serialises
    them: a number gets a second live lease only as a share (its one live holder called). Choosing
    is O(log n): a heap orders slots by when their last live lease ends (never-leased first, then
    by position); two more order those whose latest holder called or never heartbeated (RiskHeaps).
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
        self.exhausted_count = 0  # leases refused: the overflow number was served
        self.reused_count = 0  # leases of a number cooling less than the full cooldown
        self.shared_count = 0  # leases of a number whose live holder called (share_called)
        self.peak_live = 0
        self._slots: dict[str, Slot] = {}
        self._last_number_of: dict[str, str] = {}
        self._by_release: list[Entry] = []
        # Numbers whose latest holder called or never heartbeated, kept only while consulted.
        self._risks: RiskHeaps | None = None
        self._risks_used = False  # consulted since the last heap rebuild
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
            slot = self._slots[number] = Slot(number, len(self._slots))
            heapq.heappush(self._by_release, (NEVER, slot.order, slot.version, number))

    def remove_number(self, number: str, at: datetime) -> bool:
        """Remove a number unless a live lease holds it; True when removed."""
        slot = self._slots.get(number)
        if slot is None:
            return False
        if slot.live(at):
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
        heartbeat; one that cannot (an AMP page) holds it for `rules.amp_lease`. The number is
        the least risky (`_choose`); one that has not rested the full cooldown is counted.
        """
        slot = self._returning_slot(visitor_id, at) or self._choose(at)
        if slot is None:
            self.exhausted_count += 1
            return None
        mine = slot.holder_index(visitor_id, at)
        if mine is not None and slot.history[mine].live_at(at):
            # A returning visitor's old lease ends as the new one starts.
            slot.history[mine] = slot.history[mine]._replace(until=at)
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
        slot.amp = not heartbeats
        self._last_number_of[visitor_id] = slot.number
        self._changed(slot, at)
        self.peak_live = max(self.peak_live, len(self._live))
        return lease

    def heartbeat(self, number: str, session_id: str, at: datetime) -> Lease | None:
        """Extend a live lease of `session_id` on `number`; None when it has ended."""
        return self._amend(number, session_id, at, "beat")

    def release(self, number: str, session_id: str, at: datetime) -> Lease | None:
        """End a session's live lease now (the visitor left); returns the ended lease."""
        return self._amend(number, session_id, at, "end")

    def withdraw(self, number: str, session_id: str, at: datetime) -> Lease | None:
        """Take back the live lease of a session never stored (its commit failed), as if it
        had not been made: no call goes to it, and a number it shared is as before."""
        return self._amend(number, session_id, at, "drop")

    def _amend(self, number: str, session_id: str, at: datetime, how: _How) -> Lease | None:
        slot = self._slots.get(number)
        index = slot.index_of(session_id) if slot else None
        if slot is None or index is None or not slot.history[index].live_at(at):
            return None
        lease = slot.history[index]
        if how == "drop":
            del slot.history[index]
        else:
            beat = how == "beat"
            until = at + self.rules.grace if beat else at
            lease = lease._replace(last_seen=at if beat else lease.last_seen, until=until)
            slot.history[index] = lease
        self._changed(slot, at)
        return lease

    def restore(self, lease: Lease, now: datetime | None = None) -> bool:
        """Put a persisted lease back (oldest first); False when its number left the pool."""
        slot = self._slots.get(lease.number)
        if slot is None:
            return False
        slot.history.append(lease)
        slot.amp = False  # not persisted: a restored quiet lease counts as a bounce
        self._last_number_of[lease.visitor_id] = lease.number
        self._changed(slot, now or lease.last_seen)
        return True

    def adopt(self, older: Pool, now: datetime) -> None:
        """Take over the leases and counters of the object this pool replaces (a reload)."""
        for lease in sorted(older.leases(), key=lambda lease: lease.started_at):
            self.restore(lease, now)
        for number, slot in older._slots.items():
            for note in slot.calls:
                self.note_call(number, note, now)
        self.exhausted_count = older.exhausted_count
        self.reused_count = older.reused_count
        self.shared_count = older.shared_count
        self.peak_live = older.peak_live

    def note_call(self, number: str, note: CallNote, at: datetime) -> None:
        """Remember a call from a known phone on `number` as it was decided: the next calls are
        weighed with it (claims.py), its phone's repeats within the window may still go to its
        visitor (`candidates_at`), and a number whose holder called is safer to reuse."""
        slot = self._slots.get(number)
        if slot is None or not note.caller:
            return
        if slot.add_note(note):
            self._changed(slot, at)

    # -- questions -------------------------------------------------------------------------

    def superseded_by(self, lease: Lease) -> Lease | None:
        """The same visitor's earlier lease that `lease` cut short, if it did."""
        slot = self._slots.get(lease.number)
        return slot.superseded_by(lease) if slot else None

    def holds(self, visitor_id: str, at: datetime) -> bool:
        """Whether `visitor_id` holds a live lease here (its next session gets that number)."""
        slot = self._returning_slot(visitor_id, at)
        index = slot.holder_index(visitor_id, at) if slot else None
        return slot is not None and index is not None and slot.history[index].live_at(at)

    def live_count(self, at: datetime) -> int:
        """Live leases (a shared number has two)."""
        return sum(len(slot.live(at)) for slot in self._slots.values())

    def holder_at(self, number: str, at: datetime) -> tuple[Lease | None, Lease | None]:
        """(lease live at `at`, else the last lease ended before `at`) on `number`."""
        slot = self._slots.get(number)
        return slot.holder_at(at) if slot else (None, None)

    def candidates_at(self, number: str, at: datetime, caller: str = "") -> list[Lease]:
        """The leases that could claim a call on `number` at `at` from `caller`, newest first:
        the live one, those ended within the attribution window, then the newest lease of each
        visitor this phone's calls on the number went to within the window before `at`, however
        long ago that lease ended (claims.py: a repeat call follows the one before)."""
        slot = self._slots.get(number)
        return slot.claimable(at, self.rules.attribution_window, caller) if slot else []

    def calls_on(self, number: str) -> list[CallNote]:
        """The calls from known phones decided on `number` while its leases are kept."""
        slot = self._slots.get(number)
        return list(slot.calls) if slot else []

    def callers_of(self, number: str, visitor_id: str) -> frozenset[str]:
        """The phones whose calls on `number` went to `visitor_id` (see note_call)."""
        return frozenset(c.caller for c in self.calls_on(number) if c.visitor_id == visitor_id)

    def leases(self) -> Iterator[Lease]:
        for slot in self._slots.values():
            yield from slot.history

    def prune(self, at: datetime) -> int:
        """Forget leases too old to attribute a call to; returns how many were dropped. A
        visitor's newest lease of a number stays while a call on it went to them within the
        window (its phone's repeat may still follow: `candidates_at`)."""
        horizon = at - self.rules.attribution_window
        dropped = 0
        for slot in self._slots.values():
            keep = slot.kept(horizon)
            dropped += len(slot.history) - len(keep)
            slot.history = keep
            if slot.calls:
                holders = {lease.visitor_id for lease in keep}
                slot.calls = [c for c in slot.calls if c.visitor_id in holders]
        # Only the latest holder of a number (and one sharing it, while live) can get it back:
        # forget every other visitor, so this map stays as small as the pool. A visitor latest
        # on two numbers (their entry pointed at a withdrawn lease's) keeps their newest.
        newest: dict[str, Lease] = {}
        for slot in self._slots.values():
            for lease in slot.heads():
                seen = newest.get(lease.visitor_id)
                if (lease is slot.history[-1] or lease.live_at(at)) and (
                    seen is None or seen.started_at < lease.started_at
                ):
                    newest[lease.visitor_id] = lease
        self._last_number_of = {visitor: lease.number for visitor, lease in newest.items()}
        return dropped

    # -- choosing --------------------------------------------------------------------------

    def _changed(self, slot: Slot, at: datetime) -> None:
        slot.version += 1
        entry = slot.entry()
        heapq.heappush(self._by_release, entry)
        heapq.heappush(self._expiry, (entry[0], slot.version, slot.number))
        if self._risks is not None:
            self._risks.push(slot)
        if entry[0] > at:
            self._live.add(slot.number)
        else:
            self._live.discard(slot.number)
        self._settle(at)
        limit = 4 * len(self._slots) + 64
        if len(self._by_release) > limit or (self._risks and self._risks.size() > limit):
            self._rebuild()

    def _settle(self, at: datetime) -> None:
        """Drop from the live set the numbers whose leases have ended by `at`."""
        while self._expiry and self._expiry[0][0] <= at:
            _, version, number = heapq.heappop(self._expiry)
            slot = self._slots.get(number)
            if slot is not None and slot.version == version:
                self._live.discard(number)

    def _rebuild(self) -> None:
        # Heartbeats leave superseded heap entries behind; start afresh when they pile up. The
        # risk heaps cost a push a change: kept only if consulted since the last rebuild.
        pressed = self._risks is not None and self._risks_used
        self._risks_used = False
        self._by_release = [slot.entry() for slot in self._slots.values()]
        self._expiry = [(e[0], e[2], e[3]) for e in self._by_release]
        heapq.heapify(self._by_release)
        heapq.heapify(self._expiry)
        self._risks = RiskHeaps(self._slots.values()) if pressed else None

    def _returning_slot(self, visitor_id: str, at: datetime) -> Slot | None:
        number = self._last_number_of.get(visitor_id)
        slot = self._slots.get(number) if number else None
        if slot is None or slot.holder_index(visitor_id, at) is None:
            return None
        # Cooldown protects the next visitor from the last one's calls; the same visitor needs none.
        return slot

    def _free_slot(self, at: datetime) -> Slot | None:
        heap = self._by_release
        while heap:
            until, _, version, number = heap[0]
            slot = self._slots.get(number)
            if slot is None or slot.version != version:
                heapq.heappop(heap)
                continue
            if until > NEVER and at < until + self.rules.cooldown:
                return None  # the slot released longest ago is still live or cooling down
            return slot
        return None

    def _choose(self, at: datetime) -> Slot | None:
        """The least risky number (numberpool/slot.py's order; "overflow" only among rested
        ones), a number not rested the full cooldown counted as reused; None: exhausted. O(log n)
        amortised; the calm path (nobody left to call for the oldest) never needs the heaps."""
        free = self._free_slot(at)
        if free and (not free.history or free.last_seen + self.rules.attribution_window <= at):
            return free
        reuse = self.rules.when_exhausted == "reuse"
        if free is None and not reuse:
            return None
        rested_by = min(at, at - self.rules.min_cooldown) if reuse else at - self.rules.cooldown
        heaps = self._risk_heaps()
        slot = heaps.pick_called(self._slots, rested_by)
        if slot is None and reuse and self.rules.share_called:
            slot = heaps.pick_shareable(self._slots, at)
            if slot is not None:
                self.shared_count += 1
                return slot
        # Under pressure: a quiet number that ended by `rested_by` (`min_cooldown` ago, so never a
        # live one), else the one released longest ago.
        slot = slot or free or heaps.pick_quiet(self._slots, rested_by)
        slot = slot or pick(self._by_release, self._slots, rested_by)
        if slot is not None and slot.history:
            self.reused_count += at < slot.busy_until + self.rules.cooldown
        return slot

    def _risk_heaps(self) -> RiskHeaps:
        """The risk heaps, made (O(n)) when first needed since the last rebuild dropped them."""
        if self._risks is None:
            self._risks = RiskHeaps(self._slots.values())
        self._risks_used = True
        return self._risks
