"""The CRM's API: contacts (one lead per site a contact called) with their calls, tasks and
history; follow-up tasks; a call's disposition. An API key or a staff admin, marketer or
agent, each seeing only the sites they may see (403 before 404 for another site's lead)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB
from gateway.http.admin_calls import _count, _time
from gateway.http.errors import ApiError, read_json_object
from gateway.http.pages import STAFF
from gateway.http.staff_auth import API_KEY, require_site, staff_or_key, visible_sites
from gateway.store.crm_edits import edit_lead, edit_task, known_facts, set_disposition
from gateway.store.crm_reads import (
    LeadFilter,
    TaskFilter,
    call_lead,
    contact_facts,
    contact_sites,
    find_task,
    lead_detail,
    list_leads,
    list_tasks,
)
from gateway.store.staff import list_users
from gateway.store.times import ts
from numberpool.crm import STATUSES, CrmInputError, disposition_from, lead_edit_from

__all__ = ["add_contact_routes", "lead_sites", "who_acts"]

_MAX_ID = 128
_crm = staff_or_key("admin", "marketer", "agent")


def add_contact_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
    r = app.router
    r.add_get("/v1/contacts", _crm(contacts_list))
    r.add_get("/v1/contacts/{contact_id}", _crm(contact_show))
    r.add_patch("/v1/contacts/{contact_id}", _crm(contact_edit))
    r.add_get("/v1/tasks", _crm(tasks_list))
    r.add_patch("/v1/tasks/{task_id}", _crm(task_edit))
    r.add_post("/v1/calls/{call_id}/disposition", _crm(call_disposition))


def who_acts(request: web.Request) -> str:
    """Who a change is by, as the history keeps it: a staff user id, or `key:<name>`."""
    if STAFF in request:
        return request[STAFF].user_id
    return f"key:{request[API_KEY]}"


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if len(value) > 200:
        raise ApiError(400, "invalid_parameter", f"'{name}' is too long")
    return value


def _bad(exc: CrmInputError) -> ApiError:
    return ApiError(400, "invalid_field", str(exc))


async def lead_sites(
    request: web.Request, contact_id: str, site: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """A contact and the sites of its leads the caller may see (only `site`, when named):
    404 for no such contact, 403 when the caller may see none of them."""
    contact = await contact_facts(request.app[DB], contact_id[:_MAX_ID])
    if contact is None:
        raise ApiError(404, "unknown_contact", "no such contact")
    if site:
        require_site(request, site)
    sites = await contact_sites(request.app[DB], contact["number"], contact["contact_id"])
    visible = visible_sites(request)
    mine = [s for s in sites if (visible is None or s in visible) and (not site or s == site)]
    if site and not mine:
        raise ApiError(404, "unknown_contact", "the contact never called this site")
    if not mine:
        raise ApiError(403, "forbidden", "you may not see this contact's sites")
    return contact, mine


async def contacts_list(request: web.Request) -> web.Response:
    site, status = _param(request, "site"), _param(request, "status")
    if site:
        require_site(request, site)
    if status and status not in STATUSES:
        raise ApiError(400, "invalid_parameter", f"'status' must be one of {', '.join(STATUSES)}")
    flt = LeadFilter(
        visible_sites(request),
        site,
        status,
        _param(request, "q"),
        limit=_count(request.query, "limit", 100, 1, 1000),
        offset=_count(request.query, "offset", 0, 0, 2**63 - 1),
    )
    return web.json_response({"contacts": await list_leads(request.app[DB], flt)})


async def _contact_json(request: web.Request, contact_id: str, site: str) -> dict[str, Any]:
    db = request.app[DB]
    contact, sites = await lead_sites(request, contact_id, site)
    contact = await known_facts(db, contact, request.app[CLOCK].now())
    leads = [await lead_detail(db, s, contact["contact_id"], contact["number"]) for s in sites]
    return {**contact, "sites": leads}


async def contact_show(request: web.Request) -> web.Response:
    contact_id = request.match_info["contact_id"]
    return web.json_response(await _contact_json(request, contact_id, _param(request, "site")))


async def contact_edit(request: web.Request) -> web.Response:
    """PATCH status, tags, notes, name, spam, test of a contact's lead on a site (`site` may
    be left out when the caller sees one lead of the contact only)."""
    body = await read_json_object(request)
    try:
        site, edit = lead_edit_from(body)
    except CrmInputError as exc:
        raise _bad(exc) from None
    contact, sites = await lead_sites(request, request.match_info["contact_id"], site)
    if len(sites) > 1:
        raise ApiError(400, "missing_field", f"'site' is required: one of {', '.join(sites)}")
    now = request.app[CLOCK].now()
    await edit_lead(request.app[DB], sites[0], contact["contact_id"], edit, who_acts(request), now)
    return web.json_response(await _contact_json(request, contact["contact_id"], sites[0]))


async def tasks_list(request: web.Request) -> web.Response:
    """Tasks due first: `state` open (default), closed or all; `site`; `due` (due by then)."""
    site, state = _param(request, "site"), _param(request, "state") or "open"
    if site:
        require_site(request, site)
    closed = {"open": False, "closed": True, "all": None}
    if state not in closed:
        raise ApiError(400, "invalid_parameter", "'state' must be open, closed or all")
    due = _time(request.query, "due")
    flt = TaskFilter(
        visible_sites(request),
        site,
        closed[state],
        ts(due) if due else "",
        limit=_count(request.query, "limit", 100, 1, 1000),
    )
    return web.json_response({"tasks": await list_tasks(request.app[DB], flt)})


async def task_edit(request: web.Request) -> web.Response:
    """PATCH {"state": "closed" | "open", "assignee": staff user id or ""}."""
    body = await read_json_object(request)
    unknown = sorted(k for k in body if k not in ("state", "assignee"))
    if unknown:
        raise ApiError(400, "invalid_field", f"unknown field {unknown[0]!r}")
    state, assignee = body.get("state"), body.get("assignee")
    if state is not None and state not in ("open", "closed"):
        raise ApiError(400, "invalid_field", "'state' must be open or closed")
    if assignee is not None and not isinstance(assignee, str):
        raise ApiError(400, "invalid_field", "'assignee' must be a staff user id or ''")
    db = request.app[DB]
    task = await find_task(db, request.match_info["task_id"][:_MAX_ID])
    if task is None:
        raise ApiError(404, "unknown_task", "no such task")
    require_site(request, task["site"])
    if assignee:
        people = {u.user_id: u for u in await list_users(db)}
        if assignee not in people or not people[assignee].can_see(task["site"]):
            raise ApiError(400, "invalid_field", "'assignee' is no staff user of the task's site")
    close = None if state is None else state == "closed"
    now = request.app[CLOCK].now()
    await edit_task(db, task, close=close, assignee=assignee, who=who_acts(request), at=now)
    return web.json_response(await find_task(db, task["task_id"]))


async def call_disposition(request: web.Request) -> web.Response:
    """POST {"disposition", "note"}: what came of a call; it may move the lead's status, close
    its tasks and mark the call and the lead spam ([crm] dispositions)."""
    body = await read_json_object(request)
    call_id = request.match_info["call_id"][:_MAX_ID]
    found = await call_lead(request.app[DB], call_id)
    if found is None:
        raise ApiError(404, "unknown_call", "no such call")
    site, contact_id = found
    require_site(request, site)
    try:
        rules = request.app[CONFIG].crm.rules()
        disposition, note = disposition_from(rules, body.get("disposition"), body.get("note"))
    except CrmInputError as exc:
        raise _bad(exc) from None
    status = await set_disposition(
        request.app[DB],
        disposition,
        note,
        call_id=call_id,
        site=site,
        contact_id=contact_id,
        who=who_acts(request),
        at=request.app[CLOCK].now(),
    )
    return web.json_response(
        {"call_id": call_id, "disposition": disposition.name, "note": note, "status": status}
    )
