"""A FastAGI route server in its own process, so a test can freeze it with SIGSTOP.

Usage: python -m tests.lab.agi_child PORT ROUTE; prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from gateway.telephony.agi import AgiRequest, RouteDecision, start_agi_server


async def main(port: int, route: str) -> None:
    # Logs to stderr: stdout is the parent's pipe for "ready", and a pipe nobody reads fills
    # up and blocks every log call (which froze this server in the first benchmark run).
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))

    async def decide(request: AgiRequest) -> RouteDecision:
        return RouteDecision(route=route, call_id=f"child-{request.linkedid}", source="child")

    server = await start_agi_server("127.0.0.1", port, decide, deadline_ms=300)
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
