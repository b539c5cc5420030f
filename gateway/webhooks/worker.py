"""The webhook sender: fans the outbox's new events out to the endpoints that want them, then
sends the due deliveries (a call's events in order, a bounded number at once) and records
each outcome: delivered, retried after an exponential backoff with jitter, or parked."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
import structlog

from gateway.metrics import Metrics
from gateway.store.database import Database, Write
from gateway.store.outbox import (
    DueDelivery,
    delivered_write,
    due_deliveries,
    endpoints_exist,
    event_key,
    expire_write,
    failed_writes,
    fan_out_writes,
    new_events,
    prune_range,
    prune_writes,
    pull_forward_write,
)
from gateway.store.times import from_ts, ts
from gateway.store.webhooks import endpoints_for
from gateway.webhook_settings import WebhookSettings
from gateway.webhooks.events import event_site, order_key, render_body
from gateway.webhooks.sender import Attempt, open_session, post_event
from gateway.webhooks.signing import delivery_headers
from numberpool.clock import Clock

__all__ = ["WebhookWorker", "backoff_seconds"]

log = structlog.get_logger()

_FAN_OUT_BATCH = 500
_EXPIRE_EVERY = timedelta(seconds=60)
_PRUNE_EVERY = timedelta(minutes=10)


def backoff_seconds(failures: int, first: float, cap: float, rng: Callable[[], float]) -> float:
    """The wait after `failures` failures in a row: doubling from `first` up to `cap`, with
    jitter (a random half to all of it) so that retries of many events do not come together."""
    full: float = min(cap, first * 2.0 ** min(failures - 1, 40))
    return full * (0.5 + 0.5 * rng())


class _Hold:
    """An endpoint that failed: nothing more is sent to it until `until`, then one probe."""

    def __init__(self, now: datetime) -> None:
        self.failures = 0
        self.until = now


class WebhookWorker:
    """Sends the outbox to the webhook endpoints; `run` in a task of its own."""

    def __init__(
        self,
        db: Database,
        settings: WebhookSettings,
        clock: Clock,
        metrics: Metrics,
        *,
        rng: Callable[[], float] = random.random,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        poll_seconds: float = 0.25,
        idle_seconds: float = 5.0,
        prune_batch: int = 500,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.rng = rng
        self.wall = wall  # signature timestamps are real time, whatever clock schedules
        self.monotonic = monotonic  # so is the pace of the polls
        self.poll_seconds = poll_seconds
        # With no endpoint there is nothing to send: a round (and a look for a new endpoint)
        # every idle_seconds instead of every poll_seconds; wake() looks at once.
        self.idle_seconds = idle_seconds
        self._endpoints = True
        self._endpoints_until: float | None = None  # None: read at the next wait
        self.allowed = settings.allowed_networks()
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Deliveries that ended while a read of the due ones ran: it may predate their outcome.
        self._ended: set[int] = set()
        self._per_endpoint: dict[str, int] = {}
        self._holds: dict[str, _Hold] = {}
        self._wake = asyncio.Event()
        self._next_expiry: datetime | None = None
        self.prune_batch = prune_batch
        self._prune_after: int | None = None  # the retention pass's place (None: between passes)
        self._next_prune: datetime | None = None

    async def run(self) -> None:
        """Rounds until cancelled; a round's fault is logged and the next round goes on."""
        while True:
            try:
                busy = await self.round()
            except Exception:
                log.exception("webhook_round_failed")
                busy = 0
            if not busy:
                await self._idle()

    async def _idle(self) -> None:
        """Wait for a poll interval (an idle interval while no endpoint exists), or less when
        woken (a delivery ended, a retry came, an endpoint was made)."""
        wait = await self.next_wait()
        if self._wake.is_set():
            self._wake.clear()
            return
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=wait)
        finally:
            waiter.cancel()
        self._wake.clear()

    async def next_wait(self) -> float:
        """How long the sender may sleep before its next round: `poll_seconds` while an
        endpoint exists (there may be events to send), else `idle_seconds`. Whether one
        exists is read again after `idle_seconds`, or at once after a wake."""
        now = self.monotonic()
        if self._endpoints_until is None or now >= self._endpoints_until:
            try:
                self._endpoints = await endpoints_exist(self.db)
            except Exception:
                log.exception("webhook_endpoints_unknown")
                return self.poll_seconds  # read again after this wait
            self._endpoints_until = now + self.idle_seconds
        return self.poll_seconds if self._endpoints else self.idle_seconds

    def wake(self) -> None:
        """Look for work now (a delivery was retried or replayed, an endpoint was made)."""
        self._endpoints_until = None
        self._wake.set()

    async def round(self, *, wait: bool = False) -> int:
        """Fan out new events, park what waited too long, start the due deliveries (and, with
        `wait`, see them through); returns how much it did."""
        now = self.clock.now()
        done = await self._fan_out(now)
        await self._expire(now)
        await self.prune(now)
        done += self._start_due(await self._due(now), now)
        if wait and self._in_flight:
            await asyncio.gather(*self._in_flight.values())
        return done

    async def close(self) -> None:
        """Stop the attempts in flight (they are retried after a restart) and the client."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _fan_out(self, now: datetime) -> int:
        """One delivery per new event and endpoint that asked for its type, in one commit."""
        events = await new_events(self.db, _FAN_OUT_BATCH)
        if not events:
            return 0
        by_site = await endpoints_for(self.db)
        writes: list[Write] = []
        for n, event in enumerate(events, 1):
            if n % 50 == 0:
                await asyncio.sleep(0)  # a backlog's fan-out leaves the calls their turns
            wanted = [e for e in by_site.get(event_site(event), []) if event.topic in e.events]
            key = order_key(event)
            body = await render_body(self.db, event) if wanted else ""
            targets = [(e.endpoint_id, key) for e in wanted]
            writes += fan_out_writes(event.event_id, body, now, targets)
        await self.db.write(writes)
        return len(events)

    async def _expire(self, now: datetime) -> None:
        """Park the deliveries not made within the give-up time (once a minute)."""
        if self._next_expiry is not None and now < self._next_expiry:
            return
        self._next_expiry = now + _EXPIRE_EVERY
        hours = self.settings.give_up_hours
        before = now - timedelta(hours=hours)
        row = await self.db.fetchone(
            "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND since < ? LIMIT 1",
            (ts(before),),
        )
        if row is not None:
            await self.db.write([expire_write(before, hours)])

    async def prune(self, now: datetime) -> bool:
        """One batch of the retention pass (a pass every ten minutes): a short write per round,
        so a backlog never holds up the group commit. False once the pass is over."""
        if self._prune_after is None:
            if self._next_prune is not None and now < self._next_prune:
                return False
            self._next_prune = now + _PRUNE_EVERY
            self._prune_after = 0
        delivered_before = now - timedelta(days=self.settings.keep_delivered_days)
        parked_before = now - timedelta(days=self.settings.keep_parked_days)
        last = await prune_range(self.db, self._prune_after, self.prune_batch, delivered_before)
        if last is None:
            self._prune_after = None
            return False
        await self.db.write(prune_writes(self._prune_after, last, delivered_before, parked_before))
        self._prune_after = last
        return True

    async def _due(self, now: datetime) -> list[DueDelivery]:
        free = self.settings.concurrency - len(self._in_flight)
        if free <= 0:
            return []
        held = {e for e, hold in self._holds.items() if hold.until > now}
        # An endpoint out of its hold gets one probe at a time until it answers.
        held |= {e for e in self._holds if self._per_endpoint.get(e)}
        self._ended.clear()
        found = await due_deliveries(self.db, now, free + len(self._in_flight), held)
        busy = self._in_flight.keys() | self._ended
        return [d for d in found if d.delivery_id not in busy][:free]

    def _start_due(self, due: list[DueDelivery], now: datetime) -> int:
        per_endpoint_cap = max(1, self.settings.concurrency // 2)
        started = 0
        for delivery in due:
            endpoint = delivery.endpoint_id
            if self._per_endpoint.get(endpoint, 0) >= per_endpoint_cap:
                continue
            if endpoint in self._holds and self._per_endpoint.get(endpoint):
                continue
            self._per_endpoint[endpoint] = self._per_endpoint.get(endpoint, 0) + 1
            task = asyncio.create_task(self._deliver(delivery), name="webhook-delivery")
            self._in_flight[delivery.delivery_id] = task
            started += 1
        return started

    async def _deliver(self, delivery: DueDelivery) -> None:
        try:
            attempt = await self._attempt(delivery)
            await self.db.write(self._outcome(delivery, attempt, self.clock.now()))
        except Exception:
            log.exception("webhook_delivery_failed", delivery_id=delivery.delivery_id)
        finally:
            self._in_flight.pop(delivery.delivery_id, None)
            self._ended.add(delivery.delivery_id)
            left = self._per_endpoint.get(delivery.endpoint_id, 1) - 1
            if left > 0:
                self._per_endpoint[delivery.endpoint_id] = left
            else:
                self._per_endpoint.pop(delivery.endpoint_id, None)
            self._wake.set()

    async def _attempt(self, delivery: DueDelivery) -> Attempt:
        if self._session is None:
            self._session = open_session(self.allowed, self.settings.concurrency)
        body = delivery.body.encode()
        key = event_key(delivery.event_id, delivery.created_at)
        headers = delivery_headers(delivery.secret, int(self.wall()), body, key, delivery.topic)
        timeout = float(self.settings.timeout_seconds)
        return await post_event(self._session, delivery.url, body, headers, timeout, self.allowed)

    def _outcome(self, delivery: DueDelivery, attempt: Attempt, now: datetime) -> list[Write]:
        """The store's record of an attempt, and the endpoint's hold brought up to date."""
        endpoint = delivery.endpoint_id
        if attempt.ok:
            self.metrics.inc("ctgw_webhook_deliveries_total", result="delivered")
            writes = [delivered_write(delivery.delivery_id, attempt.status or 200, now)]
            if self._holds.pop(endpoint, None) is not None:
                log.info("webhook_endpoint_back", webhook_id=endpoint)
                writes.append(pull_forward_write(endpoint, now))
            return writes
        first, cap = self.settings.first_retry_seconds, self.settings.max_retry_seconds
        hold = self._holds.setdefault(endpoint, _Hold(now))
        hold.failures += 1
        hold.until = now + timedelta(seconds=backoff_seconds(hold.failures, first, cap, self.rng))
        give_up = from_ts(delivery.since) + timedelta(hours=self.settings.give_up_hours)
        wait = backoff_seconds(delivery.attempts + 1, first, cap, self.rng)
        due = now + timedelta(seconds=wait)
        parked = due >= give_up
        self.metrics.inc("ctgw_webhook_deliveries_total", result="parked" if parked else "failed")
        log.warning(
            "webhook_delivery_parked" if parked else "webhook_delivery_failed",
            webhook_id=endpoint,
            delivery_id=delivery.delivery_id,
            attempts=delivery.attempts + 1,
            status=attempt.status,
            error=attempt.error,
        )
        return failed_writes(delivery, attempt.status, attempt.error, None if parked else due)
