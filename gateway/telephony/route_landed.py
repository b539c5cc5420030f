"""What the route committed lately, for lookups that may have read the store before it landed.

With SQLite a lookup never suspends, so it always sees every commit before it; with a store
whose lookups are round trips (PostgreSQL) a route's lookup may read the store just before
another route's rows land, after those rows have left the router's pending maps.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["Landed"]

_T = TypeVar("_T")
# Bounded: a lookup is older than this many commits only on a store that stopped answering.
_MAX_LANDED = 4096


class Landed(Generic[_T]):
    """Values committed lately, by key, each with the router's commit count when it landed."""

    def __init__(self, limit: int = _MAX_LANDED) -> None:
        self._limit = limit
        self._rows: OrderedDict[str, tuple[int, _T]] = OrderedDict()

    def add(self, key: str, commit: int, value: _T) -> None:
        self._rows[key] = (commit, value)
        self._rows.move_to_end(key)
        if len(self._rows) > self._limit:
            self._rows.popitem(last=False)

    def since(self, key: str, seen: int) -> _T | None:
        """The value of `key` if it landed after the router had counted `seen` commits (so a
        lookup begun then may have missed it); None otherwise, the store being up to date."""
        found = self._rows.get(key)
        return found[1] if found is not None and found[0] > seen else None
