"""One gateway on PostgreSQL: `ctgw serve` with `[store] url = "postgresql://..."`, a session,
a heartbeat, a routed FastAGI call, SIGTERM and a restart that keeps the lease and the call."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.api.conftest import BROWSER
from tests.api.test_call_routing import call_env, routed
from tests.daemon.test_restart import free_port, start_daemon, stop_daemon
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, empty_database
from tests.unit.test_agi import fake_asterisk

pytestmark = pytest.mark.postgres

# The lab's cluster trusts loopback, so PostgreSQL never asks for this password: the test
# shows it is handed over without appearing in any log line.
SECRET = "pg-secret-never-logged-7f3a"


@pytest.fixture
async def empty_db(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """A new database without the store's schema: the gateway migrates it as it starts."""
    url = await empty_database(pg_cluster)
    try:
        yield url
    finally:
        await drop_database(pg_cluster, url)


def write_config(tmp_path: Path, url: str, port: int, agi_port: int, workers: int) -> Path:
    path = tmp_path / "gateway.toml"
    numbers = ", ".join(f'"+141555501{i:02d}"' for i in range(1, 6))
    path.write_text(
        f"""
[http]
port = {port}
workers = {workers}
[store]
url = "{url}"
[agi]
enabled = true
host = "127.0.0.1"
port = {agi_port}
[log]
format = "json"
[[sites]]
key = "demo"
destination = "PJSIP/agent1"
[[sites.pools]]
target = "+14155550100"
numbers = [{numbers}]
overflow = "+14155550120"
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
""",
        encoding="utf-8",
    )
    return path


async def call_on(agi_port: int, number: str, linkedid: str) -> dict[str, str]:
    """A FastAGI call on `number` over a real socket; the variables the gateway set."""
    server = types.SimpleNamespace(port=agi_port)
    return routed(await fake_asterisk(server, call_env(number, linkedid=linkedid)))  # type: ignore[arg-type]


async def stored_call(url: str, call_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(
            "SELECT dialed, session_id, attribution_kind FROM calls WHERE call_id = $1", call_id
        )
    finally:
        await conn.close()


async def stored_lease(url: str, session_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow("SELECT number FROM leases WHERE session_id = $1", session_id)
    finally:
        await conn.close()


@pytest.mark.parametrize("workers", [0, 1])
async def test_gateway_on_postgresql_survives_restart(
    tmp_path: Path, empty_db: str, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The gateway migrates an empty database; sessions, heartbeats and routed calls are stored
    in PostgreSQL; after SIGTERM and a restart the lease holds, the call is there, and a new
    call is still attributed. With `[http] workers`, sessions come over the lease channel."""
    monkeypatch.setenv("CTGW_STORE_PASSWORD", SECRET)
    pg_db = empty_db
    port, agi_port = free_port(), free_port()
    config = write_config(tmp_path, pg_db, port, agi_port, workers)
    base = f"http://127.0.0.1:{port}"
    logs: list[str] = []

    proc = await start_daemon(config, port)
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.post(
                f"{base}/v1/sessions", json={"site": "demo", "url": "https://x.example/?gclid=G1"}
            ) as r:
                assert r.status == 201, await r.text()
                session = await r.json()
            offer = session["numbers"][0]
            assert offer["kind"] == "pool"
            number = offer["number"]
            async with http.post(f"{base}/v1/sessions/{session['session_id']}/heartbeat") as r:
                assert r.status == 200
        first = await call_on(agi_port, number, "1.1")
        assert first["CTGW_ROUTE"] == "PJSIP/agent1"
    finally:
        code, log = stop_daemon(proc)
        logs.append(log)
    assert code == 0, log
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert "store_migrated" in events and "store_open" in events
    assert events[-2:] == ["store_closed", "gateway_stopped"]

    lease = await stored_lease(pg_db, session["session_id"])
    assert lease is not None and lease["number"] == number
    call = await stored_call(pg_db, first["CTGW_CALL_ID"])
    assert call is not None
    assert call["dialed"] == number and call["session_id"] == session["session_id"]
    assert call["attribution_kind"] == "active"

    proc = await start_daemon(config, port)
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            async with http.post(f"{base}/v1/sessions/{session['session_id']}/heartbeat") as r:
                assert r.status == 200
            async with http.post(
                f"{base}/v1/sessions", json={"site": "demo", "url": "https://x.example/"}
            ) as r:
                assert r.status == 201
                fresh = (await r.json())["numbers"][0]
            assert fresh["number"] != number  # the restored lease still holds its number
        again = await call_on(agi_port, number, "1.2")
        assert again["CTGW_ROUTE"] == "PJSIP/agent1"
    finally:
        code, log = stop_daemon(proc)
        logs.append(log)
    assert code == 0, log
    call = await stored_call(pg_db, again["CTGW_CALL_ID"])
    assert call is not None
    assert call["session_id"] == session["session_id"] and call["attribution_kind"] == "active"
    assert await stored_call(pg_db, first["CTGW_CALL_ID"]) is not None

    for log in logs:
        assert SECRET not in log
        assert os.environ["CTGW_STORE_PASSWORD"] not in log


async def test_a_second_gateway_on_the_same_database_refuses_to_start(
    tmp_path: Path, empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases still live in each gateway's memory, so two on one database would lease a number
    twice: the second says so and exits 2; once the first stops, it starts."""
    monkeypatch.setenv("CTGW_STORE_PASSWORD", SECRET)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    port, agi_port = free_port(), free_port()
    first_config = write_config(first_dir, empty_db, port, agi_port, 0)
    second_port, second_agi = free_port(), free_port()
    second_config = write_config(second_dir, empty_db, second_port, second_agi, 0)
    first = await start_daemon(first_config, port)
    try:
        refused = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "serve", "--config", str(second_config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        code, log = stop_daemon(first)
    assert code == 0, log
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("ctgw: error: ") and "another gateway already serves" in last, last
    assert SECRET not in refused.stderr
    second = await start_daemon(second_config, second_port)
    code, log = stop_daemon(second)
    assert code == 0, log
