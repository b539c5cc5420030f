"""The sessions alive now, kept in memory for heartbeats, and how many numbers each client holds."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from numberpool.pool import Lease

__all__ = ["LiveSession", "LiveSessions"]

_ENDING_BUCKET_SECONDS = 10


@dataclass
class LiveSession:
    session_id: str
    site: str
    visitor_id: str
    expires_at: datetime
    leases: list[Lease] = field(default_factory=list)
    holder: str = ""  # "site client-key" while it counts against its client's live numbers


class LiveSessions:
    """Live sessions by id, in buckets by when they end (so pruning looks at ended ones only),
    and the count of sessions holding pool numbers by holder, for `client_live_numbers`."""

    def __init__(self) -> None:
        self.by_id: dict[str, LiveSession] = {}
        self._held: dict[str, int] = {}
        # Live session ids by the 10 s in which they end, as known then.
        self._endings: dict[int, list[str]] = {}
        self._ending_keys: list[int] = []

    def get(self, session_id: str) -> LiveSession | None:
        return self.by_id.get(session_id)

    def held_by(self, holder: str) -> int:
        """How many live sessions of this "site client-key" hold pool numbers."""
        return self._held.get(holder, 0)

    def add(self, session: LiveSession) -> None:
        """Keep a new session until it ends; its numbers count against its holder's."""
        self._remember(session)
        if session.holder:
            self._held[session.holder] = self._held.get(session.holder, 0) + 1

    def let_go(self, session: LiveSession) -> None:
        """The session's numbers no longer count against its client's live numbers."""
        if not session.holder:
            return
        left = self._held.get(session.holder, 0) - 1
        if left > 0:
            self._held[session.holder] = left
        else:
            self._held.pop(session.holder, None)
        session.holder = ""

    def forget_site(self, site: str) -> None:
        """Forget every session of a site (another gateway serves it now); their ending
        buckets skip the ids that are gone."""
        for session in [s for s in self.by_id.values() if s.site == site]:
            del self.by_id[session.session_id]
            self.let_go(session)

    def prune(self, now: datetime, limit: int) -> bool:
        """Forget sessions ended at `now`, looking at `limit` at most; True when more are due.

        Sessions wait in buckets by the time they end, so only ended ones are looked at."""
        due = int(now.timestamp()) // _ENDING_BUCKET_SECONDS  # buckets before it have ended
        keys, live = self._ending_keys, self.by_id
        looked = 0
        while keys and keys[0] < due:
            bucket = self._endings[keys[0]]
            while bucket:
                if looked >= limit:
                    return True
                looked += 1
                session = live.get(bucket.pop())
                if session is None:
                    continue
                if session.expires_at <= now:
                    del live[session.session_id]
                    self.let_go(session)
                else:  # renewed by heartbeats since: waits in the bucket of its new end
                    self._remember(session)
            del self._endings[heapq.heappop(keys)]
        return False

    def _remember(self, session: LiveSession) -> None:
        self.by_id[session.session_id] = session
        key = int(session.expires_at.timestamp()) // _ENDING_BUCKET_SECONDS
        bucket = self._endings.get(key)
        if bucket is None:
            bucket = self._endings[key] = []
            heapq.heappush(self._ending_keys, key)
        bucket.append(session.session_id)
