"""The site book: the sites as the gateway serves them, with their pools and the leases in them.

It answers which site a number belongs to (FastAGI routes, the admin API), reloads the sites
when the store's settings change while keeping every lease, puts the stored leases back into
their pools after a restart, and forgets leases too old to attribute a call to.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

from gateway.store.database import Database
from gateway.store.sessions import calls_since, leases_since
from gateway.store.sites import SiteEntry, load_sites, settings_fingerprint
from numberpool.clock import Clock
from numberpool.pool import Lease, Pool

__all__ = ["RestoredLeases", "SiteBook", "UnknownSite"]

# How far back leases are restored when no pool says (no pools at all).
_DEFAULT_WINDOW = timedelta(hours=1)


class UnknownSite(LookupError):
    """No site has this key."""


class RestoredLeases(NamedTuple):
    """What `SiteBook.restore` read: how many leases, and the live ones by session."""

    read: int
    live: dict[str, list[Lease]]


class SiteBook:
    """The sites as served, by key; `sites` is swapped whole on a reload, never edited."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.sites: dict[str, SiteEntry] = {}
        self._fingerprint = ""

    def entry(self, key: str) -> SiteEntry:
        """The site with this key; UnknownSite when there is none (or a reload removed it)."""
        entry = self.sites.get(key)
        if entry is None:
            raise UnknownSite(key)
        return entry

    def site_for_number(self, number: str) -> SiteEntry | None:
        """The site a dialed number belongs to, if any."""
        return next((e for e in self.sites.values() if e.site.owns(number)), None)

    def pools(self) -> Iterator[tuple[SiteEntry, Pool]]:
        """Every pool of every site, with its site."""
        for entry in self.sites.values():
            for pool in entry.site.pools:
                yield entry, pool

    async def reload_if_changed(self) -> bool:
        """Reload when sites, pools or numbers changed in the store (e.g. by the CLI)."""
        fingerprint = await settings_fingerprint(self.db)
        if fingerprint == self._fingerprint:
            return False
        await self.reload()
        self._fingerprint = fingerprint
        return True

    async def reload(self) -> None:
        """Rebuild sites from the store (admin or CLI changes), keeping every lease."""
        fresh = await load_sites(self.db)
        now = self.clock.now()
        # No await from here on: the swap is atomic for every other request.
        for key, entry in fresh.items():
            old = self.sites.get(key)
            if old is None:
                continue
            entry.displays = old.displays
            for pool in entry.site.pools:
                previous = old.site.pool_by_id(pool.pool_id)
                if previous is not None:
                    pool.adopt(previous, now)
        self.sites = fresh

    async def restore(self) -> RestoredLeases:
        """Put the stored leases back into their pools after a restart: every lease a call may
        still be attributed to, and each number's newest (its cooldown)."""
        now = self.clock.now()
        window = max(
            (p.rules.attribution_window + p.rules.grace for _, p in self.pools()),
            default=_DEFAULT_WINDOW,
        )
        leases = await leases_since(self.db, now - window)
        pools = {p.pool_id: p for _, p in self.pools()}
        live: dict[str, list[Lease]] = {}
        for lease in leases:
            pool = pools.get(lease.pool_id)
            if pool is None or not pool.restore(lease, now):
                continue  # its pool or number is gone
            if lease.live_at(now):
                live.setdefault(lease.session_id, []).append(lease)
        # Who called whom: numbers whose holder called stay the safest to reuse, and a holder's
        # calls from another phone still count against it (numberpool/claims.py).
        pool_of = {number: pool for _, pool in self.pools() for number in pool.numbers}
        for dialed, note in await calls_since(self.db, now - window):
            if (pool := pool_of.get(dialed)) is not None:
                pool.note_call(dialed, note, now)
        return RestoredLeases(len(leases), live)

    def release(self, site: str, leases: list[Lease], session_id: str, at: datetime) -> None:
        """End a session's leases at `at` (its commit failed): the numbers are free again."""
        entry = self.sites.get(site)
        for lease in leases:
            pool = entry.site.pool_by_id(lease.pool_id) if entry else None
            if pool is not None:
                pool.release(lease.number, session_id, at)

    def prune(self) -> None:
        """Forget leases too old to attribute a call to (the store keeps them)."""
        now = self.clock.now()
        for _, pool in self.pools():
            pool.prune(now)
