"""`ctgw serve` under systemd's Type=notify: READY once listening, watchdog pings, STOPPING."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.daemon.test_restart import free_port, write_config

CTGW = [sys.executable, "-m", "gateway"]


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """systemd's side: a Unix datagram socket at a short path (sun_path holds 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="ctgw-sd-", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def serve(config: Path, **env: str) -> subprocess.Popen[bytes]:
    log = config.with_name("daemon.log")
    with open(log, "wb") as sink:
        return subprocess.Popen(
            [*CTGW, "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, **env},
        )


async def receive(sock: socket.socket, timeout: float = 20) -> str:
    async with asyncio.timeout(timeout):
        data = await asyncio.get_running_loop().sock_recv(sock, 4096)
    return data.decode()


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                return resp.status == 200
    except aiohttp.ClientConnectionError:
        return False


def drain(sock: socket.socket) -> list[str]:
    """The datagrams waiting now."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.parametrize("workers", [0, 1])
async def test_ready_once_listening_watchdog_pings_and_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], workers: int
) -> None:
    """READY=1 comes when the API answers; WATCHDOG=1 every WATCHDOG_USEC/2; STOPPING=1 on
    SIGTERM, and the process exits 0."""
    sock, path = notify_socket
    port = free_port()
    proc = serve(
        write_config(tmp_path, port, workers=workers), NOTIFY_SOCKET=path, WATCHDOG_USEC="400000"
    )
    try:
        ready = await receive(sock)
        assert ready.splitlines()[0] == "READY=1", ready
        assert "STATUS=" in ready
        assert await healthy(port)  # listening by the time systemd hears READY
        assert set(drain(sock)) <= {"WATCHDOG=1"}  # what came while we checked
        first = await receive(sock)
        began = time.monotonic()
        pings = [first] + [await receive(sock) for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 4
        # Three intervals of 0.2 s (a loaded machine only makes them longer).
        assert time.monotonic() - began >= 0.5
    finally:
        status = stop(proc)
    messages = drain(sock)
    assert messages[-1] == "STOPPING=1", messages
    assert status == 0, (tmp_path / "daemon.log").read_text()


async def test_abstract_socket_and_a_watchdog_for_another_process(
    tmp_path: Path,
) -> None:
    """An abstract NOTIFY_SOCKET (@name) gets READY=1; a watchdog meant for another process
    (WATCHDOG_PID) gets no pings from us."""
    name = f"ctgw-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    port = free_port()
    proc = serve(
        write_config(tmp_path, port),
        NOTIFY_SOCKET="@" + name,
        WATCHDOG_USEC="100000",
        WATCHDOG_PID="1",
    )
    try:
        assert (await receive(sock)).startswith("READY=1")
        with pytest.raises(TimeoutError):
            await receive(sock, timeout=0.6)  # six pings' worth of time: none came
    finally:
        status = stop(proc)
        sock.close()
    assert status == 0
