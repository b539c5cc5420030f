"""The live sessions a desk takes back from the store: all of them after a restart, or one
site's when this gateway takes the site over from another (several gateways on one database),
and letting go of a site for the next holder."""

from __future__ import annotations

import asyncio

import structlog

from gateway.leasing.desk import SessionDesk
from gateway.leasing.live_sessions import LiveSession
from gateway.leasing.site_book import RestoredLeases
from gateway.store.sessions import sessions_live_at

__all__ = ["let_go_site", "restore_sessions", "take_site"]

log = structlog.get_logger()


async def restore_sessions(desk: SessionDesk, leases: RestoredLeases) -> None:
    """Keep the sessions still alive after a restart, with the live leases the site book
    restored (`SiteBook.restore`, which runs first)."""
    for row in await sessions_live_at(desk.db, desk.clock.now()):
        held = leases.live.get(row.session_id, [])
        desk.live.add(LiveSession(row.session_id, row.site, row.visitor_id, row.expires_at, held))
    log.info("leases_restored", leases=leases.read, live_sessions=len(desk.live.by_id))


async def take_site(desk: SessionDesk, site: str) -> None:
    """Serve a site another gateway served until now: its pools, leases and calls' notes fresh
    from the store (`SiteBook.take`), then its live sessions."""
    leases = await desk.book.take(site)
    rows = await sessions_live_at(desk.db, desk.clock.now())
    desk.live.forget_site(site)  # any left from an earlier time it held the site
    count = 0
    for row in rows:
        if row.site == site:
            held = leases.live.get(row.session_id, [])
            desk.live.add(LiveSession(row.session_id, site, row.visitor_id, row.expires_at, held))
            count += 1
    log.info("site_taken", site=site, leases=leases.read, live_sessions=count)


async def let_go_site(desk: SessionDesk, site: str) -> None:
    """Before another gateway takes the site over: decide and commit its queued sessions, stop
    serving it, and wait for those commits (the next holder reads them from the store)."""
    jobs = desk.queued_on(site)
    desk.settle()
    # From here on its requests go to the gateway that holds it (a session finished meanwhile
    # is not kept: `SessionDesk.finish` checks the book).
    desk.book.drop(site)
    desk.live.forget_site(site)
    waiting = [job.done for job in jobs if not job.done.done()]
    if waiting:
        await asyncio.wait(waiting)
    log.info("site_let_go", site=site, committed=len(jobs))
