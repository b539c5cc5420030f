"""Would a split session API reach 0.5x here? A measured prototype, not the product.

Run by hand: `.venv/bin/python bench/session_split.py [--fronts 1] [--seconds 10]` (needs wrk).

The daemon answers POST /v1/sessions in one process, which cannot use the second core. This
prototype splits the same work in two kinds of process, to measure the design before building
it into the product:

  front (1..N)  aiohttp on the API port (SO_REUSEPORT): reads and checks each request as the
                gateway does, sends the sessions of one event-loop pass to the owner as one
                message, and answers each request from the owner's reply.
  owner (1)     the real SessionDesk and SQLite store: decides and commits each message's
                sessions as one batch (the product's own batching) and replies.

Printed: the ceiling and the split API's req/s and p50/p99 with the same wrk load as
bench/sessions.py, the ratio, and whether every answered session is in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sessions as session_bench  # noqa: E402 - bench/sessions.py, beside this file

_HEADER = struct.Struct("!I")


async def _read_message(reader: asyncio.StreamReader) -> Any:
    size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
    return json.loads(await reader.readexactly(size))


def _message(payload: Any) -> bytes:
    data = json.dumps(payload).encode()
    return _HEADER.pack(len(data)) + data


# --- the owner: leases and the store ------------------------------------------------------


async def _owner(config_path: Path, socket_path: Path) -> None:
    from gateway.config import load_config
    from gateway.db import Database, StoreError
    from gateway.http_public import _session_body
    from gateway.logs import configure_logging
    from gateway.metrics import Metrics
    from gateway.sessions import SessionDesk, UnknownSite
    from gateway.sites import seed_sites
    from numberpool.clock import SystemClock
    from numberpool.visit import visit_from_url

    config = load_config(config_path)
    configure_logging(config.log.level, config.log.format)
    clock = SystemClock()
    db = await Database.open(config.store.url)
    await seed_sites(db, config, clock.now())
    desk = SessionDesk(db, {}, clock, Metrics())
    await desk.reload_if_changed()
    answered = [0]

    async def one(site: str, url: str, referrer: str, visitor_id: str, agent: str) -> list[Any]:
        entry = desk.sites.get(site)
        if entry is None:
            return [404, '{"error": {"code": "unknown_site"}}']
        try:
            visit = visit_from_url(url, referrer, agent)
            answer = await desk.open(site, visit, visitor_id or None)
        except (StoreError, UnknownSite):
            return [503, '{"error": {"code": "store_unavailable"}}']
        return [201, _session_body(answer, entry, clock.now())]

    async def decide(items: list[list[str]]) -> list[list[Any]]:
        # All of a message's sessions are queued in one pass: one batch, one commit.
        return list(await asyncio.gather(*(one(*item) for item in items)))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies: asyncio.Queue[asyncio.Future[list[list[Any]]]] = asyncio.Queue()

        async def send() -> None:
            while True:
                batch = await (await replies.get())
                answered[0] += sum(1 for status, _ in batch if status == 201)
                writer.write(_message(batch))

        sender = asyncio.create_task(send())
        try:
            while True:
                items = await _read_message(reader)
                # Every session of the message is queued in this pass: one batch, one commit.
                replies.put_nowait(asyncio.ensure_future(decide(items)))
        except asyncio.IncompleteReadError:
            pass
        finally:
            sender.cancel()

    server = await asyncio.start_unix_server(serve, path=str(socket_path))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    await db.close()
    print(f"answered {answered[0]}", flush=True)


# --- a front: HTTP in, one message per loop pass to the owner ----------------------------


async def _front(port: int, socket_path: Path) -> None:
    from aiohttp import web

    from gateway.http_errors import error_middleware, read_json_object, text_field

    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    loop = asyncio.get_running_loop()
    queued: list[list[str]] = []
    waiting: list[asyncio.Future[list[Any]]] = []
    in_flight: asyncio.Queue[list[asyncio.Future[list[Any]]]] = asyncio.Queue()
    scheduled = False

    def send() -> None:
        nonlocal queued, waiting, scheduled
        scheduled = False
        writer.write(_message(queued))
        in_flight.put_nowait(waiting)
        queued, waiting = [], []

    async def receive() -> None:
        while True:
            batch = await _read_message(reader)
            for future, reply in zip(await in_flight.get(), batch, strict=True):
                if not future.done():
                    future.set_result(reply)

    async def open_session(request: web.Request) -> web.Response:
        nonlocal scheduled
        data = await read_json_object(request)
        site = text_field(data, "site", max_len=64, required=True)
        url = text_field(data, "url", max_len=2048, required=True)
        referrer = text_field(data, "referrer", max_len=2048)
        visitor_id = text_field(data, "visitor_id", max_len=64)
        user_agent = request.headers.get("User-Agent", "")[:512]
        future: asyncio.Future[list[Any]] = loop.create_future()
        queued.append([site, url, referrer, visitor_id, user_agent])
        waiting.append(future)
        if not scheduled:
            scheduled = True
            loop.call_soon(send)
        status, body = await future
        return web.Response(
            status=status,
            text=body,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    receiver = asyncio.create_task(receive())
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/v1/sessions", open_session)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    receiver.cancel()


# --- the run ------------------------------------------------------------------------------


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE)
    assert child.stdout is not None
    if child.stdout.readline() != b"ready\n":
        raise SystemExit(f"{args[0]} did not start")
    return child


def _stop(child: subprocess.Popen[bytes]) -> bytes:
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fronts", type=int, default=1)
    parser.add_argument("--owner", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--front", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.owner or args.front:
        gc.set_threshold(50_000, 50, 100)  # as `ctgw serve` sets it
    if args.owner:
        asyncio.run(_owner(*args.owner))
        return
    if args.front:
        asyncio.run(_front(int(args.front[0]), Path(args.front[1])))
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = session_bench.wrk_script(tmp)
        top = session_bench.measure_ceiling(script, args.seconds, args.connections)
        port = session_bench.free_port()
        config = session_bench.write_config(tmp, port)
        sock = tmp / "owner.sock"
        owner = _start(["--owner", str(config), str(sock)])
        fronts = [_start(["--front", str(port), str(sock)]) for _ in range(args.fronts)]
        try:
            session_bench.wait_up(port)
            session_bench.run_wrk(port, 2, args.connections, script)
            procs = {"owner": owner, **{f"front {i + 1}": f for i, f in enumerate(fronts)}}
            before = {name: _cpu(child.pid) for name, child in procs.items()}
            split = session_bench.run_wrk(port, args.seconds, args.connections, script)
            busy = {
                name: (_cpu(child.pid) - before[name]) / args.seconds
                for name, child in procs.items()
            }
        finally:
            for front in fronts:
                _stop(front)
            time.sleep(0.2)
            tail = _stop(owner).decode()
        answered = int(tail.split("answered ")[-1])
        db = sqlite3.connect(tmp / "bench.db")
        stored = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
        db.close()
    for name, r in (("ceiling", top), (f"split/{args.fronts}", split)):
        print(
            f"{name:10s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  ({r['requests']:.0f} requests, {r['errors']:.0f} non-2xx)"
        )
    print(f"ratio      {split['rps'] / top['rps']:.2f}x of the bare aiohttp ceiling")
    for name, cores in busy.items():
        print(
            f"cpu        {name}: {cores * 100:.0f} % of a core, {cores * 1e6 / split['rps']:.0f} µs/session"
        )
    verdict = "all committed" if stored >= answered else f"MISSING {answered - stored}"
    print(f"durable    {stored} sessions stored; the owner answered {answered}: {verdict}")


if __name__ == "__main__":
    main()
