"""OpenAPI path items of the public routes: sessions, AMP, health, metrics, swap.js, the demo
site and the indexes (gateway/http/public.py, swapjs.py, index.py, openapi.py)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    PUBLIC,
    TEXT,
    errors,
    html_page,
    json_answer,
    obj,
    param,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_SESSION_ID = param("session_id", "path", {**TEXT, "maxLength": 64}, "The session's id.")
_ORIGIN = param(
    "Origin", "header", TEXT, "The page's origin; must be one of the site's allowed_origins."
)
_JS = {"application/javascript": {"schema": TEXT}}
_SCRIPT_HEADERS = {
    "ETag": {"schema": TEXT, "description": "The script's content hash."},
    "Cache-Control": {"schema": TEXT, "description": "How long a browser may keep it."},
}
_REDIRECT = {"description": "Found: go to `Location`.", "headers": {"Location": {"schema": TEXT}}}

_OPEN_SESSION = {
    "operationId": "openSession",
    "tags": ["public"],
    "summary": "Open a visitor session and lease tracking numbers",
    "description": (
        "CORS-checked against the site's allowed origins. Any content type is read as JSON, so "
        "the script can send text/plain and skip a preflight. UTM tags, gclid, gbraid, wbraid, "
        "fbclid, msclkid and bd_vid are read from `url`."
    ),
    "security": PUBLIC,
    "parameters": [_ORIGIN],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ref("SessionRequest")},
            "text/plain": {"schema": ref("SessionRequest")},
        },
    },
    "responses": {
        "201": json_answer(ref("SessionAnswer"), "The session and the numbers to show."),
        **errors(400, 403, 404, 413, 429, 503),
    },
}

_PREFLIGHT = {
    "tags": ["public"],
    "summary": "CORS preflight",
    "security": PUBLIC,
    "parameters": [_ORIGIN],
    "responses": {"204": {"description": "The origin may call this route."}, **errors(403)},
}

PATHS: dict[str, dict[str, Any]] = {
    "/v1/sessions": {
        "post": _OPEN_SESSION,
        "options": {**_PREFLIGHT, "operationId": "preflightSessions"},
    },
    "/v1/sessions/{session_id}/heartbeat": {
        "parameters": [_SESSION_ID],
        "post": {
            "operationId": "heartbeat",
            "tags": ["public"],
            "summary": "Keep a session's lease alive",
            "security": PUBLIC,
            "parameters": [_ORIGIN],
            "responses": {
                "200": json_answer(ref("Heartbeat"), "The lease lives on."),
                **errors(403, 404, 410, 503),
            },
        },
        "options": {**_PREFLIGHT, "operationId": "preflightHeartbeat"},
    },
    "/v1/amp/{site}": {
        "get": {
            "operationId": "ampNumber",
            "tags": ["public"],
            "summary": "One tracking number for AMP amp-call-tracking",
            "security": PUBLIC,
            "parameters": [
                param("site", "path", TEXT, "The site's key."),
                param("url", "query", TEXT, "The page URL (left out when unreadable)."),
                param("referrer", "query", TEXT, "The page's referrer."),
                param("visitor_id", "query", TEXT, "The AMP client id."),
                param("__amp_source_origin", "query", TEXT, "Set by the AMP runtime."),
            ],
            "responses": {
                "200": json_answer(ref("AmpNumber"), "The number to show."),
                **errors(403, 404, 429, 503),
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "health",
            "tags": ["operations"],
            "summary": "Health: 200 while the gateway and its store answer",
            "security": PUBLIC,
            "responses": {
                "200": json_answer(ref("Health"), "Healthy."),
                "503": json_answer(ref("Health"), "The store does not answer."),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "tags": ["operations"],
            "summary": "Prometheus metrics (text exposition format 0.0.4)",
            "security": PUBLIC,
            "responses": {
                "200": {"description": "Metrics.", "content": {"text/plain": {"schema": TEXT}}}
            },
        }
    },
    "/swap.js": {
        "get": {
            "operationId": "swapScript",
            "tags": ["public"],
            "summary": "The number-swap script (stable alias, cached five minutes)",
            "security": PUBLIC,
            "responses": {
                "200": {"description": "The script.", "headers": _SCRIPT_HEADERS, "content": _JS},
                "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            },
        }
    },
    "/swap.{digest}.js": {
        "get": {
            "operationId": "swapScriptHashed",
            "tags": ["public"],
            "summary": "The number-swap script by content hash (cached a year)",
            "security": PUBLIC,
            "parameters": [
                param("digest", "path", {**TEXT, "pattern": "^[0-9a-f]{12}$"}, "Content hash.")
            ],
            "responses": {
                "200": {"description": "The script.", "headers": _SCRIPT_HEADERS, "content": _JS},
                "302": {**_REDIRECT, "description": "An old hash: go to the current script."},
                "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                **errors(404),
            },
        }
    },
    "/demo": {
        "get": {
            "operationId": "demoRoot",
            "tags": ["demo"],
            "summary": "Redirect to /demo/",
            "security": PUBLIC,
            "responses": {"302": _REDIRECT},
        }
    },
    "/demo/{name}": {
        "get": {
            "operationId": "demoFile",
            "tags": ["demo"],
            "summary": "The demo site's files; unknown names without a dot get its index page",
            "security": PUBLIC,
            "parameters": [
                param("name", "path", {**TEXT, "pattern": "^[^/]*$"}, "A file of the demo site."),
                param("ctgw", "query", {"enum": ["off"]}, "`off`: the page without swap.js."),
            ],
            "responses": {
                "200": {
                    "description": "The file (HTML, JavaScript, CSS or SVG).",
                    "content": {
                        "text/html": {"schema": TEXT},
                        "application/javascript": {"schema": TEXT},
                        "text/css": {"schema": TEXT},
                        "image/svg+xml": {"schema": TEXT},
                    },
                },
                **errors(404),
            },
        }
    },
    "/": {
        "get": {
            "operationId": "home",
            "tags": ["operations"],
            "summary": "A page of links for people",
            "security": PUBLIC,
            "responses": {"200": html_page()},
        }
    },
    "/v1/": {
        "get": {
            "operationId": "apiIndex",
            "tags": ["operations"],
            "summary": "Every route of the API and whether it needs an API key",
            "security": PUBLIC,
            "responses": {"200": json_answer(ref("ApiIndex"), "The route list.")},
        }
    },
    "/v1": {
        "get": {
            "operationId": "apiIndexNoSlash",
            "tags": ["operations"],
            "summary": "The same as GET /v1/",
            "security": PUBLIC,
            "responses": {"200": json_answer(ref("ApiIndex"), "The route list.")},
        }
    },
    "/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "tags": ["operations"],
            "summary": "This description (OpenAPI 3.1)",
            "security": PUBLIC,
            "responses": {
                "200": json_answer({"type": "object"}, "The OpenAPI document."),
                "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            },
        }
    },
}

_OFFER = obj(
    {
        "target": {**TEXT, "description": "The site's own number this one replaces (E.164)."},
        "number": {**TEXT, "description": "The number to show (E.164)."},
        "display": {**TEXT, "description": "The number formatted for the page."},
        "kind": {"enum": ["pool", "overflow", "static", "none"]},
    }
)

SCHEMAS: dict[str, Any] = {
    "SessionRequest": obj(
        {
            "site": {**TEXT, "minLength": 1, "maxLength": 64},
            "url": {**TEXT, "maxLength": 2048, "description": "The page URL, http(s)."},
            "referrer": {**TEXT, "maxLength": 2048},
            "visitor_id": {**TEXT, "maxLength": 64, "description": "Kept by the page."},
        },
        required=("site", "url"),
    ),
    "NumberOffer": _OFFER,
    "SessionAnswer": obj(
        {
            "session_id": TEXT,
            "visitor_id": TEXT,
            "numbers": {"type": "array", "items": ref("NumberOffer")},
            "heartbeat_seconds": {"type": "integer"},
            "expires_at": TEXT,
            "expires_in": {"type": "number", "description": "Seconds until expires_at."},
        }
    ),
    "Heartbeat": obj({"session_id": TEXT, "expires_at": TEXT, "expires_in": {"type": "number"}}),
    "AmpNumber": obj({"phoneNumber": TEXT, "formattedPhoneNumber": TEXT}),
    "Health": obj(
        {
            "status": {"enum": ["ok", "unhealthy"]},
            "store": {**TEXT, "description": "`ok`, or why the store failed."},
            "sites": {"type": "integer"},
        },
        required=("status", "store"),
    ),
    "ApiIndex": obj(
        {
            "name": TEXT,
            "version": TEXT,
            "auth": TEXT,
            "routes": {
                "type": "array",
                "items": obj({"method": TEXT, "path": TEXT, "needs_key": {"type": "boolean"}}),
            },
        }
    ),
}
