"""The AMI side of the screen pop: a DialBegin ringing an endpoint that an agent page watches
(or watched within the hub's replay period: it may be reconnecting) becomes a pop (the call
record the route wrote, its visit, the caller's contact) in the hub.

The AMI handler only filters and queues (bounded; full = dropped and counted): the store
lookups run in a task of their own, and nothing here ever waits for a page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from gateway.metrics import Metrics
from gateway.store.agents import contact_card
from gateway.store.calls import attributed_visit, call_for_linkedid
from gateway.store.database import Database
from gateway.tasks import cancel_and_wait
from gateway.telephony.ami_link import AmiLink
from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.pop_content import Ring, pop_content, ring_of
from gateway.telephony.pop_hub import PopHub
from numberpool.clock import Clock

__all__ = ["ScreenPopTap", "describe_screen_pops"]

log = structlog.get_logger()

_DIALS = frozenset({"dialbegin", "dialend"})


class ScreenPopTap:
    """Subscribed to an `AmiLink`: rings of watched endpoints in, pops out to a `PopHub`."""

    def __init__(
        self,
        link: AmiLink,
        hub: PopHub,
        db: Database,
        clock: Clock,
        *,
        lookup_context: str = "ctgw-lookup",
        max_queue: int = 1000,
        retries: int = 3,
        retry_delay: float = 0.15,
    ) -> None:
        self._link = link
        self._hub = hub
        self._db = db
        self._clock = clock
        self._lookup = lookup_context
        self._queue: asyncio.Queue[tuple[Ring, int]] = asyncio.Queue(max_queue)
        self._retries = retries
        self._retry_delay = retry_delay
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.dropped = 0

    def _on_event(self, event: AmiMessage) -> None:
        """In the AMI reader: a dict lookup for every other event, a queue put for a ring."""
        if event.event.lower() not in _DIALS:
            return
        ring = ring_of(event, self._clock.now(), self._lookup)
        if ring is not None and self._hub.wants(ring.endpoint):
            self._put(ring, 0)

    def _put(self, ring: Ring, attempt: int) -> None:
        try:
            self._queue.put_nowait((ring, attempt))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("screen_pop_dropped", endpoint=ring.endpoint, linkedid=ring.linkedid)

    async def _work(self) -> None:
        while True:
            ring, attempt = await self._queue.get()
            try:
                await self._pop(ring, attempt)
            except Exception:
                log.exception("screen_pop_failed", endpoint=ring.endpoint, linkedid=ring.linkedid)

    async def _pop(self, ring: Ring, attempt: int) -> None:
        """Build and publish one pop: point lookups only (with SQLite they never suspend), and
        one pop at a time, so pops reach the hub in the order their rings came."""
        call = await call_for_linkedid(self._db, ring.linkedid)
        if call is None and not ring.ended and attempt < self._retries:
            # A call routed late (the dialplan's fallback) is recorded a moment after it rings.
            loop = asyncio.get_running_loop()
            loop.call_later(self._retry_delay, self._put, ring, attempt + 1)
            return
        site = call.site if call is not None else None
        if ring.ended:
            data = {"linkedid": ring.linkedid, "endpoint": ring.endpoint, "status": ring.ended}
            self._hub.publish(ring.endpoint, site, "end", data)
            return
        contact = visit = None
        if call is not None and call.contact_id:
            contact = await contact_card(self._db, call.site, call.contact_id, call.caller)
        if call is not None and call.attribution.session_id:
            visit = await attributed_visit(self._db, call.attribution.session_id)
        pop = pop_content(ring, call, contact, visit)
        delivered = self._hub.publish(ring.endpoint, site, "pop", pop)
        log.info("screen_pop", endpoint=ring.endpoint, call_id=pop["call_id"], pages=delivered)

    def start(self) -> None:
        if self._task is None:
            self._unsubscribe = self._link.subscribe(self._on_event)
            self._task = asyncio.create_task(self._work(), name="screen-pops")

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        await cancel_and_wait(task)


def describe_screen_pops(metrics: Metrics, hub: PopHub, tap: ScreenPopTap | None) -> None:
    """The screen pops' metrics: published, dropped (by pages, or before the lookup), pages."""
    metrics.describe("ctgw_screen_pops_published", "Screen pops published to agent pages.")
    metrics.describe(
        "ctgw_screen_pops_dropped",
        "Screen pops lost: by pages that did not read them (page), or before the store lookup"
        " because AMI rang faster than the store answered (ami).",
    )
    metrics.describe("ctgw_agent_pages", "Agent console pages open now.")
    metrics.gauge(
        lambda: [
            ("ctgw_screen_pops_published", (), float(hub.published)),
            ("ctgw_screen_pops_dropped", (("where", "page"),), float(hub.dropped)),
            ("ctgw_screen_pops_dropped", (("where", "ami"),), float(tap.dropped if tap else 0)),
            ("ctgw_agent_pages", (), float(hub.subscriptions)),
        ]
    )
