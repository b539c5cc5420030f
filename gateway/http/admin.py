"""The admin API (Bearer API keys): its routes, and the sites, pools, numbers and sessions.

The calls are in admin_calls.py, the key check in admin_auth.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB, DESK
from gateway.config import ConfigError, parse_config
from gateway.http.admin_auth import admin
from gateway.http.admin_calls import call_show, calls_download, calls_list
from gateway.http.admin_pools import add_pool_routes
from gateway.http.errors import ApiError, read_json_object, text_field
from gateway.store.numbers import add_writes, numbers_taken, remove_write
from gateway.store.sites import site_writes
from numberpool.phone import InvalidNumber, normalise
from numberpool.site import Site

__all__ = ["add_admin_routes"]

_MAX_SETTING = 10 * 365 * 24 * 3600


def add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/sites", admin(sites_list))
    r.add_post("/v1/sites", admin(site_put))
    r.add_get("/v1/sites/{key}", admin(site_show))
    r.add_get("/v1/pools", admin(pools_list))
    r.add_get("/v1/numbers", admin(numbers_list))
    r.add_post("/v1/numbers", admin(number_add))
    r.add_delete("/v1/numbers/{number}", admin(number_remove))
    r.add_get("/v1/sessions/{session_id}", admin(session_show))
    r.add_get("/v1/calls", admin(calls_list))
    r.add_get("/v1/calls.csv", admin(calls_download))
    r.add_get("/v1/calls/{call_id}", admin(call_show))
    add_pool_routes(app)


def _site_json(site: Site, name: str, origins: frozenset[str], at: datetime) -> dict[str, Any]:
    return {
        "key": site.key,
        "name": name,
        "allowed_origins": sorted(origins),
        "pools": [_pool_json(site.key, p, at) for p in site.pools],
        "static_numbers": [vars(s) for s in site.static_numbers],
    }


def _pool_json(site_key: str, pool: Any, at: datetime) -> dict[str, Any]:
    size = len(pool.numbers)
    return {
        "pool_id": pool.pool_id,
        "site": site_key,
        "target": pool.target,
        "overflow": pool.overflow,
        "size": size,
        "live_leases": pool.live_count(at),
        "peak_live_leases": pool.peak_live,
        "exhausted_count": pool.exhausted_count,
        "utilisation": round(pool.peak_live / size, 3) if size else None,
        "numbers": pool.numbers,
    }


async def sites_list(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    entries = request.app[DESK].sites.values()
    return web.json_response(
        {"sites": [_site_json(e.site, e.name, e.allowed_origins, now) for e in entries]}
    )


async def site_show(request: web.Request) -> web.Response:
    entry = request.app[DESK].sites.get(request.match_info["key"])
    if entry is None:
        raise ApiError(404, "unknown_site", "no such site")
    now = request.app[CLOCK].now()
    return web.json_response(_site_json(entry.site, entry.name, entry.allowed_origins, now))


async def site_put(request: web.Request) -> web.Response:
    """Create or replace a site, written like a `[[sites]]` table of the config file."""
    body = await read_json_object(request)
    config = request.app[CONFIG]
    try:
        parsed = parse_config(
            {"phone": {"default_region": config.phone.default_region}, "sites": [body]},
            source="request body",
        )
    except ConfigError as exc:
        raise ApiError(400, "invalid_site", str(exc).replace("sites[0].", "")) from None
    site = parsed.sites[0]
    _check_settings(site, "")
    desk = request.app[DESK]
    wanted = [n for pool in site.pools for n in [*pool.numbers, pool.overflow] if n]
    sites = [entry.site for entry in desk.sites.values()]
    taken = numbers_taken(wanted, sites, besides=site.key)
    if taken:
        number, owner = next(iter(taken.items()))
        raise ApiError(409, "number_in_use", f"{number} belongs to {owner}")
    now = request.app[CLOCK].now()
    await request.app[DB].write(site_writes(site, now, from_config=False))
    await desk.book.reload()
    entry = desk.sites[site.key]
    return web.json_response(
        _site_json(entry.site, entry.name, entry.allowed_origins, now), status=201
    )


def _check_settings(settings: Any, where: str) -> None:
    """400 for an integer setting of a site (durations in seconds, session counts) past ten
    years of seconds: lease times past the calendar failed every load of the stored site."""
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        key = f"{where}{item.name}"
        if isinstance(value, int) and not isinstance(value, bool) and value > _MAX_SETTING:
            raise ApiError(
                400, "invalid_site", f"'{key}' must be at most {_MAX_SETTING} (ten years)"
            )
        if dataclasses.is_dataclass(value):
            _check_settings(value, f"{key}.")
        elif isinstance(value, list):
            for i, entry in enumerate(value):
                if dataclasses.is_dataclass(entry):
                    _check_settings(entry, f"{key}[{i}].")


async def pools_list(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    return web.json_response(
        {
            "pools": [
                _pool_json(e.site.key, p, now)
                for e in request.app[DESK].sites.values()
                for p in e.site.pools
            ]
        }
    )


async def numbers_list(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    site_filter = request.query.get("site")
    numbers = []
    for entry in request.app[DESK].sites.values():
        if site_filter and entry.site.key != site_filter:
            continue
        for pool in entry.site.pools:
            for number in pool.numbers:
                live, _ = pool.holder_at(number, now)
                numbers.append(
                    {
                        "number": number,
                        "site": entry.site.key,
                        "pool_id": pool.pool_id,
                        "display": entry.display(number),
                        "leased": live is not None,
                        "session_id": live.session_id if live else None,
                    }
                )
    return web.json_response({"numbers": numbers})


def _number(data: dict[str, Any], name: str, region: str) -> str:
    text = text_field(data, name, max_len=40, required=True)
    try:
        return normalise(text, region)
    except InvalidNumber as exc:
        raise ApiError(400, "invalid_number", f"'{name}': {exc}") from None


async def number_add(request: web.Request) -> web.Response:
    """Add a tracking number to the pool of a site's target number."""
    data = await read_json_object(request)
    region = request.app[CONFIG].phone.default_region
    site_key = text_field(data, "site", max_len=64, required=True)
    target = _number(data, "target", region)
    number = _number(data, "number", region)
    desk = request.app[DESK]
    entry = desk.sites.get(site_key)
    if entry is None:
        raise ApiError(404, "unknown_site", f"no site has the key {site_key!r}")
    pool = next((p for p in entry.site.pools if p.target == target), None)
    if pool is None:
        raise ApiError(404, "unknown_pool", f"site {site_key!r} has no pool for {target}")
    # The pool's own target is its site's: taken like any other site's number.
    if numbers_taken([number], [e.site for e in desk.sites.values()]):
        raise ApiError(409, "number_in_use", f"{number} is already in use")
    now = request.app[CLOCK].now()
    await request.app[DB].write(add_writes(pool.pool_id, [number], now))
    pool.add_number(number)
    return web.json_response({"number": number, "pool_id": pool.pool_id}, status=201)


async def number_remove(request: web.Request) -> web.Response:
    region = request.app[CONFIG].phone.default_region
    number = _number({"number": request.match_info["number"]}, "number", region)
    desk = request.app[DESK]
    now = request.app[CLOCK].now()
    for entry in desk.sites.values():
        for pool in entry.site.pools:
            if number in pool.numbers:
                if not pool.remove_number(number, now):
                    raise ApiError(409, "number_leased", f"{number} is leased right now")
                await request.app[DB].write([remove_write(number)])
                return web.json_response({"removed": number})
    raise ApiError(404, "unknown_number", f"{number} is in no pool")


async def session_show(request: web.Request) -> web.Response:
    row = await request.app[DB].fetchone(
        "SELECT * FROM sessions WHERE session_id = ?", (request.match_info["session_id"],)
    )
    if row is None:
        raise ApiError(404, "unknown_session", "no such session")
    session = {k: row[k] for k in row.keys()}
    session["numbers"] = json.loads(row["numbers"])  # stored as JSON text: answered as a list
    return web.json_response(session)
