"""Several `ctgw serve` processes on one PostgreSQL database, as a cluster of gateways runs.

Each gateway has its own folder (config file and log), HTTP, FastAGI and peer port; all share
the store URL, the sites and the cluster secret (env CTGW_CLUSTER_SECRET). `Gateways` starts
them (ready once /healthz answers 200), stops one with SIGTERM, kills one with SIGKILL, and
stops whatever still runs when it closes. With `cluster=False` the `[cluster]` section is left
out: one gateway per database, as before clusters.

Synchronous (subprocess and urllib), so bench/ uses it as well as the tests (which call the
slow parts in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncpg  # type: ignore[import-untyped, unused-ignore]

__all__ = ["Gateway", "Gateways", "free_port"]

ROOT = Path(__file__).resolve().parents[2]
CTGW = [sys.executable, "-m", "gateway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    """One gateway process of the cluster and where it listens."""

    name: str
    folder: Path
    http_port: int
    agi_port: int
    peer_port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def config(self) -> Path:
        return self.folder / "gateway.toml"

    @property
    def log(self) -> Path:
        """The log of the latest start (stderr: the daemon's JSON lines)."""
        return self.folder / f"daemon-{self.starts}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Gateways:
    """`count` gateways on the store `url`, each with `sites` (a TOML fragment of `[[sites]]`
    tables, the same for all) in a folder of its own under `folder`."""

    def __init__(
        self,
        url: str,
        folder: Path,
        count: int,
        sites: str,
        *,
        cluster: bool = True,
        secret: str = "cluster-secret-for-tests-0123456789",
        workers: int = 0,
        log_level: str = "info",
        agi_deadline_ms: int = 300,
        extra_toml: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.sites = sites
        self.cluster = cluster
        self.secret = secret
        self.workers = workers
        self.log_level = log_level
        self.agi_deadline_ms = agi_deadline_ms
        self.extra_toml = extra_toml
        self.env = {**os.environ, **(env or {})}
        if cluster:
            self.env["CTGW_CLUSTER_SECRET"] = secret
        self.nodes: list[Gateway] = []
        for n in range(count):
            node_folder = folder / f"gw{n}"
            node_folder.mkdir(parents=True, exist_ok=True)
            peer = free_port() if cluster else 0
            self.nodes.append(Gateway(f"gw{n}", node_folder, free_port(), free_port(), peer))
        for node in self.nodes:
            node.config.write_text(self._config(node), encoding="utf-8")

    def _config(self, node: Gateway) -> str:
        cluster = (
            f'[cluster]\npeer_host = "127.0.0.1"\npeer_port = {node.peer_port}\n'
            'advertise_host = "127.0.0.1"\n'
            if self.cluster
            else ""
        )
        return (
            f'[http]\nport = {node.http_port}\nworkers = {self.workers}\nhost = "127.0.0.1"\n'
            f'[store]\nurl = "{self.url}"\n'
            f'[agi]\nenabled = true\nhost = "127.0.0.1"\nport = {node.agi_port}\n'
            f"deadline_ms = {self.agi_deadline_ms}\n"
            f'[log]\nformat = "json"\nlevel = "{self.log_level}"\n'
            f"{cluster}{self.extra_toml}\n{self.sites}\n"
        )

    # --- processes ------------------------------------------------------------------------

    def launch(self, node: Gateway) -> None:
        """Start `node` (its log in a file: a pipe nobody reads would freeze it)."""
        assert not node.running, f"{node.name} runs already"
        node.starts += 1
        with open(node.log, "wb") as sink:
            node.proc = subprocess.Popen(
                [*CTGW, "serve", "--config", str(node.config)],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )

    def wait_ready(self, node: Gateway, timeout_s: float = 60.0) -> None:
        """Until `node` answers /healthz with 200; AssertionError with its log when it exits
        or takes longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not node.running:
                raise AssertionError(f"{node.name} exited at start:\n{node.log_text()[-3000:]}")
            if _healthy(node.http_port):
                return
            time.sleep(0.1)
        raise AssertionError(f"{node.name} not ready in {timeout_s} s:\n{node.log_text()[-3000:]}")

    def start(self, node: Gateway | None = None, timeout_s: float = 60.0) -> None:
        """Start `node`, or every gateway not running (all launched, then each awaited)."""
        chosen = [node] if node is not None else [n for n in self.nodes if not n.running]
        for one in chosen:
            self.launch(one)
        for one in chosen:
            self.wait_ready(one, timeout_s)

    def stop(self, node: Gateway, timeout_s: float = 30.0) -> int:
        """SIGTERM, then its exit code (SIGKILL after `timeout_s`, and AssertionError)."""
        proc = node.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc is not None else 0
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(f"{node.name} did not stop in {timeout_s} s") from None

    def kill(self, node: Gateway) -> None:
        """`kill -9`: no shutdown at all; the store and the peers see a vanished process."""
        assert node.proc is not None and node.running, f"{node.name} is not running"
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=10)

    def running(self) -> list[Gateway]:
        return [node for node in self.nodes if node.running]

    # --- the cluster's directory ------------------------------------------------------------

    async def owners(self) -> dict[str, str]:
        """unit -> the name of the gateway the directory says holds it (a node is known by its
        peer port; "?" for a row of no gateway of ours)."""
        by_port = {node.peer_port: node.name for node in self.nodes}
        conn = await asyncpg.connect(self.url)
        try:
            rows = await conn.fetch(
                "SELECT o.unit, n.peer_port FROM cluster.owners o"
                " JOIN cluster.nodes n USING (node_id)"
            )
        finally:
            await conn.close()
        return {row["unit"]: by_port.get(row["peer_port"], "?") for row in rows}

    async def settled(self, sites: list[str], timeout_s: float = 90.0) -> dict[str, str]:
        """Wait until the directory names an owner of every site, every running gateway owns
        a site, and the units (sites and any others, e.g. `leader`) are split as the share rules
        leave them (each node between floor and ceil of units / nodes: none has one to give
        away); site -> gateway name. AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        live = {node.name for node in self.running()}
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            seen = await self.owners()
            owner = {unit.removeprefix("site:"): name for unit, name in seen.items()}
            units = set(seen) | {f"site:{site}" for site in sites}
            held = Counter(name for name in seen.values() if name in live)
            low, high = len(units) // len(live), -(-len(units) // len(live))
            if (
                set(sites) <= set(owner)
                and {owner[site] for site in sites} == live
                and all(low <= held[name] <= high for name in live)
            ):
                return {site: owner[site] for site in sites}
            await asyncio.sleep(0.25)
        raise AssertionError(f"sites not spread over {sorted(live)} in {timeout_s} s: {seen}")

    def close(self) -> dict[str, int]:
        """Stop every gateway still running (all signalled first, then awaited); their codes."""
        live = self.running()
        for node in live:
            assert node.proc is not None
            node.proc.send_signal(signal.SIGTERM)
        codes = {}
        for node in live:
            assert node.proc is not None
            try:
                codes[node.name] = node.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                codes[node.name] = node.proc.wait(timeout=10)
        return codes

    def __enter__(self) -> Gateways:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
