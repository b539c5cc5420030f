"""Click-to-call from the staff pages: a POST (with the session's CSRF token) on a contact or a
task rings the agent's own phone, then the contact. Agents and admins only; the user must see
the site, the contact must be a lead of it, and the user must have an endpoint."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web

from gateway.appkeys import AMI, CLOCK, CONFIG, DB
from gateway.http.pages import STAFF, csrf_field, esc
from gateway.http.staff_auth import staff_page
from gateway.http.staff_scope import error_page
from gateway.settings import Config
from gateway.store.agents import ENDPOINT_ROLES, endpoints_of
from gateway.store.crm_reads import contact_facts, contact_sites, find_task
from gateway.telephony.click_to_call import (
    ClickToCallError,
    Outbound,
    outbound_number,
    place_call,
)

__all__ = ["add_click_to_call", "call_button", "caller_id_for", "task_call_button"]

_MAX_ID = 128


def add_click_to_call(app: web.Application) -> None:
    """Register the click-to-call forms' targets on `app`."""
    app.router.add_post("/staff/contacts/{contact_id}/call", call_contact)
    app.router.add_post("/staff/tasks/{task_id}/call", call_task)


def call_button(request: web.Request, contact_id: str, site: str) -> str:
    """The contact page's "Call" form (agents and admins, with click-to-call on), or ''."""
    if not request.app[CONFIG].calls.click_to_call or request[STAFF].role not in ENDPOINT_ROLES:
        return ""
    action = f"/staff/contacts/{quote(contact_id, safe='')}/call"
    return (
        f'<form class="click-to-call" method="post" action="{esc(action)}">'
        + csrf_field(request)
        + f'<input type="hidden" name="site" value="{esc(site)}">'
        + '<button type="submit">Call (rings your phone first)</button></form>\n'
    )


def task_call_button(request: web.Request, task_id: str) -> str:
    """The tasks page's "Call" form for an open task (as the contact page's), or ''."""
    if not request.app[CONFIG].calls.click_to_call or request[STAFF].role not in ENDPOINT_ROLES:
        return ""
    action = f"/staff/tasks/{quote(task_id, safe='')}/call"
    return (
        f'<form class="click-to-call" method="post" action="{esc(action)}">'
        + csrf_field(request)
        + '<button type="submit">Call (rings your phone first)</button></form>'
    )


def caller_id_for(config: Config, site: str) -> str:
    """The caller id an outbound call of `site` shows: the site's own, else [calls]' own."""
    for settings in config.sites:
        if settings.key == site and settings.outbound_caller_id:
            return settings.outbound_caller_id
    return config.calls.outbound_caller_id


@staff_page(*ENDPOINT_ROLES)
async def call_contact(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    site = str(form.get("site", ""))[:_MAX_ID]
    chosen = str(form.get("endpoint", ""))[:_MAX_ID]
    return await _click(request, request.match_info["contact_id"][:_MAX_ID], site, chosen)


@staff_page(*ENDPOINT_ROLES)
async def call_task(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    chosen = str(form.get("endpoint", ""))[:_MAX_ID]
    if not request.app[CONFIG].calls.click_to_call:
        return _off(request)
    task = await find_task(request.app[DB], request.match_info["task_id"][:_MAX_ID])
    if task is None or not request[STAFF].can_see(str(task["site"])):
        return error_page(request, 404, "Not found", "There is no such task.")
    return await _click(request, str(task["contact_id"]), str(task["site"]), chosen)


def _off(request: web.Request) -> web.Response:
    why = "Click-to-call is off: an admin turns it on with [calls] click_to_call = true."
    return error_page(request, 404, "Click-to-call is off", why)


async def _click(
    request: web.Request, contact_id: str, site: str, chosen: str
) -> web.StreamResponse:
    """Check who may call whom, then place the call; errors are pages with their status."""
    config, db, user = request.app[CONFIG], request.app[DB], request[STAFF]
    if not config.calls.click_to_call:
        return _off(request)
    if not site or not user.can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site.")
    contact = await contact_facts(db, contact_id)
    if contact is None or site not in await contact_sites(db, contact["number"], contact_id):
        return error_page(request, 404, "Not found", "There is no such contact on this site.")
    endpoints = sorted(await endpoints_of(db, user.user_id))
    if not endpoints:
        why = "You have no phone endpoint to ring first: an admin sets one on the Users page."
        return error_page(request, 409, "No phone", why)
    if chosen and chosen not in endpoints:
        return error_page(request, 400, "Not your phone", "That endpoint is not one of yours.")
    link = request.app.get(AMI)
    if link is None or not link.connected:
        return error_page(request, 503, "No telephony", "The gateway is not connected to AMI.")
    try:
        outbound = Outbound(
            site=site,
            contact_id=contact_id,
            number=outbound_number(str(contact["number"])),
            endpoint=chosen or endpoints[0],
            context=config.calls.outbound_context,
            caller_id=caller_id_for(config, site),
        )
        call_id = await place_call(db, link, outbound, request.app[CLOCK].now())
    except ClickToCallError as exc:
        return error_page(request, exc.status, "Call not placed", str(exc))
    where = f"/staff/contacts/{quote(contact_id, safe='')}?{urlencode({'site': site})}"
    return web.Response(status=303, headers={"Location": where, "X-Ctgw-Call-Id": call_id})
