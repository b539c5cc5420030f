"""The OpenAPI 3.1 description of the HTTP API, built from the path fragments, served at
GET /v1/openapi.json.

Each fragment (openapi_paths*.py) holds PATHS (path items keyed by the aiohttp path) and SCHEMAS
(components/schemas); tests/api/test_openapi.py holds the description to the app's router.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from types import ModuleType
from typing import Any

from aiohttp import web

from gateway.http import (
    openapi_paths_admin,
    openapi_paths_conversions,
    openapi_paths_crm,
    openapi_paths_public,
    openapi_paths_staff,
    openapi_paths_webhooks,
)
from gateway.http.openapi_schemas import SCHEMAS
from gateway.http.staff_auth import COOKIE

__all__ = [
    "EXCLUDED",
    "OPENAPI_PATH",
    "OpenApiDocument",
    "add_openapi_routes",
    "build_openapi",
    "described_routes",
    "served_routes",
]

OPENAPI_PATH = "/v1/openapi.json"

_FRAGMENTS: tuple[ModuleType, ...] = (
    openapi_paths_public,
    openapi_paths_admin,
    openapi_paths_crm,
    openapi_paths_webhooks,
    openapi_paths_conversions,
    openapi_paths_staff,
)

# Routes the description leaves out, on purpose (every other route must be described):
# - /staff/static is aiohttp's static-file directory for the staff pages' CSS and scripts: a
#   prefix resource, not one path (OpenAPI cannot name "any file below"), whose file names
#   are assets of the pages, not an interface anyone calls.
EXCLUDED: frozenset[tuple[str, str]] = frozenset({("GET", "/staff/static")})

# HEAD is answered for every GET (aiohttp adds it) and is not listed per path.
_IMPLIED = "HEAD"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_CACHE = "public, max-age=300, must-revalidate"

_ABOUT = """\
The HTTP API of ctgw, the call-tracking gateway. Every GET route answers HEAD too.

Errors are JSON, `{"error": {"code": "...", "message": "..."}}`, with a 4xx status (503 when the
store cannot take a change now): `code` is stable and machine-readable, `message` says what was
wrong and what to do.

Admin routes need `Authorization: Bearer <api key>` (`ctgw keys create NAME`). Report and CRM
routes also let in a staff session (the `ctgw_staff` cookie set by /staff/login), limited to the
user's sites; a session's non-GET request needs its `X-CSRF-Token` header."""

_TAGS = [
    {"name": "public", "description": "Called by websites: the swap script, sessions, AMP."},
    {"name": "admin", "description": "Sites, pools, numbers, sessions and calls (API key)."},
    {"name": "reports", "description": "Reports, call marks, campaign costs."},
    {"name": "crm", "description": "Contacts, leads, tasks and dispositions."},
    {"name": "webhooks", "description": "Webhook endpoints and their deliveries."},
    {"name": "conversions", "description": "Conversions sent back to the ad platforms."},
    {"name": "operations", "description": "Health, metrics and the indexes."},
    {"name": "demo", "description": "The demo site."},
    {"name": "staff pages", "description": "HTML pages and forms for staff (described briefly)."},
]

_SECURITY = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin API key: `ctgw keys create NAME` prints one.",
    },
    "staffSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "A staff user's browser session, set by POST /staff/login.",
    },
}


class OpenApiDocument:
    """The description as served: its JSON bytes and their ETag, made on the first request
    (not at create_app: most apps, and every test's, never serve it)."""

    def __init__(self) -> None:
        self._served: tuple[bytes, str] | None = None

    def served(self) -> tuple[bytes, str]:
        """The body and its ETag."""
        if self._served is None:
            body = json.dumps(build_openapi(), ensure_ascii=False, separators=(",", ":"))
            raw = body.encode("utf-8")
            self._served = raw, f'"{hashlib.sha256(raw).hexdigest()[:16]}"'
        return self._served


OPENAPI = web.AppKey("openapi", OpenApiDocument)


def _merge_schemas(fragments: tuple[ModuleType, ...]) -> dict[str, Any]:
    schemas: dict[str, Any] = dict(SCHEMAS)
    for fragment in fragments:
        for name, schema in fragment.SCHEMAS.items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"{fragment.__name__}: schema {name} differs from another's")
            schemas[name] = schema
    return dict(sorted(schemas.items()))


def _merge_paths(fragments: tuple[ModuleType, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        for path, item in fragment.PATHS.items():
            known = paths.setdefault(path, {})
            twice = sorted(set(known) & set(item) & set(_METHODS))
            if twice:
                raise ValueError(
                    f"{fragment.__name__}: {twice[0].upper()} {path} is described twice"
                )
            known.update(item)
    return dict(sorted(paths.items()))


def build_openapi(version: str = "") -> dict[str, Any]:
    """The whole description as a JSON-ready dict (ValueError when two fragments clash)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ctgw HTTP API",
            "version": version or _version(),
            "description": _ABOUT,
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "tags": _TAGS,
        "paths": _merge_paths(_FRAGMENTS),
        "components": {"schemas": _merge_schemas(_FRAGMENTS), "securitySchemes": _SECURITY},
    }


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of each route the app answers, less implied HEADs and EXCLUDED."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == _IMPLIED:
            continue
        routes.add((route.method, resource.canonical))
    return routes - EXCLUDED


def described_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(method, path) of each operation the description names."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in _METHODS
    }


def add_openapi_routes(app: web.Application) -> None:
    """Register GET /v1/openapi.json."""
    app[OPENAPI] = OpenApiDocument()
    app.router.add_get(OPENAPI_PATH, _openapi)


async def _openapi(request: web.Request) -> web.Response:
    body, etag = request.app[OPENAPI].served()
    # Public and the same for everyone: any page (a docs viewer) may read it.
    headers = {"Cache-Control": _CACHE, "ETag": etag, "Access-Control-Allow-Origin": "*"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body, content_type="application/json", charset="utf-8", headers=headers
    )


def _version() -> str:
    try:
        return metadata.version("ctgw")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"
