"""`ctgw serve` as operators run it, next to a real Asterisk: frozen, the callers still get
through."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import new_call_id
from tests.integration.test_routing import CALLER, reached
from tests.lab.ami import TestAmi
from tests.lab.asterisk import PROJECT, AsteriskLab, free_port

pytestmark = pytest.mark.asterisk


def write_config(tmp_path: Path, http_port: int, agi_port: int) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = {http_port}
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
port = {agi_port}
[[sites]]
key = "demo"
destination = "Local/sales@test-dest"
[[sites.static_numbers]]
number = "+14155550150"
source = "billboard"
""",
        encoding="utf-8",
    )
    return path


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                break
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"ctgw serve did not start:\n{log.read_text()[-2000:]}")


async def test_frozen_daemon_sends_callers_to_the_fallback_within_3_s(
    tmp_path: Path, asterisk: AsteriskLab, ami: TestAmi
):
    """`ctgw serve` routes a call; stopped with SIGSTOP (socket still accepting) the next caller
    reaches the fallback within 3 s; resumed, it releases the waiting lookup leg and routes
    again."""
    http_port = free_port()
    config = write_config(tmp_path, http_port, asterisk.ports.agi)
    log = tmp_path / "ctgw.log"
    # Logs go to a file: a pipe nobody reads fills up and freezes the daemon on its own.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
        )
    try:
        await wait_healthy(http_port, proc, log)
        first = new_call_id()
        await ami.originate("4155550150", "test-inbound", CALLER, first)
        assert (await ami.wait_for(reached(first)))["Route"] == "sales"

        os.kill(proc.pid, signal.SIGSTOP)
        frozen = new_call_id()
        start = time.monotonic()
        await ami.originate("4155550150", "test-inbound", CALLER, frozen)
        assert (await ami.wait_for(reached(frozen)))["Route"] == "fallback"
        assert time.monotonic() - start < 3

        # FastAGI has no read timeout: the frozen call's lookup leg waits on the gateway's socket.
        assert "@ctgw-lookup-" in asterisk.rx("core show channels concise")
        os.kill(proc.pid, signal.SIGCONT)
        for _ in range(50):  # the resumed daemon closes it
            if "@ctgw-lookup-" not in asterisk.rx("core show channels concise"):
                break
            await asyncio.sleep(0.1)
        assert "@ctgw-lookup-" not in asterisk.rx("core show channels concise")
        resumed = new_call_id()
        await ami.originate("4155550150", "test-inbound", CALLER, resumed)
        assert (await ami.wait_for(reached(resumed)))["Route"] == "sales"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=15)
