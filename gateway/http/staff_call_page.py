"""One call's staff page: the call, the visit it was attributed to (landing page, keyword, click
id and network, referrer, the session's pages), its first and last touch, and the form that
marks it as spam or a test call (reports leave marked calls out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.appkeys import DB
from gateway.http.pages import STAFF, check_boxes, csrf_field, esc, page
from gateway.http.staff_auth import staff_page
from gateway.http.staff_contacts import disposition_form
from gateway.http.staff_scope import error_page
from gateway.store.call_marks import call_marks, call_site, mark_write
from gateway.store.calls import attributed_visit, find_call
from gateway.store.crm_reads import call_disposition
from gateway.store.report_rows import report_calls, site_timezone
from numberpool.visit import VisitContext
from reports.call_rows import ReportCall, Touch
from reports.period import Period, zone

__all__ = ["call_page", "set_marks"]

_MAX_ID = 128


def _path(call_id: str) -> str:
    return f"/staff/calls/{quote(call_id, safe='')}"


def _table(css: str, rows: Sequence[tuple[str, object]]) -> str:
    cells = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td>{esc("" if v is None else v)}</td></tr>'
        for name, v in rows
    )
    return f'<table class="facts {esc(css)}"><tbody>{cells}</tbody></table>'


def _touch(css: str, touch: Touch, click_id: str = "") -> str:
    rows: list[tuple[str, object]] = [
        ("Kind", touch.kind),
        ("Source", touch.source),
        ("Medium", touch.medium),
        ("Campaign", touch.campaign),
        ("Keyword (term)", touch.term),
        ("Content", touch.content),
        ("Landing page", touch.landing_page),
        ("Referrer", touch.referrer),
        ("Click network", touch.click_network),
    ]
    if click_id:
        rows.append(("Click id", click_id))
    if touch.static_source:
        rows.append(("Static number", touch.static_source))
    return _table(css, rows)


def _marks_form(request: web.Request, call_id: str, marks: dict[str, bool]) -> str:
    boxes = check_boxes((("spam", "Spam"), ("test", "Test call")), lambda m: bool(marks.get(m)))
    return (
        f'<form class="marks" method="post" action="{esc(_path(call_id))}/marks">'
        f"{csrf_field(request)}{boxes}"
        '<button type="submit">Save marks</button></form>'
    )


async def _site_zone(request: web.Request, site: str) -> str:
    name = await site_timezone(request.app[DB], site) or "UTC"
    try:
        zone(name)
    except ValueError:  # a site stored before its zone was checked
        return "UTC"
    return name


async def _reported(request: web.Request, call: dict[str, Any], tz: str) -> ReportCall | None:
    """The call as reports see it, read with the calls of its own day in the site's zone."""
    day = datetime.fromisoformat(call["started_at"]).astimezone(zone(tz)).date()
    calls = await report_calls(request.app[DB], call["site"], Period(day, day, zone(tz)))
    return next((c for c in calls if c.call_id == call["call_id"]), None)


def _facts(call: dict[str, Any], marks: dict[str, bool], tz: str) -> str:
    attribution = call.get("attribution") or {}
    local = datetime.fromisoformat(call["started_at"]).astimezone(zone(tz))
    marked = " ".join(name for name, on in marks.items() if on)
    rows: list[tuple[str, object]] = [
        ("Started", f"{local:%Y-%m-%d %H:%M:%S} ({tz})"),
        ("Caller", call["caller"]),
        ("Caller name", call["caller_name"]),
        ("Number dialed", call["dialed"]),
        ("State", call["state"]),
        ("Agent", call["agent"]),
        ("Ring seconds", call["ring_seconds"]),
        ("Talk seconds", call["talk_seconds"]),
        ("First-time caller", "yes" if call["first_time"] else "no"),
        ("Hangup cause", call["hangup_cause"]),
        ("Attribution", attribution.get("kind", "")),
        ("Confidence", attribution.get("confidence")),
        ("Marks", marked or "none"),
    ]
    return _table("call", rows)


def _visit(found: ReportCall | None, visit: VisitContext | None) -> str:
    if found is None:
        return '<p class="empty">The call\'s visit could not be read.</p>'
    pages = "".join(f"<li>{esc(p)}</li>" for p in found.pages)
    extra = ""
    if visit is not None:
        extra = _table(
            "visit",
            [("Page URL", visit.url), ("User agent", visit.user_agent)]
            + [
                (name, value)
                for name, value in visit.as_dict().items()
                if name.endswith("clid") and value
            ],
        )
    return (
        "<h2>Visit (last touch)</h2>\n"
        + _touch("last-touch", found.last_touch, found.click_id)
        + extra
        + f'<h3>Pages of the session</h3><ol class="pages">{pages}</ol>'
        + "<h2>First touch</h2>\n"
        + _touch("first-touch", found.first_touch)
    )


@staff_page("admin", "marketer")
async def call_page(request: web.Request) -> web.StreamResponse:
    db = request.app[DB]
    call_id = request.match_info["call_id"][:_MAX_ID]
    call = await find_call(db, call_id)
    if call is None:
        return error_page(request, 404, "Unknown call", "No such call.")
    site = call["site"]
    if not request[STAFF].can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site's calls.")
    tz = await _site_zone(request, site)
    found = await _reported(request, call, tz)
    session_id = (call.get("attribution") or {}).get("session_id") or ""
    visit = await attributed_visit(db, session_id) if session_id else None
    marks = await call_marks(db, call_id) or {}
    saved = request.query.get("marked") == "1"
    notice = '<p class="notice" role="status">Marks saved.</p>\n' if saved else ""
    body = (
        f"<h1>Call {esc(call_id)}</h1>\n{notice}"
        + _facts(call, marks, tz)
        + _visit(found, visit)
        + "<h2>Marks</h2>\n"
        + _marks_form(request, call_id, marks)
        + "<h2>Disposition</h2>\n"
        + disposition_form(request, call_id, *await call_disposition(db, call_id))
        + f'<p><a href="/staff/calls?site={esc(quote(site, safe=""))}">All calls</a></p>'
    )
    return page(request, "Call", body)


@staff_page("admin", "marketer")
async def set_marks(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["call_id"][:_MAX_ID]
    db = request.app[DB]
    site = await call_site(db, call_id)
    if site is None:
        return error_page(request, 404, "Unknown call", "No such call.")
    if not request[STAFF].can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site's calls.")
    form = await request.post()
    await db.write([mark_write(call_id, spam="spam" in form, test="test" in form)])
    raise web.HTTPSeeOther(f"{_path(call_id)}?marked=1")
