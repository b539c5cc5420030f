"""HTTP front processes for `ctgw serve` with `[http] workers = N`: started, kept, stopped.

One Python process cannot use a second core. With workers set, the gateway process binds the
HTTP socket and hands it to N front processes (`python -m gateway.http.front`). The
first front that can answer (its lease channel and core client ready) makes it listen, so no
connection is accepted while there is nobody to answer it. The gateway process keeps every
lease, the store, FastAGI and AMI, and serves two Unix sockets in a private directory: the lease
channel for session requests, and its own HTTP app for everything the fronts pass on.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from gateway.appkeys import DESK
from gateway.config import Config
from gateway.http.lease_owner import serving_lease_channel

__all__ = ["HttpFronts", "listening_socket", "serving_fronts"]

log = structlog.get_logger()

_STOP_SECONDS = 15.0  # a front finishes its requests in flight within its 10 s shutdown timeout
_READY_SECONDS = 30.0  # a front is ready in about half a second; this only bounds a broken one


def listening_socket(host: str, port: int) -> socket.socket:
    """The HTTP socket the fronts share, bound here (OSError when the port is taken) but not
    listening: a front listens on it once it can answer."""
    # Listening here made the kernel accept connections for the half second (more on a busy
    # machine) before any front could answer them: a client that gave up meanwhile was
    # answered into a reset connection.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _until_listening(listener: socket.socket) -> None:
    """Return once a front listens on the shared socket (at most `_READY_SECONDS`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_SECONDS
    while not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        if loop.time() > deadline:
            log.error("http_fronts_not_listening", waited_seconds=_READY_SECONDS)
            return
        await asyncio.sleep(0.02)


class HttpFronts:
    """Starts `count` front processes on a shared listening socket and restarts any that die."""

    def __init__(
        self,
        count: int,
        config_path: str | None,
        listener: socket.socket,
        channel_path: Path,
        core_path: Path,
    ) -> None:
        self._count = count
        self._args = [
            *(["--config", config_path] if config_path else []),
            "--fd",
            str(listener.fileno()),
            "--channel",
            str(channel_path),
            "--core",
            str(core_path),
        ]
        self._fd = listener.fileno()
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._keepers = [
            asyncio.create_task(self._keep(index), name=f"http-front-{index}")
            for index in range(self._count)
        ]

    async def _keep(self, index: int) -> None:
        """Run front `index`; when it dies, start another (backing off if it keeps dying)."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while not self._stopping:
            started = loop.time()
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.http.front", *self._args, pass_fds=(self._fd,)
                )
            except OSError as exc:  # out of processes or files: try again later
                delay = min(delay * 2, 10.0)
                log.error("http_front_not_started", front=index, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                continue
            self._procs[index] = proc
            code = await proc.wait()
            if self._stopping:
                return
            delay = 0.5 if loop.time() - started > 30 else min(delay * 2, 10.0)
            log.error(
                "http_front_exited", front=index, pid=proc.pid, exit_code=code, restart_in=delay
            )
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """SIGTERM every front (each finishes its requests in flight), then wait for them."""
        self._stopping = True
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(_STOP_SECONDS):
                await asyncio.gather(*(p.wait() for p in self._procs.values()))
        except TimeoutError:
            for proc in self._procs.values():
                if proc.returncode is None:
                    log.error("http_front_killed", pid=proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in self._procs.values()))
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)


@contextlib.asynccontextmanager
async def serving_fronts(
    config: Config, config_path: str | None, runner: web.AppRunner, listener: socket.socket
) -> AsyncIterator[HttpFronts]:
    """Serve the app to the fronts, start them, enter once one of them listens, and stop them
    first when the context ends."""
    workdir = Path(tempfile.mkdtemp(prefix="ctgw-"))  # mode 0700: only this user's processes
    core_path, channel_path = workdir / "core.sock", workdir / "leases.sock"
    try:
        await web.UnixSite(runner, str(core_path)).start()
        async with serving_lease_channel(runner.app[DESK], channel_path):
            fronts = HttpFronts(config.http.workers, config_path, listener, channel_path, core_path)
            fronts.start()
            try:
                await _until_listening(listener)
                yield fronts
            finally:
                await fronts.stop()
    finally:
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
