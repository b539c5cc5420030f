"""OpenAPI path items of the admin API (Bearer API keys): sites, pools, numbers, sessions, calls
and pool sizing (gateway/http/admin.py, admin_calls.py, admin_pools.py)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    ADMIN,
    TEXT,
    errors,
    json_answer,
    nullable,
    obj,
    param,
    ref,
)
from reports.pool_sizing import POLICIES

__all__ = ["PATHS", "SCHEMAS"]

_INT = {"type": "integer"}
_TIME = {**TEXT, "description": "ISO 8601, e.g. 2026-01-31T00:00:00Z (UTC when no zone)."}
_CALL_FILTERS = [
    param("since", "query", _TIME, "Calls that started at or after this time."),
    param("until", "query", _TIME, "Calls that started before this time."),
    param("site", "query", TEXT, "Only this site's calls."),
    param("state", "query", {"enum": ["ringing", "answered", "missed", "abandoned"]}, "State."),
    param("offset", "query", {**_INT, "minimum": 0}, "Calls to skip."),
]


def _admin(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An admin operation: the API key, and 401 for a missing or unknown one."""
    return {
        "operationId": op_id,
        "tags": ["admin"],
        "summary": summary,
        "security": ADMIN,
        **more,
        "responses": {**responses, **errors(401)},
    }


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


PATHS: dict[str, dict[str, Any]] = {
    "/v1/sites": {
        "get": _admin(
            "listSites", "Every site with its pools", {"200": json_answer(ref("SiteList"), "")}
        ),
        "post": _admin(
            "putSite",
            "Create or replace a site, written like a [[sites]] table of the config file",
            {
                "201": json_answer(ref("Site"), "The site as stored."),
                **errors(400, 409, 413),
            },
            requestBody=_body("SiteInput"),
        ),
    },
    "/v1/sites/{key}": {
        "get": _admin(
            "showSite",
            "One site",
            {"200": json_answer(ref("Site"), "The site."), **errors(404)},
            parameters=[param("key", "path", TEXT, "The site's key.")],
        )
    },
    "/v1/pools": {
        "get": _admin(
            "listPools",
            "Every pool with its live figures",
            {"200": json_answer(obj({"pools": {"type": "array", "items": ref("Pool")}}), "")},
        )
    },
    "/v1/pools/{pool_id}/sizing": {
        "get": _admin(
            "poolSizing",
            "Right, wrong and unattributed calls expected per pool size, from the pool's traffic",
            {"200": json_answer(ref("SizingReport"), ""), **errors(400, 404)},
            parameters=[
                param("pool_id", "path", TEXT, "The pool's id, `site:target`."),
                param("since", "query", _TIME, "Start of the period (default: until - 7 days)."),
                param("until", "query", _TIME, "End of the period (default: now)."),
                param("sizes", "query", TEXT, "Candidate sizes, e.g. 10,20,40 (at most 20)."),
            ],
        )
    },
    "/v1/numbers": {
        "get": _admin(
            "listNumbers",
            "Every tracking number and who holds it now",
            {"200": json_answer(ref("NumberList"), "")},
            parameters=[param("site", "query", TEXT, "Only this site's numbers.")],
        ),
        "post": _admin(
            "addNumber",
            "Add a tracking number to the pool of a site's target number",
            {
                "201": json_answer(obj({"number": TEXT, "pool_id": TEXT}), "Added."),
                **errors(400, 404, 409, 413),
            },
            requestBody=_body("NumberInput"),
        ),
    },
    "/v1/numbers/{number}": {
        "delete": _admin(
            "removeNumber",
            "Remove a tracking number that is not leased now",
            {
                "200": json_answer(obj({"removed": TEXT}), "Removed."),
                **errors(400, 404, 409),
            },
            parameters=[param("number", "path", TEXT, "The number (E.164 or national).")],
        )
    },
    "/v1/sessions/{session_id}": {
        "get": _admin(
            "showSession",
            "A stored visitor session",
            {"200": json_answer(ref("StoredSession"), ""), **errors(404)},
            parameters=[param("session_id", "path", TEXT, "The session's id.")],
        )
    },
    "/v1/calls": {
        "get": _admin(
            "listCalls",
            "Calls, newest first",
            {
                "200": json_answer(obj({"calls": {"type": "array", "items": ref("Call")}}), ""),
                **errors(400),
            },
            parameters=[
                *_CALL_FILTERS,
                param("limit", "query", {**_INT, "minimum": 1, "maximum": 1000}, "At most."),
            ],
        )
    },
    "/v1/calls.csv": {
        "get": _admin(
            "downloadCalls",
            "Calls as a CSV file (the same filters, up to 100,000 calls)",
            {
                "200": {"description": "calls.csv", "content": {"text/csv": {"schema": TEXT}}},
                **errors(400),
            },
            parameters=[
                *_CALL_FILTERS,
                param("limit", "query", {**_INT, "minimum": 1, "maximum": 100_000}, "At most."),
            ],
        )
    },
    "/v1/calls/{call_id}": {
        "get": _admin(
            "showCall",
            "One call",
            {"200": json_answer(ref("Call"), ""), **errors(404)},
            parameters=[param("call_id", "path", TEXT, "The call's id.")],
        )
    },
}

_POOL = obj(
    {
        "pool_id": TEXT,
        "site": TEXT,
        "target": TEXT,
        "overflow": {**TEXT, "description": "'' when the pool has none."},
        "size": _INT,
        "live_leases": _INT,
        "peak_live_leases": _INT,
        "exhausted_count": _INT,
        "utilisation": nullable({"type": "number"}),
        "numbers": ref("StringList"),
    }
)
_STATIC = obj({"number": TEXT, "source": TEXT, "medium": TEXT, "campaign": TEXT})
_SITE = obj(
    {
        "key": TEXT,
        "name": TEXT,
        "allowed_origins": ref("StringList"),
        "pools": {"type": "array", "items": ref("Pool")},
        "static_numbers": {"type": "array", "items": _STATIC},
    }
)
_NUMBER = obj(
    {
        "number": TEXT,
        "site": TEXT,
        "pool_id": TEXT,
        "display": TEXT,
        "leased": {"type": "boolean"},
        "session_id": nullable(TEXT),
    }
)
_SESSION_TEXT = (
    "site visitor_id created_at last_seen expires_at url landing_page referrer user_agent"
    " utm_source utm_medium utm_campaign utm_term utm_content gclid gbraid wbraid fbclid"
    " msclkid bd_vid"
).split()
_SHARE = nullable({"type": "number"})
_POLICIES = list(POLICIES)  # the sizing report's own keys: the document cannot drift from them
_SIZE = {
    **obj(
        {
            "policy": {"enum": _POLICIES},
            "size": _INT,
            "cost_numbers": _INT,
            **{k: _INT for k in ("right", "wrong", "unattributed", "sessions", "overflowed")},
            **{k: _INT for k in ("reused", "shared", "peak_live", "peak_busy", "late_seen_wrong")},
            "late_wrong": {"type": "number"},
            "right_share": _SHARE,
            "wrong_share": _SHARE,
            "unattributed_share": _SHARE,
        }
    ),
    "description": "One policy at one size. `reused`: leases of a number still cooling;"
    " `shared`: leases of a live number whose holder had called (the number is then held by two"
    " visits); `peak_live` and `peak_busy` count numbers, a shared one once.",
}
_POLICY = {
    **obj(
        {
            "when_exhausted": {"enum": ["reuse", "overflow"]},
            "share_called_numbers": {"type": "boolean"},
        }
    ),
    "description": "What a policy of the sizing report does, in the pool's config keys.",
}

SCHEMAS: dict[str, Any] = {
    "Pool": _POOL,
    "Site": _SITE,
    "SiteList": obj({"sites": {"type": "array", "items": ref("Site")}}),
    "SiteInput": {
        "type": "object",
        "required": ["key"],
        "description": "A [[sites]] table of the config file as JSON (docs/configuration.md).",
        "properties": {
            "key": TEXT,
            "name": TEXT,
            "allowed_origins": ref("StringList"),
            "destination": TEXT,
            "pools": {"type": "array", "items": {"type": "object"}},
            "static_numbers": {"type": "array", "items": {"type": "object"}},
        },
    },
    "NumberInput": obj(
        {
            "site": {**TEXT, "maxLength": 64},
            "target": {**TEXT, "maxLength": 40, "description": "The pool's target number."},
            "number": {**TEXT, "maxLength": 40, "description": "The number to add."},
        }
    ),
    "NumberList": obj({"numbers": {"type": "array", "items": _NUMBER}}),
    "StoredSession": obj(
        {
            "session_id": TEXT,
            **{name: TEXT for name in _SESSION_TEXT},
            "numbers": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "SizingReport": {
        **obj(
            {
                "pool_id": TEXT,
                "since": TEXT,
                "until": TEXT,
                "current_size": _INT,
                "calls": _INT,
                "judged_calls": _INT,
                "overflow_calls": _INT,
                "unknown_calls": _INT,
                "inferred_calls": _INT,
                "late_calls": _INT,
                "target_right": {"type": "number"},
                "policies": {"type": "object", "additionalProperties": ref("SizingPolicy")},
                "smallest_size": {"type": "object", "additionalProperties": nullable(_INT)},
                "sizes": {"type": "array", "items": ref("SizeFigures")},
            }
        ),
        "description": "The pool's period replayed per policy and size. Policies, the pool's"
        ' own first: `reuse` (its rules with when_exhausted "reuse", sharing called numbers'
        " as its share_called_numbers says), the same with sharing switched"
        " (`reuse_no_sharing` or `reuse_sharing`), and `overflow`; `policies` says what each"
        " key means for this pool.",
    },
    "SizeFigures": _SIZE,
    "SizingPolicy": _POLICY,
}
