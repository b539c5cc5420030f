"""Conversion routes: the Google Ads and Microsoft Advertising import files of a period, the
conversions the store says were sent (when, with what answer), and a Baidu OCPC upload now.

Every route lets in an API key or a staff admin or marketer, for the sites they may see. A file
asked for with new_only=true holds only calls never exported to that platform, and records the
ones it holds as sent: the next such file leaves them out. Calls the platform would still refuse
as too recent (Google Ads: reports.conversions.MIN_AGE) are held back from a new-only file until
they are old enough, and counted in X-Conversion-Held-Back; any other file holds them and counts
them in X-Conversion-Too-Recent."""

from __future__ import annotations

import re

import aiohttp
from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB
from gateway.http.errors import ApiError
from gateway.http.report_query import asked_period, asked_site, query_text
from gateway.http.staff_auth import staff_or_key
from gateway.store.conversions import CONVERSION_STATES, list_conversions
from gateway.webhooks.conversion_exports import export_conversions
from gateway.webhooks.conversion_sending import send_site_baidu
from reports.conversion_files import FILE_PLATFORMS
from reports.conversions import GOOGLE_CLICK_IDS, PLATFORMS

__all__ = ["add_conversion_routes"]

# Without since/until a file covers the last 30 days, today included.
_MAX_LIMIT = 1000
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}\.csv")

_staff = staff_or_key("admin", "marketer")


def add_conversion_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
    r = app.router
    for name in FILE_PLATFORMS.values():
        r.add_get(f"/v1/conversions/{name}.csv", _staff(conversion_file))
    r.add_get("/v1/conversions", _staff(conversions_list))
    r.add_post("/v1/conversions/baidu-ocpc/send", _staff(baidu_send))


def _flag(request: web.Request, name: str) -> bool:
    value = query_text(request, name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_parameter", f"'{name}' must be true or false")
    return value in ("true", "1")


async def conversion_file(request: web.Request) -> web.Response:
    """GET /v1/conversions/{google-ads|google-ads-calls|microsoft-ads}.csv?site=&since=&until=
    [&new_only=true][&click_id=gclid|gbraid|wbraid][&again=FILE NAME]"""
    name = request.path.rsplit("/", 1)[-1].removesuffix(".csv")
    platform = next(p for p, n in FILE_PLATFORMS.items() if n == name)
    click_id = query_text(request, "click_id", "gclid")
    if click_id not in GOOGLE_CLICK_IDS:
        raise ApiError(
            400, "invalid_parameter", f"'click_id' must be one of {', '.join(GOOGLE_CLICK_IDS)}"
        )
    # A HEAD gets no file: it must not record the calls as exported either.
    new_only = _flag(request, "new_only") and request.method != "HEAD"
    again = query_text(request, "again")
    # Sent back in Content-Disposition: only the characters our file names are made of.
    if again and not _FILE_NAME.fullmatch(again):
        raise ApiError(400, "invalid_parameter", "'again' must be a file name this API gave")
    if again and new_only:
        raise ApiError(400, "invalid_parameter", "send 'again' or 'new_only', not both")
    site, tz = await asked_site(request)
    period = asked_period(request, tz)
    made = await export_conversions(
        request.app[DB],
        request.app[CONFIG],
        site,
        platform,
        period,
        now=request.app[CLOCK].now(),
        new_only=new_only,
        click_id=click_id,
        again=again,
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{made.name}"',
        "X-Conversion-Count": str(made.count),
        "X-Conversion-Held-Back": str(made.held_back),
        "X-Conversion-Too-Recent": str(made.too_recent),
    }
    return web.Response(text=made.text, content_type="text/csv", charset="utf-8", headers=headers)


def _number(request: web.Request, name: str, default: int, most: int) -> int:
    text = query_text(request, name, str(default))
    if not text.isdigit() or int(text) > most:
        raise ApiError(400, "invalid_parameter", f"'{name}' must be a whole number 0-{most}")
    return int(text)


async def conversions_list(request: web.Request) -> web.Response:
    """GET /v1/conversions?site=[&platform=][&state=][&limit=][&offset=]: what was sent where,
    when, with the platform's answer, newest first."""
    platform = query_text(request, "platform") or None
    if platform is not None and platform not in PLATFORMS:
        raise ApiError(
            400, "invalid_parameter", f"'platform' must be one of {', '.join(PLATFORMS)}"
        )
    state = query_text(request, "state") or None
    if state is not None and state not in CONVERSION_STATES:
        states = ", ".join(CONVERSION_STATES)
        raise ApiError(400, "invalid_parameter", f"'state' must be one of {states}")
    limit = _number(request, "limit", 100, _MAX_LIMIT)
    offset = _number(request, "offset", 0, 10**9)
    site, _ = await asked_site(request)
    rows = await list_conversions(
        request.app[DB], site, platform=platform, state=state, limit=limit, offset=offset
    )
    return web.json_response({"site": site, "conversions": rows})


async def baidu_send(request: web.Request) -> web.Response:
    """POST /v1/conversions/baidu-ocpc/send?site=: upload the site's new counted calls with a
    bd_vid (and the uploads due for a retry) now, as the daemon does every minute."""
    site, _ = await asked_site(request)
    async with aiohttp.ClientSession() as session:
        report = await send_site_baidu(
            request.app[DB], request.app[CONFIG], site, request.app[CLOCK].now(), session
        )
    if report is None:
        raise ApiError(
            409,
            "baidu_not_configured",
            "the site's conversions.baidu_ocpc is not enabled or has no token",
        )
    return web.json_response({"site": site, **report.as_dict()})
