"""Report routes: summaries, breakdowns and their CSV/XLSX downloads, call marks, campaign costs.

Every route lets in an API key or a staff admin or marketer, and shows only the sites the
caller may see. The rows are read and the figures and files made on a thread of their own
(gateway/store/report_rows.py): a quarter's report never holds up a FastAGI route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.appkeys import DB
from gateway.http.errors import ApiError, read_json_object
from gateway.http.report_query import asked_period, asked_site, query_text, site_zone
from gateway.http.staff_auth import require_site, staff_or_key
from gateway.store.call_marks import call_marks, call_site, cost_writes, list_costs, mark_write
from gateway.store.report_rows import read_report
from reports.call_report import REPORTS, ReportSpec
from reports.costs import parse_cost
from reports.report_files import FORMATS, report_file
from reports.xlsx import XLSX_TYPE

__all__ = ["add_report_routes"]

_MAX_COSTS = 1000

_staff = staff_or_key("admin", "marketer")


def add_report_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
    r = app.router
    for kind in REPORTS:
        r.add_get(f"/v1/reports/{kind}", _staff(report))
    r.add_post("/v1/calls/{call_id}/marks", _staff(marks_set))
    r.add_get("/v1/sites/{site}/costs", _staff(costs_list))
    r.add_put("/v1/sites/{site}/costs", _staff(costs_put))


async def report(request: web.Request) -> web.Response:
    """GET /v1/reports/{kind}?site=&since=&until=[&by=&touch=][&format=json|csv|xlsx]"""
    kind = request.path.rsplit("/", 1)[-1]
    fmt = query_text(request, "format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_parameter", f"'format' must be one of {', '.join(FORMATS)}")
    try:
        spec = ReportSpec(
            kind, query_text(request, "by", "campaign"), query_text(request, "touch", "last")
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    site, tz = await asked_site(request)
    period = asked_period(request, tz)
    body = await read_report(
        request.app[DB], site, period, spec, lambda data: report_file(data, spec, fmt)
    )
    if fmt == "json":
        return web.Response(body=body, content_type="application/json", charset="utf-8")
    name = spec.file_name(site, period, fmt)
    response = web.Response(
        body=body, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
    if fmt == "csv":
        response.content_type, response.charset = "text/csv", "utf-8"
    else:
        response.content_type = XLSX_TYPE
    return response


def _flag(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, "invalid_parameter", f"'{name}' must be true or false")
    return value


async def marks_set(request: web.Request) -> web.Response:
    """POST /v1/calls/{call_id}/marks {"spam": bool, "test": bool}: the call stays stored,
    reports leave it out while it is marked."""
    call_id = request.match_info["call_id"]
    data = await read_json_object(request)
    unknown = set(data) - {"spam", "test"}
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown field {sorted(unknown)[0]!r}")
    spam, test = _flag(data, "spam"), _flag(data, "test")
    if spam is None and test is None:
        raise ApiError(400, "invalid_parameter", "send 'spam' and/or 'test' (true or false)")
    db = request.app[DB]
    site = await call_site(db, call_id)
    if site is None:
        raise ApiError(404, "unknown_call", "no such call")
    require_site(request, site)
    await db.write([mark_write(call_id, spam=spam, test=test)])
    marks = await call_marks(db, call_id)
    return web.json_response({"call_id": call_id, "site": site, **(marks or {})})


async def _costs_answer(request: web.Request, site: str, status: int = 200) -> web.Response:
    costs = await list_costs(request.app[DB], site)
    return web.json_response({"site": site, "costs": [c.as_dict() for c in costs]}, status=status)


async def costs_list(request: web.Request) -> web.Response:
    """GET /v1/sites/{site}/costs: every cost entered for the site."""
    site = request.match_info["site"]
    await site_zone(request, site)
    return await _costs_answer(request, site)


async def costs_put(request: web.Request) -> web.Response:
    """PUT /v1/sites/{site}/costs {"costs": [{source, campaign, first_day, last_day, amount,
    currency}]}: each stored, replacing the cost of the same source, campaign and first day."""
    site = request.match_info["site"]
    await site_zone(request, site)
    data = await read_json_object(request)
    items = data.get("costs")
    if not isinstance(items, list) or not items or len(items) > _MAX_COSTS:
        raise ApiError(
            400, "invalid_parameter", f"'costs' must be a list of 1-{_MAX_COSTS} cost objects"
        )
    rows = []
    for i, item in enumerate(items):
        try:
            rows.append(parse_cost(item))
        except ValueError as exc:
            raise ApiError(400, "invalid_cost", f"costs[{i}]: {exc}") from None
    await request.app[DB].write(cost_writes(site, rows))
    return await _costs_answer(request, site)
