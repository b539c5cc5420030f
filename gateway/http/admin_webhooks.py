"""The webhooks' admin API: endpoints made, listed and deleted (the secret is shown once, in
the answer that made it), and deliveries listed, retried and replayed. API keys only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB
from gateway.http.admin_auth import admin
from gateway.http.errors import ApiError, read_json_object
from gateway.store.webhooks import (
    DELIVERY_STATES,
    create_endpoint,
    delete_endpoint,
    find_endpoint,
    list_deliveries,
    list_endpoints,
    new_secret,
    replay_deliveries,
    retry_delivery,
    site_exists,
)
from gateway.webhook_settings import EVENT_TYPES, endpoint_problem
from gateway.webhooks.address_guard import url_refusal
from gateway.webhooks.running import WEBHOOKS

__all__ = ["add_webhook_routes"]


def add_webhook_routes(app: web.Application) -> None:
    """Register this module's routes on `app`."""
    r = app.router
    r.add_get("/v1/webhooks", admin(webhooks_list))
    r.add_post("/v1/webhooks", admin(webhook_create))
    r.add_get("/v1/webhooks/{webhook_id}", admin(webhook_show))
    r.add_delete("/v1/webhooks/{webhook_id}", admin(webhook_delete))
    r.add_post("/v1/webhooks/{webhook_id}/replay", admin(webhook_replay))
    r.add_get("/v1/webhook-deliveries", admin(deliveries_list))
    r.add_post("/v1/webhook-deliveries/{delivery_id}/retry", admin(delivery_retry))


def _text(body: dict[str, Any], name: str, max_len: int, *, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value) or len(value) > max_len:
        need = "a non-empty string" if required else "a string"
        raise ApiError(400, "invalid_field", f"'{name}' must be {need} of at most {max_len}")
    return value


def _events(body: dict[str, Any]) -> list[str]:
    events = body.get("events", list(EVENT_TYPES))
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ApiError(400, "invalid_field", "'events' must be a list of event types")
    return list(dict.fromkeys(events))


async def _reachable(request: web.Request, url: str) -> None:
    """Refuse, with its reason, a URL whose host is or resolves to a refused address (the
    sender checks again at each delivery, on the address it connects to)."""
    refusal = await url_refusal(url, request.app[CONFIG].webhooks.allowed_networks())
    if refusal:
        raise ApiError(400, "refused_url", refusal)


async def webhook_create(request: web.Request) -> web.Response:
    """A new endpoint; its secret (given, or made here) is in this answer only."""
    body = await read_json_object(request)
    site, url = _text(body, "site", 64), _text(body, "url", 2000)
    secret = _text(body, "secret", 200, required=False) or new_secret()
    events = _events(body)
    problem = endpoint_problem(url, secret, events)
    if problem:
        raise ApiError(400, "invalid_field", problem)
    db = request.app[DB]
    if not await site_exists(db, site):
        raise ApiError(404, "unknown_site", f"no site {site!r}")
    await _reachable(request, url)
    endpoint = await create_endpoint(db, site, url, events, secret, request.app[CLOCK].now())
    _wake(request)  # an idle sender re-reads its endpoints now, not in up to 5 s
    return web.json_response({**endpoint.as_json(), "secret": secret}, status=201)


async def webhooks_list(request: web.Request) -> web.Response:
    site = request.query.get("site", "")
    endpoints = await list_endpoints(request.app[DB], [site] if site else None)
    return web.json_response({"webhooks": [e.as_json() for e in endpoints]})


async def _endpoint_of(request: web.Request) -> Any:
    endpoint = await find_endpoint(request.app[DB], request.match_info["webhook_id"][:64])
    if endpoint is None:
        raise ApiError(404, "unknown_webhook", "no such webhook")
    return endpoint


async def webhook_show(request: web.Request) -> web.Response:
    return web.json_response((await _endpoint_of(request)).as_json())


async def webhook_delete(request: web.Request) -> web.Response:
    endpoint = await _endpoint_of(request)
    if endpoint.origin == "config":
        raise ApiError(
            409, "defined_in_config", "this webhook is in the config file: remove it there"
        )
    await delete_endpoint(request.app[DB], endpoint.endpoint_id)
    return web.Response(status=204)


def _wake(request: web.Request) -> None:
    worker = request.app.get(WEBHOOKS)
    if worker is not None:
        worker.wake()


async def webhook_replay(request: web.Request) -> web.Response:
    """Every parked delivery of the endpoint due again now, in their order."""
    endpoint = await _endpoint_of(request)
    count = await replay_deliveries(request.app[DB], endpoint.endpoint_id, request.app[CLOCK].now())
    _wake(request)
    return web.json_response({"webhook_id": endpoint.endpoint_id, "replayed": count})


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ApiError(400, "invalid_parameter", "'limit' must be 1-1000")
    return int(text)


async def deliveries_list(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    if state and state not in DELIVERY_STATES:
        allowed = ", ".join(DELIVERY_STATES)
        raise ApiError(400, "invalid_parameter", f"'state' must be one of {allowed}")
    found = await list_deliveries(
        request.app[DB],
        state=state,
        endpoint_id=request.query.get("webhook_id", "")[:64],
        limit=_limit(request),
    )
    return web.json_response({"deliveries": found})


async def delivery_retry(request: web.Request) -> web.Response:
    """A failed or parked delivery sent again now (a delivered one is left as it is)."""
    text = request.match_info["delivery_id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, "unknown_delivery", "no such delivery")
    found = await retry_delivery(request.app[DB], int(text), request.app[CLOCK].now())
    if found is None:
        raise ApiError(404, "unknown_delivery", "no such delivery")
    _wake(request)
    return web.json_response(found)
