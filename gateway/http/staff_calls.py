"""The staff call list (filtered, newest first, paged) and one call's page: the call, its
visit, its first and last touch, and the spam/test marks.

The period's calls are read on a thread (gateway/store/report_rows.py) and filtered and paged
on one too: a busy quarter never holds up a FastAGI route."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from gateway.appkeys import DB
from gateway.http.pages import esc, page
from gateway.http.staff_auth import staff_page
from gateway.http.staff_call_page import call_page, set_marks
from gateway.http.staff_scope import Scope, link, param, read_scope, scope_form
from gateway.store.report_rows import report_calls
from reports.call_rows import ReportCall

__all__ = ["add_call_routes", "call_list"]

PAGE_SIZE = 50
# The filter value that picks calls whose value is empty ('' picks any).
NONE = "(none)"
_FILTERS = ("state", "source", "campaign", "kind")


def add_call_routes(app: web.Application) -> None:
    """Register the call pages on `app`."""
    app.router.add_get("/staff/calls", call_list)
    app.router.add_get("/staff/calls/{call_id}", call_page)
    app.router.add_post("/staff/calls/{call_id}/marks", set_marks)


@dataclass(frozen=True)
class CallFilters:
    state: str = ""
    source: str = ""
    campaign: str = ""
    kind: str = ""
    marked: bool = False  # show spam and test calls too
    page: int = 1


@dataclass(frozen=True)
class CallPage:
    """One page of the filtered calls, and the values each filter can take."""

    calls: list[ReportCall]
    total: int
    choices: dict[str, list[str]]


def _value(call: ReportCall, name: str) -> str:
    if name == "state":
        return call.state
    touch = call.last_touch
    value = touch.kind if name == "kind" else str(getattr(touch, name))
    return value or NONE


def select_calls(calls: Sequence[ReportCall], flt: CallFilters) -> CallPage:
    """The calls matching `flt`, newest first, cut to its page (CPU work: run on a thread)."""
    choices = {name: sorted({_value(c, name) for c in calls}) for name in _FILTERS}
    wanted = {name: getattr(flt, name) for name in _FILTERS if getattr(flt, name)}
    found = [
        c
        for c in reversed(calls)
        if (flt.marked or c.counted) and all(_value(c, n) == v for n, v in wanted.items())
    ]
    start = (flt.page - 1) * PAGE_SIZE
    return CallPage(found[start : start + PAGE_SIZE], len(found), choices)


def _filters(request: web.Request) -> CallFilters:
    raw = param(request, "page", "1")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1
    return CallFilters(
        **{name: param(request, name) for name in _FILTERS},
        marked=param(request, "marked") == "1",
        page=max(1, number),
    )


def _select(name: str, label: str, chosen: str, values: list[str]) -> str:
    options = "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(v)}</option>'
        for v in values
    )
    return (
        f'<label>{esc(label)} <select name="{esc(name)}"><option value="">any</option>'
        f"{options}</select></label>"
    )


def _form(scope: Scope, flt: CallFilters, choices: dict[str, list[str]]) -> str:
    extra = [
        _select(name, name.capitalize(), getattr(flt, name), choices.get(name, []))
        for name in _FILTERS
    ]
    extra.append(
        '<label class="check"><input type="checkbox" name="marked" value="1"'
        f"{' checked' if flt.marked else ''}> Spam and test calls too</label>"
    )
    return scope_form(scope, "/staff/calls", extra)


def call_href(call_id: str) -> str:
    return esc(f"/staff/calls/{quote(call_id, safe='')}")


def _row(call: ReportCall, scope: Scope) -> str:
    when = call.started_at.astimezone(scope.period.tz).strftime("%Y-%m-%d %H:%M")
    touch = call.last_touch
    marks = " ".join(m for m, on in (("spam", call.spam), ("test", call.test_call)) if on)
    who = f"{call.caller_name} {call.caller}".strip() or "(hidden)"
    return (
        f'<tr class="call" data-call-id="{esc(call.call_id)}">'
        f'<td><a href="{call_href(call.call_id)}">{esc(when)}</a></td>'
        f"<td>{esc(who)}</td><td>{esc(call.dialed)}</td><td>{esc(call.state)}</td>"
        f"<td>{esc(touch.source)}</td><td>{esc(touch.medium)}</td>"
        f'<td class="campaign">{esc(touch.campaign)}</td><td>{esc(touch.kind)}</td>'
        f"<td>{esc(marks)}</td></tr>"
    )


def _pager(scope: Scope, flt: CallFilters, total: int) -> str:
    pages = max(1, -(-total // PAGE_SIZE))
    keep = {n: getattr(flt, n) for n in _FILTERS if getattr(flt, n)}
    if flt.marked:
        keep["marked"] = "1"
    links = []
    if flt.page > 1:
        query = scope.query(**keep, page=str(flt.page - 1))
        links.append(f'<a rel="prev" href="{link("/staff/calls", query)}">Newer</a>')
    links.append(f"<span>Page {flt.page} of {pages} ({total} calls)</span>")
    if flt.page < pages:
        query = scope.query(**keep, page=str(flt.page + 1))
        links.append(f'<a rel="next" href="{link("/staff/calls", query)}">Older</a>')
    return f'<p class="pager">{" ".join(links)}</p>'


@staff_page("admin", "marketer")
async def call_list(request: web.Request) -> web.StreamResponse:
    scope = await read_scope(request)
    if isinstance(scope, web.Response):
        return scope
    flt = _filters(request)
    calls = await report_calls(request.app[DB], scope.site, scope.period)
    found = await asyncio.to_thread(select_calls, calls, flt)
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in ("Started", "Caller", "Number", "State", "Source", "Medium", "Campaign", "Kind")
    )
    rows = "\n".join(_row(c, scope) for c in found.calls)
    table = (
        f'<table class="calls"><thead><tr>{head}<th scope="col">Marks</th></tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table>"
        if found.calls
        else '<p class="empty">No call matches these filters.</p>'
    )
    body = (
        f"<h1>Calls</h1>\n{_form(scope, flt, found.choices)}\n{table}\n"
        f"{_pager(scope, flt, found.total)}"
    )
    return page(request, "Calls", body)
