"""`ctgw serve` with `[http] workers`: HTTP front processes in front of the gateway process."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp

from tests.daemon.test_restart import CTGW, free_port, start_daemon, stop_daemon, write_config

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
ORIGIN = "https://www.demo-plumbing.example"
OPEN = {"site": "demo", "url": "https://www.demo-plumbing.example/?gclid=abc"}


def fronts_of(proc: subprocess.Popen[bytes]) -> list[int]:
    """The pids of the gateway's live HTTP front processes."""
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    return [pid for pid in (int(p) for p in out.split()) if b"front" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it is gone (a front just killed and reaped
    between pgrep and this read: seen once in ten runs under load)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, waiting for init to reap it


async def test_fronts_answer_sessions_and_pass_everything_else_on(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, workers=2, origin=ORIGIN)
    key = subprocess.run(
        [*CTGW, "keys", "create", "ops", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc = await start_daemon(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert len(fronts_of(proc)) == 2
        async with aiohttp.ClientSession(headers=BROWSER, auto_decompress=False) as http:

            async def open_one() -> tuple[int, dict]:
                async with http.post(f"{base}/v1/sessions", json=OPEN) as r:
                    return r.status, await r.json()

            # 30 at once: the 10 pool numbers go to 10 sessions, never one number to two.
            opened = await asyncio.gather(*(open_one() for _ in range(30)))
            assert {status for status, _ in opened} == {201}
            kinds = [body["numbers"][0]["kind"] for _, body in opened]
            pooled = [
                b["numbers"][0]["number"] for _, b in opened if b["numbers"][0]["kind"] == "pool"
            ]
            assert kinds.count("pool") == 10 and len(set(pooled)) == 10
            assert kinds.count("overflow") == 20

            # The page's CORS answers, from the gateway process through a front.
            async with http.post(f"{base}/v1/sessions", json=OPEN, headers={"Origin": ORIGIN}) as r:
                assert r.status == 201
                assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert r.headers["Cache-Control"] == "no-store"
                session_id = (await r.json())["session_id"]
            async with http.post(
                f"{base}/v1/sessions", json=OPEN, headers={"Origin": "https://evil.example"}
            ) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "origin_not_allowed"
                assert r.headers["Access-Control-Allow-Origin"] == "*"
            async with http.post(
                f"{base}/v1/sessions", json={**OPEN, "site": "nope"}, headers={"Origin": ORIGIN}
            ) as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_site"
            # Checked by the front itself: malformed, oversized.
            async with http.post(
                f"{base}/v1/sessions", data=b"{bad", headers={"Origin": ORIGIN}
            ) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_json"
                assert r.headers["Access-Control-Allow-Origin"] == "*"
            async with http.post(f"{base}/v1/sessions", data=b"x" * 20_000) as r:
                assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"

            # Passed on: heartbeat, preflight, admin API, swap.js with its cache validators.
            async with http.post(
                f"{base}/v1/sessions/{session_id}/heartbeat", headers={"Origin": ORIGIN}
            ) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
            async with http.options(
                f"{base}/v1/sessions",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
            ) as r:
                assert r.status == 204
            async with http.get(f"{base}/v1/sites") as r:
                assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
            admin = {"Authorization": f"Bearer {key}"}
            async with http.get(f"{base}/v1/sessions/{session_id}", headers=admin) as r:
                assert r.status == 200
                assert (await r.json())["session_id"] == session_id
            async with http.get(f"{base}/swap.js", headers={"Accept-Encoding": "gzip"}) as r:
                assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
                script = gzip.decompress(await r.read())
                etag = r.headers["ETag"]
            assert b"ctgw" in script
            async with http.get(f"{base}/swap.js", headers={"If-None-Match": etag}) as r:
                assert r.status == 304
            # A client that does not take gzip gets none: the front adds no header of its own.
            async with http.get(f"{base}/swap.js", skip_auto_headers=["Accept-Encoding"]) as r:
                assert r.status == 200 and "Content-Encoding" not in r.headers
                assert await r.read() == script
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
            assert 'ctgw_sessions_total{site="demo"} 31' in metrics
    finally:
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    db = sqlite3.connect(tmp_path / "ctgw.db")
    stored = {row[0] for row in db.execute("SELECT session_id FROM sessions")}
    db.close()
    assert {body["session_id"] for _, body in opened} <= stored
    assert "Traceback" not in log


async def test_a_front_that_dies_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, workers=1)
    proc = await start_daemon(config, port)
    try:
        [front] = fronts_of(proc)
        os.kill(front, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and fronts_of(proc) in ([], [front]):
            await asyncio.sleep(0.1)
        [replacement] = fronts_of(proc)
        assert replacement != front
        async with aiohttp.ClientSession(headers=BROWSER) as http:
            for _ in range(50):  # the new front may still be starting
                try:
                    async with http.post(f"http://127.0.0.1:{port}/v1/sessions", json=OPEN) as r:
                        assert r.status == 201
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("no answer after the front was replaced")
    finally:
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    exits = [json.loads(line) for line in log.splitlines() if "http_front_exited" in line]
    assert exits and exits[0]["pid"] == front and exits[0]["exit_code"] == -signal.SIGKILL


async def test_fronts_leave_when_the_gateway_dies(tmp_path: Path) -> None:
    """A killed gateway leaves no front holding the port without anyone behind it."""
    port = free_port()
    config = write_config(tmp_path, port, workers=1)
    proc = await start_daemon(config, port)
    [front] = fronts_of(proc)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not gone(front):
        await asyncio.sleep(0.1)
    assert gone(front)
    # The port is free again: a new gateway starts on it.
    proc = await start_daemon(config, port)
    code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
