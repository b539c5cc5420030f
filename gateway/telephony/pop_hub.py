"""The screen pops' fan-out: each open agent page subscribes with its endpoints and sites and
gets a small bounded queue. Publishing never waits: a page that does not keep up (a laptop
asleep, a slow link) loses its oldest-unread pops, counted, and never slows anyone else.

An endpoint whose last page left is still wanted for the replay period: a page reconnecting
(its stream cut, a proxy restarting) gets the rings of that gap from the replay."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Pop", "PopHub", "Subscription"]


@dataclass(frozen=True)
class Pop:
    """One message for the pages of `endpoint`: `kind` 'pop' (ringing) or 'end' (rang out)."""

    seq: int
    endpoint: str
    site: str | None  # None: no call record, so no site's data in it
    kind: str
    data: dict[str, Any]
    at: float  # loop time it was published


@dataclass(eq=False)
class Subscription:
    """One open agent page: its endpoints, the sites it may see (None: every site), its queue."""

    endpoints: frozenset[str]
    sites: frozenset[str] | None
    queue: asyncio.Queue[Pop]
    dropped: int = 0

    def sees(self, pop: Pop) -> bool:
        if pop.endpoint not in self.endpoints:
            return False
        return pop.site is None or self.sites is None or pop.site in self.sites


@dataclass
class PopHub:
    """Subscriptions by endpoint; recent pops are kept a short while for a page that
    (re)connects while its phone rings."""

    max_queue: int = 16
    replay_seconds: float = 30.0
    max_recent: int = 256
    max_departed: int = 1024  # endpoints still wanted after their last page left (oldest go)
    dropped: int = 0
    published: int = 0
    _subs: dict[str, set[Subscription]] = field(default_factory=dict, repr=False)
    _recent: deque[Pop] = field(default_factory=deque, repr=False)
    # endpoint -> loop time its last page left, oldest first
    _departed: dict[str, float] = field(default_factory=dict, repr=False)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def wants(self, endpoint: str) -> bool:
        """Whether a page is open for `endpoint`, or its last one left within the replay period
        (it may be reconnecting); nothing to build otherwise."""
        if endpoint in self._subs:
            return True
        left = self._departed.get(endpoint)
        if left is None:
            return False
        if asyncio.get_running_loop().time() - left <= self.replay_seconds:
            return True
        self._forget_departed()
        return False

    @property
    def subscriptions(self) -> int:
        return len({sub for subs in self._subs.values() for sub in subs})

    def subscribe(
        self, endpoints: frozenset[str], sites: frozenset[str] | None, after_seq: int = 0
    ) -> Subscription:
        """A new page's subscription, its queue holding the recent pops it has not seen."""
        sub = Subscription(endpoints, sites, asyncio.Queue(self.max_queue))
        for endpoint in endpoints:
            self._subs.setdefault(endpoint, set()).add(sub)
            self._departed.pop(endpoint, None)
        now = asyncio.get_running_loop().time()
        for pop in self._recent:
            if pop.seq > after_seq and now - pop.at <= self.replay_seconds and sub.sees(pop):
                self._offer(sub, pop)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """The page is gone: nothing is queued for it any more (idempotent); its endpoints
        stay wanted for the replay period, as it may be reconnecting."""
        for endpoint in sub.endpoints:
            subs = self._subs.get(endpoint)
            if subs is None:
                continue
            subs.discard(sub)
            if not subs:
                del self._subs[endpoint]
                self._departed.pop(endpoint, None)  # re-inserted: the dict stays oldest first
                self._departed[endpoint] = asyncio.get_running_loop().time()
        self._forget_departed()

    def _forget_departed(self) -> None:
        """Drop departures older than the replay period, and the oldest beyond the bound."""
        now = asyncio.get_running_loop().time()
        while self._departed:
            endpoint, left = next(iter(self._departed.items()))
            if len(self._departed) <= self.max_departed and now - left <= self.replay_seconds:
                break
            del self._departed[endpoint]

    def publish(self, endpoint: str, site: str | None, kind: str, data: dict[str, Any]) -> int:
        """Queue a pop for every page that sees it, without waiting; returns how many got it."""
        now = asyncio.get_running_loop().time()
        pop = Pop(next(self._seq), endpoint, site, kind, data, now)
        self.published += 1
        self._recent.append(pop)
        while self._recent and (
            len(self._recent) > self.max_recent or now - self._recent[0].at > self.replay_seconds
        ):
            self._recent.popleft()
        delivered = 0
        for sub in list(self._subs.get(endpoint, ())):
            if sub.sees(pop):
                delivered += self._offer(sub, pop)
        return delivered

    def _offer(self, sub: Subscription, pop: Pop) -> int:
        if sub.queue.full():
            # The oldest unread pop goes: a page that catches up wants the newest ring.
            sub.queue.get_nowait()
            sub.dropped += 1
            self.dropped += 1
        sub.queue.put_nowait(pop)
        return 1
