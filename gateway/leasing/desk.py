"""The session desk: opens sessions on the sites of its site book, leases their numbers, and
renews the leases on heartbeats.

The session path of POST /v1/sessions, step by step (each step's docstring names the next):
  1. `open_session` (gateway/http/public.py): the handler.
  2. `read_session_request` (gateway/http/session_request.py): read and check the request.
  3. `begin_session` (public.py): the site and its origins; `SessionDesk.admit`: the client
     limits; `SessionDesk.begin`: queue the session for the batch of this loop pass.
  4. `SessionDesk._decide_batch`, at the end of the loop pass (or in `settle`): `_decide`
     leases each queued session's numbers and hands its rows to the store's group commit.
  5. `Database.flush`: one commit for the whole batch (on PostgreSQL only begun there).
  6. `finish_session` (public.py) and `SessionDesk.finish`: the answer, once committed.
Decisions and commits go in batches because that is measured to be cheaper (see
bench/session_layers.py). With HTTP fronts, steps 1-2 run in a front (gateway/http/front.py)
and 3-6 in the gateway process, a frame at a time (`answer_batch`, gateway/http/lease_owner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from gateway.leasing.client_limits import ClientLimits, client_key
from gateway.leasing.elsewhere import SessionsElsewhere
from gateway.leasing.live_sessions import LiveSession, LiveSessions
from gateway.leasing.pressure import count_when_stored, note_pressure, pool_counts
from gateway.leasing.site_book import SiteBook
from gateway.metrics import Metrics
from gateway.store.database import Database, StoreError, Write
from gateway.store.ids import id_maker
from gateway.store.sessions import (
    lease_write,
    session_known,
    session_seen_write,
    session_write,
)
from gateway.store.sites import SiteEntry
from gateway.store.times import ts
from numberpool.clock import Clock
from numberpool.pool import Lease
from numberpool.site import NumberOffer
from numberpool.visit import VisitContext

__all__ = [
    "Opening",
    "SessionAnswer",
    "SessionDesk",
    "SessionEnded",
    "UnknownSession",
]

log = structlog.get_logger()

_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_DEFAULT_LIFE = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRUNE_SLICE = 5000


class UnknownSession(LookupError):
    """No session has this id."""


class SessionEnded(Exception):
    """The session's leases have ended: the page should start a new session."""


@dataclass(frozen=True)
class SessionAnswer:
    session: LiveSession
    offers: list[NumberOffer]
    heartbeat_seconds: int
    expires_text: str  # session.expires_at as stored, formatted once


@dataclass
class Opening:
    """A session asked for, waiting for the next batch to decide it and commit it."""

    site_key: str
    visit: VisitContext
    visitor_id: str | None
    heartbeats: bool
    done: asyncio.Future[None]
    answer: SessionAnswer | None = None
    at: datetime = _EPOCH
    client: str = ""


def _holds_every_pool(entry: SiteEntry, visitor_id: str, at: datetime) -> bool:
    """Whether the visitor holds a live number on every pool of the site: its new session gets
    those numbers back, and nobody else's."""
    return all(p.holds(visitor_id, at) for p in entry.site.pools)


class SessionDesk:
    """Opens sessions on the sites of `book` and renews them on heartbeats."""

    def __init__(
        self,
        db: Database,
        book: SiteBook,
        clock: Clock,
        metrics: Metrics,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.db = db
        self.book = book
        self.clock = clock
        self.metrics = metrics
        self.new_id = ids or id_maker()
        self.limits = ClientLimits(metrics)
        self.live = LiveSessions()
        self._opening: list[Opening] = []
        self._open_scheduled = False
        # Several gateways on one database: sites not in the book are answered by their owner.
        self.elsewhere: SessionsElsewhere | None = None

    @property
    def sites(self) -> dict[str, SiteEntry]:
        """The sites as served now (the site book's; read-only here)."""
        return self.book.sites

    async def open(
        self,
        site_key: str,
        visit: VisitContext,
        visitor_id: str | None,
        *,
        heartbeats: bool = True,
        client: str = "",
    ) -> SessionAnswer:
        """Open a session: `begin`, wait for its batch's decision and commit, `finish`.
        `heartbeats=False` for pages that cannot send them (AMP): leases live `amp_lease`."""
        job = self.begin(site_key, visit, visitor_id, heartbeats=heartbeats, client=client)
        with contextlib.suppress(Exception):  # finish() raises it, after releasing the numbers
            await job.done
        return self.finish(job)

    def admit(self, site_key: str, client: str, visitor_id: str | None) -> None:
        """Step 3 of the session path: count a new session of `client` on the site against its
        limits (RateLimited when over); `begin` queues it next. A visitor holding a live number
        on every pool of the site is not counted: its session gets that number back."""
        entry = self.book.entry(site_key)
        now = self.clock.now()
        if visitor_id and entry.site.pools and _holds_every_pool(entry, visitor_id, now):
            return
        self.limits.admit(site_key, entry.limits, client, now)

    def begin(
        self,
        site_key: str,
        visit: VisitContext,
        visitor_id: str | None,
        *,
        heartbeats: bool = True,
        client: str = "",
    ) -> Opening:
        """Step 3 of the session path: queue a session for the batch that `_decide_batch` decides
        at the end of this loop pass; `finish(job)` once `job.done` is done. The lease channel
        `settle()`s its batch at once instead, with no task or wait per session."""
        self.book.entry(site_key)  # UnknownSite now, not in the batch
        loop = asyncio.get_running_loop()
        job = Opening(site_key, visit, visitor_id, heartbeats, loop.create_future(), client=client)
        self._opening.append(job)
        if not self._open_scheduled:
            self._open_scheduled = True
            loop.call_soon(self._decide_batch)
        return job

    def settle(self) -> None:
        """Decide the queued sessions and commit them now (steps 4 and 5), without waiting for
        the end of this loop pass: afterwards every job begun so far is done on SQLite
        (`finish` it); on PostgreSQL await the jobs' `done` first."""
        if self._opening:
            self._decide_batch()
        self.db.flush()

    def finish(self, job: Opening) -> SessionAnswer:
        """Step 6 of the session path: the answer of a job whose commit is done; raises what
        failed it (StoreError after releasing its numbers: the page must not show a number the
        store does not know)."""
        error = job.done.exception()
        if error is not None:
            if isinstance(error, StoreError) and job.answer is not None:
                session = job.answer.session
                self.book.release(session.site, session.leases, session.session_id, job.at)
            raise error
        answer = job.answer
        assert answer is not None  # set before the commit was queued
        if self.elsewhere is None or job.site_key in self.book.sites:
            self.live.add(answer.session)
        self.metrics.inc("ctgw_sessions_total", site=job.site_key)
        return answer

    def _decide_batch(self) -> None:
        """Step 4 of the session path: decide every queued session back to back and submit their
        rows to the store's group commit at the end of this loop pass (step 5, `Database.flush`);
        each job's `done` then wakes its caller for `finish`. Measured (bench/session_layers.py):
        a decision costs ~3x more CPU run between other requests' parsing than with its likes."""
        self._open_scheduled = False
        jobs, self._opening = self._opening, []
        # One moment for the batch (decided within a millisecond), each timestamp formatted once.
        now = self.clock.now()
        stamps: dict[datetime, str] = {}
        for job in jobs:
            if job.done.done():
                continue  # the request went away
            try:
                self.db.submit(self._decide(job, now, stamps), job.done)
            except Exception as exc:  # a bug or a closed store: that request fails, not the rest
                job.done.set_exception(exc)

    def _decide(self, job: Opening, now: datetime, stamps: dict[datetime, str]) -> list[Write]:
        """Lease the numbers of one new session (in `_decide_batch`): its answer goes on the job,
        its rows back. `stamps` caches formatted timestamps across the batch."""
        entry = self.book.entry(job.site_key)  # UnknownSite: a reload removed it since
        job.at = now
        visitor_id = job.visitor_id
        if not visitor_id or not _VISITOR_ID.fullmatch(visitor_id):
            visitor_id = self.new_id()
        session_id = self.new_id()
        lease_ids = (f"{session_id}.{i}" for i in range(1, 1000))
        holder = f"{job.site_key} {client_key(job.client)}" if job.client else ""
        before = pool_counts(entry)
        offers = entry.site.offer(
            job.visit,
            session_id,
            visitor_id,
            now,
            lease_ids.__next__,
            heartbeats=job.heartbeats,
            may_lease=self._may_lease(entry, job, visitor_id, holder, now),
        )
        leases = [o.lease for o in offers if o.lease is not None]
        expires_at = max((lease.until for lease in leases), default=now + _DEFAULT_LIFE)
        session = LiveSession(
            session_id, job.site_key, visitor_id, expires_at, leases, holder if leases else ""
        )
        stamp = stamps.get(now) or stamps.setdefault(now, ts(now))
        expires = stamps.get(expires_at) or stamps.setdefault(expires_at, ts(expires_at))
        writes = [
            session_write(session_id, job.site_key, visitor_id, job.visit, offers, stamp, expires),
            *(lease_write(lease, stamps) for lease in leases),
        ]
        self._end_superseded(entry, leases, writes)
        counts = note_pressure(entry, offers, before, (stamp, session_id), writes)
        count_when_stored(self.metrics, entry.site.key, counts, job.done)
        job.answer = SessionAnswer(session, offers, entry.heartbeat_seconds(), expires)
        return writes

    def _may_lease(
        self, entry: SiteEntry, job: Opening, visitor_id: str, holder: str, now: datetime
    ) -> bool:
        """Whether the session may lease pool numbers: not once its client holds its share of
        them (`client_live_numbers`); a returning visitor gets its own number back, uncapped."""
        cap = entry.limits.client_live_numbers
        if not (holder and cap and self.live.held_by(holder) >= cap):
            return True
        if job.visitor_id and _holds_every_pool(entry, visitor_id, now):
            return True
        self.metrics.inc("ctgw_sessions_limited_total", site=job.site_key, limit="live_numbers")
        return False

    def _end_superseded(self, entry: SiteEntry, leases: list[Lease], writes: list[Write]) -> None:
        """A returning visitor's new lease cuts its earlier one short: store the ended lease,
        and that session's number no longer counts against its client."""
        for lease in leases:
            pool = entry.site.pool_by_id(lease.pool_id)
            ended = pool.superseded_by(lease) if pool else None
            if ended is not None:
                writes.append(lease_write(ended))
                previous = self.live.get(ended.session_id)
                if previous is not None:
                    self.live.let_go(previous)

    async def heartbeat(self, session_id: str) -> LiveSession:
        """Renew a session's leases; SessionEnded once they have ended."""
        now = self.clock.now()
        session = self.live.get(session_id)
        if session is None:
            if not await session_known(self.db, session_id):
                raise UnknownSession(session_id)
            raise SessionEnded(session_id)
        entry = self.book.sites.get(session.site)
        if now >= session.expires_at or entry is None:
            raise SessionEnded(session_id)
        renewed: list[Lease] = []
        for lease in session.leases:
            pool = entry.site.pool_by_id(lease.pool_id)
            fresh = pool.heartbeat(lease.number, session_id, now) if pool else None
            if fresh is not None:
                renewed.append(fresh)
        if session.leases and not renewed:
            raise SessionEnded(session_id)
        session.leases = renewed
        session.expires_at = max((r.until for r in renewed), default=now + _DEFAULT_LIFE)
        writes = [lease_write(lease) for lease in renewed]
        writes.append(session_seen_write(session_id, now, session.expires_at))
        await self.db.write(writes)
        self.metrics.inc("ctgw_heartbeats_total", site=session.site)
        return session

    def queued_on(self, site: str) -> list[Opening]:
        """The sessions of a site waiting for this loop pass's batch."""
        return [job for job in self._opening if job.site_key == site]

    def prune(self, limit: int = _PRUNE_SLICE) -> bool:
        """Forget ended sessions and the client allowances that are whole again (the store keeps
        the sessions; the site book prunes the leases).

        Looks at `limit` sessions at most and returns True when more are due: the caller
        yields to the event loop between slices. Measured: forgetting 300k ended sessions in
        one scan held the loop for 110 ms, and FastAGI routes and session answers with it.
        """
        now = self.clock.now()
        if self.live.prune(now, limit):
            return True
        self.limits.forget_idle(now)
        return False
