"""Who may see a staff page or a report: a browser session (a staff user with a role and sites)
or a Bearer API key (a machine, every site); the login throttle."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from gateway.appkeys import CLOCK, DB
from gateway.http.errors import ApiError
from gateway.http.pages import CSRF, STAFF, esc, page
from gateway.store.keys import find_key
from gateway.store.staff import ROLES, StaffSession, find_session

__all__ = [
    "API_KEY",
    "COOKIE",
    "CSRF",
    "STAFF",
    "current_session",
    "forbidden_page",
    "require_site",
    "staff_or_key",
    "staff_page",
    "visible_sites",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "ctgw_staff"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# The name of the API key that let a machine in (STAFF and CSRF are in gateway/http/pages.py).
API_KEY: web.RequestKey[str] = web.RequestKey("api_key")


def _check_roles(roles: tuple[str, ...]) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles must be some of {ROLES}, got {roles}")


async def current_session(request: web.Request) -> StaffSession | None:
    """The live staff session of the request's cookie, or None."""
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    return await find_session(request.app[DB], token, request.app[CLOCK].now())


async def _csrf_sent(request: web.Request, *, form: bool) -> str:
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and form and request.content_type in _FORM_TYPES:
        try:
            value = (await request.post()).get("csrf", "")
        except ValueError:  # a body that is not a form at all: no token in it either
            value = ""
        sent = value if isinstance(value, str) else ""
    return sent


async def _form_readable(request: web.Request) -> bool:
    """Whether the posted form can be read: read once here (aiohttp keeps it for the handler),
    as a multipart body without its boundary raised from inside the handlers (a 500)."""
    try:
        await request.post()
    except ValueError:
        return False
    return True


def _csrf_matches(sent: str, session: StaffSession) -> bool:
    # "replace": a header or field can hold any bytes; a token is ASCII, so nothing is lost.
    return bool(sent) and hmac.compare_digest(
        sent.encode("utf-8", "replace"), session.csrf.encode()
    )


def staff_page(*roles: str) -> Callable[[Handler], Handler]:
    """An HTML page for staff with one of `roles`: no session -> 303 to the login page, wrong
    role -> 403 page, a non-GET/HEAD without the session's CSRF token -> 403 page."""
    _check_roles(roles)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            session = await current_session(request)
            if session is None:
                where = f"/staff/login?next={quote(request.path_qs, safe='/')}"
                return web.Response(status=303, headers={"Location": where})
            request[STAFF] = session.user
            request[CSRF] = session.csrf
            if request.method not in _SAFE_METHODS and not _csrf_matches(
                await _csrf_sent(request, form=True), session
            ):
                return forbidden_page(request, "The form was stale or not sent by this site.")
            if session.user.role not in roles:
                return forbidden_page(request, "Your role does not give access to this page.")
            if request.method not in _SAFE_METHODS and not await _form_readable(request):
                body = "<h1>Bad form</h1>\n<p>The form could not be read; send it again.</p>"
                return page(request, "Bad form", body, status=400)
            return await handler(request)

        return checked

    return wrap


def forbidden_page(request: web.Request, why: str) -> web.Response:
    """The 403 page of the staff layout."""
    body = f'<h1>Forbidden</h1>\n<p>{esc(why)}</p>\n<p><a href="/staff/">Back</a></p>'
    return page(request, "Forbidden", body, status=403)


def staff_or_key(*roles: str) -> Callable[[Handler], Handler]:
    """A JSON or download route for a Bearer API key (every site) or a staff session with one
    of `roles` (a non-GET/HEAD needs the X-CSRF-Token header); else 401/403 JSON."""
    _check_roles(roles)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization")
            if header is not None:
                scheme, _, key = header.partition(" ")
                if scheme.lower() != "bearer" or not key.strip():
                    raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <api key>'")
                name = await find_key(request.app[DB], key.strip())
                if name is None:
                    raise ApiError(401, "unauthorized", "unknown or revoked API key")
                request[API_KEY] = name
                return await handler(request)
            session = await current_session(request)
            if session is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    "log in at /staff/login, or send 'Authorization: Bearer <api key>'",
                )
            if session.user.role not in roles:
                raise ApiError(403, "forbidden", f"the role {session.user.role} may not do this")
            if request.method not in _SAFE_METHODS and not _csrf_matches(
                await _csrf_sent(request, form=False), session
            ):
                raise ApiError(403, "forbidden", "send the session's X-CSRF-Token header")
            request[STAFF] = session.user
            request[CSRF] = session.csrf
            return await handler(request)

        return checked

    return wrap


def visible_sites(request: web.Request) -> frozenset[str] | None:
    """The sites the caller may see; None = every site (an API key, or an admin with none
    listed). 401 when the route let in no caller at all (fails closed)."""
    if STAFF in request:
        user = request[STAFF]
        if user.role == "admin" and not user.sites:
            return None
        return user.sites
    if API_KEY in request:
        return None
    raise ApiError(401, "unauthorized", "log in, or send 'Authorization: Bearer <api key>'")


def require_site(request: web.Request, site: str) -> None:
    """403 `forbidden` unless the caller may see `site`."""
    sites = visible_sites(request)
    if sites is not None and site not in sites:
        raise ApiError(403, "forbidden", "you may not see this site")
