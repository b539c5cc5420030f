"""The asking side of the peer link: the sessions, heartbeats and calls of sites this gateway
does not hold go to the gateway that does.

The directory may be a moment behind: an owner that answers "not here" (or cannot be reached)
makes this gateway re-read the directory and ask again at once. A site changing hands is held
by nobody for about a second (the taker's next tick, then its reload), so a session, heartbeat
or AMP number keeps asking, the directory re-read between tries (one read at a time, at most
ten a second, whatever the number of requests waiting), for up to `HANDOVER_WAIT_S`; a call
for up to its route deadline. Still nobody: a session gets 503 with Retry-After (the swap
script keeps the site's own number), a heartbeat 503, and a call no route (the dialplan dials
its fallback: the call is never lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import structlog

from gateway.cluster.peer_bodies import session_problem
from gateway.cluster.peer_client import PeerClient
from gateway.cluster.peer_frames import BadFrame
from gateway.cluster.peer_link import NotHere, PeerUnavailable
from gateway.http.errors import ApiError
from gateway.http.heartbeats import heartbeat_answer
from gateway.http.lease_owner import answer_frame
from gateway.http.public import amp_answer, session_elsewhere_error
from gateway.http.session_request import SessionReply, SessionRequest, session_error
from gateway.leasing.desk import SessionDesk
from gateway.leasing.elsewhere import RETRY_AFTER_S, AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.store.database import StoreError
from gateway.telephony.agi import AgiRequest, RouteDecision
from gateway.telephony.route import CallRouter

__all__ = ["HANDOVER_WAIT_S", "Forwarding", "OwnerDirectory", "PeerAddress", "session_site"]

log = structlog.get_logger()

_FAILED = (NotHere, PeerUnavailable, TimeoutError, BadFrame)
# How long a page's request waits for a site changing hands (measured: ~1 s from a let-go or a
# kill to the next holder serving; tests/postgres/test_four_gateways.py).
HANDOVER_WAIT_S = 2.0
_RETRY_GAP_S = 0.2  # between tries after the first retry
_REFRESH_GAP_S = 0.1  # directory reads, at most this often
# A route's answer must come back before this gateway's deadline: the holder is told to give
# up this much earlier (at most a tenth of the time left), for the request's and the reply's
# way and both event loops' lag. A route the holder answers later is recorded with its route
# while Asterisk dials the fallback.
_ANSWER_TRIP_S = 0.02
_UNHELD = ("call_site_unheld", "site_unheld")  # a call's log event and unrouted reason
_UNAVAILABLE = "no gateway serves this site right now; try again shortly"
# A request POST /v1/sessions let through that its site's holder would refuse (an origin too
# long to be any site's): answered here, as its holder would.
_ODD_REQUEST = ApiError(403, "origin_not_allowed", "this origin is not allowed for this site")


class PeerAddress(Protocol):
    @property
    def node_id(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


class OwnerDirectory(Protocol):
    """Who holds which unit (gateway/cluster/membership.py)."""

    def holds(self, unit: str) -> bool: ...

    def owner(self, unit: str) -> PeerAddress | None: ...

    async def refresh(self) -> None: ...


async def session_site(desk: SessionDesk, session_id: str) -> str | None:
    """The site of a stored session (None: no such session)."""
    row = await desk.db.lookup("SELECT site FROM sessions WHERE session_id = ?", (session_id,))
    return None if row is None else str(row[0])


class Forwarding:
    """Hands what this gateway does not hold to its holder (the desk's `elsewhere`)."""

    def __init__(
        self,
        directory: OwnerDirectory,
        desk: SessionDesk,
        router: CallRouter,
        unit_of: Callable[[str], str],
        *,
        secret: bytes,
        node_id: str,
    ) -> None:
        self.directory = directory
        self.desk = desk
        self.router = router
        self.unit_of = unit_of
        self._secret = secret
        self._me = node_id
        self._clients: dict[tuple[str, int], PeerClient] = {}
        self._refreshing: asyncio.Future[None] | None = None
        self._refreshed_at = float("-inf")

    async def _refresh(self) -> None:
        """Re-read the directory, shared by every request waiting for it (one read at a time,
        at most one per `_REFRESH_GAP_S`): the lock connection also runs the ticks."""
        loop = asyncio.get_running_loop()
        busy = self._refreshing is not None and not self._refreshing.done()
        if not busy and loop.time() - self._refreshed_at >= _REFRESH_GAP_S:
            self._refreshed_at = loop.time()
            self._refreshing = asyncio.ensure_future(self.directory.refresh())
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)

    async def _tries(self, budget_s: float) -> AsyncIterator[int]:
        """Try numbers: the first at once, the next after a directory read, then every
        `_RETRY_GAP_S` (each after a read) until `budget_s` is spent."""
        loop = asyncio.get_running_loop()
        until = loop.time() + budget_s
        attempt = 0
        while True:
            yield attempt
            if loop.time() + (_RETRY_GAP_S if attempt else 0) >= until:
                return
            if attempt:
                await asyncio.sleep(_RETRY_GAP_S)
            await self._refresh()
            attempt += 1

    def here(self, site: str) -> bool:
        """Whether this gateway serves the site now: loaded, and its hold confirmed lately (a
        lock connection gone quiet stops the serving before the site is unloaded)."""
        return site in self.desk.book.sites and self.directory.holds(self.unit_of(site))

    def _client_for(self, site: str) -> PeerClient | None:
        """The link to the site's holder; None when nobody (else) is known to hold it."""
        owner = self.directory.owner(self.unit_of(site))
        if owner is None or owner.node_id == self._me:
            return None
        key = (owner.host, owner.port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = PeerClient(owner.host, owner.port, self._secret, self._me)
        return client

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply]:
        """Each session answered by its site's holder, in order."""
        book = self.desk.book
        replies: list[SessionReply | None] = [None] * len(requests)
        pending = []
        for i, req in enumerate(requests):
            if req.site not in book.known:
                replies[i] = session_elsewhere_error(req, None)
            elif session_problem(req) is not None:  # its frame would be refused whole
                replies[i] = session_error(_ODD_REQUEST, req, allowed=False)
            else:
                pending.append(i)
        async for _ in self._tries(HANDOVER_WAIT_S):
            if pending:
                pending = await self._sessions_once(requests, pending, replies)
            if not pending:
                break
        for i in pending:
            req = requests[i]
            replies[i] = session_elsewhere_error(req, book.known.get(req.site))
        return [reply for reply in replies if reply is not None]

    async def _sessions_once(
        self, requests: list[SessionRequest], pending: list[int], replies: list[SessionReply | None]
    ) -> list[int]:
        """Ask each holder once for its sessions; the ones still unanswered."""
        here: list[int] = []
        groups: dict[PeerClient, list[int]] = {}
        left: list[int] = []
        for i in pending:
            site = requests[i].site
            if self.here(site):  # taken here since
                here.append(i)
            elif (client := self._client_for(site)) is not None:
                groups.setdefault(client, []).append(i)
            else:
                left.append(i)
        if here:
            local = await answer_frame(self.desk, [requests[i] for i in here])
            for i, reply in zip(here, local, strict=True):
                replies[i] = reply
        asked = list(groups.items())
        answers = await asyncio.gather(
            *(client.sessions([requests[i] for i in group]) for client, group in asked),
            return_exceptions=True,
        )
        for (client, group), answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, _FAILED):
                    raise answer
                peer = f"{client.host}:{client.port}"
                log.warning("peer_sessions_failed", peer=peer, error=repr(answer))
                left += group
                continue
            for i, got in zip(group, answer, strict=True):
                if got is None:
                    left.append(i)
                else:
                    replies[i] = got
        return sorted(left)

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer:
        """A heartbeat answered where its session's site is held."""
        try:
            site = await session_site(self.desk, session_id)
        except StoreError:
            return HeartbeatAnswer(503, "store_unavailable", "the store cannot save sessions now")
        if site is None:
            return HeartbeatAnswer(404, "unknown_session", "no such session")
        async for _ in self._tries(HANDOVER_WAIT_S):
            if self.here(site):
                return await heartbeat_answer(self.desk, session_id, origin)
            client = self._client_for(site)
            if client is None:
                continue
            try:
                return await client.heartbeat(session_id, origin)
            except _FAILED as exc:
                log.info("peer_heartbeat_failed", site=site, error=repr(exc))
        entry = self.desk.book.known.get(site)
        allowed = entry is not None and origin is not None and origin in entry.allowed_origins
        return HeartbeatAnswer(503, "site_unavailable", _UNAVAILABLE, origin_allowed=allowed)

    async def amp(self, ask: AmpAsk) -> AmpAnswer:
        """An AMP number leased where its site is held; 503 with Retry-After when nowhere."""
        async for _ in self._tries(HANDOVER_WAIT_S):
            if self.here(ask.site):
                return await amp_answer(self.desk, ask)
            client = self._client_for(ask.site)
            if client is None:
                continue
            try:
                return await client.amp(ask)
            except _FAILED as exc:
                log.info("peer_amp_failed", site=ask.site, error=repr(exc))
        return AmpAnswer(503, "site_unavailable", _UNAVAILABLE, retry_after=RETRY_AFTER_S)

    async def route(
        self, site: str, request: AgiRequest, deadline_s: float
    ) -> RouteDecision | None:
        """The call's route from the site's holder, within `deadline_s`; None (the dialplan's
        fallback) when nobody holds the site or it does not answer in time. The holder is told
        how long this gateway still waits, less the answer's way back: past that it records
        the call as gone to the fallback and answers None, so its record matches what Asterisk
        dialed."""
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_s
        late = False  # the last holder asked did not answer in time
        async for _ in self._tries(deadline_s):
            if self.here(site):
                return await self.router.decide(request)
            client = self._client_for(site)
            left = until - loop.time()
            if client is None or left <= 0:
                late = late and client is not None
                continue
            try:
                return await client.route(request, left, left - min(_ANSWER_TRIP_S, left / 10))
            except _FAILED as exc:
                late = isinstance(exc, TimeoutError)
                log.info("peer_route_failed", site=site, error=repr(exc))
        # Late: the holder was asked, but neither connected nor answered before this deadline.
        event, reason = ("call_holder_late", "holder_late") if late else _UNHELD
        log.warning(event, site=site, linkedid=request.linkedid[:64])
        self.router.metrics.inc("ctgw_calls_unrouted_total", reason=reason)
        return None

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
