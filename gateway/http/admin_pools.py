"""The admin API's pool sizing: a period of the pool's own traffic replayed at candidate sizes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from aiohttp import web

from gateway.appkeys import CLOCK, DB, DESK
from gateway.http.admin_auth import admin
from gateway.http.errors import ApiError
from gateway.store.sizing import replay_sizing
from numberpool.pool import Pool
from reports.pool_sizing import parse_moment, parse_sizes

__all__ = ["add_pool_routes", "pool_sizing"]

DEFAULT_PERIOD = timedelta(days=7)
_MAX_PERIOD = timedelta(days=366)
# The replay holds the GIL: a pause after each stretch of it lets FastAGI routes run.
_PAUSE_S = 0.001


def add_pool_routes(app: web.Application) -> None:
    app.router.add_get("/v1/pools/{pool_id}/sizing", admin(pool_sizing))


def _moment(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_moment(text)
    except ValueError:
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z",
        ) from None


def _period(request: web.Request) -> tuple[datetime, datetime]:
    until = _moment(request, "until") or request.app[CLOCK].now()
    since = _moment(request, "since") or until - DEFAULT_PERIOD
    if since >= until:
        raise ApiError(400, "invalid_parameter", "'since' must be before 'until'")
    if until - since > _MAX_PERIOD:
        raise ApiError(400, "invalid_parameter", "the period must be at most 366 days")
    return since, until


def _sizes(request: web.Request) -> list[int]:
    text = request.query.get("sizes")
    if text is None:
        return []
    try:
        return parse_sizes(text)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"'sizes' {exc}") from None


def _pool(request: web.Request, pool_id: str) -> tuple[str, Pool]:
    for entry in request.app[DESK].sites.values():
        pool = entry.site.pool_by_id(pool_id)
        if pool is not None:
            return entry.site.key, pool
    raise ApiError(404, "unknown_pool", "no such pool")


def _breathe() -> None:
    time.sleep(_PAUSE_S)


async def pool_sizing(request: web.Request) -> web.Response:
    """Right / wrong / unattributed calls expected per pool size, and the smallest for 99 %."""
    site_key, pool = _pool(request, request.match_info["pool_id"])
    since, until = _period(request)
    sizes = _sizes(request)
    report = await replay_sizing(
        request.app[DB], site_key, pool, since, until, sizes, pace=_breathe
    )
    return web.json_response(report.as_dict())
