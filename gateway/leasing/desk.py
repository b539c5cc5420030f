"""The session desk: opens visits, leases their numbers, keeps them alive, and remembers them."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from gateway.leasing.client_limits import ClientLimits, client_key
from gateway.metrics import Metrics
from gateway.store.database import Database, StoreError, Write, from_ts, ts
from gateway.store.ids import id_maker
from gateway.store.sites import SiteEntry, load_sites
from numberpool.clock import Clock
from numberpool.pool import Lease
from numberpool.site import Attribution, NumberOffer, OfferKind
from numberpool.visit import VisitContext

__all__ = [
    "LiveSession",
    "Opening",
    "SessionAnswer",
    "SessionDesk",
    "SessionEnded",
    "UnknownSession",
    "UnknownSite",
]

log = structlog.get_logger()

_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_DEFAULT_LIFE = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRUNE_SLICE = 5000
_ENDING_BUCKET_SECONDS = 10

_SESSION_SQL = (
    "INSERT INTO sessions (session_id, site, visitor_id, created_at, last_seen, expires_at, url,"
    " landing_page, referrer, user_agent, utm_source, utm_medium, utm_campaign, utm_term,"
    " utm_content, gclid, gbraid, wbraid, fbclid, msclkid, bd_vid, numbers)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SESSION_SEEN_SQL = "UPDATE sessions SET last_seen = ?, expires_at = ? WHERE session_id = ?"
_LEASE_SQL = (
    "INSERT INTO leases (lease_id, pool_id, number, session_id, visitor_id, started_at, last_seen,"
    " until) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(lease_id) DO UPDATE SET"
    " last_seen = excluded.last_seen, until = excluded.until"
)
# Changes whenever a site, pool or number is added, changed or removed; cheap to read.
_SETTINGS_FINGERPRINT = (
    "SELECT (SELECT count(*) || ':' || total(rowid) FROM numbers) || '|' ||"
    " (SELECT coalesce(group_concat(key || name || allowed_origins || destination || settings),"
    " '') FROM sites) || '|' ||"
    " (SELECT coalesce(group_concat(pool_id || overflow || settings), '') FROM pools)"
)
_EVENT_SQL = "INSERT INTO pool_events (pool_id, kind, at, session_id) VALUES (?, ?, ?, ?)"


def _shown_json(offers: list[NumberOffer]) -> str:
    """The offers as stored with the session: JSON of E.164 numbers and kind names only, so
    it is assembled as text (json.dumps of the same list was a tenth of a session's decision).
    """
    return (
        "["
        + ", ".join(
            f'{{"target": "{o.target}", "number": "{o.number}", "kind": "{o.kind.value}"}}'
            for o in offers
        )
        + "]"
    )


class UnknownSite(LookupError):
    """No site has this key."""


class UnknownSession(LookupError):
    """No session has this id."""


class SessionEnded(Exception):
    """The session's leases have ended: the page should start a new session."""


@dataclass
class LiveSession:
    session_id: str
    site: str
    visitor_id: str
    expires_at: datetime
    leases: list[Lease] = field(default_factory=list)
    holder: str = ""  # "site client-key" while it counts against its client's live numbers


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


def lease_write(lease: Lease, stamps: dict[datetime, str] | None = None) -> Write:
    """The upsert of a lease row; `stamps` holds timestamps the caller has formatted already."""
    stamps = {} if stamps is None else stamps
    started = stamps.get(lease.started_at) or ts(lease.started_at)
    until = stamps.get(lease.until) or ts(lease.until)
    return Write(
        _LEASE_SQL,
        (
            lease.lease_id,
            lease.pool_id,
            lease.number,
            lease.session_id,
            lease.visitor_id,
            started,
            started if lease.last_seen == lease.started_at else ts(lease.last_seen),
            until,
        ),
        rank=30,
    )


class SessionDesk:
    """Opens sessions on sites, renews them on heartbeats, attributes calls to them."""

    def __init__(
        self,
        db: Database,
        sites: dict[str, SiteEntry],
        clock: Clock,
        metrics: Metrics,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.db = db
        self.sites = sites
        self.clock = clock
        self.metrics = metrics
        self.new_id = ids or id_maker()
        self.limits = ClientLimits(metrics)
        # Sessions holding pool numbers, by "site client-key", for `client_live_numbers`.
        self._held: dict[str, int] = {}
        self.live: dict[str, LiveSession] = {}
        # Live session ids by the 10 s in which they end, as known then, for prune.
        self._endings: dict[int, list[str]] = {}
        self._ending_keys: list[int] = []
        self._fingerprint = ""
        self._opening: list[Opening] = []
        self._open_scheduled = False

    async def open(
        self,
        site_key: str,
        visit: VisitContext,
        visitor_id: str | None,
        *,
        heartbeats: bool = True,
        client: str = "",
    ) -> SessionAnswer:
        """Open a session: decide its numbers, lease them, and commit before answering.

        `heartbeats=False` for pages that cannot send them (AMP): their leases get the full grace.
        The sessions asked for in one pass of the event loop are decided together, one after
        another, then committed together (see `_open_batch`).
        """
        job = self.begin(site_key, visit, visitor_id, heartbeats=heartbeats, client=client)
        with contextlib.suppress(Exception):  # finish() raises it, after releasing the numbers
            await job.done
        return self.finish(job)

    def admit(self, site_key: str, client: str, visitor_id: str | None) -> None:
        """Count a new session of `client` on the site against its limits (RateLimited when
        over). A visitor holding a live number on every pool of the site is not counted: its
        session gets that number back, and nobody else's."""
        entry = self.sites.get(site_key)
        if entry is None:
            raise UnknownSite(site_key)
        now = self.clock.now()
        pools = entry.site.pools
        if visitor_id and pools and all(p.holds(visitor_id, now) for p in pools):
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
        """Queue a session for the next batch; `finish(job)` once `job.done` is done.

        For callers that open many sessions at once (the lease channel of the HTTP fronts):
        they `settle()` the batch and finish every job, with no task or wait per session.
        """
        if site_key not in self.sites:
            raise UnknownSite(site_key)
        loop = asyncio.get_running_loop()
        job = Opening(site_key, visit, visitor_id, heartbeats, loop.create_future(), client=client)
        self._opening.append(job)
        if not self._open_scheduled:
            self._open_scheduled = True
            loop.call_soon(self._open_batch)
        return job

    def settle(self) -> None:
        """Decide the queued sessions and commit them now, without waiting for the end of this
        loop pass: afterwards every job begun so far is done (`finish` it)."""
        if self._opening:
            self._open_batch()
        self.db.flush()

    def finish(self, job: Opening) -> SessionAnswer:
        """The answer of a job whose commit is done; raises what failed it (StoreError after
        releasing its numbers: the page must not show a number the store does not know)."""
        error = job.done.exception()
        if error is not None:
            if isinstance(error, StoreError) and job.answer is not None:
                self._release(job.answer, job.at)
            raise error
        answer = job.answer
        assert answer is not None  # set before the commit was queued
        self._remember(answer.session)
        if answer.session.holder:
            self._held[answer.session.holder] = self._held.get(answer.session.holder, 0) + 1
        self.metrics.inc("ctgw_sessions_total", site=job.site_key)
        return answer

    def _open_batch(self) -> None:
        """Decide every queued session back to back and queue their rows for one commit.

        Measured (bench/session_layers.py): the same decision costs ~3x more CPU when it runs
        between other requests' parsing than in a run with its likes.
        """
        self._open_scheduled = False
        jobs, self._opening = self._opening, []
        # One moment for the batch (decided within a millisecond), each timestamp formatted once.
        now = self.clock.now()
        stamps: dict[datetime, str] = {}
        for job in jobs:
            if job.done.done():
                continue  # the request went away
            try:
                writes = self._decide(job, now, stamps)
                self.db.submit(writes, job.done)
            except Exception as exc:  # a bug or a closed store: that request fails, not the rest
                job.done.set_exception(exc)

    def _decide(self, job: Opening, now: datetime, stamps: dict[datetime, str]) -> list[Write]:
        """Lease the numbers of one new session; its answer goes on the job, its rows back.

        `stamps` caches formatted timestamps across the batch."""
        entry = self.sites.get(job.site_key)
        if entry is None:
            raise UnknownSite(job.site_key)  # removed by a reload since the request came
        visit, site_key = job.visit, job.site_key
        job.at = now
        visitor_id = job.visitor_id
        if not visitor_id or not _VISITOR_ID.fullmatch(visitor_id):
            visitor_id = self.new_id()
        session_id = self.new_id()
        lease_ids = (f"{session_id}.{i}" for i in range(1, 1000))
        holder = f"{site_key} {client_key(job.client)}" if job.client else ""
        cap = entry.limits.client_live_numbers
        # A returning visitor gets its own live number back, not another one: never capped.
        pools = entry.site.pools
        returning = bool(job.visitor_id) and all(p.holds(visitor_id, now) for p in pools)
        may_lease = returning or not (holder and cap and self._held.get(holder, 0) >= cap)
        if not may_lease:
            self.metrics.inc("ctgw_sessions_limited_total", site=site_key, limit="live_numbers")
        offers = entry.site.offer(
            visit,
            session_id,
            visitor_id,
            now,
            lease_ids.__next__,
            heartbeats=job.heartbeats,
            may_lease=may_lease,
        )
        leases = [o.lease for o in offers if o.lease is not None]
        expires_at = max((lease.until for lease in leases), default=now + _DEFAULT_LIFE)
        session = LiveSession(
            session_id, site_key, visitor_id, expires_at, leases, holder if leases else ""
        )
        stamp = stamps.get(now) or stamps.setdefault(now, ts(now))
        expires = stamps.get(expires_at) or stamps.setdefault(expires_at, ts(expires_at))
        writes = [
            Write(
                _SESSION_SQL,
                (
                    session_id,
                    site_key,
                    visitor_id,
                    stamp,
                    stamp,
                    expires,
                    visit.url,
                    visit.landing_page,
                    visit.referrer,
                    visit.user_agent,
                    visit.utm_source,
                    visit.utm_medium,
                    visit.utm_campaign,
                    visit.utm_term,
                    visit.utm_content,
                    visit.gclid,
                    visit.gbraid,
                    visit.wbraid,
                    visit.fbclid,
                    visit.msclkid,
                    visit.bd_vid,
                    _shown_json(offers),
                ),
                rank=20,
            ),
            *(lease_write(lease, stamps) for lease in leases),
        ]
        for lease in leases:
            pool = entry.site.pool_by_id(lease.pool_id)
            ended = pool.superseded_by(lease) if pool else None
            if ended is not None:
                writes.append(lease_write(ended))
                previous = self.live.get(ended.session_id)
                if previous is not None:
                    self._let_go(previous)  # its number is this session's now
        for offer in offers:
            if offer.kind is OfferKind.OVERFLOW:
                pool = next(p for p in entry.site.pools if p.target == offer.target)
                writes.append(
                    Write(_EVENT_SQL, (pool.pool_id, "exhausted", stamp, session_id), rank=40)
                )
                self.metrics.inc("ctgw_pool_exhausted_total", site=site_key, pool=pool.pool_id)
        job.answer = SessionAnswer(session, offers, entry.heartbeat_seconds(), expires)
        return writes

    def _release(self, answer: SessionAnswer, at: datetime) -> None:
        entry = self.sites.get(answer.session.site)
        for lease in answer.session.leases:
            pool = entry.site.pool_by_id(lease.pool_id) if entry else None
            if pool is not None:
                pool.release(lease.number, answer.session.session_id, at)

    async def heartbeat(self, session_id: str) -> LiveSession:
        """Renew a session's leases; SessionEnded once they have ended."""
        now = self.clock.now()
        session = self.live.get(session_id)
        if session is None:
            row = self.db.lookup("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,))
            if row is None:
                raise UnknownSession(session_id)
            raise SessionEnded(session_id)
        entry = self.sites.get(session.site)
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
        writes.append(
            Write(_SESSION_SEEN_SQL, (ts(now), ts(session.expires_at), session_id), rank=25)
        )
        await self.db.write(writes)
        self.metrics.inc("ctgw_heartbeats_total", site=session.site)
        return session

    def site_for_number(self, number: str) -> SiteEntry | None:
        """The site a dialed number belongs to, if any."""
        return next((e for e in self.sites.values() if e.site.owns(number)), None)

    def attribute(self, dialed: str, at: datetime) -> Attribution | None:
        """Attribute a call on `dialed` at `at`, or None when no site owns the number."""
        entry = self.site_for_number(dialed)
        return entry.site.attribute(dialed, at) if entry else None

    async def restore(self) -> int:
        """Reload leases and live sessions after a restart; returns the number of leases."""
        now = self.clock.now()
        window = max(
            (
                p.rules.attribution_window + p.rules.grace
                for e in self.sites.values()
                for p in e.site.pools
            ),
            default=timedelta(hours=1),
        )
        rows = await self.db.fetchall(
            "SELECT * FROM leases WHERE until > ? OR rowid IN"
            " (SELECT max(rowid) FROM leases GROUP BY number) ORDER BY started_at, rowid",
            (ts(now - window),),
        )
        pools = {p.pool_id: p for e in self.sites.values() for p in e.site.pools}
        by_session: dict[str, list[Lease]] = {}
        for row in rows:
            lease = Lease(
                lease_id=row["lease_id"],
                pool_id=row["pool_id"],
                number=row["number"],
                session_id=row["session_id"],
                visitor_id=row["visitor_id"],
                started_at=from_ts(row["started_at"]),
                last_seen=from_ts(row["last_seen"]),
                until=from_ts(row["until"]),
            )
            pool = pools.get(lease.pool_id)
            if pool is None or not pool.restore(lease, now):
                continue
            if lease.live_at(now):
                by_session.setdefault(lease.session_id, []).append(lease)
        for row in await self.db.fetchall(
            "SELECT session_id, site, visitor_id, expires_at FROM sessions WHERE expires_at > ?",
            (ts(now),),
        ):
            self._remember(
                LiveSession(
                    row["session_id"],
                    row["site"],
                    row["visitor_id"],
                    from_ts(row["expires_at"]),
                    by_session.get(row["session_id"], []),
                )
            )
        log.info("leases_restored", leases=len(rows), live_sessions=len(self.live))
        return len(rows)

    async def reload_if_changed(self) -> bool:
        """Reload when sites, pools or numbers changed in the store (e.g. by the CLI)."""
        row = await self.db.fetchone(_SETTINGS_FINGERPRINT)
        fingerprint = str(row[0]) if row else ""
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

    def _let_go(self, session: LiveSession) -> None:
        """The session's numbers no longer count against its client's live numbers."""
        if not session.holder:
            return
        left = self._held.get(session.holder, 0) - 1
        if left > 0:
            self._held[session.holder] = left
        else:
            self._held.pop(session.holder, None)
        session.holder = ""

    def _remember(self, session: LiveSession) -> None:
        self.live[session.session_id] = session
        key = int(session.expires_at.timestamp()) // _ENDING_BUCKET_SECONDS
        bucket = self._endings.get(key)
        if bucket is None:
            bucket = self._endings[key] = []
            heapq.heappush(self._ending_keys, key)
        bucket.append(session.session_id)

    def prune(self, limit: int = _PRUNE_SLICE) -> bool:
        """Forget ended sessions and leases too old to attribute to (the store keeps them).

        Looks at `limit` sessions at most and returns True when more are due: the caller
        yields to the event loop between slices. Measured: forgetting 300k ended sessions in
        one scan held the loop for 110 ms, and FastAGI routes and session answers with it.
        Sessions wait in buckets by the time they end, so only ended ones are looked at.
        """
        now = self.clock.now()
        due = int(now.timestamp()) // _ENDING_BUCKET_SECONDS  # buckets before it have ended
        keys, live = self._ending_keys, self.live
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
                    self._let_go(session)
                else:  # renewed by heartbeats since: waits in the bucket of its new end
                    self._remember(session)
            del self._endings[heapq.heappop(keys)]
        for entry in self.sites.values():
            for pool in entry.site.pools:
                pool.prune(now)
        self.limits.forget_idle(now)
        return False
