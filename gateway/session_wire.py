"""A session request as the desk's callers pass it on, and its answer: plain data, importing
nothing of the gateway, so the leasing code and the HTTP fronts can both name them
(read and checked by gateway/http/session_request.py; the leasing code names them for the
sessions it hands to other gateways, gateway/leasing/elsewhere.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

__all__ = ["SessionReply", "SessionRequest"]


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """A checked POST /v1/sessions: what the page sent, the two headers that matter, and the
    client's address (limits count new sessions by it)."""

    site: str
    url: str
    referrer: str
    visitor_id: str
    user_agent: str
    origin: str | None
    client: str = ""


@dataclass(frozen=True, slots=True)
class SessionReply:
    """The answer to a POST /v1/sessions, ready to send (or to pass to an HTTP front)."""

    status: int
    body: str
    headers: dict[str, str]

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=self.body,
            content_type="application/json",
            headers=self.headers,
        )
