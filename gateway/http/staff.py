"""Staff pages: log in, log out, the users an admin manages, and the routes of the report pages
(dashboard, calls, campaigns, pools: each in a module of its own)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from multidict import MultiDictProxy

from gateway.appkeys import CLOCK, CONFIG, DB, LOGIN_THROTTLE
from gateway.http.agent_console import add_agent_console, endpoints_field
from gateway.http.client_address import request_client
from gateway.http.dashboard import dashboard
from gateway.http.pages import csrf_field, esc, page
from gateway.http.staff_auth import (
    COOKIE,
    current_session,
    forbidden_page,
    staff_page,
)
from gateway.http.staff_calls import add_call_routes
from gateway.http.staff_campaigns import campaigns
from gateway.http.staff_contacts import add_contact_pages
from gateway.http.staff_pools import pools
from gateway.login_throttle import LoginThrottle
from gateway.store.agents import check_endpoints, endpoints_by_user, set_endpoints
from gateway.store.staff import (
    MIN_PASSWORD,
    ROLES,
    SESSION_LIFETIME,
    StaffUser,
    UserInputError,
    authenticate,
    create_user,
    end_session,
    known_sites,
    list_users,
    open_session,
)

__all__ = ["add_staff_routes"]

STATIC_DIR = Path(__file__).parent / "static" / "staff"
_HOME = "/staff/dashboard"
# Agents have no dashboard: their home is the console that pops their calls.
_AGENT_HOME = "/staff/agent"


def _home_of(role: str) -> str:
    return _AGENT_HOME if role == "agent" else _HOME


Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


def add_staff_routes(app: web.Application) -> None:
    """Register this module's routes on `app`, and its login throttle."""
    app[LOGIN_THROTTLE] = LoginThrottle()
    app.router.add_get("/staff", _home)
    app.router.add_get("/staff/", _home)
    app.router.add_get("/staff/login", login_form)
    app.router.add_post("/staff/login", login)
    app.router.add_post("/staff/logout", logout)
    app.router.add_get("/staff/users", users)
    app.router.add_post("/staff/users", add_user)
    app.router.add_get("/staff/dashboard", dashboard)
    app.router.add_get("/staff/campaigns", campaigns)
    app.router.add_get("/staff/pools", pools)
    add_call_routes(app)
    add_agent_console(app)
    add_contact_pages(app)
    app.router.add_static("/staff/static", STATIC_DIR, append_version=False)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def _home(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    raise web.HTTPSeeOther(_home_of(session.user.role) if session else _HOME)


def _next_path(raw: object) -> str:
    """Where to go after logging in: a staff path of this site only (no open redirect)."""
    if not isinstance(raw, str) or len(raw) > 2000:
        return _HOME
    if not raw.startswith("/staff/") or raw.startswith("/staff/login") or "\\" in raw:
        return _HOME
    if not raw.isascii() or not raw.isprintable() or urlsplit(raw).netloc:
        return _HOME
    return raw


def _login_body(next_path: str, email: str = "", error: str = "") -> str:
    notice = f'<p class="error" role="alert">{esc(error)}</p>\n' if error else ""
    return (
        f"<h1>Log in</h1>\n{notice}"
        '<form class="login" method="post" action="/staff/login">\n'
        f'<input type="hidden" name="next" value="{esc(next_path)}">\n'
        '<label>E-mail <input type="email" name="email" autocomplete="username" required'
        f' value="{esc(email)}"></label>\n'
        '<label>Password <input type="password" name="password"'
        ' autocomplete="current-password" required></label>\n'
        '<button type="submit">Log in</button>\n</form>'
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    next_path = _next_path(request.query.get("next", _HOME))
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(next_path)
    return page(request, "Log in", _login_body(next_path))


def _same_origin(request: web.Request) -> bool:
    """The login form has no session to carry a CSRF token yet: a browser's Origin header, when
    sent, must name this gateway (its Host, or [http] public_url)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc.lower() if origin != "null" else ""
    public = urlsplit(request.app[CONFIG].http.public_url).netloc.lower()
    return bool(host) and host in {request.host.lower(), public}


async def _read_form(request: web.Request) -> Form | None:
    """The posted form, or None when the body is no form (wrong type, bad encoding)."""
    try:
        return await request.post()
    except ValueError:
        return None


def _text(form: Form, name: str) -> str:
    """A text field as sent (the checks that follow say what is wrong with it); "" for a file."""
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _client_key(request: web.Request) -> str:
    """The client address the throttle counts: an IPv6 client by its /64 (one host owns it)."""
    client = request_client(request, request.app[CONFIG].http.trusted_networks)
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return client


async def login(request: web.Request) -> web.StreamResponse:
    if not _same_origin(request):
        return forbidden_page(request, "The login form was not sent from this site.")
    form = await _read_form(request)
    if form is None:
        body = _login_body(_HOME, error="Send the login form.")
        return page(request, "Log in", body, status=400)
    email, password = _text(form, "email").strip()[:254], _text(form, "password")
    next_path = _next_path(form.get("next", _HOME))
    if not email or not password:
        body = _login_body(next_path, email, "Enter your e-mail and password.")
        return page(request, "Log in", body, status=400)
    throttle, now = request.app[LOGIN_THROTTLE], request.app[CLOCK].now()
    client, key = _client_key(request), email.lower()
    wait = throttle.retry_after(key, client, now)
    if wait:
        minutes = -(-wait // 60)
        body = _login_body(
            next_path, email, f"Too many failed logins: try again in {minutes} minute(s)."
        )
        response = page(request, "Log in", body, status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    # Counted as a failure until the password is found right: guesses sent in parallel, while
    # scrypt runs for each, see each other's count.
    throttle.failed(key, client, now)
    user = await authenticate(request.app[DB], email, password)
    if user is None:
        body = _login_body(next_path, email, "Wrong e-mail or password.")
        return page(request, "Log in", body, status=401)
    throttle.succeeded(key, client, now)
    token, _ = await open_session(request.app[DB], user, request.app[CLOCK].now())
    response = _see_other(_home_of(user.role) if next_path == _HOME else next_path)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=request.secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@staff_page(*ROLES)
async def logout(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is not None:
        await end_session(request.app[DB], session)
    response = _see_other("/staff/login")
    response.del_cookie(COOKIE, path="/", secure=request.secure, httponly=True, samesite="Strict")
    return response


def _sites_of(user: StaffUser) -> str:
    if user.role == "admin" and not user.sites:
        return "every site"
    return ", ".join(sorted(user.sites)) or "none"


def _users_table(people: list[StaffUser], phones: dict[str, list[str]]) -> str:
    rows = "\n".join(
        f"<tr><td>{esc(u.email)}</td><td>{esc(u.name)}</td><td>{esc(u.role)}</td>"
        f"<td>{esc(_sites_of(u))}</td><td>{esc(' '.join(phones.get(u.user_id, [])))}</td></tr>"
        for u in people
    )
    return (
        '<table class="users">\n<thead><tr><th scope="col">E-mail</th><th scope="col">Name</th>'
        '<th scope="col">Role</th><th scope="col">Sites</th><th scope="col">Endpoints</th>'
        "</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>"
    )


def _user_form(
    csrf: str, sites: dict[str, str], values: dict[str, str], chosen: frozenset[str]
) -> str:
    """The add-user form; `csrf` is the form's hidden field (pages.csrf_field)."""
    roles = "".join(
        f'<option value="{esc(r)}"{" selected" if values.get("role") == r else ""}>'
        f"{esc(r)}</option>"
        for r in ROLES
    )
    boxes = "\n".join(
        f'<label class="site"><input type="checkbox" name="sites" value="{esc(key)}"'
        f"{' checked' if key in chosen else ''}> {esc(name or key)} ({esc(key)})</label>"
        for key, name in sites.items()
    )
    return (
        '<h2>Add a user</h2>\n<form class="add-user" method="post" action="/staff/users">\n'
        f"{csrf}\n"
        '<label>E-mail <input type="email" name="email" required'
        f' value="{esc(values.get("email", ""))}"></label>\n'
        '<label>Name <input type="text" name="name" maxlength="100"'
        f' value="{esc(values.get("name", ""))}"></label>\n'
        f'<label>Role <select name="role">{roles}</select></label>\n'
        "<fieldset><legend>Sites (an admin with none sees every site)</legend>\n"
        f"{boxes}\n</fieldset>\n{endpoints_field(values.get('endpoints', ''))}"
        f'<label>Password (at least {MIN_PASSWORD} characters) <input type="password"'
        f' name="password" minlength="{MIN_PASSWORD}" autocomplete="new-password"'
        " required></label>\n"
        '<button type="submit">Add user</button>\n</form>'
    )


async def _users_page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    chosen: frozenset[str] = frozenset(),
    error: str = "",
    status: int = 200,
) -> web.Response:
    db = request.app[DB]
    notice = f'<p class="error" role="alert">{esc(error)}</p>\n' if error else ""
    if request.query.get("created") == "1" and not error:
        notice = '<p class="notice" role="status">User added.</p>\n'
    table = _users_table(await list_users(db), await endpoints_by_user(db))
    body = (
        f"<h1>Users</h1>\n{notice}{table}\n"
        f"{_user_form(csrf_field(request), await known_sites(db), values or {}, chosen)}"
    )
    return page(request, "Users", body, status=status)


@staff_page("admin")
async def users(request: web.Request) -> web.StreamResponse:
    return await _users_page(request)


@staff_page("admin")
async def add_user(request: web.Request) -> web.StreamResponse:
    form = await _read_form(request)
    if form is None:
        return await _users_page(request, error="Send the form to add a user.", status=400)
    values = {name: _text(form, name) for name in ("email", "name", "role", "endpoints")}
    sites = [s for s in form.getall("sites", []) if isinstance(s, str)]
    chosen = frozenset(s[:100] for s in sites)
    try:
        phones = check_endpoints(values["endpoints"].split(), values["role"])
        user = await create_user(
            request.app[DB],
            email=values["email"],
            name=values["name"],
            role=values["role"],
            sites=sites,
            password=_text(form, "password"),
            at=request.app[CLOCK].now(),
        )
    except UserInputError as exc:
        return await _users_page(request, values=values, chosen=chosen, error=str(exc), status=400)
    await set_endpoints(request.app[DB], user.user_id, phones)
    raise web.HTTPSeeOther("/staff/users?created=1")
