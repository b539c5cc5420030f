"""Webhook events as receivers get them: the versioned JSON body, rendered once per event
from its outbox row (a call event's call read from the store with the event's changes over it)."""

from __future__ import annotations

import json
from typing import Any

from gateway.store.calls import find_call
from gateway.store.database import Database
from gateway.store.outbox import NewEvent, event_key

__all__ = ["BODY_VERSION", "event_site", "order_key", "render_body"]

BODY_VERSION = 1


def event_site(event: NewEvent) -> str:
    return str(event.payload.get("site", ""))


def order_key(event: NewEvent) -> str:
    """What the event's deliveries keep their order by: its call (or its contact)."""
    payload = event.payload
    key = payload.get("key") or payload.get("call_id") or f"event:{event.event_id}"
    return str(key)


async def _data(db: Database, payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    if isinstance(data, dict):
        return data
    call_id = str(payload.get("call_id", ""))
    # Rows queued before webhooks (call.completed) hold the final state only.
    changes = payload.get("changes") or {"state": payload.get("state", "")}
    stored = await find_call(db, call_id) if call_id else None
    return {**(stored or {"call_id": call_id}), **changes}


async def render_body(db: Database, event: NewEvent) -> str:
    """The body every endpoint gets for `event` (kept in the outbox, sent as is on retries)."""
    body = {
        "version": BODY_VERSION,
        "event_id": event_key(event.event_id, event.created_at),
        "type": event.topic,
        "occurred_at": event.created_at,
        "site": event_site(event),
        "data": await _data(db, event.payload),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
