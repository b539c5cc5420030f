"""Webhooks benchmark: 10,000 call events with the receiver down for the first half.

Run by hand: `.venv/bin/python bench/webhooks.py [--calls 10000] [--rate 100]`. The gateway
runs in a child process as the daemon would (FastAGI, the real route, SQLite), with one webhook
endpoint for call.started; the receiver is a second child process (an aiohttp server answering
204 and counting unique Ctgw-Event-Id keys); this process plays Asterisk (bench/agi.py's paced
calls). The first half of the calls is made with the receiver down, the second half right after
it comes up, so routes are timed while the backlog drains. Reported: the time from the receiver
coming up until the first half's events are all in, until every event is in, events lost, and
the route's p50/p99 during the drain next to the same calls on a gateway without webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agi import free_port, paced  # noqa: E402


async def serve_receiver(port: int) -> None:
    """A receiver that answers 204 at once and counts the distinct event keys it got."""
    from aiohttp import web

    keys: set[str] = set()
    posts = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal posts
        posts += 1
        await request.read()
        keys.add(request.headers["Ctgw-Event-Id"])
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"unique": len(keys), "posts": posts})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def serve_gateway(agi_port: int, hook_url: str) -> None:
    """The whole gateway with the real route, and (unless `hook_url` is empty) a webhook."""
    import gc

    from aiohttp import web

    from gateway.app import create_app
    from gateway.config import parse_config
    from gateway.logs import configure_logging

    configure_logging("warning", "json")
    gc.set_threshold(50_000, 50, 100)  # as `ctgw serve` sets it
    tmp = tempfile.mkdtemp(prefix="ctgw-bench-webhooks-")
    site: dict[str, Any] = {
        "key": "bench",
        "destination": "PJSIP/agent1",
        "pools": [
            {"target": "+14155550100", "numbers": [f"+141555501{i:02d}" for i in range(1, 50)]}
        ],
        "static_numbers": [{"number": "+14155550150", "source": "billboard"}],
    }
    if hook_url:
        site["webhooks"] = [
            {"url": hook_url, "secret": "bench-secret-0123456789", "events": ["call.started"]}
        ]
    raw = {
        "http": {"port": 0},
        "store": {"url": f"sqlite:///{tmp}/bench.db"},
        "agi": {"port": agi_port, "deadline_ms": 300},
        # A bench receiver on loopback; retries at most 5 s apart so the drain starts soon.
        "webhooks": {
            "allow_private_networks": ["127.0.0.0/8"],
            "first_retry_seconds": 1,
            "max_retry_seconds": 5,
        },
        "sites": [site],
    }
    runner = web.AppRunner(create_app(parse_config(raw, source="bench")), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def spawn(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{args} did not start")
    return proc


async def received(port: int) -> dict[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    counts: dict[str, int] = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return counts


async def wait_for(port: int, count: int, limit: float) -> float | None:
    """Seconds until the receiver holds `count` distinct events (None: not within `limit`)."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        if (await received(port))["unique"] >= count:
            return time.perf_counter() - began
        await asyncio.sleep(0.05)
    return None


def cuts(latencies: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000


async def with_webhooks(calls: int, rate: float) -> dict[str, Any]:
    agi_port, hook_port = free_port(), free_port()
    gateway = spawn("--serve-gateway", str(agi_port), f"http://127.0.0.1:{hook_port}/hook")
    receiver = None
    try:
        half = calls // 2
        await paced(agi_port, rate, half / rate)  # the receiver is down meanwhile
        receiver = spawn("--serve-receiver", str(hook_port))
        up = time.perf_counter()
        drain = asyncio.create_task(wait_for(hook_port, half, 600))
        latencies, errors, _ = await paced(agi_port, rate, (calls - half) / rate)
        backlog = await drain
        rest = await wait_for(hook_port, calls, 600)
        counts = await received(hook_port)
        return {
            "route_p50_ms": cuts(latencies)[0],
            "route_p99_ms": cuts(latencies)[1],
            "route_errors": errors,
            "backlog_drained_s": backlog,
            "all_in_s": None if rest is None else time.perf_counter() - up,
            "events": calls,
            "received_unique": counts["unique"],
            "posts": counts["posts"],
            "lost": calls - counts["unique"],
        }
    finally:
        for proc in (gateway, receiver):
            if proc is not None:
                proc.terminate()
                proc.wait()


async def without_webhooks(calls: int, rate: float) -> dict[str, Any]:
    agi_port = free_port()
    gateway = spawn("--serve-gateway", str(agi_port), "")
    try:
        half = calls // 2
        await paced(agi_port, rate, half / rate)
        latencies, errors, _ = await paced(agi_port, rate, (calls - half) / rate)
        return {
            "route_p50_ms": cuts(latencies)[0],
            "route_p99_ms": cuts(latencies)[1],
            "route_errors": errors,
        }
    finally:
        gateway.terminate()
        gateway.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--serve-gateway", nargs=2, metavar=("AGI_PORT", "HOOK_URL"))
    parser.add_argument("--serve-receiver", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.serve_gateway:
        asyncio.run(serve_gateway(int(args.serve_gateway[0]), args.serve_gateway[1]))
        return
    if args.serve_receiver:
        asyncio.run(serve_receiver(args.serve_receiver))
        return
    print(f"{args.calls} calls at {args.rate:g}/s, {os.cpu_count()} CPUs", flush=True)
    hooked = asyncio.run(with_webhooks(args.calls, args.rate))
    plain = asyncio.run(without_webhooks(args.calls, args.rate))
    print(json.dumps({"with_webhooks": hooked, "without_webhooks": plain}, indent=2))


if __name__ == "__main__":
    main()
