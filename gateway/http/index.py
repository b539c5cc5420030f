"""The gateway's front door: `GET /`, a page of links, and `GET /v1/`, the API's routes.

The route list is read from the app's own router, so it can never disagree with what the
gateway answers; a route needs a key when its handler is wrapped by the admin key check.
"""

from __future__ import annotations

import html
from importlib import metadata
from typing import Any

from aiohttp import web

from gateway.http.admin_auth import admin
from gateway.http.staff_auth import staff_or_key

__all__ = ["add_index_routes", "api_routes"]


async def _probe(request: web.Request) -> web.StreamResponse:  # pragma: no cover - never run
    raise NotImplementedError


# Every handler that admin() wraps runs this code object: that is how a route is known to
# need a key, without a list kept by hand beside the router.
_NEEDS_KEY = (admin(_probe).__code__, staff_or_key("admin")(_probe).__code__)

# Methods every GET route answers too, or that only browsers send for CORS.
_IMPLIED = frozenset({"HEAD", "OPTIONS"})

_LINKS = (
    ("/demo/", "Demo landing page", "its phone numbers swapped for tracking numbers"),
    ("/swap.js", "swap.js", "the number-swap script websites embed"),
    ("/healthz", "Health", "200 while the gateway is up"),
    ("/metrics", "Metrics", "Prometheus text format"),
    ("/v1/", "API index", "every route of the HTTP API, and which ones need an API key"),
)

_STYLE = "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def add_index_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/v1/", api_index)
    app.router.add_get("/v1", api_index)


def api_routes(app: web.Application) -> list[dict[str, Any]]:
    """Each route the app answers: method, path and whether it needs an API key."""
    seen: set[tuple[str, str]] = set()
    routes: list[dict[str, Any]] = []
    for route in app.router.routes():
        resource = route.resource
        if route.method in _IMPLIED or resource is None:
            continue
        key = (route.method, resource.canonical)
        if key in seen:
            continue
        seen.add(key)
        code = getattr(route.handler, "__code__", None)
        routes.append({"method": key[0], "path": key[1], "needs_key": code in _NEEDS_KEY})
    return sorted(routes, key=lambda r: (r["path"], r["method"]))


async def api_index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "name": "ctgw",
            "version": _version(),
            "auth": "admin routes need 'Authorization: Bearer <key>' (ctgw keys create NAME)",
            "routes": api_routes(request.app),
        }
    )


async def home(request: web.Request) -> web.Response:
    items = "\n".join(
        f'<li><a href="{html.escape(href)}">{html.escape(title)}</a> — {html.escape(what)}</li>'
        for href, title, what in _LINKS
    )
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ctgw</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>ctgw {html.escape(_version())}</h1>
<p>Call-tracking telephony gateway. The admin API needs an API key:
<code>ctgw keys create NAME</code>.</p>
<ul>
{items}
</ul>
</body>
</html>
"""
    return web.Response(
        text=page,
        content_type="text/html",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


def _version() -> str:
    try:
        return metadata.version("ctgw")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"
