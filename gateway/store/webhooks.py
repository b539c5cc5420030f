"""Webhook endpoints in the store (the config file's and the API's) and their deliveries as
people see them: listed, retried and replayed. The outbox and its sending are in outbox.py."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.database import Database, Write
from gateway.store.outbox import event_key
from gateway.store.times import ts

__all__ = [
    "DELIVERY_STATES",
    "Endpoint",
    "create_endpoint",
    "delete_endpoint",
    "endpoints_for",
    "find_delivery",
    "find_endpoint",
    "list_deliveries",
    "list_endpoints",
    "new_secret",
    "replay_deliveries",
    "retry_delivery",
    "site_exists",
    "sync_config_endpoints",
]

# "failed": still pending, after at least one failed attempt.
DELIVERY_STATES = ("pending", "failed", "delivered", "parked")
_STATE_SQL = {
    "pending": "d.state = 'pending'",
    "failed": "d.state = 'pending' AND d.attempts > 0",
    "delivered": "d.state = 'delivered'",
    "parked": "d.state = 'parked'",
}


class Endpoint(NamedTuple):
    """A webhook endpoint; `secret` never leaves the store but in the answer that made it."""

    endpoint_id: str
    site: str
    url: str
    events: tuple[str, ...]
    secret: str
    origin: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        """The endpoint as the API shows it: everything but the secret."""
        return {
            "webhook_id": self.endpoint_id,
            "site": self.site,
            "url": self.url,
            "events": list(self.events),
            "origin": self.origin,
            "created_at": self.created_at,
        }


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row["endpoint_id"],
        row["site"],
        row["url"],
        tuple(json.loads(row["events"])),
        row["secret"],
        row["origin"],
        row["created_at"],
    )


async def list_endpoints(db: Database, sites: Sequence[str] | None = None) -> list[Endpoint]:
    """Every endpoint (of `sites` only, when given), oldest first."""
    rows = await db.fetchall("SELECT * FROM webhook_endpoints ORDER BY created_at, endpoint_id")
    found = [_endpoint(r) for r in rows]
    return found if sites is None else [e for e in found if e.site in sites]


async def find_endpoint(db: Database, endpoint_id: str) -> Endpoint | None:
    row = await db.fetchone("SELECT * FROM webhook_endpoints WHERE endpoint_id = ?", (endpoint_id,))
    return _endpoint(row) if row else None


async def endpoints_for(db: Database) -> dict[str, list[Endpoint]]:
    """The endpoints of each site (the sender reads them once per round)."""
    by_site: dict[str, list[Endpoint]] = {}
    for endpoint in await list_endpoints(db):
        by_site.setdefault(endpoint.site, []).append(endpoint)
    return by_site


def _insert(endpoint: Endpoint) -> Write:
    return Write(
        "INSERT INTO webhook_endpoints (endpoint_id, site, url, events, secret, origin,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            endpoint.endpoint_id,
            endpoint.site,
            endpoint.url,
            json.dumps(list(endpoint.events)),
            endpoint.secret,
            endpoint.origin,
            endpoint.created_at,
        ),
    )


async def create_endpoint(
    db: Database, site: str, url: str, events: Sequence[str], secret: str, at: datetime
) -> Endpoint:
    """A new endpoint made through the API (or the CLI)."""
    endpoint = Endpoint(
        "wh_" + secrets.token_hex(8), site, url, tuple(events), secret, "api", ts(at)
    )
    await db.write([_insert(endpoint)])
    return endpoint


async def delete_endpoint(db: Database, endpoint_id: str) -> None:
    """Forget an endpoint and its deliveries (its events already sent stay in the outbox)."""
    await db.write(
        [
            Write("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", (endpoint_id,)),
            Write("DELETE FROM webhook_endpoints WHERE endpoint_id = ?", (endpoint_id,)),
        ]
    )


async def sync_config_endpoints(db: Database, wanted: Sequence[Endpoint]) -> None:
    """Make the store's config endpoints those of the file: new ones added, changed ones
    updated, ones the file no longer lists deleted with their deliveries."""
    have = {e.endpoint_id: e for e in await list_endpoints(db) if e.origin == "config"}
    writes: list[Write] = []
    for endpoint in wanted:
        old = have.pop(endpoint.endpoint_id, None)
        if old is None:
            writes.append(_insert(endpoint))
        elif (old.events, old.secret) != (endpoint.events, endpoint.secret):
            writes.append(
                Write(
                    "UPDATE webhook_endpoints SET events = ?, secret = ? WHERE endpoint_id = ?",
                    (json.dumps(list(endpoint.events)), endpoint.secret, endpoint.endpoint_id),
                )
            )
    for gone in have:
        writes.append(Write("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", (gone,)))
        writes.append(Write("DELETE FROM webhook_endpoints WHERE endpoint_id = ?", (gone,)))
    await db.write(writes)


async def list_deliveries(
    db: Database,
    *,
    state: str = "",
    endpoint_id: str = "",
    sites: Sequence[str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Deliveries newest first, as the API and the CLI list them."""
    clauses, params = ["1 = 1"], []
    if state:
        clauses.append(_STATE_SQL[state])
    if endpoint_id:
        clauses.append("d.endpoint_id = ?")
        params.append(endpoint_id)
    rows = await db.fetchall(
        "SELECT d.*, o.topic, o.created_at, e.site FROM webhook_deliveries d"  # noqa: S608 - fixed clauses
        " JOIN outbox o ON o.event_id = d.event_id"
        " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY d.delivery_id DESC LIMIT ?",
        (*params, limit if sites is None else limit * 10),
    )
    found = [_delivery_json(r) for r in rows if sites is None or r["site"] in sites]
    return found[:limit]


def _delivery_json(row: Any) -> dict[str, Any]:
    state = row["state"]
    if state == "pending" and row["attempts"] > 0:
        state = "failed"
    return {
        "delivery_id": row["delivery_id"],
        "webhook_id": row["endpoint_id"],
        "event_id": event_key(row["event_id"], row["created_at"]),
        "type": row["topic"],
        "site": row["site"],
        "state": state,
        "attempts": row["attempts"],
        "next_attempt_at": row["due_at"] if row["state"] == "pending" else None,
        "delivered_at": row["delivered_at"],
        "last_status": row["last_status"],
        "last_error": row["last_error"],
    }


async def retry_delivery(db: Database, delivery_id: int, at: datetime) -> dict[str, Any] | None:
    """A failed or parked delivery due again now, with a new retry window (None: unknown)."""
    await db.write(
        [
            Write(
                "UPDATE webhook_deliveries SET state = 'pending', due_at = ?, since = ?"
                " WHERE delivery_id = ? AND state != 'delivered'",
                (ts(at), ts(at), delivery_id),
            )
        ]
    )
    return await find_delivery(db, delivery_id)


async def find_delivery(db: Database, delivery_id: int) -> dict[str, Any] | None:
    row = await db.fetchone(
        "SELECT d.*, o.topic, o.created_at, e.site FROM webhook_deliveries d"
        " JOIN outbox o ON o.event_id = d.event_id"
        " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id WHERE d.delivery_id = ?",
        (delivery_id,),
    )
    return _delivery_json(row) if row else None


async def replay_deliveries(db: Database, endpoint_id: str, at: datetime) -> int:
    """Every parked delivery of an endpoint due again now, in their order; returns how many."""
    parked = await db.fetchone(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = ? AND state = 'parked'",
        (endpoint_id,),
    )
    await db.write(
        [
            Write(
                "UPDATE webhook_deliveries SET state = 'pending', due_at = ?, since = ?"
                " WHERE endpoint_id = ? AND state = 'parked'",
                (ts(at), ts(at), endpoint_id),
            )
        ]
    )
    return int(parked["n"]) if parked else 0


async def site_exists(db: Database, site: str) -> bool:
    return await db.fetchone("SELECT 1 FROM sites WHERE key = ?", (site,)) is not None
