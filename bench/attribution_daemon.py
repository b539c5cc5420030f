"""The real daemon for bench/attribution.py: `ctgw serve` on a generated config, its HTTP API,
FastAGI as Asterisk speaks it, and what its store recorded."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.attribution_traffic import COOLDOWN, GRACE, HEARTBEAT, WINDOW

__all__ = [
    "NO_SHARE",
    "OVERFLOW",
    "SITE",
    "TARGET",
    "Daemon",
    "PoolPolicy",
    "StoredCall",
    "agi_call",
    "policy_keys_known",
    "pool_numbers",
    "read_store",
]

ROOT = Path(__file__).resolve().parents[1]
SITE = "bench"
TARGET = "+13125550100"
OVERFLOW = "+13125550199"
DESTINATION = "PJSIP/agent1"
# A bench policy name ending so writes share_called_numbers = false ("reuse-noshare").
NO_SHARE = "-noshare"


@dataclass(frozen=True)
class PoolPolicy:
    """Per-pool policy keys (issue 11); each is written to the config only when given."""

    when_exhausted: str = ""
    min_cooldown_seconds: int | None = None
    dial_delay_seconds: int | None = None
    share_called_numbers: bool | None = None

    @property
    def label(self) -> str:
        parts = [self.when_exhausted or "default"]
        if self.min_cooldown_seconds is not None:
            parts.append(f"min_cd={self.min_cooldown_seconds}")
        if self.dial_delay_seconds is not None:
            parts.append(f"delay={self.dial_delay_seconds}")
        if self.share_called_numbers is False:
            parts.append("noshare")
        return ",".join(parts)

    def toml(self) -> str:
        lines = []
        if self.when_exhausted:
            lines.append(f'when_exhausted = "{self.when_exhausted}"')
        if self.min_cooldown_seconds is not None:
            lines.append(f"min_cooldown_seconds = {self.min_cooldown_seconds}")
        if self.dial_delay_seconds is not None:
            lines.append(f"dial_delay_seconds = {self.dial_delay_seconds}")
        if self.share_called_numbers is not None:
            lines.append(f"share_called_numbers = {str(self.share_called_numbers).lower()}")
        return "\n".join(lines)


def policy_keys_known(tree: Path = ROOT) -> bool:
    """Whether the tree's config knows the per-pool policy keys of issue 11."""
    settings = (tree / "gateway" / "settings.py").read_text(encoding="utf-8")
    return "when_exhausted" in settings


def pool_numbers(size: int) -> list[str]:
    return [f"+1312555{1000 + i:04d}" for i in range(size)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, http: int, agi: int, size: int, policy: PoolPolicy) -> str:
    return f"""
[http]
port = {http}
[store]
url = "sqlite:///{folder / "ctgw.db"}"
[agi]
enabled = true
port = {agi}
deadline_ms = 1000
[ami]
enabled = false
[log]
level = "warning"
[[sites]]
key = "{SITE}"
destination = "{DESTINATION}"
# Every visitor comes from 127.0.0.1 here: no limit per client.
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
[[sites.pools]]
target = "{TARGET}"
numbers = {json.dumps(pool_numbers(size))}
overflow = "{OVERFLOW}"
heartbeat_seconds = {int(HEARTBEAT)}
grace_seconds = {int(GRACE)}
probation_seconds = {int(GRACE)}
cooldown_seconds = {int(COOLDOWN)}
attribution_window_seconds = {int(WINDOW)}
{policy.toml()}
"""


class Daemon:
    """`ctgw serve` of the project `tree` in its own process, on free ports, with its store in
    `folder` (another tree, e.g. `git archive HEAD` unpacked, measures that version)."""

    def __init__(self, folder: Path, size: int, policy: PoolPolicy, tree: Path = ROOT) -> None:
        self.folder = folder
        self.tree = tree
        self.http_port, self.agi_port = free_port(), free_port()
        self.config = folder / "gateway.toml"
        self.config.write_text(
            _config(folder, self.http_port, self.agi_port, size, policy), encoding="utf-8"
        )
        self.log = folder / "ctgw.log"
        self.db = folder / "ctgw.db"
        self.base = f"http://127.0.0.1:{self.http_port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        # Logs go to a file: a pipe nobody reads fills up and freezes the daemon.
        with self.log.open("wb") as sink:
            self._proc = subprocess.Popen(
                # `ctgw serve`, with the tree's own gateway package first on the path.
                [sys.executable, "-m", "gateway", "serve", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=sink,
                cwd=self.tree,
            )
        return self._proc

    async def start(self) -> None:
        proc = self.spawn()
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                if proc.poll() is not None:
                    break
                try:
                    async with http.get(f"{self.base}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        self.stop()
        raise SystemExit(f"ctgw serve did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_LINKEDIDS = itertools.count(1)


def _env_block(agi_port: int, dialed: str, caller: str, name: str) -> tuple[str, bytes]:
    """The env block of the ctgw-lookup leg as Asterisk 22 writes it (dialplans/ctgw.conf)."""
    n = next(_LINKEDIDS)
    began = time.time()
    linkedid = f"{int(began)}.{n}"
    lines = [
        "agi_network: yes",
        "agi_network_script: route",
        f"agi_request: agi://127.0.0.1:{agi_port}/route",
        f"agi_channel: Local/{dialed}@ctgw-lookup-{n:08x};2",
        "agi_language: en",
        "agi_type: Local",
        f"agi_uniqueid: {linkedid}1",
        "agi_version: 22.10.1",
        f"agi_callerid: {caller}",
        f"agi_calleridname: {name}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        "agi_context: ctgw-lookup",
        f"agi_extension: {dialed}",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {140329112233 + n}",
        f"agi_arg_1: {linkedid}",
        f"agi_arg_2: {linkedid}",
        f"agi_arg_3: PJSIP/carrier-{n:08x}",
        f"agi_arg_4: {dialed}",
        f"agi_arg_5: {began:.3f}",
        "agi_arg_6: 2",
    ]
    return linkedid, ("\n".join(lines) + "\n\n").encode()


async def agi_call(agi_port: int, dialed: str, caller: str, name: str) -> tuple[str, str]:
    """Place one call's lookup as Asterisk does: (its linkedid, the CTGW_CALL_ID set or '')."""
    reader, writer = await asyncio.open_connection("127.0.0.1", agi_port)
    variables: dict[str, str] = {}
    linkedid, block = _env_block(agi_port, dialed, caller, name)
    try:
        writer.write(block)
        while line := await reader.readline():
            command = line.decode().strip()
            if command.startswith("SET VARIABLE "):
                key, _, value = command.removeprefix("SET VARIABLE ").partition(" ")
                variables[key] = value.strip('"')
            writer.write(b"200 result=1\n")
    finally:
        writer.close()
    return linkedid, variables.get("CTGW_CALL_ID", "")


@dataclass(frozen=True)
class StoredCall:
    kind: str
    session_id: str
    visitor_id: str
    confidence: float | None
    other_visitor_id: str


def read_store(db: Path) -> tuple[dict[str, StoredCall], int, int]:
    """The calls recorded (by linkedid), the peak of live leases and the overflows counted."""
    con = sqlite3.connect(db)
    try:
        calls = {}
        for linkedid, kind, session_id, visitor_id, snapshot in con.execute(
            "SELECT linkedid, attribution_kind, session_id, visitor_id, attribution FROM calls"
        ):
            extra: dict[str, Any] = json.loads(snapshot or "{}")
            calls[linkedid] = StoredCall(
                kind,
                session_id,
                visitor_id,
                extra.get("confidence"),
                extra.get("other_visitor_id") or "",
            )
        edges = []
        for started, until in con.execute("SELECT started_at, until FROM leases"):
            edges += [(started, 1), (until, -1)]
        live = peak = 0
        for _, step in sorted(edges):  # same instant: an end sorts before a start
            live += step
            peak = max(peak, live)
        (overflows,) = con.execute(
            "SELECT count(*) FROM pool_events WHERE kind = 'exhausted'"
        ).fetchone()
        return calls, peak, int(overflows)
    finally:
        con.close()
