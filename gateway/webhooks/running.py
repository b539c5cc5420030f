"""The webhook sender as the app runs it (a cleanup context), and the config file's endpoints
as the store keeps them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import structlog
from aiohttp import web

from gateway.appkeys import CLOCK, CONFIG, DB, METRICS
from gateway.settings import Config
from gateway.store.database import Database
from gateway.store.times import ts
from gateway.store.webhooks import Endpoint, sync_config_endpoints
from gateway.tasks import cancel_and_wait
from gateway.webhook_settings import config_endpoint_id
from gateway.webhooks.worker import WebhookWorker

__all__ = ["WEBHOOKS", "config_endpoints", "sync_endpoints", "webhook_sender"]

log = structlog.get_logger()

WEBHOOKS: web.AppKey[WebhookWorker] = web.AppKey("webhooks")


def config_endpoints(config: Config, at: datetime) -> list[Endpoint]:
    """The endpoints the config file lists, with their stable ids."""
    return [
        Endpoint(
            config_endpoint_id(site.key, hook.url),
            site.key,
            hook.url,
            tuple(hook.events),
            hook.secret,
            "config",
            ts(at),
        )
        for site in config.sites
        for hook in site.webhooks
    ]


async def sync_endpoints(db: Database, config: Config, at: datetime) -> None:
    """The store's config endpoints made those of the file (the daemon and the CLI call it)."""
    await sync_config_endpoints(db, config_endpoints(config, at))


async def webhook_sender(app: web.Application) -> AsyncIterator[None]:
    """The webhook worker in a task of its own, after the store opened and before it closes;
    the call path only ever writes the outbox, so a slow receiver never holds a call."""
    config, db = app[CONFIG], app[DB]
    await sync_endpoints(db, config, app[CLOCK].now())
    if not config.webhooks.enabled:
        yield
        return
    worker = WebhookWorker(db, config.webhooks, app[CLOCK], app[METRICS])
    app[WEBHOOKS] = worker
    task = asyncio.create_task(worker.run(), name="webhooks")
    log.info("webhooks_sending", concurrency=config.webhooks.concurrency)
    yield
    await cancel_and_wait(task)
    await worker.close()
