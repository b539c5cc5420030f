"""The admin API's door: every admin handler requires a live Bearer API key."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.appkeys import DB
from gateway.http.errors import ApiError
from gateway.store.keys import find_key

__all__ = ["Handler", "admin"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin(handler: Handler) -> Handler:
    """Require `Authorization: Bearer <api key>` on an admin handler."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "unauthorized",
                "send 'Authorization: Bearer <api key>' (create one with: ctgw keys create NAME)",
            )
        if await find_key(request.app[DB], key.strip()) is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key")
        return await handler(request)

    return checked
