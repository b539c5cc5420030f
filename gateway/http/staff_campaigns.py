"""The staff campaign table: a period's calls by campaign (or any dimension), first or last touch,
sorted by any column through the query (no script), with its CSV and XLSX downloads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.appkeys import DB
from gateway.http.pages import esc, page
from gateway.http.staff_auth import staff_page
from gateway.http.staff_scope import Scope, link, param, read_scope, scope_form
from gateway.store.report_rows import read_report
from reports.call_figures import DIMENSIONS, TOUCHES
from reports.call_report import ReportData, ReportSpec, report_json

__all__ = ["COLUMNS", "campaigns", "sort_rows"]

COLUMNS = (
    ("value", "Value"),
    ("calls", "Calls"),
    ("answered", "Answered"),
    ("missed", "Missed"),
    ("abandoned", "Abandoned"),
    ("first_time", "First-time"),
    ("avg_ring_seconds", "Avg ring (s)"),
    ("avg_talk_seconds", "Avg talk (s)"),
    ("visits", "Visits"),
    ("calls_per_100_visits", "Calls per 100 visits"),
    ("cost", "Cost"),
    ("cost_per_call", "Cost per call"),
)
_NAMES = tuple(name for name, _ in COLUMNS)


def sort_rows(rows: list[dict[str, Any]], column: str, descending: bool) -> list[dict[str, Any]]:
    """The rows by `column`; rows without a value (None) last either way."""
    known = [r for r in rows if r.get(column) is not None]
    unknown = [r for r in rows if r.get(column) is None]
    known.sort(key=lambda r: r[column], reverse=descending)
    return known + unknown


def _cell(name: str, value: Any) -> str:
    if value is None:
        return '<td class="none">-</td>'
    if name == "value":
        return f'<td class="value">{esc(value or "(none)")}</td>'
    shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    return f'<td class="num">{esc(shown)}</td>'


def _head(scope: Scope, keep: dict[str, str], column: str, descending: bool) -> str:
    cells = []
    for name, label in COLUMNS:
        flip = "asc" if name == column and descending else "desc"
        if name == "value" and name != column:
            flip = "asc"
        mark = (" ▼" if descending else " ▲") if name == column else ""
        href = link("/staff/campaigns", scope.query(**keep, sort=name, dir=flip))
        sorted_by = ' aria-sort="descending"' if descending else ' aria-sort="ascending"'
        cells.append(
            f'<th scope="col"{sorted_by if name == column else ""}>'
            f'<a href="{href}">{esc(label)}{mark}</a></th>'
        )
    return "".join(cells)


def _choice(name: str, label: str, chosen: str, values: tuple[str, ...]) -> str:
    options = "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>'
        f"{esc(v.replace('_', ' '))}</option>"
        for v in values
    )
    return f'<label>{esc(label)} <select name="{esc(name)}">{options}</select></label>'


def _downloads(scope: Scope, spec: ReportSpec) -> str:
    links = " ".join(
        f'<a class="download" href="'
        f'{link("/v1/reports/breakdown", scope.query(by=spec.by, touch=spec.touch, format=f))}"'
        f">{label}</a>"
        for f, label in (("csv", "Download CSV"), ("xlsx", "Download XLSX"))
    )
    return f'<p class="downloads">{links}</p>'


def _rows(data: ReportData, spec: ReportSpec) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = report_json(data, spec)["rows"]
    return rows


@staff_page("admin", "marketer")
async def campaigns(request: web.Request) -> web.StreamResponse:
    scope = await read_scope(request)
    if isinstance(scope, web.Response):
        return scope
    by, touch = param(request, "by", "campaign"), param(request, "touch", "last")
    column = param(request, "sort", "calls")
    spec = ReportSpec(
        "breakdown",
        by if by in DIMENSIONS else "campaign",
        touch if touch in TOUCHES else "last",
    )
    column = column if column in _NAMES else "calls"
    descending = param(request, "dir", "desc") != "asc"
    rows = await read_report(
        request.app[DB], scope.site, scope.period, spec, lambda d: _rows(d, spec)
    )
    keep = {"by": spec.by, "touch": spec.touch}
    body_rows = "\n".join(
        f'<tr class="row">{"".join(_cell(n, r.get(n)) for n in _NAMES)}</tr>'
        for r in sort_rows(rows, column, descending)
    )
    form = scope_form(
        scope,
        "/staff/campaigns",
        [
            _choice("by", "By", spec.by, DIMENSIONS),
            _choice("touch", "Touch", spec.touch, TOUCHES),
            f'<input type="hidden" name="sort" value="{esc(column)}">',
            f'<input type="hidden" name="dir" value="{"desc" if descending else "asc"}">',
        ],
    )
    table = (
        f'<table class="breakdown"><thead><tr>{_head(scope, keep, column, descending)}</tr>'
        f"</thead><tbody>\n{body_rows}\n</tbody></table>"
        if rows
        else '<p class="empty">No call in this period.</p>'
    )
    title = f"Calls by {spec.by.replace('_', ' ')} ({spec.touch} touch)"
    body = f"<h1>Campaigns</h1>\n{form}\n<h2>{esc(title)}</h2>\n{_downloads(scope, spec)}{table}"
    return page(request, "Campaigns", body)
