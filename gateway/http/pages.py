"""The staff pages' layout and headers: every value escaped, no inline script or style (the
Content-Security-Policy forbids both), the CSS served from /staff/static/."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable

from aiohttp import web

from gateway.store.staff import StaffUser

__all__ = ["CSP", "CSRF", "PAGE_HEADERS", "STAFF", "check_boxes", "csrf_field", "esc", "page"]

# What a staff request carries once checked (ISSUE12.md's request["staff"] and request["csrf"],
# typed: aiohttp warns about string keys): the user, and their session's CSRF token.
STAFF: web.RequestKey[StaffUser] = web.RequestKey("staff")
CSRF: web.RequestKey[str] = web.RequestKey("csrf")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# Each page's link, shown to the roles that may open it.
_MARKETING = frozenset({"admin", "marketer"})
_EVERYONE = frozenset({"admin", "marketer", "agent"})
_NAV = (
    ("/staff/dashboard", "Dashboard", _MARKETING),
    ("/staff/calls", "Calls", _MARKETING),
    ("/staff/campaigns", "Campaigns", _MARKETING),
    ("/staff/pools", "Pools", _MARKETING),
    ("/staff/contacts", "Contacts", _EVERYONE),
    ("/staff/tasks", "Tasks", _EVERYONE),
    ("/staff/agent", "Agent console", frozenset({"admin", "agent"})),
    ("/staff/users", "Users", frozenset({"admin"})),
)


def esc(value: object) -> str:
    """`value` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def csrf_field(request: web.Request) -> str:
    """The hidden field that carries the session's CSRF token in a staff form."""
    token = request[CSRF] if CSRF in request else ""
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def check_boxes(choices: Iterable[tuple[str, str]], checked: Callable[[str], bool]) -> str:
    """Checkboxes (name, label), each ticked when `checked(name)`."""
    return "".join(
        f'<label class="check"><input type="checkbox" name="{esc(name)}" value="1"'
        f"{' checked' if checked(name) else ''}> {esc(label)}</label>"
        for name, label in choices
    )


def _nav(request: web.Request) -> str:
    if STAFF not in request:
        return ""
    user = request[STAFF]
    links = "".join(
        f'<li><a href="{esc(href)}"{_current(request, href)}>{esc(label)}</a></li>'
        for href, label, roles in _NAV
        if user.role in roles
    )
    who = esc(user.name or user.email)
    logout = (
        '<form class="logout" method="post" action="/staff/logout">'
        + csrf_field(request)
        + f'<span class="who">{who} ({esc(user.role)})</span> '
        + '<button type="submit">Log out</button></form>'
    )
    return f'<nav><ul class="nav">{links}</ul>{logout}</nav>'


def _current(request: web.Request, href: str) -> str:
    return ' aria-current="page"' if request.path == href else ""


def page(request: web.Request, title: str, body_html: str, *, status: int = 200) -> web.Response:
    """A staff page: the layout around `body_html` (already escaped), with the security headers."""
    text = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)} · ctgw</title>\n"
        '<link rel="stylesheet" href="/staff/static/staff.css">\n'
        # No favicon request (a 404 in every console): an empty one, inline.
        '<link rel="icon" href="data:,">\n'
        "</head>\n<body>\n"
        f'<header><a class="brand" href="/staff/">ctgw</a>{_nav(request)}</header>\n'
        f"<main>\n{body_html}\n</main>\n</body>\n</html>\n"
    )
    return web.Response(
        status=status, text=text, content_type="text/html", headers=dict(PAGE_HEADERS)
    )
