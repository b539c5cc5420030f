"""Session-create throughput and latency of the real daemon, against a bare aiohttp ceiling.

Run by hand: `.venv/bin/python bench/sessions.py [--seconds 10] [--connections 32 [64 ...]]
[--workers 1]`; with several connection counts each server is measured at each (each level on a
fresh ceiling process and a fresh daemon with an empty store), and the best are compared too.
Needs `wrk` (apt-get install wrk). Prints requests/s and p50/p99 for both servers, the ratio,
the CPU each daemon process used, and checks that every session the daemon answered is in the
store after it stopped.

Each run's CPU per session is kept in a small history file (`--history`, in the temp folder) and
compared with the previous runs at the same settings: a run whose CPU per session is more than
3x (or under a third of) their median gets a warning. The `machine` line says what the machine
did meanwhile (idle, time stolen by the host, sessions answered that wrk did not count), to tell
a busy or starved machine from a change in the gateway.

`--store postgresql[://user@host:port/db] [--gateways 1 2 4] [--repeats 5]` measures instead
one gateway on SQLite and 1, 2 and 4 gateways on one PostgreSQL (a cluster), eight sites,
wrk on every gateway at once: sessions/s, p99, FastAGI route p99, what was stored
(bench/cluster_sessions.py). `postgresql` alone starts a private PostgreSQL for the run
(tests/lab/postgres.py); with a URL, each run gets a new database on that server, dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, or imported beside bench/session_layers.py
    sys.path.insert(0, str(ROOT))

from bench.bench_sites import pool_toml  # noqa: E402

BODY = json.dumps(
    {"site": "bench", "url": "https://shop.example/landing?utm_source=google&gclid=abc"}
)
CEILING_APP = """
import sys
from aiohttp import web
BODY = b'{"session_id": "0123456789abcdef0123456789abcdef", "visitor_id": "v", "numbers": [{"target": "+14155550100", "number": "+14155550101", "display": "(415) 555-0101", "kind": "pool"}], "heartbeat_seconds": 60, "expires_at": "2026-01-01T00:00:00.000000Z"}'
async def handler(request):
    await request.read()
    return web.Response(status=201, body=BODY, content_type="application/json")
async def health(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/v1/sessions", handler)
app.router.add_get("/healthz", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
LUA = "\n".join(
    [
        'wrk.method = "POST"',
        "wrk.body = '" + BODY.replace("'", "\\'") + "'",
        'wrk.headers["Content-Type"] = "application/json"',
        'wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"',
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(port: int) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the daemon's HTTP fronts)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def write_config(tmp: Path, port: int, workers: int = 0) -> Path:
    numbers = [f"+1{area}555{i:04d}" for area in (415, 212, 312) for i in range(0, 3000)]
    path = tmp / "bench.toml"
    path.write_text(
        f"""
[http]
port = {port}
workers = {workers}
[store]
url = "sqlite:///{tmp / "bench.db"}"
[log]
level = "warning"
[[sites]]
key = "bench"
bot_user_agents = ["bot"]
{pool_toml("+13125550100", numbers)}""",
        encoding="utf-8",
    )
    return path


def run_wrk(
    port: int, seconds: int, connections: int, script: Path, path: str = "/v1/sessions"
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            raise SystemExit(f"cannot read {label}% from wrk:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    # Requests wrk gave up on (connect, read, write errors, timeouts) are not in its count.
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": total,
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


def machine_ticks() -> tuple[int, int, int]:
    """(all, idle, stolen) CPU ticks of the machine so far, from /proc/stat."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(ticks[:8]), ticks[3] + ticks[4], ticks[7]


def sessions_answered(port: int) -> int:
    """ctgw_sessions_total of the bench site, from the daemon's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
        found = re.search(r'ctgw_sessions_total\{site="bench"\} ([\d.e+]+)', resp.read().decode())
    return int(float(found.group(1))) if found else 0


def wrk_script(tmp: Path) -> Path:
    """The wrk script that posts the session body."""
    script = tmp / "post.lua"
    script.write_text(LUA, encoding="utf-8")
    return script


def measure_ceiling(script: Path, seconds: int, connections: int) -> dict[str, float]:
    """The bare aiohttp handler in its own process, warmed up, then measured with wrk."""
    port = free_port()
    ceiling = subprocess.Popen([sys.executable, "-c", CEILING_APP, str(port)])
    try:
        wait_up(port)
        run_wrk(port, 2, connections, script)  # warm-up
        return run_wrk(port, seconds, connections, script)
    finally:
        ceiling.send_signal(signal.SIGTERM)
        ceiling.wait(10)


def measure_daemon(
    tmp: Path, script: Path, seconds: int, level: int, workers: int
) -> tuple[dict[str, float], dict[str, float], tuple[int, int, int]]:
    """`ctgw serve` on a fresh store, warmed up, measured with wrk; then stopped, and its store
    counted: (wrk figures and what the machine did meanwhile, cores used by each process,
    (answered, stored, leases))."""
    port = free_port()
    config = write_config(tmp, port, workers)
    daemon = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config)])
    try:
        wait_up(port)
        procs = {"gateway": daemon.pid, **{f"front {pid}": pid for pid in children(daemon.pid)}}
        run_wrk(port, 2, level, script)
        before = {name: cpu_seconds(pid) for name, pid in procs.items()}
        answered_before, ticks_before = sessions_answered(port), machine_ticks()
        result = run_wrk(port, seconds, level, script)
        cores = {name: (cpu_seconds(pid) - before[name]) / seconds for name, pid in procs.items()}
        ticks = [after - was for after, was in zip(machine_ticks(), ticks_before, strict=True)]
        answered = sessions_answered(port)
        result["answered"] = answered - answered_before
        result["idle"] = ticks[1] / max(ticks[0], 1)
        result["stolen"] = ticks[2] / max(ticks[0], 1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    db = sqlite3.connect(tmp / "bench.db")
    stored = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    leases = db.execute("SELECT count(*) FROM leases").fetchone()[0]
    db.close()
    return result, cores, (answered, stored, leases)


def history_warnings(
    path: Path, settings: dict[str, int], level: int, cpu_us: dict[str, float]
) -> list[str]:
    """Compare this run's CPU per session of each process kind with the median of the previous
    runs at the same settings (last 10 kept in `path`), record it, and say what is far off."""
    key = json.dumps({**settings, "connections": level}, sort_keys=True)
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        history = {}
    previous: list[dict[str, float]] = history.get(key, [])
    warnings = []
    for kind, value in cpu_us.items():
        others = [run[kind] for run in previous if kind in run]
        if len(others) < 2:
            continue
        median = statistics.median(others)
        if not median or 1 / 3 <= value / median <= 3:
            continue
        warnings.append(
            f"warning  {level:4d} conns  {kind} CPU per session {value:.0f} µs is "
            f"{value / median:.1f}x the median of the {len(others)} previous runs "
            f"({median:.0f} µs): not comparable (the machine busy or starved, see 'machine', "
            "or the gateway changed)"
        )
    history[key] = [*previous, cpu_us][-10:]
    path.write_text(json.dumps(history), encoding="utf-8")
    return warnings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[32],
        help="wrk connections; several values measure each server at each and compare the best",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="[http] workers of the measured daemon (0: one process answers HTTP itself)",
    )
    parser.add_argument(
        "--history",
        default=str(Path(tempfile.gettempdir()) / "ctgw-bench-sessions.json"),
        help="where each run's CPU per session is kept to compare runs ('' keeps none)",
    )
    parser.add_argument(
        "--store",
        default="",
        help="postgresql or postgresql://...: SQLite against 1..N gateways on PostgreSQL instead",
    )
    parser.add_argument(
        "--gateways", type=int, nargs="+", default=[1, 2, 4], help="with --store: gateway counts"
    )
    parser.add_argument("--repeats", type=int, default=1, help="with --store: runs of each")
    parser.add_argument("--route-rate", type=float, default=200, help="with --store: routes/s")
    parser.add_argument("--route-seconds", type=float, default=3, help="with --store")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if args.store:
        if not args.store.startswith("postgresql"):
            raise SystemExit("--store: postgresql or a postgresql:// URL")
        from bench.cluster_sessions import run

        run(
            args.store,
            args.gateways,
            args.repeats,
            args.seconds,
            max(args.connections),
            args.workers,
            args.route_rate,
            args.route_seconds,
        )
        return
    levels: list[int] = args.connections
    results: dict[tuple[str, int], dict[str, float]] = {}
    cpu: dict[int, dict[str, float]] = {}
    durable: dict[int, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        script = wrk_script(tmp)
        for level in levels:
            # Each level on a fresh ceiling and a fresh daemon with an empty store, one after
            # the other: a daemon kept across levels carries what earlier levels left in it.
            results["ceiling", level] = measure_ceiling(script, args.seconds, level)
            run_dir = tmp / f"level-{level}"
            run_dir.mkdir()
            results["ctgw", level], cpu[level], durable[level] = measure_daemon(
                run_dir, script, args.seconds, level, args.workers
            )
    print(f"daemon   [http] workers = {args.workers}")
    for (name, level), r in results.items():
        print(
            f"{name:8s} {level:4d} conns {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  ({r['requests']:.0f} requests, "
            f"{r['errors']:.0f} non-2xx, {r['socket_errors']:.0f} socket errors)"
        )
    for level in levels:
        ratio = results["ctgw", level]["rps"] / results["ceiling", level]["rps"]
        print(f"ratio    {ratio:.2f}x of the bare aiohttp ceiling at {level} connections")
    warnings = []
    for level in levels:
        measured = results["ctgw", level]
        rate = measured["rps"]
        print(
            f"cpu      {level:4d} conns  "
            + ", ".join(
                f"{name} {cores * 100:.0f} % of a core ({cores * 1e6 / rate:.0f} µs/session)"
                for name, cores in cpu[level].items()
            )
        )
        print(
            f"machine  {level:4d} conns  {measured['idle'] * 100:.0f} % idle, "
            f"{measured['stolen'] * 100:.0f} % stolen by the host; the daemon answered "
            f"{measured['answered']:.0f} sessions while wrk counted {measured['requests']:.0f}"
        )
        by_kind: dict[str, list[float]] = {}
        for name, cores in cpu[level].items():
            by_kind.setdefault(name.split()[0], []).append(cores * 1e6 / rate)
        if args.history:
            settings = {"seconds": args.seconds, "workers": args.workers}
            per_kind = {kind: statistics.mean(values) for kind, values in by_kind.items()}
            warnings += history_warnings(Path(args.history), settings, level, per_kind)
    if len(levels) > 1:
        best = {n: max(results[n, level]["rps"] for level in levels) for n in ("ctgw", "ceiling")}
        print(f"ratio    {best['ctgw'] / best['ceiling']:.2f}x, best against best (target >= 0.5x)")
    for level, (answered, stored, leases) in durable.items():
        verdict = "all committed" if stored >= answered else f"MISSING {answered - stored}"
        print(
            f"durable  {level:4d} conns  {stored} sessions and {leases} leases stored; "
            f"the daemon answered {answered} sessions: {verdict}"
        )
    for warning in warnings:
        print(warning)


if __name__ == "__main__":
    main()
