"""What a staff report page shows: one site the user may see and a period of whole days in
the site's time zone, read from the query; the filter form that sets them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web

from gateway.appkeys import CLOCK, DB
from gateway.http.pages import STAFF, esc, page
from gateway.store.report_rows import site_keys, site_timezone
from reports.period import Period, PeriodError, parse_day, zone

__all__ = ["Scope", "error_page", "link", "read_scope", "scope_form"]

_MAX_PARAM = 200


@dataclass(frozen=True)
class Scope:
    """The site and days a page shows, and the sites its user may pick from."""

    site: str
    sites: tuple[str, ...]
    period: Period

    @property
    def since(self) -> str:
        return self.period.first_day.isoformat()

    @property
    def until(self) -> str:
        return self.period.last_day.isoformat()

    def query(self, **extra: str) -> dict[str, str]:
        """The query parameters that keep this scope, with `extra` on top."""
        return {"site": self.site, "since": self.since, "until": self.until, **extra}


def error_page(request: web.Request, status: int, title: str, why: str) -> web.Response:
    body = f'<h1>{esc(title)}</h1>\n<p>{esc(why)}</p>\n<p><a href="/staff/">Back</a></p>'
    return page(request, title, body, status=status)


def link(path: str, params: Mapping[str, str]) -> str:
    """`path` with `params` as its query, escaped for an href attribute."""
    return esc(f"{path}?{urlencode(params)}" if params else path)


def param(request: web.Request, name: str, default: str = "") -> str:
    """A query parameter, cut to a sane length (a filter is never long)."""
    return request.query.get(name, default)[:_MAX_PARAM]


async def read_scope(request: web.Request, default_days: int = 30) -> Scope | web.Response:
    """The page's scope from `site`, `since`, `until`; else the error page to answer: 403 for a
    site the user may not see (before 404, so it learns nothing of other sites), 400 for days
    that are no period."""
    user = request[STAFF]
    every = await site_keys(request.app[DB])
    mine = tuple(k for k in every if user.can_see(k))
    site = param(request, "site") or (mine[0] if mine else "")
    if not site:
        return error_page(request, 404, "No site", "You may see no site yet: ask an admin.")
    if not user.can_see(site):
        return error_page(request, 403, "Forbidden", "You may not see this site.")
    tz = await site_timezone(request.app[DB], site)
    if tz is None:
        return error_page(request, 404, "Unknown site", f"No site has the key {site!r}.")
    try:
        today = request.app[CLOCK].now().astimezone(zone(tz)).date()
        until = param(request, "until") or today.isoformat()
        since = param(request, "since")
        if not since:
            since = (parse_day(until, "until") - timedelta(days=default_days - 1)).isoformat()
        period = Period.parse(since, until, tz)
    except (PeriodError, ValueError, OverflowError) as exc:
        return error_page(request, 400, "Bad filter", str(exc))
    return Scope(site, mine, period)


def _site_picker(scope: Scope) -> str:
    if len(scope.sites) <= 1:
        return f'<input type="hidden" name="site" value="{esc(scope.site)}">'
    options = "".join(
        f'<option value="{esc(k)}"{" selected" if k == scope.site else ""}>{esc(k)}</option>'
        for k in scope.sites
    )
    return f'<label>Site <select name="site">{options}</select></label>'


def scope_form(scope: Scope, action: str, extra: Sequence[str] = ()) -> str:
    """The GET form of a page's filters: the site picker (when there is a choice), the days,
    and `extra` fields (HTML, already escaped)."""
    fields = "".join(extra)
    return (
        f'<form class="filters" method="get" action="{esc(action)}">{_site_picker(scope)}'
        f'<label>From <input type="date" name="since" value="{esc(scope.since)}"></label>'
        f'<label>To <input type="date" name="until" value="{esc(scope.until)}"></label>'
        f'{fields}<button type="submit">Show</button></form>\n'
        f'<p class="scope">{esc(scope.site)}: {esc(scope.since)} to {esc(scope.until)}'
        f" ({esc(scope.period.tz.key)})</p>"
    )
