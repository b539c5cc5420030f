"""What a new session's numbers tell of its pools' pressure: overflow numbers shown (stored as
pool events), cooling numbers reused and live numbers shared. Counted once the session's rows
are stored: a session whose commit failed took its leases back (Pool.withdraw), so counting it
would count a lease nobody holds."""

from __future__ import annotations

import asyncio
import functools

from gateway.metrics import Metrics
from gateway.store.database import Write
from gateway.store.sessions import pool_exhausted_write
from gateway.store.sites import SiteEntry
from numberpool.site import NumberOffer, OfferKind

__all__ = ["PoolCounts", "count_when_stored", "note_pressure", "pool_counts"]

# (metric, amount, pool id)
Count = tuple[str, int, str]
# Each pool's (reused_count, shared_count) before the session was decided.
PoolCounts = list[tuple[int, int]]


def pool_counts(entry: SiteEntry) -> PoolCounts:
    return [(pool.reused_count, pool.shared_count) for pool in entry.site.pools]


def note_pressure(
    entry: SiteEntry,
    offers: list[NumberOffer],
    before: PoolCounts,
    event: tuple[str, str],
    writes: list[Write],
) -> list[Count]:
    """Add a pool event to `writes` for each overflow number shown (its pool was exhausted, or
    capped); the counts to add once stored, the pools' reuses and shares since `before`."""
    counts: list[Count] = []
    for offer in offers:
        if offer.kind is OfferKind.OVERFLOW:
            pool = next(p for p in entry.site.pools if p.target == offer.target)
            writes.append(pool_exhausted_write(pool.pool_id, *event))
            counts.append(("ctgw_pool_exhausted_total", 1, pool.pool_id))
    for pool, (reused, shared) in zip(entry.site.pools, before, strict=True):
        if pool.reused_count > reused:
            counts.append(("ctgw_pool_reused_total", pool.reused_count - reused, pool.pool_id))
        if pool.shared_count > shared:
            counts.append(("ctgw_pool_shared_total", pool.shared_count - shared, pool.pool_id))
    return counts


def count_when_stored(
    metrics: Metrics, site: str, counts: list[Count], done: asyncio.Future[None]
) -> None:
    """Add `counts` to the metrics when `done` (the session's commit) succeeds."""
    if counts:
        done.add_done_callback(functools.partial(_count, metrics, site, counts))


def _count(metrics: Metrics, site: str, counts: list[Count], done: asyncio.Future[None]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    for name, amount, pool_id in counts:
        metrics.inc(name, amount, site=site, pool=pool_id)
