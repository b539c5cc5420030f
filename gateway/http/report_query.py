"""The query of a report-like route (reports, conversion files): bounded text parameters, the
site asked about once the caller may see it, and the period in the site's own days."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from gateway.appkeys import CLOCK, DB
from gateway.http.errors import ApiError
from gateway.http.staff_auth import require_site, visible_sites
from gateway.store.report_rows import site_keys, site_timezone
from reports.period import Period, PeriodError, parse_day, zone

__all__ = ["asked_period", "asked_site", "query_text", "site_zone"]

# Without since/until a report covers the last 30 days, today included.
_DEFAULT_DAYS = 30
_MAX_KEY = 64


def query_text(request: web.Request, name: str, default: str = "") -> str:
    """A query parameter of at most 200 characters."""
    value = request.query.get(name, default)
    if len(value) > 200:
        raise ApiError(400, "invalid_parameter", f"'{name}' is too long")
    return value


async def site_zone(request: web.Request, site: str) -> str:
    """The site's time zone, once the caller may see it: 403 before 404, so a marketer of
    another site learns nothing of which sites exist."""
    if len(site) > _MAX_KEY:
        raise ApiError(400, "invalid_parameter", f"'site' must be at most {_MAX_KEY} characters")
    require_site(request, site)
    tz = await site_timezone(request.app[DB], site)
    if tz is None:
        raise ApiError(404, "unknown_site", f"no site has the key {site!r}")
    return tz


async def asked_site(request: web.Request) -> tuple[str, str]:
    """The `site` asked about, or the one site the caller may see, and its time zone."""
    site = query_text(request, "site")
    if not site:
        visible = visible_sites(request)
        keys = [k for k in await site_keys(request.app[DB]) if visible is None or k in visible]
        if len(keys) != 1:
            known = f" (one of: {', '.join(keys[:20])})" if keys else ""
            raise ApiError(400, "invalid_parameter", f"'site' is required{known}")
        site = keys[0]
    return site, await site_zone(request, site)


def asked_period(request: web.Request, tz: str) -> Period:
    """`since`..`until` (days in `tz`; default the last 30 days, today included)."""
    try:
        today = request.app[CLOCK].now().astimezone(zone(tz)).date()
    except ValueError:  # a site stored before its zone was checked
        raise ApiError(
            500, "bad_site_timezone", f"the site's time zone {tz!r} is unknown"
        ) from None
    until = query_text(request, "until", today.isoformat())
    since = query_text(request, "since")
    try:
        if not since:
            last = parse_day(until, "until")
            since = (last - timedelta(days=_DEFAULT_DAYS - 1)).isoformat()
        return Period.parse(since, until, tz)
    except PeriodError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    except OverflowError:
        raise ApiError(400, "invalid_parameter", "'until' is too early in the calendar") from None
