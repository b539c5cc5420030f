"""The `ctgw webhooks` commands: endpoints, and deliveries listed, retried and replayed (a
running gateway sends what they queue within a second)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.cli_store import CliError
from gateway.config import Config
from gateway.store.database import Database
from gateway.store.sites import seed_sites
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
from gateway.webhooks.running import sync_endpoints

__all__ = ["WEBHOOKS_COMMANDS", "webhooks_parsers"]

Command = Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]


def webhooks_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this module's subcommands to `sub` (argparse subparsers)."""
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries").add_subparsers(
        dest="action", required=True
    )
    hooks.add_parser("list", parents=[common], help="list webhook endpoints (never a secret)")
    add = hooks.add_parser(
        "add", parents=[common], help="add an endpoint (its secret is printed once)"
    )
    add.add_argument("site")
    add.add_argument("url")
    add.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="TYPE",
        help=f"an event type to send (repeat; default all: {', '.join(EVENT_TYPES)})",
    )
    add.add_argument(
        "--secret-stdin", action="store_true", help="read the secret from stdin, not make one"
    )
    delete = hooks.add_parser("delete", parents=[common], help="delete an endpoint")
    delete.add_argument("webhook_id")
    deliveries = hooks.add_parser(
        "deliveries", parents=[common], help="list deliveries, newest first"
    )
    deliveries.add_argument("--state", choices=DELIVERY_STATES, default="")
    deliveries.add_argument("--webhook", default="", metavar="ID")
    deliveries.add_argument("--limit", type=int, default=50)
    retry = hooks.add_parser("retry", parents=[common], help="send a failed or parked delivery now")
    retry.add_argument("delivery_id", type=int)
    replay = hooks.add_parser(
        "replay", parents=[common], help="send every parked delivery of an endpoint again"
    )
    replay.add_argument("webhook_id")


async def _with_db(config: Config, work: Callable[[Database], Coroutine[Any, Any, int]]) -> int:
    db = await Database.open(config.store.url)
    try:
        now = datetime.now(UTC)
        await seed_sites(db, config, now)
        await sync_endpoints(db, config, now)
        return await work(db)
    finally:
        await db.close()


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        endpoints = await list_endpoints(db)
        if not endpoints:
            print("no webhooks (add one with: ctgw webhooks add SITE URL)", file=sys.stderr)
        for e in endpoints:
            print(f"{e.endpoint_id}\t{e.site}\t{e.url}\t{','.join(e.events)}\t{e.origin}")
        return 0

    return await _with_db(config, work)


async def _add(config: Config, args: argparse.Namespace) -> int:
    if args.secret_stdin:
        line: str = await asyncio.to_thread(sys.stdin.readline)
        secret = line.strip()
    else:
        secret = new_secret()
    events = args.event or list(EVENT_TYPES)
    problem = endpoint_problem(args.url, secret, events)
    problem = problem or await url_refusal(args.url, config.webhooks.allowed_networks())
    if problem:
        raise CliError(problem)

    async def work(db: Database) -> int:
        if not await site_exists(db, args.site):
            raise CliError(f"no site {args.site!r}")
        at = datetime.now(UTC)
        endpoint = await create_endpoint(db, args.site, args.url, events, secret, at)
        print(endpoint.endpoint_id)
        if not args.secret_stdin:
            print(secret)
            print("(the signing secret; it is shown only this once)", file=sys.stderr)
        return 0

    return await _with_db(config, work)


async def _delete(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        endpoint = await find_endpoint(db, args.webhook_id)
        if endpoint is None:
            raise CliError(f"no webhook {args.webhook_id!r}")
        if endpoint.origin == "config":
            raise CliError("this webhook is in the config file: remove it there")
        await delete_endpoint(db, endpoint.endpoint_id)
        print(f"webhook {endpoint.endpoint_id} deleted", file=sys.stderr)
        return 0

    return await _with_db(config, work)


async def _deliveries(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        limit = max(1, min(args.limit, 10000))
        found = await list_deliveries(db, state=args.state, endpoint_id=args.webhook, limit=limit)
        for d in found:
            print(
                f"{d['delivery_id']}\t{d['webhook_id']}\t{d['event_id']}\t{d['type']}"
                f"\t{d['state']}\t{d['attempts']}\t{d['last_error']}"
            )
        return 0

    return await _with_db(config, work)


async def _retry(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        found = await retry_delivery(db, args.delivery_id, datetime.now(UTC))
        if found is None:
            raise CliError(f"no delivery {args.delivery_id}")
        print(f"delivery {args.delivery_id}: {found['state']}", file=sys.stderr)
        return 0

    return await _with_db(config, work)


async def _replay(config: Config, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        if await find_endpoint(db, args.webhook_id) is None:
            raise CliError(f"no webhook {args.webhook_id!r}")
        count = await replay_deliveries(db, args.webhook_id, datetime.now(UTC))
        print(f"{count} parked deliveries queued again", file=sys.stderr)
        return 0

    return await _with_db(config, work)


WEBHOOKS_COMMANDS: Mapping[tuple[str, str | None], Command] = {
    ("webhooks", "list"): _list,
    ("webhooks", "add"): _add,
    ("webhooks", "delete"): _delete,
    ("webhooks", "deliveries"): _deliveries,
    ("webhooks", "retry"): _retry,
    ("webhooks", "replay"): _replay,
}
