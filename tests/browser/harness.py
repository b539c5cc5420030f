"""Real servers for the browser tests: the gateway as `ctgw serve`, and a customer's website."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["CustomerSite", "Gateway", "free_port", "gateway_config"]

US_TARGET = "+14155550100"
UK_TARGET = "+442079460000"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_config(
    port: int,
    db: Path,
    origins: list[str],
    heartbeat_seconds: int = 1,
    grace_seconds: int = 900,
    pool_size: int = 40,
    cooldown_seconds: int = 300,
) -> str:
    """A test config: site `demo` (US numbers) and `demo-uk` (London numbers), `pool_size` each.

    The sites keep the gateway's default bot list (HeadlessChrome is in it): the browsers of the
    tests send a desktop Chrome user agent (conftest.DESKTOP_UA), as real visitors do. Every
    visitor of the tests comes from 127.0.0.1, so the sites set no limit per client address.
    """
    allowed = ", ".join(f'"{o}"' for o in origins)
    us = ", ".join(f'"+141555501{n:02d}"' for n in range(1, pool_size + 1))
    uk = ", ".join(f'"+4420794600{n:02d}"' for n in range(1, pool_size + 1))
    return f"""
[http]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[store]
url = "sqlite:///{db}"

[agi]
enabled = false

[log]
level = "info"
format = "json"

[[sites]]
key = "demo"
name = "Demo Plumbing Co."
allowed_origins = [{allowed}]
limits = {{ client_per_minute = 0, client_live_numbers = 0 }}

[[sites.pools]]
target = "{US_TARGET}"
numbers = [{us}]
overflow = "+14155550199"
heartbeat_seconds = {heartbeat_seconds}
grace_seconds = {grace_seconds}
cooldown_seconds = {cooldown_seconds}

[[sites]]
key = "demo-uk"
name = "Demo Plumbing Co. London"
allowed_origins = [{allowed}]
limits = {{ client_per_minute = 0, client_live_numbers = 0 }}

[[sites.pools]]
target = "{UK_TARGET}"
numbers = [{uk}]
overflow = "+442079460099"
heartbeat_seconds = {heartbeat_seconds}
grace_seconds = {grace_seconds}
cooldown_seconds = {cooldown_seconds}
"""


def _ctgw() -> list[str]:
    return [str(Path(sys.executable).with_name("ctgw"))]


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"{url}: no answer in {seconds} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Gateway:
    """`ctgw serve --config` on a free loopback port with its own SQLite file."""

    def __init__(
        self,
        workdir: Path,
        origins: list[str] | None = None,
        port: int = 0,
        grace_seconds: int = 900,
        heartbeat_seconds: int = 1,
        pool_size: int = 40,
        cooldown_seconds: int = 300,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.config = workdir / "gateway.toml"
        self.log = workdir / "gateway.log"
        self.config.write_text(
            gateway_config(
                self.port,
                workdir / "ctgw.db",
                [self.url, *(origins or [])],
                heartbeat_seconds=heartbeat_seconds,
                grace_seconds=grace_seconds,
                pool_size=pool_size,
                cooldown_seconds=cooldown_seconds,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def ctgw(self, *args: str) -> str:
        """Run a ctgw CLI command against this gateway's config; return its stdout."""
        done = subprocess.run(
            [*_ctgw(), *args, "--config", str(self.config)],
            capture_output=True,
            timeout=30,
            check=True,
        )
        return done.stdout.decode()

    def start(self) -> Gateway:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*_ctgw(), "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_http(f"{self.url}/healthz", self.proc, self.log)
        return self

    def stop(self) -> None:
        _stop(self.proc)


class CustomerSite:
    """A business's own website on another origin, serving pages that embed the gateway's script."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def page(self, name: str, html: str) -> str:
        (self.root / name).write_text(html)
        return f"{self.url}/{name}"

    def start(self) -> CustomerSite:
        log = self.root / "site.log"
        self.root.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        (self.root / "ok.txt").write_text("ok")
        _wait_http(f"{self.url}/ok.txt", self.proc, log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
