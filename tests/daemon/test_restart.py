"""The daemon as users run it: `ctgw serve` in a process, SIGTERM, restart, nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.app import create_app
from gateway.appkeys import AGI, DESK
from gateway.config import parse_config
from numberpool.site import AttributionKind
from tests.api.conftest import BROWSER, demo_config
from tests.api.test_call_routing import call_env
from tests.unit.test_agi import fake_asterisk

CTGW = [sys.executable, "-m", "gateway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, port: int, *, workers: int = 0, origin: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = {port}
workers = {workers}
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
enabled = false
[[sites]]
key = "demo"
allowed_origins = [{f'"{origin}"' if origin else ""}]
[[sites.pools]]
target = "+14155550100"
numbers = [{", ".join(f'"+141555501{i:02d}"' for i in range(1, 11))}]
overflow = "+14155550120"
# Many visitors from one address (127.0.0.1): no limit per client here.
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
""",
        encoding="utf-8",
    )
    return path


async def start_daemon(config: Path, port: int) -> subprocess.Popen[bytes]:
    # Logs go to a file: a pipe nobody reads fills up and freezes the daemon mid-test.
    log = config.with_name(f"daemon-{port}-{len(list(config.parent.glob('daemon-*')))}.log")
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [*CTGW, "serve", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=sink
        )
    proc.log_path = log  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"daemon did not start: {log.read_text()[-2000:]}")


def stop_daemon(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, proc.log_path.read_text()  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [0, 1])
async def test_sigterm_finishes_requests_and_restart_keeps_leases(
    tmp_path: Path, workers: int
) -> None:
    """Every session answered before SIGTERM is stored; after restart its lease still holds.

    With `[http] workers`, the HTTP fronts finish their requests before the gateway stops."""
    port = free_port()
    config = write_config(tmp_path, port, workers=workers)
    proc = await start_daemon(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:

            async def open_one() -> dict | None:
                try:
                    async with http.post(
                        f"{base}/v1/sessions", json={"site": "demo", "url": "https://x.example/"}
                    ) as r:
                        return await r.json() if r.status == 201 else None
                except aiohttp.ClientError:
                    return None

            first = [await open_one() for _ in range(3)]
            burst = [asyncio.create_task(open_one()) for _ in range(40)]
            await asyncio.sleep(0.01)
            code, log = await asyncio.to_thread(stop_daemon, proc)
            answered = [b for b in [*first, *await asyncio.gather(*burst)] if b]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, log
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert events[-3:] == ["gateway_stopping", "store_closed", "gateway_stopped"]
    db = sqlite3.connect(tmp_path / "ctgw.db")
    stored = {row[0] for row in db.execute("SELECT session_id FROM sessions")}
    db.close()
    assert {b["session_id"] for b in answered} <= stored
    assert len(answered) >= 3

    proc = await start_daemon(config, port)
    try:
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            for body in first:
                assert body is not None
                async with http.post(f"{base}/v1/sessions/{body['session_id']}/heartbeat") as r:
                    assert r.status == 200
            leased = {
                b["numbers"][0]["number"] for b in answered if b["numbers"][0]["kind"] == "pool"
            }
            async with http.post(
                f"{base}/v1/sessions", json={"site": "demo", "url": "https://x.example/"}
            ) as r:
                fresh = (await r.json())["numbers"][0]["number"]
            assert fresh not in leased
    finally:
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log


async def test_attribution_survives_restart(aiohttp_client, tmp_path: Path, clock) -> None:
    """After a restart, a call on a number is still attributed to the session that held it."""
    config = parse_config(demo_config(tmp_path), source="test")
    client = await aiohttp_client(create_app(config, clock=clock))
    body = await (
        await client.post(
            "/v1/sessions", json={"site": "demo", "url": "https://x.example/"}, headers=BROWSER
        )
    ).json()
    number = body["numbers"][0]["number"]
    call_time = clock.advance(minutes=1)
    await client.close()

    clock.advance(minutes=10)
    again = await aiohttp_client(create_app(config, clock=clock))
    book = again.app[DESK].book
    entry = book.site_for_number(number)
    assert entry is not None
    during = entry.site.attribute(number, call_time)
    assert during.kind is AttributionKind.ACTIVE
    assert during.session_id == body["session_id"]
    after = entry.site.attribute(number, clock.now())
    assert after.kind is AttributionKind.PROBABLE


async def test_who_called_whom_survives_restart(aiohttp_client, tmp_path: Path, clock) -> None:
    """A visitor's call from a known phone is remembered by its number's pool after a restart
    (which numbers are safest to reuse, and whose calls come from elsewhere)."""
    config = parse_config(demo_config(tmp_path), source="test")
    client = await aiohttp_client(create_app(config, clock=clock))
    body = await (
        await client.post(
            "/v1/sessions", json={"site": "demo", "url": "https://x.example/"}, headers=BROWSER
        )
    ).json()
    number = body["numbers"][0]["number"]
    clock.advance(seconds=30)
    commands = await fake_asterisk(client.app[AGI], call_env(number, caller="+12025550177"))
    assert any("CTGW_ROUTE" in c for c in commands)
    visitor = client.app[DESK].live.get(body["session_id"]).visitor_id
    await client.close()

    clock.advance(minutes=2)
    again = await aiohttp_client(create_app(config, clock=clock))
    entry = again.app[DESK].book.site_for_number(number)
    assert entry is not None
    (pool,) = [p for p in entry.site.pools if number in p]
    assert pool.callers_of(number, visitor) == {"+12025550177"}


def test_bad_config_fails_start_with_message(tmp_path: Path) -> None:
    """`ctgw serve` with an unknown key exits 2 naming the file and key."""
    path = tmp_path / "bad.toml"
    path.write_text("[http]\nprot = 1\n", encoding="utf-8")
    result = subprocess.run(
        [*CTGW, "serve", "--config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and "http.prot" in result.stderr


def test_keys_create_prints_a_working_key_once(tmp_path: Path) -> None:
    """`ctgw keys create` prints one key; only its hash is stored."""
    config = write_config(tmp_path, free_port())
    result = subprocess.run(
        [*CTGW, "keys", "create", "ops", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("ctgw_") and len(key) > 30
    db = sqlite3.connect(tmp_path / "ctgw.db")
    (stored,) = db.execute("SELECT key_hash FROM api_keys").fetchone()
    db.close()
    assert key not in stored and len(stored) == 64


def test_numbers_add_and_list(tmp_path: Path) -> None:
    """`ctgw numbers add` normalises numbers, refuses bad ones, and `list` shows them."""
    config = write_config(tmp_path, free_port())
    ok = subprocess.run(
        [
            *CTGW,
            "numbers",
            "add",
            "--site",
            "demo",
            "--target",
            "+14155550100",
            "415-555-0140",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [
            *CTGW,
            "numbers",
            "add",
            "--site",
            "demo",
            "--target",
            "+14155550100",
            "555",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "'555'" in bad.stderr
    listing = subprocess.run(
        [*CTGW, "numbers", "list", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "+14155550140\tdemo\t+14155550100" in listing.stdout


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    """`ctgw db migrate` applies the schema once, then reports it up to date."""
    config = write_config(tmp_path, free_port())
    cmd = [*CTGW, "db", "migrate", "--config", str(config)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert "0001_initial.sql" in first.stdout
    assert "up to date" in second.stdout


def test_doctor_reports_asterisk_config_findings(tmp_path: Path) -> None:
    """`ctgw doctor` passes on a careful Asterisk config and fails naming a risky one."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk-conf"
    config = write_config(tmp_path, free_port())
    results = {}
    for name in ("good", "bad"):
        env = {**os.environ, "CTGW_ASTERISK_CONFIG_DIR": str(fixtures / name)}
        results[name] = subprocess.run(
            [*CTGW, "doctor", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    assert results["good"].returncode == 0, results["good"].stdout
    assert "store: ok" in results["good"].stdout
    assert results["bad"].returncode == 1
    assert "asterisk: ERROR" in results["bad"].stdout
