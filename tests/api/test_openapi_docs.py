"""docs/api.md is the OpenAPI description rendered as Markdown, and is current.

Regenerate it after changing a route or its description:
    .venv/bin/python -m tests.api.test_openapi_docs > docs/api.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gateway.http.openapi import build_openapi

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_METHODS = ("get", "put", "post", "delete", "options", "patch")
_AUTH = {"apiKey": "API key", "staffSession": "staff session"}

_HEAD = """\
# HTTP API reference

<!-- Generated from gateway/http/openapi*.py by tests/api/test_openapi_docs.py: do not edit by
hand; run `.venv/bin/python -m tests.api.test_openapi_docs > docs/api.md`. -->

The machine-readable description is served by the gateway itself at `GET /v1/openapi.json`
(OpenAPI 3.1, public, cached five minutes by ETag). Load it in any OpenAPI viewer or client
generator. `GET /v1/` lists the routes too, from the router.

To fuzz a running gateway from its own description (what tests/api/test_openapi_properties.py
does in the test suite), with an API key from `ctgw keys create NAME`:

    schemathesis run http://127.0.0.1:8080/v1/openapi.json \\
        -H "Authorization: Bearer $KEY" --checks not_a_server_error,response_schema_conformance

"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _schema(schema: dict[str, Any]) -> str:
    """A schema in one short phrase: a reference's name, a type, or an enum."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array" and "items" in schema:
        return f"array of {_schema(schema['items'])}"
    return "/".join(kind) if isinstance(kind, list) else str(kind)


def _who(op: dict[str, Any]) -> str:
    return " or ".join(_AUTH[name] for req in op["security"] for name in req) or "public"


def _operation(method: str, path: str, op: dict[str, Any], shared: list[Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", _cell(op["summary"]) + ".", ""]
    if op.get("description"):
        lines += [_cell(op["description"]), ""]
    lines += [f"Auth: {_who(op)}.", ""]
    params = [*shared, *op.get("parameters", [])]
    if params:
        lines += ["| Parameter | In | Schema | Description |", "|---|---|---|---|"]
        lines += [
            f"| `{p['name']}`{' (required)' if p['required'] else ''} | {p['in']} |"
            f" {_schema(p['schema'])} | {_cell(p['description'])} |"
            for p in params
        ]
        lines.append("")
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(f"{t}: {_schema(m['schema'])}" for t, m in body["content"].items())
        lines += [f"Body: {kinds}.", ""]
    lines += ["| Status | Meaning | Body |", "|---|---|---|"]
    for status, answer in op["responses"].items():
        content = answer.get("content", {})
        kinds = ", ".join(f"{t}: {_schema(m['schema'])}" for t, m in content.items()) or "-"
        lines.append(f"| {status} | {_cell(answer['description']) or '-'} | {kinds} |")
    return [*lines, ""]


def _components(schemas: dict[str, Any]) -> list[str]:
    lines = ["## Schemas", ""]
    for name, schema in schemas.items():
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        props = schema.get("properties")
        if not props:
            lines += [f"{_schema(schema)}.", ""]
            continue
        required = set(schema.get("required", []))
        lines += ["| Field | Schema | Required |", "|---|---|---|"]
        lines += [
            f"| `{field}` | {_schema(sub)} | {'yes' if field in required else 'no'} |"
            for field, sub in props.items()
        ]
        lines.append("")
    return lines


def render(document: dict[str, Any]) -> str:
    """The description as a Markdown page: operations by tag, then the schemas."""
    lines = [_HEAD + document["info"]["description"], ""]
    for tag in document["tags"]:
        found = [
            (method, path, item[method], item.get("parameters", []))
            for path, item in document["paths"].items()
            for method in _METHODS
            if method in item and tag["name"] in item[method]["tags"]
        ]
        if not found:
            continue
        lines += [f"## {tag['name'].capitalize()}", "", tag["description"], ""]
        for method, path, op, shared in found:
            lines += _operation(method, path, op, shared)
    lines += _components(document["components"]["schemas"])
    return "\n".join(lines).rstrip() + "\n"


def test_the_api_reference_is_current() -> None:
    """docs/api.md is what the description renders to (regenerate it: see this module)."""
    assert DOC.read_text(encoding="utf-8") == render(build_openapi("docs")), (
        "docs/api.md is stale: .venv/bin/python -m tests.api.test_openapi_docs > docs/api.md"
    )


if __name__ == "__main__":
    sys.stdout.write(render(build_openapi("docs")))
