"""The owner's side of the peer link: a peer's sessions, heartbeats and calls answered with the
code paths of this gateway's own requests (the desk's batch, the heartbeat, the call router),
or NotHere for a site this gateway does not hold (the asker re-reads the directory). A peer's
requests are never passed on again: no request goes round in circles.
"""

from __future__ import annotations

import asyncio

import structlog

from gateway.cluster.forwarding import Forwarding, session_site
from gateway.cluster.peer_link import NotHere
from gateway.http.heartbeats import heartbeat_answer
from gateway.http.lease_owner import answer_frame
from gateway.http.public import amp_answer
from gateway.http.session_request import SessionReply, SessionRequest
from gateway.leasing.elsewhere import AmpAnswer, AmpAsk, HeartbeatAnswer
from gateway.telephony.agi import AgiRequest, RouteDecision
from gateway.telephony.route_flights import PEER_DEADLINE

__all__ = ["OwnerAnswers", "site_of_call_elsewhere"]

log = structlog.get_logger()

_NOT_HERE = SessionReply(0, "", {})


def site_of_call_elsewhere(forwarding: Forwarding, request: AgiRequest) -> str | None:
    """The site a call's number belongs to when this gateway does not serve it; None when it
    does, or when the number is no site's (the router answers those itself)."""
    dialed = forwarding.router.dialed_number(request)
    if dialed is None:
        return None
    book = forwarding.desk.book
    entry = book.site_for_number(dialed) or book.known_site_for_number(dialed)
    if entry is None or forwarding.here(entry.site.key):
        return None
    return entry.site.key


class OwnerAnswers:
    """What this gateway answers its peers (gateway/cluster/peer_link.py, `PeerAnswers`)."""

    def __init__(self, forwarding: Forwarding, route_deadline_s: float) -> None:
        self.forwarding = forwarding
        self.desk = forwarding.desk
        self.router = forwarding.router
        self.route_deadline_s = route_deadline_s

    async def sessions(self, requests: list[SessionRequest]) -> list[SessionReply]:
        held = [self.forwarding.here(req.site) for req in requests]
        if not any(held):
            raise NotHere()
        # Decided here in one step with the check above: a site let go meanwhile was settled
        # (its queued sessions committed) before it went.
        mine = [req for req, h in zip(requests, held, strict=True) if h]
        answered = iter(await answer_frame(self.desk, mine))
        return [next(answered) if h else _NOT_HERE for h in held]

    async def heartbeat(self, session_id: str, origin: str | None) -> HeartbeatAnswer:
        desk = self.desk
        live = desk.live.get(session_id)
        if live is None or not self.forwarding.here(live.site):
            site = live.site if live is not None else await session_site(desk, session_id)
            if site is None:
                return HeartbeatAnswer(404, "unknown_session", "no such session")
            if not self.forwarding.here(site):
                raise NotHere()
        return await heartbeat_answer(desk, session_id, origin)

    async def amp(self, ask: AmpAsk) -> AmpAnswer:
        if not self.forwarding.here(ask.site):
            raise NotHere()
        return await amp_answer(self.desk, ask)

    async def route(
        self, request: AgiRequest, answer_within_s: float | None
    ) -> RouteDecision | None:
        """The route, given up when the asker stops waiting (`answer_within_s` from now; an
        older asker does not say: this gateway's own deadline): the call is then recorded as
        gone to the fallback, as Asterisk dialed it (route_flights.late_reason)."""
        if site_of_call_elsewhere(self.forwarding, request) is not None:
            raise NotHere()
        within = self.route_deadline_s if answer_within_s is None else answer_within_s
        limit = asyncio.timeout(within)
        try:
            async with limit:
                return await self.router.decide(request, deadline=PEER_DEADLINE)
        except TimeoutError:
            if not limit.expired():
                raise  # the store's own timeout (a failed route), not the asker's time
            log.warning(
                "peer_route_deadline",
                linkedid=request.linkedid[:64],
                within_ms=round(within * 1000),
                said=answer_within_s is not None,
            )
            return None
