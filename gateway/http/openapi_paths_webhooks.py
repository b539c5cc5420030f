"""OpenAPI 3.1 path items and schemas of the webhooks routes (merged by gateway/http/openapi.py)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import ADMIN, TEXT, errors, json_answer, nullable, obj, param, ref
from gateway.webhook_settings import EVENT_TYPES

__all__ = ["PATHS", "SCHEMAS"]

_EVENT = {"enum": list(EVENT_TYPES)}
_STATES = ["pending", "failed", "delivered", "parked"]
_WEBHOOK_ID = param("webhook_id", "path", TEXT, "The webhook's id (`cfg-…` from the config file).")


def _op(
    op_id: str, summary: str, responses: dict[str, Any], *codes: int, **more: Any
) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "tags": ["webhooks"],
        "summary": summary,
        "security": ADMIN,
        **more,
        "responses": {**responses, **errors(401, *codes)},
    }


PATHS: dict[str, dict[str, Any]] = {
    "/v1/webhooks": {
        "get": _op(
            "listWebhooks",
            "Webhook endpoints, oldest first (never their secrets)",
            {"200": json_answer(ref("WebhookList"), "The endpoints.")},
            parameters=[param("site", "query", TEXT, "Only this site's endpoints.")],
        ),
        "post": _op(
            "createWebhook",
            "Add a webhook endpoint; its signing secret is in this answer only",
            {"201": json_answer(ref("WebhookCreated"), "The endpoint, with its secret.")},
            400,
            404,
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": ref("WebhookCreate")}},
            },
            description="400 `refused_url` when the URL's host is, or resolves to, a loopback,"
            " link-local, private or other non-public address not allowed by [webhooks]"
            " allow_private_networks; 404 `unknown_site`.",
        ),
    },
    "/v1/webhooks/{webhook_id}": {
        "get": _op(
            "showWebhook",
            "One webhook endpoint (never its secret)",
            {"200": json_answer(ref("Webhook"), "The endpoint.")},
            404,
            parameters=[_WEBHOOK_ID],
        ),
        "delete": _op(
            "deleteWebhook",
            "Delete a webhook endpoint and its deliveries",
            {"204": {"description": "Deleted."}},
            404,
            409,
            parameters=[_WEBHOOK_ID],
            description="409 `defined_in_config` for an endpoint of the config file.",
        ),
    },
    "/v1/webhooks/{webhook_id}/replay": {
        "post": _op(
            "replayWebhook",
            "Send every parked delivery of the endpoint again, in their order",
            {"200": json_answer(ref("WebhookReplay"), "How many were queued again.")},
            404,
            parameters=[_WEBHOOK_ID],
        ),
    },
    "/v1/webhook-deliveries": {
        "get": _op(
            "listWebhookDeliveries",
            "Webhook deliveries, newest first (`failed`: pending after a failed attempt)",
            {"200": json_answer(ref("WebhookDeliveryList"), "The deliveries.")},
            400,
            parameters=[
                param("state", "query", {"enum": _STATES}, "Only deliveries in this state."),
                param("webhook_id", "query", TEXT, "Only this endpoint's deliveries."),
                param(
                    "limit",
                    "query",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                    "At most this many (default 100).",
                ),
            ],
        ),
    },
    "/v1/webhook-deliveries/{delivery_id}/retry": {
        "post": _op(
            "retryWebhookDelivery",
            "Send a failed or parked delivery again now, with a new retry window",
            {"200": json_answer(ref("WebhookDelivery"), "The delivery, due now.")},
            404,
            parameters=[
                param(
                    "delivery_id",
                    "path",
                    {"type": "string", "pattern": r"^\d+$"},
                    "The delivery's id.",
                )
            ],
        ),
    },
}

_WEBHOOK = obj(
    {
        "webhook_id": TEXT,
        "site": TEXT,
        "url": TEXT,
        "events": {"type": "array", "items": _EVENT},
        "origin": {"enum": ["config", "api"]},
        "created_at": TEXT,
    }
)

SCHEMAS: dict[str, Any] = {
    "Webhook": {**_WEBHOOK, "description": "A webhook endpoint (docs/webhooks.md)."},
    "WebhookCreated": {
        **obj({**_WEBHOOK["properties"], "secret": TEXT}),
        "description": "A new endpoint with its signing secret, shown only this once.",
    },
    "WebhookCreate": obj(
        {
            "site": TEXT,
            "url": {
                **TEXT,
                "description": "An http:// or https:// URL; redirects are not followed.",
            },
            "events": {
                "type": "array",
                "items": _EVENT,
                "description": "The event types sent (default: all).",
            },
            "secret": {**TEXT, "minLength": 16, "description": "Default: one made for you."},
        },
        required=("site", "url"),
    ),
    "WebhookList": obj({"webhooks": {"type": "array", "items": ref("Webhook")}}),
    "WebhookReplay": obj({"webhook_id": TEXT, "replayed": {"type": "integer"}}),
    "WebhookDelivery": obj(
        {
            "delivery_id": {"type": "integer"},
            "webhook_id": TEXT,
            "event_id": {
                **TEXT,
                "description": "The event's id: Ctgw-Event-Id, the same in every attempt.",
            },
            "type": _EVENT,
            "site": TEXT,
            "state": {"enum": _STATES},
            "attempts": {"type": "integer"},
            "next_attempt_at": nullable(TEXT),
            "delivered_at": nullable(TEXT),
            "last_status": nullable({"type": "integer"}),
            "last_error": TEXT,
        }
    ),
    "WebhookDeliveryList": obj({"deliveries": {"type": "array", "items": ref("WebhookDelivery")}}),
    "WebhookEvent": {
        **obj(
            {
                "version": {"const": 1},
                "event_id": TEXT,
                "type": _EVENT,
                "occurred_at": TEXT,
                "site": TEXT,
                "data": {"type": "object", "description": "For call events, a Call."},
            }
        ),
        "description": "The body POSTed to an endpoint, signed in Ctgw-Signature.",
    },
}
