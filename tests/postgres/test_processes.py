"""Several processes leasing from one small pool on one PostgreSQL, as several gateways would:
never a number leased twice at once, and a process killed with `kill -9` loses no committed
lease while the others go on. The naive design shows the check would catch a double lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.pg.leasing import DESIGNS, add_pool, double_leases

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
POOL = [f"+1415555020{i}" for i in range(6)]


async def _pool(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await add_pool(conn, "p1", POOL)
    finally:
        await conn.close()


def _worker(
    url: str, design: str, leases: int, report: Path | None = None
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.postgres.lease_worker", "--url", url, "--pool", "p1"]
    argv += ["--design", design, "--leases", str(leases), "--hold", "1"]
    if report is not None:
        argv += ["--report", str(report)]
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(worker: subprocess.Popen[str]) -> dict[str, int]:
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err[-3000:]
    result = json.loads(out.splitlines()[-1])
    return {"takes": result["takes"], "empty": result["empty"]}


def _lines(report: Path) -> int:
    return len(report.read_text().splitlines()) if report.exists() else 0


async def _stored(url: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT lease_id, number FROM leasing.leases")
        return {row["lease_id"]: row["number"] for row in rows}, await double_leases(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize("design", DESIGNS)
async def test_four_processes_never_lease_one_number_twice(pg_db: str, design: str) -> None:
    await _pool(pg_db)
    workers = [_worker(pg_db, design, 150) for _ in range(4)]
    results = [_finish(worker) for worker in workers]
    stored, doubles = await _stored(pg_db)
    assert doubles == []
    assert len(stored) == sum(result["takes"] for result in results) == 600
    # Four processes holding up to two each want more than six numbers: they did contend.
    assert sum(result["empty"] for result in results) > 0


async def test_the_naive_design_does_lease_one_number_twice(pg_db: str) -> None:
    """Read-then-take with nothing locked: the same processes, and the check finds doubles."""
    await _pool(pg_db)
    workers = [_worker(pg_db, "naive", 300) for _ in range(4)]
    for worker in workers:
        _finish(worker)
    _, doubles = await _stored(pg_db)
    assert doubles != []


@pytest.mark.parametrize("design", DESIGNS)
async def test_a_killed_process_loses_no_committed_lease_and_the_others_go_on(
    pg_db: str, design: str, tmp_path: Path
) -> None:
    await _pool(pg_db)
    reports = [tmp_path / f"worker{i}.txt" for i in range(4)]
    victim = _worker(pg_db, design, 100_000, reports[0])
    deadline = time.monotonic() + 60
    while _lines(reports[0]) < 20:
        assert victim.poll() is None and time.monotonic() < deadline, victim.stderr
        time.sleep(0.02)
    others = [_worker(pg_db, design, 400, report) for report in reports[1:]]
    while not all(_lines(report) >= 5 for report in reports):  # mid-load: all four lease
        assert victim.poll() is None and time.monotonic() < deadline, victim.stderr
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    results = [_finish(worker) for worker in others]
    assert [result["takes"] for result in results] == [400, 400, 400]
    stored, doubles = await _stored(pg_db)
    assert doubles == []
    for report in reports:
        for line in report.read_text().splitlines():
            lease_id, number = line.split()
            assert stored.get(lease_id) == number, f"{report.name}: {lease_id} lost"
