"""JSON errors for every HTTP failure: `{"error": {"code", "message"}}`, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from gateway.appkeys import CONFIG, CORS_ORIGIN

__all__ = [
    "ApiError",
    "error_body",
    "error_cors",
    "error_middleware",
    "error_response",
    "read_json_object",
    "text_field",
]

log = structlog.get_logger()

_PUBLIC_SESSION_PATH = "/v1/sessions"
_AMP_PATH = "/v1/amp/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    410: "gone",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered to the client as JSON with a 4xx/5xx status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=error_body(code, message),
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, _cors_of(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 413:
            limit = request.app[CONFIG].http.max_body_bytes
            message = f"request body is larger than {limit} bytes"
        return error_response(
            exc.status, _CODES.get(exc.status, "error"), message, _cors_of(request)
        )
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and request.transport is None:
            # The client went away, or its body missed [http] body_timeout_seconds: no one to
            # answer (this is never sent) and no fault of ours, so no traceback either.
            return error_response(400, "connection_lost", "the connection closed mid-request")
        # The route's pattern, not the path: a path can hold a session id, which authorises
        # heartbeats and is never logged whole.
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else "(no route)"
        log.exception("http_unhandled_error", route=pattern, method=request.method)
        return error_response(500, "internal", "internal error; the gateway logged the details")


def _cors_of(request: web.Request) -> dict[str, str] | None:
    return error_cors(
        request.method, request.path, request.headers.get("Origin"), request.get(CORS_ORIGIN)
    )


def error_cors(
    method: str, path: str, origin: str | None, allowed: str | None
) -> dict[str, str] | None:
    """The CORS headers of an error answer: `allowed` is the origin the site allowed, if any."""
    if path.startswith(_AMP_PATH):
        # amp-call-tracking sends credentials: the grant names the origin, as on success, and
        # only an origin the site allows (its own or its AMP Cache's) gets one.
        if not allowed:
            return None
        return {
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
    if allowed:
        return {"Access-Control-Allow-Origin": allowed, "Vary": "Origin"}
    if origin is None:
        return None
    # An error for a page whose origin or site key is not (or no longer) configured: let the
    # page read it. The body holds no number, and without the grant Chromium adds a "blocked
    # by CORS policy" console error to the page, on top of the failed request.
    # POST only: the page's own calls (open, heartbeat), not the admin API's GET of a session.
    if method == "POST" and path.startswith(_PUBLIC_SESSION_PATH):
        return {"Access-Control-Allow-Origin": "*"}
    return None


def error_body(code: str, message: str) -> str:
    """The JSON body of every error answer."""
    return json.dumps({"error": {"code": code, "message": message}})


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413 naming what is wrong."""
    raw = await request.read()
    if not raw:
        raise ApiError(400, "empty_body", "request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"body is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_int=_json_int, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc.msg} at {exc.pos}") from None
    except _UnfitNumber as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None
    except RecursionError:
        raise ApiError(400, "malformed_json", _TOO_DEEP) from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "body must be a JSON object")
    # Cheap tests first: only a body with a \u escape can hold a lone surrogate, and only one
    # with many brackets can nest too deep.
    deep = text.count("[") + text.count("{") > _MAX_DEPTH
    if deep or "\\u" in text:
        _check_tree(data)
    return data


# Deeper JSON is no request of ours, and code that walks it recursively would fail on it.
_MAX_DEPTH = 32
_TOO_DEEP = f"JSON nested deeper than {_MAX_DEPTH} levels"
# The largest integer the store holds (64 bits) has 19 digits.
_MAX_DIGITS = 19


class _UnfitNumber(ValueError):
    """A JSON number the gateway does not take; the message says which."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _UnfitNumber("a number in the body has more than 19 digits")
    return int(text)


def _json_constant(name: str) -> float:
    raise _UnfitNumber(f"{name} is not a JSON number; send a finite number")


def _check_tree(data: dict[str, Any]) -> None:
    """400 for nesting deeper than _MAX_DEPTH, or a lone surrogate in any key or string (JSON
    `\\ud800` escapes decode to text that cannot be stored)."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict):
            if depth > _MAX_DEPTH:
                raise ApiError(400, "malformed_json", _TOO_DEEP)
            for key, item in value.items():
                if not _is_text(key):
                    place = f"'{where[:100]}'" if where else "the body"
                    raise ApiError(400, "invalid_encoding", f"a key in {place} is not valid UTF-8")
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            if depth > _MAX_DEPTH:
                raise ApiError(400, "malformed_json", _TOO_DEEP)
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and not _is_text(value):
            raise ApiError(400, "invalid_encoding", f"'{where[:100]}' is not valid UTF-8")


def _is_text(value: str) -> bool:
    """False for a string with a lone surrogate: it has no UTF-8 form, so it cannot be stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_field(data: dict[str, Any], name: str, *, max_len: int, required: bool = False) -> str:
    """A string field of a JSON body, checked for type, length and encoding."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, "missing_field", f"'{name}' is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"'{name}' must be a string")
    if len(value) > max_len:
        raise ApiError(400, "field_too_long", f"'{name}' is longer than {max_len} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_encoding", f"'{name}' is not valid UTF-8") from None
    if "\x00" in value:
        raise ApiError(400, "invalid_field", f"'{name}' contains a NUL character")
    return value
