"""The OpenAPI description: the same routes as the app, well formed, served public and cacheable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import parse_config
from gateway.http.openapi import EXCLUDED, build_openapi, described_routes, served_routes
from tests.api.conftest import demo_config
from tests.api.test_staff_login import add_user, log_in

pytestmark = pytest.mark.timeout(60)

_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    ]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_route_is_described_and_every_described_route_is_served(tmp_path: Path) -> None:
    """Each (method, path) of create_app's router is an operation of the description, and
    each operation is a route: a new route, or a stale description, fails here."""
    app = create_app(parse_config(demo_config(tmp_path), source="test"))
    served, described = served_routes(app), described_routes(build_openapi("test"))
    assert sorted(served - described) == [], "routes missing from gateway/http/openapi_paths*.py"
    assert sorted(described - served) == [], "described routes the app does not serve"
    # HEAD is left out as implied: it must be a GET's.
    heads = {r.resource.canonical for r in app.router.routes() if r.method == "HEAD" and r.resource}
    gets = {path for method, path in served | EXCLUDED if method == "GET"}
    assert heads <= gets


def test_the_description_is_well_formed() -> None:
    """OpenAPI 3.1: unique operation ids, every $ref resolves, every path parameter declared,
    admin routes behind the API key with a 401, errors as the one Error schema."""
    document = build_openapi("test")
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    tags = {tag["name"] for tag in document["tags"]}
    ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for method, path, op in _operations(document):
        item = document["paths"][path]
        declared = {p["name"] for p in [*item.get("parameters", []), *op.get("parameters", [])]}
        template = set(re.findall(r"{([^}]+)}", path))
        assert template <= declared, f"{method} {path}: path parameters {template - declared}"
        assert op["responses"] and op["summary"], f"{method} {path}"
        assert op["tags"] and set(op["tags"]) <= tags, f"{method} {path}: tags of openapi.py"
        assert "security" in op, f"{method} {path}: say who may call it ([] for anyone)"
        if {"apiKey": []} in op["security"]:
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, f"{method} {path}"


async def test_the_description_is_served_public_and_cacheable(client: TestClient) -> None:
    """GET /v1/openapi.json needs no key; it carries an ETag, and a matching If-None-Match
    gets a 304 with no body."""
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert resp.headers["Cache-Control"].startswith("public")
    body = await resp.json()
    assert body["openapi"] == "3.1.0" and "/v1/calls" in body["paths"]
    again = await client.get("/v1/openapi.json", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


async def test_a_staff_form_post_that_cannot_be_read_gets_a_400_page(client: TestClient) -> None:
    """A multipart body without its boundary is a 400 page, not a 500 from the handler (found
    by tests/api/test_openapi_properties.py)."""
    await add_user(client)
    csrf = await log_in(client)
    headers = {"Content-Type": "multipart/form-data", "X-CSRF-Token": csrf}
    for path in ("/staff/contacts/k1", "/staff/tasks/t1/close", "/staff/calls/c1/marks"):
        resp = await client.post(path, data=b"x", headers=headers, allow_redirects=False)
        assert resp.status == 400, path
        assert "could not be read" in await resp.text()
