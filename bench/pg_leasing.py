"""Leasing across processes on one PostgreSQL: which design, and which driver (issue 15).

`.venv/bin/python -m bench.pg_leasing [--url URL] [--procs 1 2 4] [--reps 5] [--seconds 2]`
N processes (tests/postgres/lease_worker.py), each taking, heartbeating and releasing leases on
one pool as fast as it can, for each design: leases/s (all processes), p50/p99 of one take,
and the double leases found afterwards (a query over the lease intervals). Each figure is the
median of the repetitions with their min-max; the designs and process counts take turns, so a
drift of the machine's speed falls on all. Without --url a private cluster is started
(tests/lab/postgres.py). "naive" is the non-atomic read-then-take: it must show double leases.
"owner" is the database's share of a pool owned by one gateway (chosen in memory, then one
write): measured with one process only, as only the owner leases.

`.venv/bin/python -m bench.pg_leasing drivers [--url URL]`: asyncpg against psycopg 3 (async,
and sync for the point lookup) on what the store does: a point lookup, a transaction of three
inserts, a batch of 256 rows in one transaction; wall and client CPU per operation. Needs
`pip install 'psycopg[binary]'` (not a dependency of ctgw).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from gateway.store.pg.leasing import add_pool, double_leases
from gateway.store.pg.migrate import apply_migrations
from tests.lab.postgres import private_cluster

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ("skip_locked", "advisory", "naive", "owner")


@contextlib.contextmanager
def _server(url: str) -> Iterator[str]:
    if url:
        yield url
        return
    with private_cluster() as cluster:
        yield cluster.url


async def _reset(url: str, pool_size: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
        await conn.execute("TRUNCATE leasing.leases, leasing.numbers, leasing.pools")
        await add_pool(conn, "bench", [f"+1415555{i:04d}" for i in range(pool_size)])
    finally:
        await conn.close()


async def _doubles(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return len(await double_leases(conn))
    finally:
        await conn.close()


def _round(url: str, design: str, procs: int, args: argparse.Namespace) -> dict[str, float]:
    """One measurement: `procs` workers start together and lease for `args.seconds`."""
    asyncio.run(_reset(url, args.pool))
    start_at = time.time() + 1.0 + 0.2 * procs  # every worker connected before the start
    argv = [sys.executable, "-m", "tests.postgres.lease_worker", "--url", url, "--pool", "bench"]
    argv += ["--design", design, "--seconds", str(args.seconds), "--hold", str(args.hold)]
    argv += ["--start-at", str(start_at)] + (["--async-commit"] if args.async_commit else [])
    workers = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(procs)
    ]
    latencies: list[int] = []
    takes = empty = 0
    for worker in workers:
        out, _ = worker.communicate(timeout=args.seconds + 60)
        if worker.returncode != 0:
            raise SystemExit(f"worker failed ({worker.returncode})")
        result = json.loads(out.splitlines()[-1])
        takes += result["takes"]
        empty += result["empty"]
        latencies.extend(result["latency_us"])
    latencies.sort()
    return {
        "leases_s": takes / args.seconds,
        "p50_ms": latencies[len(latencies) // 2] / 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] / 1000,
        "empty_pct": 100 * empty / max(1, takes + empty),
        "doubles": asyncio.run(_doubles(url)),
    }


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):9.1f} ({min(values):.1f}-{max(values):.1f})"


def leasing(args: argparse.Namespace) -> None:
    with _server(args.url) as url:
        figures: dict[tuple[str, int], list[dict[str, float]]] = {}
        for rep in range(args.reps):
            # "owner": one process owns the pool, so it alone leases from it.
            order = [(d, n) for n in args.procs for d in args.designs if d != "owner" or n == 1]
            for design, procs in order if rep % 2 == 0 else order[::-1]:
                figure = _round(url, design, procs, args)
                figures.setdefault((design, procs), []).append(figure)
                print(f"rep {rep + 1} {design:11} x{procs}: {figure}", file=sys.stderr)
    print(f"pool {args.pool} numbers, cooldown 0, each process holds {args.hold} + 1 live", end="")
    print(", synchronous_commit=off" if args.async_commit else "")
    print(f"{args.seconds} s a run, {args.reps} runs: median (min-max)")
    head = f"{'design':11} {'procs':>5} {'leases/s':>22} {'p50 ms':>20} {'p99 ms':>20}"
    print(head + f" {'no number %':>20} {'double leases':>22}")
    for (design, procs), runs in sorted(figures.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        cells = [_spread([run[key] for run in runs]) for key in ("leases_s", "p50_ms", "p99_ms")]
        cells.append(_spread([run["empty_pct"] for run in runs]))
        cells.append(_spread([run["doubles"] for run in runs]))
        print(f"{design:11} {procs:5} " + " ".join(f"{cell:>20}" for cell in cells))
    # Paired within each run (the machine's speed drifts between runs): the ratio that counts.
    for procs in args.procs:
        ours, theirs = figures.get(("skip_locked", procs)), figures.get(("advisory", procs))
        if ours and theirs:
            ratios = [a["leases_s"] / b["leases_s"] for a, b in zip(ours, theirs, strict=True)]
            print(f"leases/s skip_locked / advisory, {procs} procs: {_spread(ratios)}")


# -- drivers ---------------------------------------------------------------------------------

_DRV_TABLE = """
DROP TABLE IF EXISTS drv_leases;
CREATE TABLE drv_leases (lease_id text PRIMARY KEY, pool_id text NOT NULL, number text NOT NULL,
  session_id text NOT NULL, visitor_id text NOT NULL, started_at timestamptz NOT NULL,
  last_seen timestamptz NOT NULL, until timestamptz NOT NULL)
"""
_INSERT = "INSERT INTO drv_leases VALUES ({}, 'p', {}, {}, {}, {}, {}, {})"
_LOOKUP = "SELECT * FROM drv_leases WHERE lease_id = {}"
LOOKUPS, TXNS, BATCHES, BATCH_ROWS = 2000, 500, 20, 256
_Figure = tuple[float, float, int]  # wall s, client CPU s, operations


def _timed(out: dict[str, _Figure], name: str, began: tuple[float, float], ops: int) -> None:
    out[name] = (time.perf_counter() - began[0], time.process_time() - began[1], ops)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rows(prefix: str, at: datetime) -> list[tuple[Any, ...]]:
    return [(f"{prefix}{i}", f"+1415555{i:04d}", "s", "v", at, at, at) for i in range(BATCH_ROWS)]


async def _asyncpg(url: str, rep: int) -> dict[str, _Figure]:
    conn = await asyncpg.connect(url)
    insert = _INSERT.format(*(f"${i}" for i in range(1, 8)))
    at, out = datetime.now(UTC), dict[str, _Figure]()
    began = _now()
    for i in range(TXNS):
        async with conn.transaction():
            for k in range(3):
                await conn.execute(insert, f"a{rep}t{i}.{k}", "+14155550100", "s", "v", at, at, at)
    _timed(out, "txn of 3", began, TXNS)
    began = _now()
    for b in range(BATCHES):
        async with conn.transaction():
            await conn.executemany(insert, _rows(f"a{rep}b{b}.", at))
    _timed(out, "batch row", began, BATCHES * BATCH_ROWS)
    began = _now()
    for i in range(LOOKUPS):
        await conn.fetchrow(_LOOKUP.format("$1"), f"a{rep}b0.{i % BATCH_ROWS}")
    _timed(out, "lookup", began, LOOKUPS)
    await conn.close()
    return out


async def _psycopg(url: str, rep: int) -> dict[str, _Figure]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    insert = _INSERT.format(*(["%s"] * 7))
    at, out = datetime.now(UTC), dict[str, _Figure]()
    began = _now()
    for i in range(TXNS):
        async with conn.transaction():
            for k in range(3):
                await conn.execute(
                    insert, (f"p{rep}t{i}.{k}", "+14155550100", "s", "v", at, at, at)
                )
    _timed(out, "txn of 3", began, TXNS)
    began = _now()
    for b in range(BATCHES):
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(insert, _rows(f"p{rep}b{b}.", at))
    _timed(out, "batch row", began, BATCHES * BATCH_ROWS)
    began = _now()
    for i in range(LOOKUPS):
        cur = await conn.execute(_LOOKUP.format("%s"), (f"p{rep}b0.{i % BATCH_ROWS}",))
        await cur.fetchone()
    _timed(out, "lookup", began, LOOKUPS)
    await conn.close()
    # The SQLite store's call path reads synchronously on the loop: what would that cost here?
    with psycopg.connect(url, autocommit=True) as sync:
        began = _now()
        for i in range(LOOKUPS):
            sync.execute(_LOOKUP.format("%s"), (f"p{rep}b0.{i % BATCH_ROWS}",)).fetchone()
        _timed(out, "lookup sync", began, LOOKUPS)
    return out


def drivers(args: argparse.Namespace) -> None:
    with _server(args.url) as url:

        async def table() -> None:
            conn = await asyncpg.connect(url)
            await conn.execute(_DRV_TABLE)
            await conn.close()

        asyncio.run(table())
        figures: dict[tuple[str, str], list[_Figure]] = {}
        runs = [("asyncpg", _asyncpg), ("psycopg", _psycopg)]
        for rep in range(args.reps):
            for name, run in runs if rep % 2 == 0 else runs[::-1]:
                for work, figure in asyncio.run(run(url, rep)).items():
                    figures.setdefault((name, work), []).append(figure)
    print(f"{args.reps} runs: median (min-max), microseconds per operation")
    print(f"{'driver':8} {'work':12} {'wall':>22} {'client CPU':>22}")
    for (name, work), runs_ in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        walls = [wall / ops * 1e6 for wall, _, ops in runs_]
        cpus = [cpu / ops * 1e6 for _, cpu, ops in runs_]
        print(f"{name:8} {work:12} {_spread(walls):>22} {_spread(cpus):>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="?", choices=("leasing", "drivers"), default="leasing")
    parser.add_argument("--url", default="", help="a postgresql:// URL (default: private)")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--pool", type=int, default=16, help="numbers in the pool")
    parser.add_argument(
        "--async-commit", action="store_true", help="synchronous_commit=off: without the disk"
    )
    parser.add_argument("--hold", type=int, default=2, help="live leases each process keeps")
    args = parser.parse_args()
    (drivers if args.what == "drivers" else leasing)(args)


if __name__ == "__main__":
    main()
