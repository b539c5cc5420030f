"""POST /v1/sessions as read and checked, and its answer, with no lease or store behind them.

The HTTP fronts read session requests with this module and pass them on over the lease channel;
it imports nothing of the leasing or store code, so a front process does not load it.
"""

from __future__ import annotations

from aiohttp import web

from gateway.appkeys import CONFIG
from gateway.http.client_address import request_client
from gateway.http.errors import ApiError, error_body, error_cors, read_json_object, text_field
from gateway.http.input import header_text
from gateway.session_wire import SessionReply, SessionRequest
from numberpool.visit import url_problem

__all__ = [
    "MAX_UA",
    "MAX_URL",
    "SessionReply",
    "SessionRequest",
    "TooManySessions",
    "read_session_request",
    "session_error",
]

MAX_URL = 2048
MAX_UA = 512


class TooManySessions(ApiError):
    """429 with the whole seconds to wait: the page keeps its own number meanwhile."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, "rate_limited", message)
        self.retry_after = retry_after


async def read_session_request(request: web.Request) -> SessionRequest:
    """Step 2 of the session path: read and check the request, every check that needs no site
    settings. Next: `begin_session` (gateway/http/public.py), in this process or, from an HTTP
    front, over the lease channel in the gateway process (gateway/http/lease_owner.py)."""
    # Any content type is read as JSON, so the script can send text/plain and skip a preflight.
    data = await read_json_object(request)
    site_key = text_field(data, "site", max_len=64, required=True)
    url = text_field(data, "url", max_len=MAX_URL, required=True)
    referrer = text_field(data, "referrer", max_len=MAX_URL)
    visitor_id = text_field(data, "visitor_id", max_len=64)
    if not url.startswith(("http://", "https://")):
        raise ApiError(400, "invalid_field", "'url' must be an http(s) URL")
    for name, value in (("url", url), ("referrer", referrer)):
        problem = url_problem(value)
        if problem is not None:
            raise ApiError(400, "invalid_field", f"'{name}' is not a valid URL: {problem}")
    return SessionRequest(
        site_key,
        url,
        referrer,
        visitor_id,
        header_text(request, "User-Agent", MAX_UA),
        request.headers.get("Origin"),
        request_client(request, request.app[CONFIG].http.trusted_networks),
    )


def session_error(error: ApiError, req: SessionRequest, *, allowed: bool) -> SessionReply:
    """An error answer as the error middleware would give it (`allowed`: origin passed)."""
    headers: dict[str, str] = {}
    if isinstance(error, TooManySessions):
        allowed = True  # limits are counted after the origin check
        headers["Retry-After"] = str(error.retry_after)
    cors = error_cors("POST", "/v1/sessions", req.origin, req.origin if allowed else None)
    headers.update(cors or {})
    return SessionReply(error.status, error_body(error.code, error.message), headers)
