"""The signature of a webhook delivery: HMAC-SHA256 over `timestamp + "." + body` with the
endpoint's secret, sent as `Ctgw-Signature: t=<unix seconds>,v1=<hex>` (docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "delivery_headers", "sign", "verify"]

SIGNATURE_HEADER = "Ctgw-Signature"
EVENT_ID_HEADER = "Ctgw-Event-Id"
_EVENT_TYPE_HEADER = "Ctgw-Event-Type"
_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp.body` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def delivery_headers(
    secret: str, timestamp: int, body: bytes, event_id: str, event_type: str
) -> dict[str, str]:
    """The headers of one delivery attempt (the timestamp is the attempt's, the key the event's)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "ctgw-webhooks/1",
        SIGNATURE_HEADER: f"t={timestamp},v1={sign(secret, timestamp, body)}",
        EVENT_ID_HEADER: event_id,
        "Idempotency-Key": event_id,
        _EVENT_TYPE_HEADER: event_type,
    }


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: int = _TOLERANCE_S
) -> bool:
    """Whether `header` signs `body` under `secret` within `tolerance` seconds of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), fields.get("v1", ""))
