"""What every serving process (the gateway, an HTTP front) sets up: GC, runner, stop signals."""

from __future__ import annotations

import asyncio
import gc
import signal

from aiohttp import web

from gateway.appkeys import CONFIG
from gateway.http.guard import guarded_runner

__all__ = ["prepare_runner"]


async def prepare_runner(app: web.Application) -> tuple[web.AppRunner, asyncio.Event]:
    """Tune the collector, start `app`'s runner (its cleanup contexts run now), and return it
    with an event that SIGTERM or SIGINT sets."""
    # The daemon keeps many long-lived objects (leases, sessions) and makes many short-lived ones
    # per request; with the default young-generation threshold (700) the collector ran often
    # enough to put 40 ms pauses in the session API's p99. Measured: p99 47 ms -> 9 ms.
    gc.set_threshold(50_000, 50, 100)
    # Header and body deadlines and connection caps from `[http]` (gateway/http/guard.py).
    runner = guarded_runner(
        app, app[CONFIG].http, access_log=None, handle_signals=False, shutdown_timeout=10.0
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return runner, stop
