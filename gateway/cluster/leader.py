"""The work one gateway of a cluster does for all: the unit `leader`'s holder runs the webhook
sender and the conversion worker (two would send every delivery and upload twice), and only
its AMI follower writes what Asterisk says of calls to the store (every gateway follows AMI,
for its agents' screen pops and click-to-call; several writing would double the calls' events).
The duties are the app's own cleanup contexts, started when this gateway takes the unit and
stopped, in the reverse order, when it lets go (or stops)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Sequence

import structlog
from aiohttp import web

from gateway.telephony.call_follower import CallSink, CallsResynced
from gateway.telephony.call_lifecycle import CallUpdate

__all__ = ["LEADER", "Duty", "LeaderDuties", "LeaderSink"]

log = structlog.get_logger()

LEADER = "leader"

# A cleanup context (aiohttp's form): runs to its `yield` to start, past it to stop.
Duty = Callable[[web.Application], AsyncIterator[None]]


class LeaderDuties:
    """Starts and stops the leader's duties as the unit `leader` comes and goes."""

    def __init__(self, app: web.Application, duties: Sequence[Duty]) -> None:
        self._app = app
        self._duties = list(duties)
        self._running: list[tuple[str, AsyncIterator[None]]] = []
        self.active = False  # between start() and stop(): this gateway holds `leader`

    @property
    def running(self) -> list[str]:
        return [name for name, _ in self._running]

    async def start(self) -> None:
        """Start every duty (a failing one stops those started, and raises: taken later)."""
        for duty in self._duties:
            run = duty(self._app)
            try:
                with warnings.catch_warnings():
                    # A duty keeps its resource under an app key (the webhook worker, for the
                    # admin API to wake); set after startup here, which aiohttp warns about.
                    warnings.filterwarnings(
                        "ignore", "Changing state of started", DeprecationWarning
                    )
                    await anext(run)
            except BaseException:
                await self.stop()
                raise
            self._running.append((getattr(duty, "__name__", repr(duty)), run))
        self.active = True
        log.info("leader_duties_started", duties=self.running)

    async def stop(self) -> None:
        """Stop the running duties, last started first; one failing does not keep the rest."""
        self.active = False
        while self._running:
            name, run = self._running.pop()
            try:
                await anext(run)
            except StopAsyncIteration:
                continue
            except Exception:
                log.exception("leader_duty_stop_failed", duty=name)
                continue
            log.error("leader_duty_did_not_stop", duty=name)  # it yielded twice
        log.info("leader_duties_stopped")


class LeaderSink:
    """AMI's call updates into the store on the leader only (`leads()`); elsewhere they are
    dropped: the leader follows the same Asterisk and writes them once."""

    def __init__(self, sink: CallSink, leads: Callable[[], bool]) -> None:
        self._sink = sink
        self._leads = leads

    async def call_updated(self, update: CallUpdate) -> None:
        if self._leads():
            await self._sink.call_updated(update)

    async def calls_resynced(self, resync: CallsResynced) -> None:
        if self._leads():
            await self._sink.calls_resynced(resync)
