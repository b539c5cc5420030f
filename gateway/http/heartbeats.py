"""POST /v1/sessions/{id}/heartbeat: a page keeps its number while it is open; with several
gateways on one database, the heartbeat of a site held elsewhere is answered there. Also the
origin and timing helpers the session answers share."""

from __future__ import annotations

from datetime import datetime

import structlog
from aiohttp import web

from gateway.appkeys import CORS_ORIGIN, DESK
from gateway.http.errors import ApiError, error_cors, error_response
from gateway.http.session_request import MAX_URL
from gateway.leasing.desk import SessionDesk, SessionEnded, UnknownSession
from gateway.leasing.elsewhere import RETRY_AFTER_S, HeartbeatAnswer
from gateway.store.database import StoreError
from gateway.store.sites import SiteEntry
from gateway.store.times import ts

__all__ = ["NO_STORE", "heartbeat", "heartbeat_answer", "refuse_origin", "seconds_left"]

log = structlog.get_logger()

NO_STORE = {"Cache-Control": "no-store"}


def refuse_origin(origin: str | None, entry: SiteEntry) -> None:
    """403 for a browser origin the site does not allow (no Origin: CORS does not apply)."""
    if origin is not None and origin not in entry.allowed_origins:
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin[:200]} is not allowed for this site"
        )


def _check_origin(request: web.Request, entry: SiteEntry) -> dict[str, str]:
    """CORS headers for an allowed origin; 403 for a browser origin the site does not allow."""
    origin = request.headers.get("Origin")
    refuse_origin(origin, entry)
    if origin is None:
        return {}
    request[CORS_ORIGIN] = origin
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def seconds_left(until: datetime, now: datetime) -> float:
    """Seconds until `until`, for clients whose clock may be wrong."""
    return round(max(0.0, (until - now).total_seconds()), 3)


async def heartbeat(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if len(session_id) > 64:
        raise ApiError(404, "unknown_session", "no such session")
    desk = request.app[DESK]
    live = desk.live.get(session_id)
    if desk.elsewhere is not None and (live is None or not desk.elsewhere.here(live.site)):
        return await _heartbeat_elsewhere(request, desk, session_id)
    entry = desk.book.sites.get(live.site) if live else None
    headers = _check_origin(request, entry) if entry else {}
    try:
        session = await desk.heartbeat(session_id)
    except (UnknownSession, SessionEnded, StoreError) as exc:
        raise _renewal_error(exc, session_id) from None
    return web.json_response(
        {
            "session_id": session_id,
            "expires_at": ts(session.expires_at),
            "expires_in": seconds_left(session.expires_at, desk.clock.now()),
        },
        headers={**headers, **NO_STORE},
    )


def _renewal_error(exc: Exception, session_id: str) -> ApiError:
    """What a failed `SessionDesk.heartbeat` is in the API: 404, 410 or 503."""
    if isinstance(exc, UnknownSession):
        return ApiError(404, "unknown_session", "no such session")
    if isinstance(exc, SessionEnded):
        log.debug("session_ended", session_id=session_id)
        return ApiError(410, "session_ended", "the session has ended; open a new one")
    return ApiError(503, "store_unavailable", "the store cannot save sessions now")


async def heartbeat_answer(
    desk: SessionDesk, session_id: str, origin: str | None
) -> HeartbeatAnswer:
    """A heartbeat as this gateway answers it, for a peer of the cluster that passed it on:
    the same checks and renewal as `heartbeat`, the outcome as data."""
    live = desk.live.get(session_id)
    entry = desk.book.sites.get(live.site) if live else None
    allowed = entry is not None and origin is not None and origin in entry.allowed_origins
    try:
        if entry is not None:
            refuse_origin(origin, entry)
        session = await desk.heartbeat(session_id)
    except ApiError as exc:
        return HeartbeatAnswer(exc.status, exc.code, exc.message, origin_allowed=allowed)
    except (UnknownSession, SessionEnded, StoreError) as exc:
        error = _renewal_error(exc, session_id)
        return HeartbeatAnswer(error.status, error.code, error.message, origin_allowed=allowed)
    expires_in = seconds_left(session.expires_at, desk.clock.now())
    return HeartbeatAnswer(200, "", "", ts(session.expires_at), expires_in, allowed)


async def _heartbeat_elsewhere(
    request: web.Request, desk: SessionDesk, session_id: str
) -> web.Response:
    """A heartbeat for a session this gateway does not hold: answered by the gateway that holds
    its site (the site read from the store), the answer given as that gateway gave it."""
    assert desk.elsewhere is not None
    origin = request.headers.get("Origin")
    if origin is not None and len(origin) > MAX_URL:  # no site allows it; its holder refuses it
        raise ApiError(403, "origin_not_allowed", f"origin {origin[:200]} is not allowed")
    answer = await desk.elsewhere.heartbeat(session_id, origin)
    if answer.origin_allowed and origin is not None:
        request[CORS_ORIGIN] = origin  # errors carry the grant too, as locally
    if answer.status == 503 and answer.code == "site_unavailable":
        cors = error_cors(request.method, request.path, origin, request.get(CORS_ORIGIN))
        retry = {**(cors or {}), "Retry-After": str(RETRY_AFTER_S)}
        return error_response(503, answer.code, answer.message, retry)
    if answer.code:
        raise ApiError(answer.status, answer.code, answer.message)
    headers = (
        {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if request.get(CORS_ORIGIN) and origin
        else {}
    )
    return web.json_response(
        {
            "session_id": session_id,
            "expires_at": answer.expires_at,
            "expires_in": answer.expires_in,
        },
        headers={**headers, **NO_STORE},
    )
