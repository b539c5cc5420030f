"""Rate limits by key: a token bucket per key, each kept as one number (GCRA)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["RateLimit"]

# Buckets are swept when their count doubles past this, so a flood of one-off keys (addresses)
# costs memory for about as long as their buckets take to fill up again, not forever.
_SWEEP_FLOOR = 4096
# Float noise on whole-second clocks: a wait this short is no wait.
_EPSILON = 1e-6


class RateLimit:
    """A token bucket per key: `per_minute` tokens a minute, holding at most `burst`.

    Each bucket is stored as the moment it is full again (the generic cell rate algorithm), so
    a key costs one float, and a key whose bucket is full is the same as a key never seen: it
    is forgotten. The caller passes the time, and the rate of each key on each call.
    """

    def __init__(self) -> None:
        self._full_at: dict[str, float] = {}
        self._sweep_at = _SWEEP_FLOOR

    def __len__(self) -> int:
        return len(self._full_at)

    def wait(self, key: str, at: datetime, per_minute: int, burst: int) -> float:
        """Seconds until `key` may take a token (0.0: it may now); `per_minute` 0: no limit."""
        if per_minute <= 0:
            return 0.0
        interval = 60.0 / per_minute
        now = at.timestamp()
        full_at = max(self._full_at.get(key, now), now)
        # Tokens left = burst - (full_at - now) / interval; one is needed.
        wait = full_at - now - (max(burst, 1) - 1) * interval
        return wait if wait > _EPSILON else 0.0

    def take(self, key: str, at: datetime, per_minute: int) -> None:
        """Take a token from `key`'s bucket (after `wait` said 0.0)."""
        if per_minute <= 0:
            return
        now = at.timestamp()
        self._full_at[key] = max(self._full_at.get(key, now), now) + 60.0 / per_minute
        if len(self._full_at) >= self._sweep_at:
            self.forget_full(at)
            self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._full_at))

    def forget_full(self, at: datetime) -> int:
        """Forget the keys whose buckets are full again; returns how many."""
        now = at.timestamp()
        full = [key for key, full_at in self._full_at.items() if full_at <= now]
        for key in full:
            del self._full_at[key]
        return len(full)
