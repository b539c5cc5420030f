"""The outbox in the store: events queued in the same commit as the change they announce."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.store.database import Write
from gateway.store.times import ts

__all__ = ["outbox_write"]

_OUTBOX_SQL = "INSERT INTO outbox (topic, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?)"


def outbox_write(topic: str, payload: dict[str, Any], at: datetime) -> Write:
    """An event on `topic`, due for delivery at once (webhooks)."""
    return Write(_OUTBOX_SQL, (topic, json.dumps(payload), ts(at), ts(at)), rank=80)
