"""One long-lived AMI connection: login, ping, reconnect with backoff, resync, actions, events.

Other code depends on the small `AmiLink` protocol (ami_link.py), not on this class, so tests
can stand in for it. The secret is held in a field excluded from repr and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog

from gateway.tasks import cancel_and_wait
from gateway.telephony.ami_link import (
    AmiActionError,
    AmiDisconnected,
    AmiLink,
    EventHandler,
    ResyncHandler,
)
from gateway.telephony.ami_protocol import (
    AmiMessage,
    AmiProtocolError,
    MessageReader,
    encode_action,
)

__all__ = [
    "AmiActionError",
    "AmiClient",
    "AmiDisconnected",
    "AmiLink",
    "EventHandler",
    "ResyncHandler",
    "backoff_delay",
]


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with equal jitter: half fixed, half random."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 30))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


@dataclass
class _Pending:
    future: asyncio.Future[tuple[AmiMessage, list[AmiMessage]]]
    collect: bool
    response: AmiMessage | None = None
    items: list[AmiMessage] = field(default_factory=list)


@dataclass
class AmiClient:
    """An `AmiLink` over one TCP connection that `run()` keeps alive until `close()`."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    event_mask: str = "call"  # only the call class: channel, dial, bridge and hangup events
    ping_interval: float = 20.0
    ping_timeout: float = 5.0
    resync_interval: float = 600.0  # 0 turns the periodic resync off (it still runs on login)
    action_timeout: float = 10.0
    connect_timeout: float = 5.0
    backoff_base: float = 0.5
    backoff_cap: float = 3.0  # loopback retries are cheap; a long cap only delays recovery
    max_message_bytes: int = 65536
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _handlers: list[EventHandler] = field(default_factory=list, init=False, repr=False)
    _resync_handlers: list[ResyncHandler] = field(default_factory=list, init=False, repr=False)
    _pending: dict[str, _Pending] = field(default_factory=dict, init=False, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, init=False, repr=False)
    _logged_in: bool = field(default=False, init=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _connected_event: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _closing: bool = field(default=False, init=False, repr=False)
    logins: int = field(default=0, init=False)  # successful logins so far: a reconnect counter

    @property
    def connected(self) -> bool:
        return self._logged_in

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Call `handler` for every event, in arrival order, on the event loop."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def on_resync(self, handler: ResyncHandler) -> Callable[[], None]:
        """After each login: `handler.resync_started()`, then `resynced(CoreShowChannel list)`."""
        self._resync_handlers.append(handler)
        return lambda: self._resync_handlers.remove(handler)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until logged in and resynced; TimeoutError after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            await self._connected_event.wait()

    # --- actions -------------------------------------------------------------------------

    async def action(
        self, name: str, fields: Mapping[str, object] | None = None, timeout_s: float | None = None
    ) -> AmiMessage:
        """Send an action and return its Response; raises AmiActionError on `Response: Error`."""
        response, _ = await self._send(name, fields or {}, timeout_s, collect=False)
        return response

    async def action_list(
        self,
        name: str,
        fields: Mapping[str, object] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """Send a list action (EventList: start) and return its Response and listed events."""
        return await self._send(name, fields or {}, timeout_s, collect=True)

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str = "",
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30000,
    ) -> AmiMessage:
        """Queue a call (Async: true): `channel` rings first, then runs context/exten/priority."""
        items: list[tuple[str, object]] = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", priority),
            ("Timeout", timeout_ms),
            ("Async", "true"),
        ]
        if caller_id:
            items.append(("CallerID", caller_id))
        items += [("Variable", f"{k}={v}") for k, v in (variables or {}).items()]
        response, _ = await self._send("Originate", items, None, collect=False)
        return response

    async def _send(
        self,
        name: str,
        fields: Mapping[str, object] | Iterable[tuple[str, object]],
        timeout_s: float | None,
        *,
        collect: bool,
        require_login: bool = True,
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        writer = self._writer
        if writer is None or (require_login and not self._logged_in):
            raise AmiDisconnected(f"AMI not connected; {name} not sent")
        action_id = f"ctgw-{next(self._ids)}"
        future: asyncio.Future[tuple[AmiMessage, list[AmiMessage]]]
        future = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future, collect)
        try:
            writer.write(encode_action(name, action_id, fields))
            await writer.drain()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives just as the answer does, and close() then waited for ever.
            async with asyncio.timeout(timeout_s or self.action_timeout):
                response, items = await future
        except ConnectionError as exc:
            if isinstance(exc, AmiDisconnected):
                raise
            raise AmiDisconnected(f"AMI connection lost while sending {name}") from exc
        finally:
            self._pending.pop(action_id, None)
        if response.response.lower() == "error":
            raise AmiActionError(f"{name}: {response.get('Message', 'error')}")
        return response, items

    # --- reading -------------------------------------------------------------------------

    def _deliver(self, message: AmiMessage) -> None:
        pending = self._pending.get(message.action_id) if message.action_id else None
        if pending is not None and not pending.future.done():
            if message.response and pending.response is None:
                pending.response = message
                if not pending.collect or message.get("EventList").lower() != "start":
                    pending.future.set_result((message, []))
                return
            if pending.collect and message.event:
                if message.get("EventList").lower() == "complete":
                    pending.future.set_result((pending.response or message, pending.items))
                else:
                    pending.items.append(message)
                return
        if message.event:
            for handler in list(self._handlers):
                try:
                    handler(message)
                except Exception:
                    # One broken subscriber must not stop AMI for the others.
                    structlog.get_logger().exception("ami_subscriber_failed", event=message.event)

    async def _read_loop(self, reader: MessageReader) -> None:
        try:
            while True:
                self._deliver(await reader.message())
        finally:
            # Nobody will answer the actions in flight: fail them now rather than at timeout.
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(AmiDisconnected("AMI connection lost"))

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._send("Ping", {}, self.ping_timeout, collect=False)
            except (TimeoutError, AmiActionError) as exc:
                raise ConnectionError("AMI ping unanswered") from exc

    async def _resync(self, log: structlog.typing.FilteringBoundLogger) -> None:
        """List the live channels and hand them to the resync handlers."""
        for handler in list(self._resync_handlers):
            try:
                handler.resync_started()
            except Exception:
                log.exception("ami_resync_handler_failed")
        try:
            _, channels = await self._send(
                "CoreShowChannels", {}, self.action_timeout, collect=True
            )
        except TimeoutError as exc:
            raise ConnectionError("AMI CoreShowChannels unanswered") from exc
        log.info("ami_resynced", live_channels=len(channels))
        for handler in list(self._resync_handlers):
            try:
                handler.resynced(channels)
            except Exception:
                log.exception("ami_resync_handler_failed")

    async def _resync_loop(self, log: structlog.typing.FilteringBoundLogger) -> None:
        # A resync now and then also heals what no reconnect reveals: a lost or dropped event
        # (e.g. an oversized message) that would leave a call open for ever.
        while self.resync_interval:
            await asyncio.sleep(self.resync_interval)
            await self._resync(log)
        await asyncio.Event().wait()

    # --- connection lifecycle ------------------------------------------------------------

    async def _session(self) -> None:
        """One connection from connect to loss; returns or raises when it ends."""
        log = structlog.get_logger().bind(ami=f"{self.host}:{self.port}")
        async with asyncio.timeout(self.connect_timeout):
            stream, writer = await asyncio.open_connection(
                self.host, self.port, limit=self.max_message_bytes
            )
        self._writer = writer
        reader = MessageReader(stream, self.max_message_bytes)
        reading: asyncio.Task[None] | None = None
        pinging: asyncio.Task[None] | None = None
        resyncing: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                banner = await reader.banner()
            reading = asyncio.create_task(self._read_loop(reader))
            login = {"Username": self.username, "Secret": self.secret, "Events": self.event_mask}
            await self._send(
                "Login", login, self.connect_timeout, collect=False, require_login=False
            )
            self._logged_in = True
            self.logins += 1
            log.info("ami_connected", banner=banner, logins=self.logins)
            pinging = asyncio.create_task(self._ping_loop())
            await self._resync(log)
            self._connected_event.set()
            resyncing = asyncio.create_task(self._resync_loop(log))
            done, _ = await asyncio.wait(
                {reading, pinging, resyncing}, return_when=asyncio.FIRST_COMPLETED
            )
            for ended in done:
                ended.result()  # re-raise why the session ended
        finally:
            # Everything that needs no wait first: a close() arriving during the waits below
            # ends them at once (its cancellation propagates) and must find this done.
            self._logged_in = False
            self._connected_event.clear()
            self._writer = None
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(AmiDisconnected("AMI connection lost"))
            writer.close()
            await cancel_and_wait(reading, pinging, resyncing)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def run(self) -> None:
        """Stay connected until closed or cancelled; reconnects with capped exponential backoff."""
        log = structlog.get_logger().bind(ami=f"{self.host}:{self.port}")
        attempt = 0
        while not self._closing:
            logins_before = self.logins
            try:
                await self._session()
                reason = "closed"
            except AmiActionError as exc:
                reason = f"refused: {exc}"  # bad credentials: keep retrying, slowly
            except (OSError, EOFError, TimeoutError, AmiProtocolError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self.logins > logins_before:
                attempt = 0
            delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap, self.rng)
            attempt += 1
            log.warning("ami_disconnected", reason=reason, retry_in=round(delay, 3))
            await asyncio.sleep(delay)

    def start(self) -> asyncio.Task[None]:
        """Run in a background task (for an aiohttp cleanup_ctx); `close()` stops it."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self.run(), name="ami-client")
        return self._task

    async def close(self) -> None:
        """Stop the connection and wait until it has ended; a cancelled caller stops waiting."""
        self._closing = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
