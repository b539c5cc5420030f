"""The site book: the sites as the gateway serves them, with their pools and the leases in them.

It answers which site a number belongs to (FastAGI routes, the admin API), reloads the sites
when the store's settings change while keeping every lease, puts the stored leases back into
their pools after a restart, and forgets leases too old to attribute a call to.

With several gateways on one database (`[cluster]`), a gateway serves only the sites it holds
(`serve_held`): `take` loads a site fresh from the store with its leases when it gets the site,
`drop` forgets it when it lets go; `known` is every site, for what to forward where.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
        # Every site in the store as last loaded; `sites` itself unless only held ones are served.
        self.known: dict[str, SiteEntry] = self.sites
        self._held: set[str] | None = None  # None: every site is served here
        self._fingerprint = ""

    def serve_held(self) -> None:
        """Serve only the sites `take` gives (several gateways share the database)."""
        self._held = set()
        self.sites = {}

    def known_site_for_number(self, number: str) -> SiteEntry | None:
        """The site a dialed number belongs to, whichever gateway serves it."""
        return next((e for e in self.known.values() if e.site.owns(number)), None)

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
        self.known = fresh
        if self._held is not None:
            fresh = {key: entry for key, entry in fresh.items() if key in self._held}
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
        return await self._restore([pool for _, pool in self.pools()])

    async def take(self, key: str) -> RestoredLeases:
        """Serve the site `key` from now on, loaded fresh from the store with its leases and its
        calls' notes restored (another gateway served it until now)."""
        assert self._held is not None, "take() is for a gateway that serves held sites"
        fresh = await load_sites(self.db)
        entry = fresh.get(key)
        restored = await self._restore(entry.site.pools if entry else [])
        # No await from here on: the site appears whole to every other request.
        self.known = fresh
        self._held.add(key)
        if entry is not None:
            self.sites = {**self.sites, key: entry}
        return restored

    def drop(self, key: str) -> None:
        """Serve the site `key` no more (its leases stay in the store for the next holder)."""
        if self._held is not None:
            self._held.discard(key)
        self.sites = {k: e for k, e in self.sites.items() if k != key}

    async def _restore(self, pools_in: Iterable[Pool]) -> RestoredLeases:
        """Restore the leases and call notes of these pools from the store."""
        now = self.clock.now()
        pools = {p.pool_id: p for p in pools_in}
        window = max(
            (p.rules.attribution_window + p.rules.grace for p in pools.values()),
            default=_DEFAULT_WINDOW,
        )
        leases = await leases_since(self.db, now - window)
        live: dict[str, list[Lease]] = {}
        for lease in leases:
            pool = pools.get(lease.pool_id)
            if pool is None or not pool.restore(lease, now):
                continue  # its pool or number is gone
            if lease.live_at(now):
                live.setdefault(lease.session_id, []).append(lease)
        # Who called whom: numbers whose holder called stay the safest to reuse, and a holder's
        # calls from another phone still count against it (numberpool/claims.py).
        pool_of = {number: pool for pool in pools.values() for number in pool.numbers}
        for dialed, note in await calls_since(self.db, now - window):
            if (pool := pool_of.get(dialed)) is not None:
                pool.note_call(dialed, note, now)
        return RestoredLeases(len(leases), live)

    def release(self, site: str, leases: list[Lease], session_id: str, at: datetime) -> None:
        """Take back a session's leases (its commit failed): as if never leased, so no call goes
        to a session the store does not have, and a number it shared is as before."""
        entry = self.sites.get(site)
        for lease in leases:
            pool = entry.site.pool_by_id(lease.pool_id) if entry else None
            if pool is not None:
                pool.withdraw(lease.number, session_id, at)

    def prune(self) -> None:
        """Forget leases too old to attribute a call to (the store keeps them)."""
        now = self.clock.now()
        for _, pool in self.pools():
            pool.prune(now)
