"""Limits on HTTP connections: header and body deadlines, connection caps, an open-files budget.

aiohttp reads a request for as long as the client cares to send it and accepts every connection
until the process runs out of file descriptors; asyncio then logs a traceback for every failed
accept. Here each connection is admitted against a total cap and a cap per client address, a
request's head must arrive within `[http] header_timeout_seconds` of its first byte and its body
within `body_timeout_seconds` of its head, and refusals and timeouts are logged as one line per
interval. Both the gateway process and the HTTP fronts make their runner with `guarded_runner`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import resource
from collections import Counter
from typing import Any

import structlog
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from gateway.config import HttpSettings

__all__ = ["HttpGuard", "connection_client", "guarded_runner", "raise_open_files_limit"]

log = structlog.get_logger()

_LOG_EVERY_SECONDS = 10.0
# Kept free of HTTP connections: one event loop tick may accept up to the listen backlog (1024)
# before any of those connections is refused, and the store, FastAGI, AMI and the fronts' Unix
# sockets need descriptors too.
_SPARE_FILES = 2048
_ACCEPT_FAILED = "socket.accept() out of system resource"  # asyncio's message, see selector_events

_IDLE, _HEADERS, _BODY = "idle", "headers", "body"


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Linux refuses an unlimited soft limit; fs.nr_open's usual value is the most it takes.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_client(peername: Any) -> str | None:
    """The address a connection counts against for the per-client cap; None for Unix sockets.

    IPv6 clients count per /64 (one subscriber's usual share); IPv4-mapped IPv6 as IPv4."""
    if not isinstance(peername, tuple) or not peername:
        return None
    try:
        address = ipaddress.ip_address(str(peername[0]).partition("%")[0])
    except ValueError:
        return str(peername[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Tally:
    """Counts events by reason and logs them at most once per interval, not once per event."""

    def __init__(self, event: str, level: str, every: float) -> None:
        self._event = event
        self._level = level
        self._every = every
        self._counts: Counter[str] = Counter()
        self._last_client: str | None = None
        self._quiet_until = 0.0
        self._flush_at: asyncio.TimerHandle | None = None
        self._fields: dict[str, Any] = {}

    def note(self, reason: str, client: str | None, **fields: Any) -> None:
        self._counts[reason] += 1
        self._last_client = client
        self._fields = fields
        loop = asyncio.get_running_loop()
        if loop.time() >= self._quiet_until:
            self.flush()
            self._quiet_until = loop.time() + self._every
        elif self._flush_at is None:
            self._flush_at = loop.call_at(self._quiet_until, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_at = None
        self.flush()
        self._quiet_until = asyncio.get_running_loop().time() + self._every

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self._counts:
            return
        getattr(log, self._level)(
            self._event,
            count=sum(self._counts.values()),
            reasons=dict(self._counts),
            client=self._last_client,
            **self._fields,
        )
        self._counts.clear()


class HttpGuard:
    """The caps and deadlines of one serving process, and the open connections it counts."""

    def __init__(
        self, settings: HttpSettings, open_files: int, *, log_every: float = _LOG_EVERY_SECONDS
    ) -> None:
        self.header_timeout = float(settings.header_timeout_seconds)
        self.body_timeout = float(settings.body_timeout_seconds)
        budget = max(open_files - _SPARE_FILES, open_files // 2)
        self.max_connections = min(settings.max_connections, budget)
        self.max_per_client = settings.max_connections_per_client
        if self.max_connections < settings.max_connections:
            log.warning(
                "http_max_connections_lowered",
                configured=settings.max_connections,
                used=self.max_connections,
                open_files_limit=open_files,
                hint="raise the process's open-files limit (ulimit -n, LimitNOFILE=) "
                "or lower [http] max_connections",
            )
        self._open = 0
        self._per_client: Counter[str] = Counter()
        self._refused = _Tally("http_connections_refused", "warning", log_every)
        self._timed_out = _Tally("http_connections_timed_out", "info", log_every)

    def admit(self, client: str | None) -> bool:
        """Count a new connection from `client` (None: a Unix socket, never capped) or refuse it."""
        if client is None:
            return True
        if self._open >= self.max_connections:
            self._refused.note("max_connections", client, limit=self.max_connections)
            return False
        if self.max_per_client and self._per_client[client] >= self.max_per_client:
            self._refused.note("max_connections_per_client", client, limit=self.max_per_client)
            return False
        self._open += 1
        self._per_client[client] += 1
        return True

    def release(self, client: str | None) -> None:
        if client is None:
            return
        self._open -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]

    def timed_out(self, phase: str, client: str | None) -> None:
        self._timed_out.note(phase, client)

    def watch_accept_failures(self, loop: asyncio.AbstractEventLoop) -> None:
        """Turn asyncio's traceback per failed accept (out of open files) into the refused tally."""
        previous = loop.get_exception_handler()

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == _ACCEPT_FAILED:
                self._refused.note(
                    "open_files",
                    None,
                    error=str(context.get("exception")),
                    hint="lower [http] max_connections or raise the open-files limit",
                )
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handle)

    def flush_logs(self) -> None:
        self._refused.flush()
        self._timed_out.flush()


# aiohttp has no hook for "headers complete": the handler below reads RequestHandler._messages
# (the queue of parsed heads), and the server and runner below reuse aiohttp's own kwargs and
# override AppRunner._make_server. tests/daemon/test_http_limits.py fails if a new aiohttp
# changes them.


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler, admitted against the caps, with head and body deadlines."""

    __slots__ = ("_body", "_client", "_counted", "_deadline", "_guard", "_phase")

    def __init__(self, manager: web.Server, guard: HttpGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._client: str | None = None
        self._counted = False
        self._phase = _IDLE
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = connection_client(transport.get_extra_info("peername"))
        if not self._guard.admit(client):
            transport.close()  # at once: nothing read, nothing answered, no task started
            return
        self._client, self._counted = client, True
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._counted:
            return  # refused in connection_made: aiohttp never saw it
        self._counted = False
        self._guard.release(self._client)
        self._disarm()
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._phase == _IDLE:
            self._phase = _HEADERS
            self._arm(self._guard.header_timeout)
        queued = len(self._messages)
        super().data_received(data)
        # Nothing else runs during the call above, so new entries are heads parsed from `data`.
        if len(self._messages) > queued:
            self._head_complete(self._messages[-1][1])

    def _head_complete(self, payload: StreamReader) -> None:
        self._disarm()
        if payload.is_eof():
            self._phase = _IDLE
            return
        self._phase, self._body = _BODY, payload
        self._arm(self._guard.body_timeout)
        payload.on_eof(functools.partial(self._body_complete, payload))

    def _body_complete(self, payload: StreamReader) -> None:
        if self._body is payload:
            self._disarm()
            self._phase, self._body = _IDLE, None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        self._guard.timed_out(self._phase, self._client)
        self.force_close()


class _GuardedServer(web.Server):
    """The app's server, making guarded connection handlers."""

    def __init__(self, guard: HttpGuard, plain: web.Server) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )
        self._guard = guard

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, self._guard, loop=self._loop, **self._kwargs)


class _GuardedRunner(web.AppRunner):
    __slots__ = ("_guard",)

    def __init__(self, app: web.Application, guard: HttpGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        self._guard.watch_accept_failures(asyncio.get_running_loop())
        return _GuardedServer(self._guard, plain)

    async def cleanup(self) -> None:
        await super().cleanup()
        self._guard.flush_logs()


def guarded_runner(app: web.Application, settings: HttpSettings, **kwargs: Any) -> web.AppRunner:
    """An AppRunner for `app` whose sites enforce `settings`' deadlines and caps.

    Raises the open-files limit first, and keeps the total cap within it."""
    guard = HttpGuard(settings, raise_open_files_limit())
    return _GuardedRunner(
        app, guard, keepalive_timeout=float(settings.keepalive_timeout_seconds), **kwargs
    )
