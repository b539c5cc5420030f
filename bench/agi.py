"""FastAGI route benchmark: latency p50/p99 and calls/s at 1, 50 and 200 concurrent sessions.

Run by hand: `.venv/bin/python bench/agi.py [--seconds 3]`. Each server runs in its own process
(as the daemon would, next to Asterisk); this process plays Asterisk: it connects, sends the
env block of the ctgw-lookup leg, answers each command `200 result=1` and times the session from
connect to the server's close. The trivial server in the same run is the ceiling: it reads the
env block, sets the three variables and closes, with no bounds, deadline or logging.
Every call has its own linkedid and caller, so the daemon kind records each one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ENV = (
    b"agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
    b"agi_channel: Local/+14155550123@ctgw-lookup-00000001;2\nagi_language: en\n"
    b"agi_type: Local\nagi_uniqueid: 1795591796.3\nagi_version: 22.10.1\n"
    b"agi_callerid: +12025550100\nagi_calleridname: Ada Caller\nagi_callingpres: 0\n"
    b"agi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: unknown\n"
    b"agi_rdnis: unknown\nagi_context: ctgw-lookup\nagi_extension: +14155550123\n"
    b"agi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1401112443\n"
    b"agi_arg_1: 1795591796.0\nagi_arg_2: 1795591796.0\nagi_arg_3: PJSIP/carrier-00000000\n"
    b"agi_arg_4: +14155550123\n\n"
)
LEVELS = (1, 50, 200)
# trivial: the ceiling; ctgw: our FastAGI server with a fixed decision; daemon: the whole
# gateway deciding for real (attribution and the call record committed before the answer).
KINDS = ("trivial", "ctgw", "daemon")


# --- servers (run in a child process) ---------------------------------------------------


async def serve_trivial(port: int) -> None:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        for line in (
            b'SET VARIABLE CTGW_CALL_ID "call-1"\n',
            b'SET VARIABLE CTGW_SOURCE "google"\n',
            b'SET VARIABLE CTGW_ROUTE "PJSIP/agent1"\n',
        ):
            writer.write(line)
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def serve_ctgw(port: int) -> None:
    import structlog

    from gateway.telephony.agi import AgiRequest, RouteDecision, start_agi_server

    # Log as the daemon would (JSON, info level), into /dev/null so the terminal is not the cost.
    sink = open(os.devnull, "w")  # noqa: ASYNC230 - once, before serving
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.PrintLoggerFactory(file=sink),
        cache_logger_on_first_use=True,
    )

    async def decide(request: AgiRequest) -> RouteDecision:
        return RouteDecision(route="PJSIP/agent1", call_id="call-1", source="google")

    await start_agi_server("127.0.0.1", port, decide, deadline_ms=300)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def serve_daemon(port: int) -> None:
    """The whole gateway: FastAGI with the real route decision (attribution, call record and
    contact written to SQLite before the answer), as `ctgw serve` runs it."""
    import tempfile

    from aiohttp import web

    from gateway.app import create_app
    from gateway.config import parse_config
    from gateway.logs import configure_logging

    configure_logging("info", "json")  # stderr goes to /dev/null (see run_against)
    gc.set_threshold(50_000, 50, 100)  # as `ctgw serve` sets it
    tmp = tempfile.mkdtemp(prefix="ctgw-bench-agi-")
    config = parse_config(
        {
            "http": {"port": 0},
            "store": {"url": f"sqlite:///{tmp}/bench.db"},
            "agi": {"port": port, "deadline_ms": 300},
            "sites": [
                {
                    "key": "bench",
                    "destination": "PJSIP/agent1",
                    "pools": [
                        {
                            "target": "+14155550100",
                            "numbers": [f"+141555501{i:02d}" for i in range(1, 50)],
                        }
                    ],
                    "static_numbers": [{"number": "+14155550150", "source": "billboard"}],
                }
            ],
        },
        source="bench",
    )
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# --- the fake Asterisk ------------------------------------------------------------------

_CALLS = iter(range(1, 1 << 62))


def env_for_new_call() -> bytes:
    """The env block of a new call: its own linkedid and caller, a pool or a static number."""
    n = next(_CALLS)
    dialed = b"+14155550150" if n % 2 else b"+14155550101"
    return (
        ENV.replace(b"agi_arg_1: 1795591796.0", b"agi_arg_1: bench-%d" % n)
        .replace(b"agi_callerid: +12025550100", b"agi_callerid: +1202555%04d" % (n % 10000))
        .replace(b"agi_extension: +14155550123", b"agi_extension: " + dialed)
        .replace(b"agi_arg_4: +14155550123", b"agi_arg_4: " + dialed)
    )


async def one_call(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env_for_new_call())
    commands = 0
    while await reader.readline():
        commands += 1
        writer.write(b"200 result=1\n")
    writer.close()
    if commands != 3:
        raise RuntimeError(f"{commands} commands")
    return time.perf_counter() - start


async def load(port: int, concurrency: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            try:
                latencies.append(await one_call(port))
            except (OSError, RuntimeError):
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - began


async def paced(port: int, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Open loop: calls start at `rate` per second whether or not earlier ones have finished,
    as calls reach Asterisk; latency then shows queueing, not the client's own pace."""
    latencies: list[float] = []
    errors = 0

    async def call() -> None:
        nonlocal errors
        try:
            latencies.append(await one_call(port))
        except (OSError, RuntimeError):
            errors += 1

    began = time.perf_counter()
    await open_loop(rate, seconds, lambda _: call())
    return latencies, errors, time.perf_counter() - began


async def open_loop(rate: float, seconds: float, call: Callable[[int], Awaitable[None]]) -> None:
    """Start call(n) for n = 0, 1, ... at `rate` per second for `seconds`, each on time whether
    or not the earlier ones have finished; return once all have."""
    began = time.perf_counter()
    tasks = []
    for n in range(int(rate * seconds)):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(call(n)))
    await asyncio.gather(*tasks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


Row = tuple[float, float, float, int, float]


def measure(pid: int, run: Awaitable[tuple[list[float], int, float]]) -> Row:
    cpu = cpu_seconds(pid)
    latencies, errors, elapsed = asyncio.run(run)  # type: ignore[arg-type]
    cpu_per_call = (cpu_seconds(pid) - cpu) / max(1, len(latencies))
    cuts = statistics.quantiles(latencies, n=100)
    return (cuts[49] * 1000, cuts[98] * 1000, len(latencies) / elapsed, errors, cpu_per_call)


def run_against(kind: str, seconds: float, rate: float) -> dict[str, Row]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if kind == "daemon" else None,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline() != b"ready\n":
            raise RuntimeError(f"{kind} server did not start")
        results = {}
        for level in LEVELS:
            asyncio.run(load(port, level, 0.3))  # warm-up
            results[f"{level} sessions"] = measure(child.pid, load(port, level, seconds))
        results[f"{rate:g}/s open"] = measure(child.pid, paced(port, rate, seconds))
        return results
    finally:
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per level")
    parser.add_argument("--rate", type=float, default=500, help="open-loop calls per second")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        serve = {"trivial": serve_trivial, "ctgw": serve_ctgw, "daemon": serve_daemon}[args.serve]
        asyncio.run(serve(args.port))
        return
    results = {kind: run_against(kind, args.seconds, args.rate) for kind in KINDS}
    print(f"FastAGI route, {args.seconds:g} s per level, {os.cpu_count()} CPUs")
    print(
        f"{'server':8} {'load':>12} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9} {'failed':>6}"
        f" {'server CPU us/call':>19}"
    )
    for kind, rows in results.items():
        for load_name, (p50, p99, rate, errors, cpu) in rows.items():
            print(
                f"{kind:8} {load_name:>12} {p50:8.2f} {p99:8.2f} {rate:9.0f} {errors:6}"
                f" {cpu * 1e6:19.0f}"
            )
    for kind in ("ctgw", "daemon"):
        for load_name in results[kind]:
            ratio = results[kind][load_name][2] / results["trivial"][load_name][2]
            cpu = results["trivial"][load_name][4] / results[kind][load_name][4]
            print(
                f"{kind} / ceiling at {load_name}: {ratio:.2f}x calls/s, {cpu:.2f}x CPU efficiency"
            )
    print(
        "failed: sessions that did not get all three variables (for ctgw: closed at the deadline,"
        " so Asterisk would dial the fallback) or could not connect."
    )


if __name__ == "__main__":
    main()
