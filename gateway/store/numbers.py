"""Tracking numbers in the store: the statements that put them in pools or take them out, and
the one rule for which numbers are free to take."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from gateway.store.database import Database, Write
from gateway.store.times import ts
from numberpool.site import Site

__all__ = [
    "add_writes",
    "list_numbers",
    "numbers_taken",
    "place_writes",
    "remove_write",
]

_ADD = "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)"
_PLACE = _ADD + " ON CONFLICT(number) DO UPDATE SET pool_id=excluded.pool_id"
_REMOVE = "DELETE FROM numbers WHERE number = ?"
# `CAST(? AS TEXT)`: PostgreSQL cannot type a bare parameter; SQLite runs the same plan.
_LIST = (
    "SELECT n.number, p.site, p.target FROM numbers n JOIN pools p USING (pool_id)"
    " WHERE CAST(? AS TEXT) IS NULL OR p.site = ? ORDER BY p.site, p.target, n.number"
)


def numbers_taken(
    numbers: Iterable[str], sites: Iterable[Site], *, besides: str = ""
) -> dict[str, str]:
    """Those of `numbers` a site holds already (in a pool, or as an overflow, target or static
    number), each with that site's key, in the order given. `besides` is a site being written
    whole: what it holds now is its own to keep or move."""
    holders = [site for site in sites if site.key != besides]
    taken: dict[str, str] = {}
    for number in numbers:
        owner = next((site.key for site in holders if site.owns(number)), None)
        if owner is not None:
            taken.setdefault(number, owner)
    return taken


def add_writes(pool_id: str, numbers: Iterable[str], at: datetime) -> list[Write]:
    """Add `numbers` (found free by `numbers_taken`) to a pool. A number that some pool took
    meanwhile fails the write: it is not moved."""
    added = ts(at)
    return [Write(_ADD, (number, pool_id, added)) for number in dict.fromkeys(numbers)]


def place_writes(pool_id: str, numbers: Iterable[str], at: datetime, *, rank: int) -> list[Write]:
    """Put `numbers` in a pool of a site written whole (from the config, or by POST /v1/sites):
    a number another pool holds in the store moves to this one, as the config wins for the
    sites it names (POST /v1/sites checks other sites with `numbers_taken` first)."""
    added = ts(at)
    return [Write(_PLACE, (number, pool_id, added), rank=rank) for number in numbers]


def remove_write(number: str) -> Write:
    """Take `number` out of whichever pool holds it."""
    return Write(_REMOVE, (number,))


async def list_numbers(db: Database, site: str | None = None) -> list[tuple[str, str, str]]:
    """Every stored number as (number, site, target), by site and target; `site` keeps one."""
    rows = await db.fetchall(_LIST, (site, site))
    return [(row["number"], row["site"], row["target"]) for row in rows]
