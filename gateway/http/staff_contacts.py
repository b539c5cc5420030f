"""The CRM's staff pages: contacts (one lead per site) with a status filter, a contact's page
(facts, touches, calls with their dispositions, tasks, notes, history, the edit form), the open
tasks due first, and the disposition form the call page shows too. Admins, marketers and agents
of a site may see and edit its leads; every value is escaped, no inline script or style."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB
from gateway.http.admin_contacts import lead_sites, who_acts
from gateway.http.errors import ApiError
from gateway.http.pages import STAFF, check_boxes, csrf_field, esc, page
from gateway.http.staff_auth import staff_page, visible_sites
from gateway.http.staff_click_to_call import add_click_to_call, call_button, task_call_button
from gateway.http.staff_scope import error_page, param
from gateway.store.crm_edits import edit_lead, edit_task, known_facts, set_disposition
from gateway.store.crm_reads import (
    LeadFilter,
    TaskFilter,
    call_lead,
    find_task,
    lead_detail,
    list_leads,
    list_tasks,
)
from gateway.store.report_rows import site_keys
from numberpool.crm import STATUSES, CrmInputError, disposition_from, lead_edit_from

__all__ = ["add_contact_pages", "disposition_form"]

_ROLES = ("admin", "marketer", "agent")
_MAX_ID = 128
_TASK_HEAD = ("Due", "Contact", "Site", "Assignee", "")
_CALL_HEAD = ("Started", "State", "Talk s", "Source", "Disposition", "Set")
_HISTORY_HEAD = ("When", "Who", "What", "Before", "After")


def add_contact_pages(app: web.Application) -> None:
    """Register the CRM's staff pages on `app`."""
    app.router.add_get("/staff/contacts", contacts_page)
    app.router.add_get("/staff/contacts/{contact_id}", contact_page)
    app.router.add_post("/staff/contacts/{contact_id}", contact_save)
    app.router.add_get("/staff/tasks", tasks_page)
    app.router.add_post("/staff/tasks/{task_id}/close", task_close)
    app.router.add_post("/staff/calls/{call_id}/disposition", disposition_save)
    add_click_to_call(app)


def _contact_href(contact_id: str, site: str) -> str:
    return f"/staff/contacts/{quote(contact_id, safe='')}?{urlencode({'site': site})}"


def _when(stored: object) -> str:
    return f"{str(stored)[:16].replace('T', ' ')} UTC" if stored else ""


def _table(css: str, head: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """A table of cells already escaped (HTML), or the `empty` text."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    th = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="calls {esc(css)}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
    )


def _options(values: Sequence[str], chosen: str, blank: str = "") -> str:
    first = f'<option value="">{esc(blank)}</option>' if blank else ""
    return first + "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(v)}</option>'
        for v in values
    )


def disposition_form(request: web.Request, call_id: str, current: str = "", note: str = "") -> str:
    """The form that sets a call's disposition and note ([crm] dispositions)."""
    names = [d.name for d in request.app[CONFIG].crm.rules().dispositions]
    action = f"/staff/calls/{quote(call_id, safe='')}/disposition"
    return (
        f'<form class="disposition" method="post" action="{esc(action)}">{csrf_field(request)}'
        f'<select name="disposition" aria-label="Disposition">'
        f"{_options(names, current, 'choose…')}</select>"
        '<input type="text" name="note" maxlength="2000" placeholder="Note" aria-label="Note"'
        f' value="{esc(note)}">'
        '<button type="submit">Save</button></form>'
    )


async def _pick_site(request: web.Request) -> tuple[str, tuple[str, ...]] | web.Response:
    """The site a list shows (the `site` asked, or all the user may see: ''), and theirs."""
    user = request[STAFF]
    site = param(request, "site")
    if site and not user.can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site.")
    return site, tuple(k for k in await site_keys(request.app[DB]) if user.can_see(k))


def _filters(action: str, site: str, sites: Sequence[str], extra: str) -> str:
    picker = (
        f'<label>Site <select name="site">{_options(sites, site, "all my sites")}</select></label>'
        if len(sites) > 1
        else f'<input type="hidden" name="site" value="{esc(site)}">'
    )
    return (
        f'<form class="filters" method="get" action="{esc(action)}">{picker}{extra}'
        '<button type="submit">Show</button></form>'
    )


@staff_page(*_ROLES)
async def contacts_page(request: web.Request) -> web.StreamResponse:
    picked = await _pick_site(request)
    if isinstance(picked, web.Response):
        return picked
    site, sites = picked
    status = param(request, "status")
    if status not in ("", *STATUSES):
        return error_page(request, 400, "Bad filter", "No such status.")
    flt = LeadFilter(visible_sites(request), site, status, param(request, "q"), limit=200)
    rows = [
        [
            f'<a href="{esc(_contact_href(c["contact_id"], c["site"]))}">'
            f"{esc(c['name'] or c['number'])}</a>",
            esc(c["number"]),
            esc(c["site"]),
            f'<span class="status">{esc(c["status"])}</span>',
            esc(c["calls"]),
            esc(_when(c["last_call_at"])),
            esc(c["open_tasks"]),
            esc(", ".join(c["tags"])),
        ]
        for c in await list_leads(request.app[DB], flt)
    ]
    extra = (
        f'<label>Status <select name="status">{_options(STATUSES, status, "any")}</select></label>'
        f'<label>Search <input type="search" name="q" value="{esc(param(request, "q"))}"></label>'
    )
    head = ("Contact", "Number", "Site", "Status", "Calls", "Last call", "Open tasks", "Tags")
    body = (
        "<h1>Contacts</h1>\n"
        + _filters("/staff/contacts", site, sites, extra)
        + _table("contacts", head, rows, "No contact matches.")
    )
    return page(request, "Contacts", body)


def _facts(contact: dict[str, Any], lead: dict[str, Any]) -> str:
    calls = lead["calls"]
    rows = [
        ("Number", contact["number"]),
        ("Name", lead["name"] or contact["name"]),
        ("Status", lead["status"]),
        ("Tags", ", ".join(lead["tags"])),
        ("Region", contact["region"]),
        ("Line type", contact["line_type"]),
        ("Carrier", contact["carrier"]),
        ("Place", contact["geo"]),
        ("Calls", len(calls)),
        ("First call", _when(calls[-1]["started_at"]) if calls else ""),
        ("Last call", _when(calls[0]["started_at"]) if calls else ""),
        ("Marks", " ".join(m for m in ("spam", "test") if lead[m]) or "none"),
    ]
    for name, touch in (("First touch", lead["first_touch"]), ("Last touch", lead["last_touch"])):
        if touch:
            parts = (touch.get(k) for k in ("source", "medium", "campaign", "term", "landing_page"))
            rows.append((name, " / ".join(p for p in parts if p) or touch.get("kind", "")))
    cells = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    return f'<table class="facts contact"><tbody>{cells}</tbody></table>'


def _edit_form(request: web.Request, href: str, site: str, lead: dict[str, Any]) -> str:
    boxes = check_boxes((("spam", "Spam"), ("test", "Test")), lambda m: bool(lead[m]))
    return (
        f'<form class="contact-edit" method="post" action="{esc(href)}">{csrf_field(request)}'
        f'<input type="hidden" name="site" value="{esc(site)}">'
        '<input type="hidden" name="marks" value="1">'
        f'<label>Status <select name="status">{_options(STATUSES, lead["status"])}</select></label>'
        f'<label>Name <input type="text" name="name" maxlength="100" value="{esc(lead["name"])}">'
        "</label>"
        f'<label>Tags (comma separated) <input type="text" name="tags"'
        f' value="{esc(", ".join(lead["tags"]))}"></label>'
        f'<label>Notes <textarea name="notes" rows="5" maxlength="5000">{esc(lead["notes"])}'
        f"</textarea></label>{boxes}"
        '<button type="submit">Save</button></form>'
    )


def _task_rows(request: web.Request, tasks: Sequence[dict[str, Any]], back: str) -> list[list[str]]:
    rows = []
    for t in tasks:
        action = f"/staff/tasks/{quote(t['task_id'], safe='')}/close"
        close = (
            f'<form class="close-task" method="post" action="{esc(action)}">{csrf_field(request)}'
            f'<input type="hidden" name="back" value="{esc(back)}">'
            '<button type="submit">Close</button></form>'
            if t["open"]
            else esc(f"closed {_when(t['closed_at'])}")
        )
        if t["open"] and back == "tasks":  # the contact's page has its own Call form
            close = task_call_button(request, t["task_id"]) + close
        href = _contact_href(t["contact_id"], t["site"])
        who = f'<a href="{esc(href)}">{esc(t["name"] or t["number"])}</a>'
        rows.append([esc(_when(t["due_at"])), who, esc(t["site"]), esc(t["assignee"]), close])
    return rows


@staff_page(*_ROLES)
async def contact_page(request: web.Request) -> web.StreamResponse:
    db, site = request.app[DB], param(request, "site")
    try:
        contact, sites = await lead_sites(request, request.match_info["contact_id"])
        site = site or sites[0]
        if site not in sites:  # 403 for a site the user may not see, else 404
            await lead_sites(request, contact["contact_id"], site)
    except ApiError as exc:
        return error_page(request, exc.status, "Contact", exc.message)
    contact = await known_facts(db, contact, request.app[CLOCK].now())
    lead = await lead_detail(db, site, contact["contact_id"], contact["number"])
    href = _contact_href(contact["contact_id"], site)
    calls = [
        [
            f'<a href="/staff/calls/{esc(quote(c["call_id"], safe=""))}">'
            f"{esc(_when(c['started_at']))}</a>",
            esc(c["state"]),
            esc(c["talk_seconds"] if c["talk_seconds"] is not None else ""),
            esc(c["attribution"].get("source", "")),
            esc(c["disposition"] + (f": {c['disposition_note']}" if c["disposition_note"] else "")),
            disposition_form(request, c["call_id"], c["disposition"], c["disposition_note"]),
        ]
        for c in lead["calls"]
    ]
    history = [
        [esc(_when(h["at"])), esc(h["who"]), esc(h["what"]), esc(h["before"]), esc(h["after"])]
        for h in lead["history"]
    ]
    others = "".join(
        f'<li><a href="{esc(_contact_href(contact["contact_id"], s))}">{esc(s)}</a></li>'
        for s in sites
        if s != site
    )
    saved = '<p class="notice" role="status">Saved.</p>\n' if param(request, "saved") else ""
    body = (
        f"<h1>{esc(lead['name'] or contact['name'] or contact['number'])}</h1>\n{saved}"
        + f'<p class="scope">Site {esc(site)}</p>'
        + call_button(request, contact["contact_id"], site)
        + (f'<ul class="other-sites">{others}</ul>' if others else "")
        + _facts(contact, lead)
        + f'<h2>Notes</h2><p class="notes">{esc(lead["notes"]) or "none"}</p>'
        + "<h2>Calls</h2>"
        + _table("contact-calls", _CALL_HEAD, calls, "No calls.")
        + "<h2>Tasks</h2>"
        + _table("tasks", _TASK_HEAD, _task_rows(request, lead["tasks"], "contact"), "No tasks.")
        + f"<h2>Edit</h2>{_edit_form(request, href, site, lead)}<h2>History</h2>"
        + _table("history", _HISTORY_HEAD, history, "No changes yet.")
    )
    return page(request, "Contact", body)


@staff_page(*_ROLES)
async def contact_save(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {k: form.get(k) for k in ("site", "status", "tags", "notes", "name")}
    # An empty status or site is no choice; empty notes, tags or name clear them.
    raw: dict[str, object] = {
        k: v for k, v in fields.items() if isinstance(v, str) and (v or k not in ("site", "status"))
    }
    if "marks" in form:  # the edit form's checkboxes: an unchecked box is not sent
        raw.update(spam="spam" in form, test="test" in form)
    try:
        site, edit = lead_edit_from(raw)
        contact, sites = await lead_sites(request, request.match_info["contact_id"], site)
    except CrmInputError as exc:
        return error_page(request, 400, "Not saved", str(exc))
    except ApiError as exc:
        return error_page(request, exc.status, "Not saved", exc.message)
    now = request.app[CLOCK].now()
    await edit_lead(request.app[DB], sites[0], contact["contact_id"], edit, who_acts(request), now)
    raise web.HTTPSeeOther(_contact_href(contact["contact_id"], sites[0]) + "&saved=1")


@staff_page(*_ROLES)
async def tasks_page(request: web.Request) -> web.StreamResponse:
    picked = await _pick_site(request)
    if isinstance(picked, web.Response):
        return picked
    site, sites = picked
    flt = TaskFilter(visible_sites(request), site, False, limit=500)
    tasks = await list_tasks(request.app[DB], flt)
    body = (
        "<h1>Open tasks</h1>\n"
        + _filters("/staff/tasks", site, sites, "")
        + _table("tasks", _TASK_HEAD, _task_rows(request, tasks, "tasks"), "No open task.")
    )
    return page(request, "Tasks", body)


@staff_page(*_ROLES)
async def task_close(request: web.Request) -> web.StreamResponse:
    db = request.app[DB]
    task = await find_task(db, request.match_info["task_id"][:_MAX_ID])
    if task is None:
        return error_page(request, 404, "Unknown task", "No such task.")
    if not request[STAFF].can_see(task["site"]):
        return error_page(request, 403, "Forbidden", "You may not see this site's tasks.")
    now = request.app[CLOCK].now()
    await edit_task(db, task, close=True, assignee=None, who=who_acts(request), at=now)
    if (await request.post()).get("back") == "tasks":
        raise web.HTTPSeeOther("/staff/tasks")
    raise web.HTTPSeeOther(_contact_href(task["contact_id"], task["site"]) + "&saved=1")


@staff_page(*_ROLES)
async def disposition_save(request: web.Request) -> web.StreamResponse:
    db = request.app[DB]
    call_id = request.match_info["call_id"][:_MAX_ID]
    found = await call_lead(db, call_id)
    if found is None:
        return error_page(request, 404, "Unknown call", "No such call.")
    site, contact_id = found
    if not request[STAFF].can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site's calls.")
    form = await request.post()
    try:
        rules = request.app[CONFIG].crm.rules()
        disposition, note = disposition_from(rules, form.get("disposition"), form.get("note"))
    except CrmInputError as exc:
        return error_page(request, 400, "Not saved", str(exc))
    who, now = who_acts(request), request.app[CLOCK].now()
    await set_disposition(
        db, disposition, note, call_id=call_id, site=site, contact_id=contact_id, who=who, at=now
    )
    if contact_id is None:
        raise web.HTTPSeeOther(f"/staff/calls/{quote(call_id, safe='')}")
    raise web.HTTPSeeOther(_contact_href(contact_id, site) + "&saved=1")
