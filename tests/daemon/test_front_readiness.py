"""With `[http] workers`, the HTTP port accepts no connection before a front can answer it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.daemon.test_http_fronts import fronts_of
from tests.daemon.test_restart import CTGW, free_port, stop_daemon, write_config

# Holds a `ctgw front` process at its interpreter start until the gate file exists, so the test
# decides when the front may become ready. The gateway process passes straight through.
GATE = """
import os, sys, time
_gate = os.environ.get("CTGW_TEST_FRONT_GATE")
if _gate and "front" in sys.argv:
    _until = time.monotonic() + 120
    while not os.path.exists(_gate) and time.monotonic() < _until:
        time.sleep(0.02)
"""
WAIT = 60.0


async def until(predicate: Callable[[], object], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def connect(port: int) -> socket.socket | None:
    """A connection to the port, or None when it is refused."""
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    except ConnectionRefusedError:
        return None


def healthz(sock: socket.socket) -> bytes:
    """The status line of GET /healthz on an open connection."""
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: ctgw\r\nConnection: close\r\n\r\n")
        return sock.makefile("rb").readline().rstrip()


async def test_the_port_refuses_until_a_front_can_answer_and_answers_its_first_connection(
    tmp_path: Path,
) -> None:
    """While its only front is still starting the port refuses connections (nobody could answer
    them) and the gateway has not said it started; the first connection accepted gets 200."""
    port = free_port()
    config = write_config(tmp_path, port, workers=1)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GATE, encoding="utf-8")
    gate = tmp_path / "front-may-start"
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "CTGW_TEST_FRONT_GATE": str(gate)}
    log = tmp_path / "daemon.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [*CTGW, "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    try:
        # The front process exists, held before it could answer: the port is bound by now.
        await until(lambda: proc.poll() is not None or fronts_of(proc))
        assert proc.poll() is None, log.read_text()
        early = connect(port)
        if early is not None:
            early.close()
        assert early is None, "the port accepted a connection no front could answer"
        assert "gateway_started" not in log.read_text()

        gate.touch()
        first: socket.socket | None = None

        def accepted() -> bool:
            nonlocal first
            first = connect(port)
            return first is not None

        await until(accepted)
        assert first is not None
        assert await asyncio.to_thread(healthz, first) == b"HTTP/1.1 200 OK"
        await until(lambda: "gateway_started" in log.read_text())
    finally:
        gate.touch()
        code, text = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, text
