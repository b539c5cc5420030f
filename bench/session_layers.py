"""Where the session API's time goes: the same POST answered by ever more of the real path.

Run by hand: `.venv/bin/python bench/session_layers.py [--seconds 6]` (needs `wrk`).
Each layer is measured with the same wrk load as bench/sessions.py, in one gateway process:

  ceiling   the bare aiohttp handler of bench/sessions.py (its own process)
  app       the gateway app (middleware, router) answering a fixed body after reading the request
  parse     + the request checks of POST /v1/sessions: JSON body, fields, URL and visit tags
  lease     + the real handler with a session desk whose store does nothing (no SQLite)
  full      POST /v1/sessions as served: leases committed to SQLite before the answer

The step from `parse` to `full` is the part the session API adds to reading a request; the
ratio column is each layer's throughput over the ceiling's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sessions as session_bench  # noqa: E402 - bench/sessions.py, beside this file

FIXED = b'{"session_id": "0123456789abcdef0123456789abcdef", "numbers": []}'
LAYERS = {"app": "/x/app", "parse": "/x/parse", "lease": "/x/lease", "full": "/v1/sessions"}


class _NoStore:
    """A store that keeps nothing: the `lease` layer measures everything but SQLite."""

    async def write(self, writes: Sequence[object]) -> None:
        return None

    def submit(self, writes: Sequence[object], done: asyncio.Future[None]) -> None:
        done.set_result(None)


async def _serve(config_path: Path) -> None:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.appkeys import DESK
    from gateway.config import load_config
    from gateway.http.errors import read_json_object, text_field
    from gateway.http.public import answer_session
    from gateway.leasing.desk import SessionDesk
    from gateway.logs import configure_logging
    from numberpool.visit import visit_from_url

    config = load_config(config_path)
    configure_logging(config.log.level, config.log.format)
    gc.set_threshold(50_000, 50, 100)  # as `ctgw serve` sets it
    app = create_app(config)
    twins: dict[str, SessionDesk] = {}

    async def fixed(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, body=FIXED, content_type="application/json")

    async def parse(request: web.Request) -> web.Response:
        data = await read_json_object(request)
        text_field(data, "site", max_len=64, required=True)
        url = text_field(data, "url", max_len=2048, required=True)
        referrer = text_field(data, "referrer", max_len=2048)
        text_field(data, "visitor_id", max_len=64)
        visit_from_url(url, referrer, request.headers.get("User-Agent", "")[:512])
        return web.Response(status=201, body=FIXED, content_type="application/json")

    async def lease(request: web.Request) -> web.Response:
        desk = request.app[DESK]
        if "desk" not in twins:  # shares the live sites and pools, not the store
            twins["desk"] = SessionDesk(_NoStore(), desk.book, desk.clock, desk.metrics)  # type: ignore[arg-type]
        return await answer_session(request, twins["desk"])

    app.router.add_post(LAYERS["app"], fixed)
    app.router.add_post(LAYERS["parse"], parse)
    app.router.add_post(LAYERS["lease"], lease)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.http.host, config.http.port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = session_bench.wrk_script(tmp)
        top = session_bench.measure_ceiling(script, args.seconds, args.connections)
        results["ceiling"] = top["rps"]
        port = session_bench.free_port()
        config = session_bench.write_config(tmp, port)
        gateway = subprocess.Popen([sys.executable, __file__, "--serve", str(config)])
        try:
            session_bench.wait_up(port)
            for name, path in LAYERS.items():
                session_bench.run_wrk(port, 2, args.connections, script, path)
                run = session_bench.run_wrk(port, args.seconds, args.connections, script, path)
                if run["errors"]:
                    raise SystemExit(f"{name}: {run['errors']:.0f} non-2xx answers")
                results[name] = run["rps"]
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)
    top = results["ceiling"]
    print(f"{'layer':8} {'req/s':>8} {'us/req':>7} {'ratio':>6}")
    for name, rps in results.items():
        print(f"{name:8} {rps:8.0f} {1e6 / rps:7.1f} {rps / top:6.2f}x")


if __name__ == "__main__":
    main()
