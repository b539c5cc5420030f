"""Sessions and FastAGI routes through 1, 2 and 4 gateways on one PostgreSQL, against one
gateway on SQLite (issue 15): `bench/sessions.py --store postgresql[://...] --gateways 1 2 4`.

Every configuration runs the same eight sites (so each node of a cluster owns some, and a
request lands on a node that does not own its site 1 - 1/N of the time: one hop on the peer
link), on a fresh store, with the same total wrk connections spread evenly over the gateways
(one wrk a gateway). Per run: sessions/s (all wrk together), p99 of the merged latency
distribution, the sessions stored against those answered, and then FastAGI routes, opened at a
fixed rate round-robin over the gateways on the sites' pool numbers, timed from connect to
close as Asterisk waits for them (bench/agi.py's way), their p99 and how many got no route.

PostgreSQL gateways run as a cluster (`[cluster] peer_port`), even one alone, so 1, 2 and 4
differ only in the number of nodes; the row `pg-single` is one gateway without `[cluster]`
(peer_port 0, one gateway per database): what the cluster costs a lone node. The configurations take turns within each repetition, so a
drift of the machine's speed falls on all; with --repeats the table gives min / median / max.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/sessions.py
    sys.path.insert(0, str(ROOT))

from bench.agi import ENV, open_loop  # noqa: E402
from bench.bench_sites import pool_toml  # noqa: E402
from tests.postgres.gateways import Gateways  # noqa: E402

AREAS = (415, 212, 312, 213, 617, 206, 305, 404)
SITES = [f"b{i}" for i in range(len(AREAS))]
POOL_SIZE = 1000
PERCENTILES = (50, 75, 90, 95, 96, 97, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 100)

LUA = """
local bodies = {BODIES}
local n = 0
local out = os.getenv("CTGW_BENCH_OUT")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  local f = assert(io.open(out, "w"))
  for _, p in ipairs({PERCENTILES}) do
    f:write(string.format("%g %d\\n", p, latency:percentile(p)))
  end
  f:close()
end
"""


def pool_numbers(area: int) -> list[str]:
    return [f"+1{area}555{i:04d}" for i in range(1000, 1000 + POOL_SIZE)]


def sites_toml() -> str:
    parts = []
    for site, area in zip(SITES, AREAS, strict=True):
        parts.append(
            f"""
[[sites]]
key = "{site}"
destination = "PJSIP/agent-{site}"
bot_user_agents = ["bot"]
{pool_toml(f"+1{area}5550100", pool_numbers(area))}"""
        )
    return "".join(parts)


def wrk_script(tmp: Path) -> Path:
    bodies = [
        json.dumps(
            {"site": site, "url": f"https://{site}.example/landing?utm_source=google&gclid=abc"}
        )
        for site in SITES
    ]
    lua = LUA.replace("{BODIES}", "{" + ", ".join(f"[[{b}]]" for b in bodies) + "}")
    lua = lua.replace("{PERCENTILES}", "{" + ", ".join(f"{p:g}" for p in PERCENTILES) + "}")
    script = tmp / "sites.lua"
    script.write_text(lua, encoding="utf-8")
    return script


# --- wrk on every gateway at once -----------------------------------------------------------


@dataclass
class WrkRun:
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int  # 2xx answers
    non2xx: int
    socket_errors: int


def merged_percentile(curves: list[tuple[int, list[tuple[float, float]]]], q: float) -> float:
    """The q-th percentile (ms) of several wrk latency distributions together, each given as
    (requests, [(percentile, value ms)]): their CDFs (linear between the points) weighted by
    requests, and the smallest point value where the sum reaches q."""
    total = sum(weight for weight, _ in curves) or 1

    def cdf(points: list[tuple[float, float]], x: float) -> float:
        below = (0.0, 0.0)
        for pct, value in points:
            if value >= x:
                low_pct, low_value = below
                if value == low_value:
                    return pct / 100
                return (low_pct + (pct - low_pct) * (x - low_value) / (value - low_value)) / 100
            below = (pct, value)
        return 1.0

    candidates = sorted({value for _, points in curves for _, value in points})
    for x in candidates:
        if sum(weight * cdf(points, x) for weight, points in curves) / total >= q / 100:
            return x
    return candidates[-1] if candidates else 0.0


def run_wrk_all(ports: list[int], seconds: int, connections: int, script: Path) -> WrkRun:
    """One wrk a gateway, all at once, `connections` in all; their figures together."""
    threads = max(1, 2 // len(ports))
    each = max(threads, connections // len(ports))
    procs = []
    outs = []
    for port in ports:
        out = script.with_name(f"latency-{port}-{uuid.uuid4().hex[:6]}.txt")
        outs.append(out)
        argv = ["wrk", f"-t{threads}", f"-c{each}", f"-d{seconds}s", "-s", str(script)]
        argv.append(f"http://127.0.0.1:{port}/v1/sessions")
        env = {**os.environ, "CTGW_BENCH_OUT": str(out)}
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env))
    curves: list[tuple[int, list[tuple[float, float]]]] = []
    rps = 0.0
    ok = non2xx = sockets = 0
    for proc, out in zip(procs, outs, strict=True):
        text, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise SystemExit(f"wrk failed ({proc.returncode}):\n{text}")
        requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
        )
        rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
        non2xx += int(bad.group(1)) if bad else 0
        ok += requests - (int(bad.group(1)) if bad else 0)
        sockets += sum(int(n) for n in errors.groups()) if errors else 0
        points = []
        for line in out.read_text().splitlines():
            pct, value_us = line.split()
            points.append((float(pct), int(value_us) / 1000))
        curves.append((requests, points))
    return WrkRun(
        rps=rps,
        p50_ms=merged_percentile(curves, 50),
        p99_ms=merged_percentile(curves, 99),
        ok=ok,
        non2xx=non2xx,
        socket_errors=sockets,
    )


# --- FastAGI routes ------------------------------------------------------------------------


async def one_route(port: int, env: bytes) -> tuple[float, bool]:
    """(seconds from connect to close, whether a CTGW_ROUTE was set)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    routed = False
    while line := await reader.readline():
        routed = routed or line.startswith(b"SET VARIABLE CTGW_ROUTE ")
        writer.write(b"200 result=1\n")
    writer.close()
    return time.perf_counter() - start, routed


def route_env(n: int, dialed: str) -> bytes:
    number = dialed.encode()
    return (
        ENV.replace(b"agi_arg_1: 1795591796.0", b"agi_arg_1: bench-route-%d" % n)
        .replace(b"agi_callerid: +12025550100", b"agi_callerid: +1202%07d" % (n % 10_000_000))
        .replace(b"agi_extension: +14155550123", b"agi_extension: " + number)
        .replace(b"agi_arg_4: +14155550123", b"agi_arg_4: " + number)
    )


async def paced_routes(
    ports: list[int], rate: float, seconds: float
) -> tuple[list[float], int, int]:
    """Open loop: `rate` calls a second, round-robin over the gateways, each on a pool number
    of a site in turn; (latencies, calls that got no route, calls that failed)."""
    picker = random.Random(15)
    latencies: list[float] = []
    unrouted = failed = 0

    async def call(n: int) -> None:
        nonlocal unrouted, failed
        area = AREAS[n % len(AREAS)]
        dialed = picker.choice(pool_numbers(area))
        try:
            took, routed = await one_route(ports[n % len(ports)], route_env(n, dialed))
        except OSError:
            failed += 1
            return
        latencies.append(took)
        unrouted += not routed

    await open_loop(rate, seconds, call)
    return latencies, unrouted, failed


# --- one configuration ---------------------------------------------------------------------


@dataclass
class Run:
    store: str
    gateways: int
    wrk: WrkRun
    route_p50_ms: float
    route_p99_ms: float
    route_unrouted: int
    route_failed: int
    routes: int
    answered: int
    stored: int
    idle: float
    warnings: dict[str, int]  # warning and error events of the gateways' logs, by name
    stray: list[str]  # the first lines of the logs that are not JSON


def machine_ticks() -> tuple[int, int]:
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(ticks[:8]), ticks[3] + ticks[4]


async def _database(server: str) -> str:
    """A new empty database on the server of `server` (a postgresql:// URL); its URL."""
    name = f"ctgw_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


async def _drop(server: str, url: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


async def _stored_pg(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sessions"))
    finally:
        await conn.close()


def _stored_sqlite(path: Path) -> int:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])
    finally:
        db.close()


def measure(
    store: str,
    count: int,
    server: str | None,
    tmp: Path,
    script: Path,
    seconds: int,
    connections: int,
    workers: int,
    route_rate: float,
    route_seconds: float,
) -> Run:
    """One configuration on a fresh store: start, settle, warm up, measure sessions, then
    routes; stop; count what was stored."""
    folder = Path(tempfile.mkdtemp(prefix=f"{store}-{count}-", dir=tmp))
    if store == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        assert server is not None
        url = asyncio.run(_database(server))
    gateways = Gateways(
        url,
        folder,
        count,
        sites_toml(),
        cluster=store != "sqlite",
        workers=workers,
        log_level="warning",
    )
    try:
        gateways.start(timeout_s=120)
        if store == "postgresql":
            asyncio.run(gateways.settled(SITES, timeout_s=120))
        ports = [node.http_port for node in gateways.nodes]
        warm = run_wrk_all(ports, 2, connections, script)
        ticks = machine_ticks()
        result = run_wrk_all(ports, seconds, connections, script)
        spent = [after - was for after, was in zip(machine_ticks(), ticks, strict=True)]
        latencies, unrouted, failed = asyncio.run(
            paced_routes([node.agi_port for node in gateways.nodes], route_rate, route_seconds)
        )
    finally:
        codes = gateways.close()
    if any(codes.values()):
        print(f"warning  {store} x{count}: exit codes {codes}")
    warnings: Counter[str] = Counter()
    stray: list[str] = []
    for node in gateways.nodes:
        for line in node.log_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                warnings["(not JSON)"] += 1
                if len(stray) < 3:
                    stray.append(line[:160])
                continue
            if isinstance(event, dict) and event.get("level") in ("warning", "error"):
                warnings[str(event.get("event"))] += 1
    if store == "sqlite":
        stored = _stored_sqlite(folder / "bench.db")
    else:
        assert server is not None
        stored = asyncio.run(_stored_pg(url))
        asyncio.run(_drop(server, url))
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Run(
        store=store,
        gateways=count,
        wrk=result,
        route_p50_ms=cuts[49] * 1000,
        route_p99_ms=cuts[98] * 1000,
        route_unrouted=unrouted,
        route_failed=failed,
        routes=len(latencies),
        answered=warm.ok + result.ok,
        stored=stored,
        idle=spent[1] / max(spent[0], 1),
        warnings=dict(warnings),
        stray=stray,
    )


@contextmanager
def postgres_server(store: str) -> Iterator[str]:
    """The server URL: the one given, or a private cluster for the run (tests/lab/postgres.py)."""
    if store.startswith("postgresql://"):
        yield store
        return
    from tests.lab.postgres import private_cluster

    with private_cluster() as cluster:
        yield cluster.url


def others_running() -> str:
    """What else used the CPU as the run began (the machine is shared): the top processes."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[1:6]
    return "; ".join(" ".join(line.split()[:4])[:90] for line in out)


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def run(
    store: str,
    counts: list[int],
    repeats: int,
    seconds: int,
    connections: int,
    workers: int,
    route_rate: float,
    route_seconds: float,
) -> None:
    print(f"load     {os.getloadavg()[0]:.1f} at start; busiest: {others_running()}", flush=True)
    configs = [("sqlite", 1), ("pg-single", 1)] + [("postgresql", n) for n in counts]
    runs: dict[tuple[str, int], list[Run]] = {config: [] for config in configs}
    with postgres_server(store) as server, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = wrk_script(tmp)
        for rep in range(repeats):
            for kind, count in configs:
                one = measure(
                    kind,
                    count,
                    server,
                    tmp,
                    script,
                    seconds,
                    connections,
                    workers,
                    route_rate,
                    route_seconds,
                )
                runs[kind, count].append(one)
                print(
                    f"run {rep + 1}  {kind:10s} x{count}  {one.wrk.rps:7.0f} sessions/s  p99"
                    f" {one.wrk.p99_ms:7.2f} ms  route p99 {one.route_p99_ms:7.2f} ms"
                    f"  ({one.wrk.non2xx} non-2xx, {one.wrk.socket_errors} socket errors,"
                    f" {one.route_unrouted + one.route_failed} routes without a route;"
                    f" {one.idle * 100:.0f} % idle)"
                    + (f"; logged {one.warnings}" if one.warnings else "")
                    + "".join(f"\n         not JSON: {line}" for line in one.stray),
                    flush=True,
                )
    print(
        f"\nsessions through N gateways: {len(SITES)} sites, {connections} wrk connections in"
        f" all, {seconds} s a run, [http] workers = {workers}; routes {route_rate:g}/s for"
        f" {route_seconds:g} s; {repeats} run(s): min / median / max"
    )
    print(
        f"{'store':10s} {'gw':>2s}  {'sessions/s':>22s}  {'p99 ms':>24s}  {'route p99 ms':>24s}"
        "  durable"
    )
    for (kind, count), done in runs.items():
        lost = sum(max(0, r.answered - r.stored) for r in done)
        unrouted = sum(r.route_unrouted + r.route_failed for r in done)
        print(
            f"{kind:10s} {count:2d}  {spread([r.wrk.rps for r in done], '6.0f'):>22s}  "
            f"{spread([r.wrk.p99_ms for r in done], '6.1f'):>24s}  "
            f"{spread([r.route_p99_ms for r in done], '6.1f'):>24s}  "
            + ("all committed" if not lost else f"MISSING {lost}")
            + (f", {unrouted} routes unrouted" if unrouted else "")
        )
    print(f"load     {os.getloadavg()[0]:.1f} at the end; busiest: {others_running()}")
