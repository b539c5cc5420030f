"""Public endpoints the swap script and AMP pages call, plus health and metrics."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime

import structlog
from aiohttp import web

from gateway.appkeys import CONFIG, CORS_ORIGIN, DB, DESK, METRICS
from gateway.http.client_address import request_client
from gateway.http.errors import ApiError, error_cors, error_response
from gateway.http.heartbeats import NO_STORE, heartbeat, refuse_origin, seconds_left
from gateway.http.input import header_text, query_text
from gateway.http.session_request import (
    MAX_UA,
    MAX_URL,
    SessionReply,
    SessionRequest,
    TooManySessions,
    read_session_request,
    session_error,
)
from gateway.leasing.client_limits import RateLimited
from gateway.leasing.desk import (
    Opening,
    SessionAnswer,
    SessionDesk,
)
from gateway.leasing.elsewhere import RETRY_AFTER_S, AmpAnswer, AmpAsk
from gateway.leasing.site_book import UnknownSite
from gateway.store.database import StoreError
from gateway.store.sites import SiteEntry
from numberpool.visit import url_problem, visit_from_url

__all__ = [
    "add_public_routes",
    "amp_answer",
    "answer_session",
    "begin_session",
    "finish_session",
    "session_elsewhere_error",
]

log = structlog.get_logger()


def add_public_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", open_session)
    app.router.add_route("OPTIONS", "/v1/sessions", preflight)
    app.router.add_post("/v1/sessions/{session_id}/heartbeat", heartbeat)
    app.router.add_route("OPTIONS", "/v1/sessions/{session_id}/heartbeat", preflight)
    app.router.add_get("/v1/amp/{site}", amp_number)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


def _unknown_site(key: str) -> ApiError:
    return ApiError(404, "unknown_site", f"no site has the key {key[:64]!r}")


def session_elsewhere_error(req: SessionRequest, entry: SiteEntry | None) -> SessionReply:
    """The answer to a session whose site no gateway can take now (`entry`: the site as known
    here; None: no site has the key): 404, or 503 with Retry-After (the page keeps its own
    number meanwhile)."""
    if entry is None:
        return session_error(_unknown_site(req.site), req, allowed=False)
    allowed = req.origin is not None and req.origin in entry.allowed_origins
    reply = session_error(_SITE_UNAVAILABLE, req, allowed=allowed)
    reply.headers["Retry-After"] = str(RETRY_AFTER_S)
    return reply


_SITE_UNAVAILABLE = ApiError(
    503, "site_unavailable", "no gateway serves this site right now; try again shortly"
)


async def preflight(request: web.Request) -> web.Response:
    origin = request.headers.get("Origin", "")
    desk = request.app[DESK]
    if not any(origin in e.allowed_origins for e in desk.book.known.values()):
        raise ApiError(403, "origin_not_allowed", f"origin {origin[:200]!r} is not allowed")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin",
        },
    )


def _session_body(answer: SessionAnswer, entry: SiteEntry, now: datetime) -> str:
    """The answer to POST /v1/sessions, assembled from pieces that are JSON already: the
    session id is generated hex, each number entry comes JSON-encoded from the site's cache."""
    session = answer.session
    numbers = ", ".join(entry.offer_json(o.target, o.number, o.kind.value) for o in answer.offers)
    return (
        f'{{"session_id": "{session.session_id}", "visitor_id": {json.dumps(session.visitor_id)},'
        f' "numbers": [{numbers}], "heartbeat_seconds": {int(answer.heartbeat_seconds)},'
        f' "expires_at": "{answer.expires_text}",'
        f' "expires_in": {seconds_left(session.expires_at, now)!r}}}'
    )


async def open_session(request: web.Request) -> web.Response:
    """Step 1 of the session path (all steps: gateway/leasing/desk.py): POST /v1/sessions,
    answered by `answer_session` against the app's desk (or, for a site another gateway of
    the cluster holds, by that gateway)."""
    desk = request.app[DESK]
    if desk.elsewhere is None:
        return await answer_session(request, desk)
    req = await read_session_request(request)
    if desk.elsewhere.here(req.site):
        return await answer_session(request, desk, req)
    (reply,) = await desk.elsewhere.sessions([req])
    return reply.response()


def begin_session(desk: SessionDesk, req: SessionRequest) -> tuple[Opening, SiteEntry]:
    """Step 3 of the session path: check the site and origin, count the session against the
    limits (`SessionDesk.admit`) and queue it (`SessionDesk.begin`) for the desk's batch, which
    decides it at the end of this loop pass (`SessionDesk._decide_batch`)."""
    entry = desk.book.sites.get(req.site)
    if entry is None:
        raise _unknown_site(req.site)
    refuse_origin(req.origin, entry)
    visit = visit_from_url(req.url, req.referrer, req.user_agent)
    try:
        desk.admit(req.site, req.client, req.visitor_id or None)
        return desk.begin(req.site, visit, req.visitor_id or None, client=req.client), entry
    except UnknownSite:
        raise _unknown_site(req.site) from None
    except RateLimited as exc:
        raise TooManySessions(exc.message, exc.retry_after) from None


def finish_session(
    desk: SessionDesk, req: SessionRequest, job: Opening, entry: SiteEntry
) -> SessionReply:
    """Step 6 of the session path: the answer once the session's commit is done (ApiError 503
    when it failed)."""
    try:
        answer = desk.finish(job)
    except UnknownSite:
        raise _unknown_site(req.site) from None
    except StoreError:
        raise ApiError(503, "store_unavailable", "the store cannot save sessions now") from None
    log.debug("session_opened", session_id=answer.session.session_id, site=req.site)
    headers = dict(NO_STORE)
    if req.origin is not None:
        headers["Access-Control-Allow-Origin"] = req.origin
        headers["Vary"] = "Origin"
    return SessionReply(201, _session_body(answer, entry, desk.clock.now()), headers)


async def answer_session(
    request: web.Request, desk: SessionDesk, req: SessionRequest | None = None
) -> web.Response:
    """POST /v1/sessions against `desk` (bench/session_layers.py passes one without a store):
    steps 2 and 3 (`req`: step 2 done already), a wait while the desk decides and commits its
    batch, then step 6."""
    if req is None:
        req = await read_session_request(request)
    try:
        job, entry = begin_session(desk, req)
    except TooManySessions as exc:
        return session_error(exc, req, allowed=True).response()
    if req.origin is not None:
        request[CORS_ORIGIN] = req.origin  # errors from here on carry the grant too
    with contextlib.suppress(Exception):  # finish_session raises it as an ApiError
        await job.done
    return finish_session(desk, req, job, entry).response()


def _amp_headers(request: web.Request, entry: SiteEntry) -> dict[str, str]:
    """The CORS and AMP source-origin headers of an AMP answer; 403 for an origin or source
    origin the site does not allow."""
    headers = dict(NO_STORE)
    origin = request.headers.get("Origin")
    if origin:
        # Credentials come with the request: only the site's own and AMP Cache origins may read.
        if origin not in entry.amp_origins:
            raise ApiError(
                403, "origin_not_allowed", f"origin {origin[:200]} is not allowed for this site"
            )
        request[CORS_ORIGIN] = origin  # errors from here on carry the grant too
        headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Vary": "Origin",
            }
        )
    source_origin = request.query.get("__amp_source_origin", "")
    if source_origin:
        if source_origin not in entry.allowed_origins:
            raise ApiError(403, "origin_not_allowed", "__amp_source_origin is not allowed")
        headers["AMP-Access-Control-Allow-Source-Origin"] = source_origin
        headers["Access-Control-Expose-Headers"] = "AMP-Access-Control-Allow-Source-Origin"
    return headers


def _amp_visit(request: web.Request) -> tuple[str, str, str]:
    """The URL, referrer and user agent of the visit an AMP request describes. An AMP page
    cannot fix what its runtime sends: unreadable URLs are left out, not refused."""
    url = query_text(request, "url", MAX_URL)
    if not url.startswith(("http://", "https://")) or url_problem(url) is not None:
        url = request.query.get("__amp_source_origin", "") or "https://amp.invalid/"
    referrer = query_text(request, "referrer", MAX_URL)
    if url_problem(referrer) is not None:
        referrer = ""
    return url, referrer, header_text(request, "User-Agent", MAX_UA)


async def amp_number(request: web.Request) -> web.Response:
    """AMP `amp-call-tracking`: one number as `{phoneNumber, formattedPhoneNumber}`."""
    site_key = request.match_info["site"]
    desk = request.app[DESK]
    if desk.elsewhere is not None and not desk.elsewhere.here(site_key):
        return await _amp_elsewhere(request, desk, site_key)
    entry = desk.book.sites.get(site_key)
    if entry is None:
        raise _unknown_site(site_key)
    headers = _amp_headers(request, entry)
    visit = visit_from_url(*_amp_visit(request))
    client = request_client(request, request.app[CONFIG].http.trusted_networks)
    try:
        desk.admit(site_key, client, request.query.get("visitor_id") or None)
    except RateLimited as exc:  # amp-call-tracking keeps the link's own number
        origin = request.headers.get("Origin")
        cors = error_cors(request.method, request.path, origin, request.get(CORS_ORIGIN))
        limited = {**(cors or {}), "Retry-After": str(exc.retry_after)}
        return error_response(429, "rate_limited", exc.message, limited)
    try:
        # An AMP page cannot heartbeat: its lease lives the pool's amp_lease_seconds instead.
        answer = await desk.open(
            site_key,
            visit,
            request.query.get("visitor_id") or None,
            heartbeats=False,
            client=client,
        )
    except StoreError:
        raise ApiError(503, "store_unavailable", "the store cannot save sessions now") from None
    if not answer.offers:
        raise ApiError(404, "no_numbers", "the site has no numbers to show")
    offer = answer.offers[0]
    return web.json_response(
        {"phoneNumber": offer.number, "formattedPhoneNumber": entry.display(offer.number)},
        headers=headers,
    )


async def amp_answer(desk: SessionDesk, ask: AmpAsk) -> AmpAnswer:
    """An AMP number leased here for a peer of the cluster that received the request: the
    limits and the lease of `amp_number`, the outcome as data."""
    visitor_id = ask.visitor_id or None
    try:
        desk.admit(ask.site, ask.client, visitor_id)
    except RateLimited as exc:
        return AmpAnswer(429, "rate_limited", exc.message, retry_after=exc.retry_after)
    visit = visit_from_url(ask.url, ask.referrer, ask.user_agent)
    try:
        answer = await desk.open(ask.site, visit, visitor_id, heartbeats=False, client=ask.client)
    except StoreError:
        return AmpAnswer(503, "store_unavailable", "the store cannot save sessions now")
    if not answer.offers:
        return AmpAnswer(404, "no_numbers", "the site has no numbers to show")
    return AmpAnswer(200, number=answer.offers[0].number)


async def _amp_elsewhere(request: web.Request, desk: SessionDesk, site_key: str) -> web.Response:
    """`amp_number` for a site another gateway of the cluster holds: the checks here, the
    lease there."""
    assert desk.elsewhere is not None
    entry = desk.book.known.get(site_key)
    if entry is None:
        raise _unknown_site(site_key)
    headers = _amp_headers(request, entry)
    client = request_client(request, request.app[CONFIG].http.trusted_networks)
    visitor_id = request.query.get("visitor_id", "")[:64]
    ask = AmpAsk(site_key, *_amp_visit(request), visitor_id, client)
    answer = await desk.elsewhere.amp(ask)
    if answer.retry_after:  # amp-call-tracking keeps the link's own number
        origin = request.headers.get("Origin")
        cors = error_cors(request.method, request.path, origin, request.get(CORS_ORIGIN))
        waits = {**(cors or {}), "Retry-After": str(answer.retry_after)}
        return error_response(answer.status, answer.code, answer.message, waits)
    if answer.code:
        raise ApiError(answer.status, answer.code, answer.message)
    number = {"phoneNumber": answer.number, "formattedPhoneNumber": entry.display(answer.number)}
    return web.json_response(number, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[DB].fetchone("SELECT 1")
    except Exception as exc:  # any store failure means unhealthy, whatever its type
        return web.json_response({"status": "unhealthy", "store": str(exc)}, status=503)
    return web.json_response(
        {"status": "ok", "store": "ok", "sites": len(request.app[DESK].book.sites)},
        headers=NO_STORE,
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].render().encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
