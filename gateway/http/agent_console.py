"""The agent console: `/staff/agent` (the page) and `/staff/agent/events` (server-sent events:
the screen pops of the agent's endpoints and sites, a heartbeat every 15 s).

A page that is closed ends its subscription within a second; one that stops reading (a laptop
asleep) loses pops from its small queue and is cut off when a write cannot finish.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import web

from gateway.appkeys import DB, SCREEN_POPS
from gateway.http.pages import STAFF, esc, page
from gateway.http.staff_auth import current_session, staff_page
from gateway.store.agents import ENDPOINT_ROLES, endpoints_of
from gateway.telephony.pop_hub import Pop, PopHub, Subscription

__all__ = [
    "HEARTBEAT_SECONDS",
    "RETRY_MS",
    "add_agent_console",
    "agent_events",
    "agent_page",
    "endpoints_field",
    "sse_event",
]

log = structlog.get_logger()

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 2000  # EventSource's wait before it reconnects by itself
_GONE_CHECK_SECONDS = 0.5  # how soon a closed page's subscription ends
_WRITE_SECONDS = 30.0  # a page that takes longer to take a message is gone
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Accel-Buffering": "no",  # a proxy in front must pass each event on at once
}


def add_agent_console(app: web.Application) -> None:
    """Register the agent page and its event stream (the hub: app[SCREEN_POPS])."""
    app.router.add_get("/staff/agent", agent_page)
    app.router.add_get("/staff/agent/events", agent_events)


def endpoints_field(value: str) -> str:
    """The users form's endpoints field (one per line or space-separated)."""
    return (
        "<label>Phone endpoints (agents: the SIP endpoints that ring for them, like"
        ' PJSIP/agent1; one per line) <textarea name="endpoints" rows="2" cols="30"'
        f' spellcheck="false">{esc(value)}</textarea></label>\n'
    )


def sse_event(pop: Pop) -> bytes:
    """One pop as a server-sent event (its id lets a reconnecting page skip what it saw)."""
    data = json.dumps(pop.data, separators=(",", ":"), ensure_ascii=True)
    return f"id: {pop.seq}\nevent: {pop.kind}\ndata: {data}\n\n".encode()


def _phones(endpoints: frozenset[str]) -> str:
    if not endpoints:
        return (
            '<p class="notice" role="status">No phone endpoint is mapped to you yet: an admin'
            " adds one on the Users page (or <code>ctgw users create … --endpoint"
            " PJSIP/you</code>).</p>"
        )
    items = "".join(f"<li><code>{esc(e)}</code></li>" for e in sorted(endpoints))
    return f'<p>Calls ringing these phones pop up here:</p>\n<ul class="phones">{items}</ul>'


@staff_page(*ENDPOINT_ROLES)
async def agent_page(request: web.Request) -> web.StreamResponse:
    endpoints = await endpoints_of(request.app[DB], request[STAFF].user_id)
    body = (
        '<link rel="stylesheet" href="/staff/static/agent.css">\n'
        f"<h1>Agent console</h1>\n{_phones(endpoints)}\n"
        '<p id="console-status" class="console-status" role="status"'
        ' data-state="connecting">Connecting…</p>\n'
        '<section id="pops" class="pops" aria-live="polite" aria-label="Calls">'
        '<p class="empty">No call is ringing.</p></section>\n'
        '<script src="/staff/static/agent.js" defer></script>'
    )
    return page(request, "Agent console", body)


def _after_seq(request: web.Request) -> int:
    """The Last-Event-ID a reconnecting EventSource sends, or the `last_event_id` parameter a
    page that opened a new EventSource (it sends none) adds (0: none, or not ours)."""
    text = request.headers.get("Last-Event-ID", "") or request.query.get("last_event_id", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _send(response: web.StreamResponse, data: bytes) -> None:
    async with asyncio.timeout(_WRITE_SECONDS):
        await response.write(data)


async def _stream(request: web.Request, response: web.StreamResponse, sub: Subscription) -> None:
    """Pops and heartbeats until the page goes (or its session ends)."""
    loop = asyncio.get_running_loop()
    beat_at = loop.time() + HEARTBEAT_SECONDS
    while not _gone(request):
        try:
            async with asyncio.timeout(_GONE_CHECK_SECONDS):
                pop = await sub.queue.get()
        except TimeoutError:
            if loop.time() < beat_at:
                continue
            if await current_session(request) is None:
                await _send(response, b'event: bye\ndata: {"why":"logged out"}\n\n')
                return
            await _send(response, b": heartbeat\n\n")
            beat_at = loop.time() + HEARTBEAT_SECONDS
            continue
        await _send(response, sse_event(pop))


@staff_page(*ENDPOINT_ROLES)
async def agent_events(request: web.Request) -> web.StreamResponse:
    user = request[STAFF]
    endpoints = await endpoints_of(request.app[DB], user.user_id)
    hub: PopHub | None = request.app.get(SCREEN_POPS)
    sites = None if user.role == "admin" and not user.sites else user.sites
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    hello = {"endpoints": sorted(endpoints), "live": hub is not None}
    await response.write(f"retry: {RETRY_MS}\nevent: hello\ndata: {json.dumps(hello)}\n\n".encode())
    if hub is None:
        return response
    sub = hub.subscribe(endpoints, sites, _after_seq(request))
    try:
        await _stream(request, response, sub)
    except (ConnectionError, TimeoutError):
        pass  # the page went away: EventSource comes back by itself if it still can
    finally:
        hub.unsubscribe(sub)
        if sub.dropped:
            log.info("agent_page_lost_pops", user=user.email, dropped=sub.dropped)
    return response
