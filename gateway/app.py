"""The app factory: config in, an aiohttp application with its resources as cleanup contexts out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from gateway.appkeys import AGI, AMI, CLOCK, CONFIG, DB, DESK, LEDGER, METRICS, SCREEN_POPS
from gateway.cluster.leader import LeaderDuties, LeaderSink
from gateway.config import Config, ConfigError
from gateway.http.admin import add_admin_routes
from gateway.http.admin_contacts import add_contact_routes
from gateway.http.admin_conversions import add_conversion_routes
from gateway.http.admin_reports import add_report_routes
from gateway.http.admin_webhooks import add_webhook_routes
from gateway.http.errors import error_middleware
from gateway.http.index import add_index_routes
from gateway.http.openapi import add_openapi_routes
from gateway.http.public import add_public_routes
from gateway.http.staff import add_staff_routes
from gateway.http.swapjs import add_routes as add_swapjs_routes
from gateway.leasing.desk import SessionDesk
from gateway.leasing.restore import restore_sessions
from gateway.leasing.site_book import SiteBook
from gateway.metrics import Metrics
from gateway.redact import redact_url
from gateway.store.database import Database
from gateway.store.pg.database import PgDatabase
from gateway.store.pg.single_gateway import hold_cluster_share, hold_single_gateway
from gateway.store.sites import seed_sites
from gateway.tasks import cancel_and_wait
from gateway.telephony.agi import RouteDecider, start_agi_server
from gateway.telephony.call_follower import CallSink, following_calls
from gateway.telephony.call_ledger import CallLedger
from gateway.telephony.pop_hub import PopHub
from gateway.telephony.route import CallRouter
from gateway.telephony.screen_pop import ScreenPopTap, describe_screen_pops
from gateway.webhooks.conversion_worker import conversion_worker
from gateway.webhooks.running import webhook_sender
from numberpool.clock import Clock, SystemClock

__all__ = ["create_app"]

log = structlog.get_logger()

_HOUSEKEEPING_SECONDS = 30.0
# The one call router (FastAGI and the cluster's peers both route through it), and the FastAGI
# decider when it is not the router's own (the cluster forwards calls of sites held elsewhere).
_ROUTER: web.AppKey[CallRouter] = web.AppKey("router")
# What only one gateway of a cluster runs: the outbox's sender (after the store: it sends the
# outbox) and the conversion worker (Baidu OCPC uploads, daily files).
_LEADER_DUTIES = (webhook_sender, conversion_worker)
_LEADER: web.AppKey[LeaderDuties] = web.AppKey("leader")
_DECIDER: web.AppKey[RouteDecider] = web.AppKey("decider")


def create_app(config: Config, *, clock: Clock | None = None) -> web.Application:
    """Build the gateway application; nothing is opened until the app starts."""
    app = web.Application(
        middlewares=[error_middleware], client_max_size=config.http.max_body_bytes
    )
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_housekeeping)
    app.cleanup_ctx.append(_ami)
    app.cleanup_ctx.append(_router)  # after AMI: its ledger follows routed calls up
    app.cleanup_ctx.append(_cluster)  # after the router: peers' calls are routed with it
    app.cleanup_ctx.append(_fastagi)
    app.cleanup_ctx.append(_screen_pops)  # after AMI: the agent console's pops
    if config.cluster.enabled:  # a cluster's leader runs them (_cluster)
        app[_LEADER] = LeaderDuties(app, _LEADER_DUTIES)
    else:
        app.cleanup_ctx.extend(_LEADER_DUTIES)
    add_public_routes(app)
    add_admin_routes(app)
    add_report_routes(app)
    add_contact_routes(app)
    add_conversion_routes(app)
    add_staff_routes(app)
    add_swapjs_routes(app)
    add_openapi_routes(app)
    add_webhook_routes(app)
    add_index_routes(app)
    return app


async def _store(app: web.Application) -> AsyncIterator[None]:
    config, clock, metrics = app[CONFIG], app[CLOCK], app[METRICS]
    db = await Database.open(config.store.url)
    serving = None
    try:
        if isinstance(db, PgDatabase):
            hold = hold_cluster_share if config.cluster.enabled else hold_single_gateway
            serving = await hold(db)
        await seed_sites(db, config, clock.now())
        book = SiteBook(db, clock)
        if config.cluster.enabled:
            book.serve_held()  # each site's leases restored as it is taken (gateway/cluster)
        await book.reload_if_changed()  # loads the sites and records their fingerprint
        desk = SessionDesk(db, book, clock, metrics)
        if not config.cluster.enabled:
            await restore_sessions(desk, await book.restore())  # leases into pools, then sessions
    except BaseException:
        if serving is not None:
            await serving.close()
        await db.close()
        raise
    app[DB] = db
    app[DESK] = desk
    _describe(metrics, book)
    log.info("store_open", url=redact_url(config.store.url), sites=sorted(book.sites))
    yield
    await db.close()
    if serving is not None:
        await serving.close()
    log.info("store_closed", commits=db.commits)


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Every half minute: forget what has ended, pick up pool changes made by the CLI."""
    desk = app[DESK]
    book = desk.book

    async def loop() -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_SECONDS)
            try:
                more = desk.prune()
                while more:  # a slice at a time: requests go on in between
                    await asyncio.sleep(0)
                    more = desk.prune()
                book.prune()
                await book.reload_if_changed()
            except Exception:  # keep the loop alive: the next round may succeed
                log.exception("housekeeping_failed")

    task = asyncio.create_task(loop(), name="housekeeping")
    yield
    await cancel_and_wait(task)


async def _ami(app: web.Application) -> AsyncIterator[None]:
    """One long-lived AMI connection following calls into the store, when enabled."""
    config = app[CONFIG]
    if not config.ami.enabled:
        yield
        return
    ledger = app[LEDGER] = CallLedger(app[DB], app[METRICS], config.crm.rules())
    leader = app.get(_LEADER)
    sink: CallSink = ledger if leader is None else LeaderSink(ledger, lambda: leader.active)
    async with following_calls(config.ami, sink, app[CLOCK]) as client:
        app[AMI] = client
        log.info("ami_following", host=config.ami.host, port=config.ami.port)
        yield


async def _router(app: web.Application) -> AsyncIterator[None]:
    """The call router over the sites served here; at the end, the routes still in flight
    (PostgreSQL) record their calls before the store closes."""
    ledger = app.get(LEDGER)
    app[_ROUTER] = CallRouter(
        app[DB],
        app[DESK].book,
        app[CLOCK],
        app[METRICS],
        app[CONFIG].phone.default_region,
        follow_up=ledger.writes_for_new_call if ledger is not None else None,
    )
    yield
    await app[_ROUTER].close()


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    """With `[cluster]` on: this gateway as one node of several on the database."""
    config, db = app[CONFIG], app[DB]
    if not config.cluster.enabled or not isinstance(db, PgDatabase):
        yield
        return
    from gateway.cluster.serving import serving_cluster  # loaded only by a cluster's node

    async with serving_cluster(config, db, app[DESK], app[_ROUTER], app[_LEADER]) as decide:
        app[_DECIDER] = decide
        yield


async def _fastagi(app: web.Application) -> AsyncIterator[None]:
    """The FastAGI route server, when enabled; closed before the store."""
    config = app[CONFIG]
    if not config.agi.enabled:
        yield
        return
    decide = app.get(_DECIDER) or app[_ROUTER].decide
    try:
        server = await start_agi_server(
            config.agi.host, config.agi.port, decide, config.agi.deadline_ms
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for FastAGI on {config.agi.host}:{config.agi.port}: {exc.strerror}; "
            "set [agi] port or CTGW_AGI_PORT (or [agi] enabled = false)"
        ) from None
    app[AGI] = server
    log.info(
        "fastagi_listening",
        url=f"agi://{config.agi.host}:{server.port}/route",
        deadline_ms=config.agi.deadline_ms,
    )
    yield
    await server.close()


def _describe(metrics: Metrics, book: SiteBook) -> None:
    metrics.describe(
        "ctgw_routes_in_flight",
        "Routes still looking up or recording (PostgreSQL), with those whose AGI session gave up.",
    )
    metrics.describe("ctgw_sessions_total", "Sessions opened, by site.")
    metrics.describe("ctgw_heartbeats_total", "Heartbeats accepted, by site.")
    metrics.describe("ctgw_pool_exhausted_total", "Sessions served the overflow number.")
    metrics.describe(
        "ctgw_pool_reused_total",
        "Sessions leased a cooling number because no number had rested (when_exhausted = reuse).",
    )
    metrics.describe(
        "ctgw_pool_shared_total",
        "Sessions leased a number whose live holder had called (share_called_numbers = true).",
    )
    metrics.describe("ctgw_pool_numbers", "Tracking numbers in each pool.")
    metrics.describe("ctgw_pool_live_leases", "Leases live now in each pool.")

    def pools() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        now = book.clock.now()
        out: list[tuple[str, tuple[tuple[str, str], ...], float]] = []
        for entry, pool in book.pools():
            labels = (("pool", pool.pool_id), ("site", entry.site.key))
            out.append(("ctgw_pool_numbers", labels, float(len(pool.numbers))))
            out.append(("ctgw_pool_live_leases", labels, float(pool.live_count(now))))
        return out

    metrics.gauge(pools)


def describe_urls(config: Config) -> dict[str, Any]:
    """The URLs a new user wants to see when the gateway starts."""
    base = config.http.public_url or f"http://{config.http.host}:{config.http.port}"
    return {
        "api": f"{base}/v1/",
        "health": f"{base}/healthz",
        "metrics": f"{base}/metrics",
        "demo": f"{base}/demo/",
        "swap_js": f"{base}/swap.js",
    }


async def _screen_pops(app: web.Application) -> AsyncIterator[None]:
    """The pop hub for the agent pages, fed from AMI when AMI is on (a cleanup context that
    runs after the AMI one)."""
    hub = app[SCREEN_POPS] = PopHub()
    link = app.get(AMI)
    tap = ScreenPopTap(link, hub, app[DB], app[CLOCK]) if link is not None else None
    describe_screen_pops(app[METRICS], hub, tap)
    if tap is None:
        yield
        return
    tap.start()
    try:
        yield
    finally:
        await tap.close()
