"""Failed staff logins counted per e-mail and per client address, so guessing is slow. Pure:
no I/O; one per app (gateway/appkeys.py LOGIN_THROTTLE)."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Failed logins per e-mail and per client address in a sliding window; over a limit, the
    login is refused (429) until the oldest failure leaves the window. One per app."""

    def __init__(
        self,
        *,
        per_email: int = 5,
        per_client: int = 20,
        window: timedelta = timedelta(minutes=15),
        max_tracked: int = 10_000,
    ) -> None:
        self.per_email = per_email
        self.per_client = per_client
        self.window = window
        self.max_tracked = max_tracked
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, email: str, client: str, now: datetime) -> int:
        """Seconds until a login may be tried again (0: it may now)."""
        waits = [
            self._wait(f"e:{email}", self.per_email, now),
            self._wait(f"c:{client}", self.per_client, now),
        ]
        return max(waits)

    def failed(self, email: str, client: str, now: datetime) -> None:
        """Count a failed login (or one being checked: parallel guesses must not slip by)."""
        for key in (f"e:{email}", f"c:{client}"):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # re-inserted: the dict's order is least recent first
        while len(self._failures) > self.max_tracked:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, email: str, client: str, at: datetime) -> None:
        """A login counted as failed at `at` (before its password was checked) succeeded: the
        e-mail's failures are forgiven, and this one attempt of the client's."""
        self._failures.pop(f"e:{email}", None)
        times = self._failures.get(f"c:{client}")
        if times and at in times:
            times.remove(at)

    def _wait(self, key: str, limit: int, now: datetime) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        # The oldest failure that still counts towards the limit must leave the window.
        left = times[len(times) - limit] + self.window - now
        return max(1, math.ceil(left.total_seconds()))
