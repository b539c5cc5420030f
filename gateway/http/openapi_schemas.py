"""Building blocks of the OpenAPI description: references, responses, security, shared schemas.

The path fragments (openapi_paths*.py) write their operations with these helpers, so every
error answer points at the one `Error` schema of gateway/http/errors.py.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ADMIN",
    "PUBLIC",
    "SCHEMAS",
    "STAFF_OR_KEY",
    "STAFF_PAGE",
    "TEXT",
    "errors",
    "html_page",
    "json_answer",
    "nullable",
    "obj",
    "param",
    "ref",
    "see_other",
]

# Security requirements: a Bearer API key, a staff session cookie, or either.
ADMIN: list[dict[str, list[str]]] = [{"apiKey": []}]
STAFF_OR_KEY: list[dict[str, list[str]]] = [{"apiKey": []}, {"staffSession": []}]
STAFF_PAGE: list[dict[str, list[str]]] = [{"staffSession": []}]
PUBLIC: list[dict[str, list[str]]] = []

TEXT: dict[str, Any] = {"type": "string"}

# What each error status means across the API; a route's own codes are in its description.
_WHY = {
    400: "The request is malformed or a field or parameter is invalid.",
    401: "No API key (or staff session), or an unknown or revoked one.",
    403: "The caller may not do this, or the browser origin is not allowed.",
    404: "No such resource.",
    409: "The change conflicts with the current state.",
    410: "The resource has ended.",
    413: "The request body is larger than [http] max_body_bytes.",
    429: "Too many requests; `Retry-After` says how many seconds to wait.",
    500: "The stored data cannot be answered (the message says which).",
    503: "The store cannot take the change now; retry later.",
}


def ref(name: str) -> dict[str, str]:
    """A reference to a schema in components/schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or JSON null (a simple schema with a `type`)."""
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def obj(
    properties: dict[str, Any], *, required: tuple[str, ...] | None = None, closed: bool = False
) -> dict[str, Any]:
    """An object schema; every property is required unless `required` names fewer."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties if required is None else required),
        "properties": properties,
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def param(
    name: str, where: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    """A parameter object; path parameters are always required."""
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


def json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The JSON error responses of `statuses`, each `{"error": {"code", "message"}}`."""
    return {str(s): json_answer(ref("Error"), _WHY[s]) for s in statuses}


def html_page(description: str = "An HTML page.") -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": TEXT}}}


def see_other(description: str) -> dict[str, Any]:
    """A 303 redirect (after a form, or to the login page)."""
    return {
        "description": description,
        "headers": {"Location": {"schema": TEXT, "description": "Where to go next."}},
    }


_STR_LIST = {"type": "array", "items": TEXT}
_OPT_TEXT = nullable(TEXT)
_OPT_NUM = nullable({"type": "number"})

_ATTRIBUTION = obj(
    {
        "kind": {"enum": ["active", "probable", "overflow", "static", "unattributed"]},
        "session_id": _OPT_TEXT,
        "visitor_id": _OPT_TEXT,
        "source": TEXT,
        "medium": TEXT,
        "campaign": TEXT,
        "term": TEXT,
        "content": TEXT,
        "gclid": TEXT,
        "landing_page": TEXT,
        "referrer": TEXT,
        "confidence": _OPT_NUM,
        "other_session_id": _OPT_TEXT,
        "other_visitor_id": _OPT_TEXT,
    }
)

_CALL = obj(
    {
        "call_id": TEXT,
        "site": TEXT,
        "dialed": TEXT,
        "caller": TEXT,
        "caller_name": TEXT,
        "started_at": TEXT,
        "answered_at": _OPT_TEXT,
        "ended_at": _OPT_TEXT,
        "state": {"enum": ["ringing", "answered", "missed", "abandoned"]},
        "agent": TEXT,
        "route": TEXT,
        "ring_seconds": _OPT_NUM,
        "talk_seconds": _OPT_NUM,
        "hangup_cause": TEXT,
        "recording": TEXT,
        "first_time": {"type": "boolean"},
        "test_call": {"type": "boolean"},
        "direction": {"enum": ["inbound", "outbound"]},
        "attribution": ref("Attribution"),
    }
)

_ERROR = obj(
    {
        "error": obj(
            {
                "code": {**TEXT, "description": "Stable, machine-readable, e.g. unknown_site."},
                "message": {**TEXT, "description": "For people: what was wrong, what to do."},
            }
        )
    },
    closed=True,
)

# components/schemas shared by several fragments (each fragment adds its own).
SCHEMAS: dict[str, Any] = {
    "Error": {**_ERROR, "description": "Every error answer (gateway/http/errors.py)."},
    "Attribution": {**_ATTRIBUTION, "description": "The visit a call was credited to."},
    "Call": {**_CALL, "description": "A call record, as GET /v1/calls/{call_id} answers it."},
    "StringList": _STR_LIST,
}
