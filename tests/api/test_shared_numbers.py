"""Sharing a called number end to end (issue 11, `share_called_numbers`): the real app in this
process with the fake clock, and `ctgw serve` in a process with the real clock, on a SQLite file.

A pool of two numbers. A holds N1 and called on it from P1; X took N2 and left without a word
(its lease ended, its window is open). B then shares N1 rather than take N2, whose silent holder
may still call; A keeps N1. A call from P1 goes to A, one from a new phone to B, each `probable`
with the other as rival; both hold their number across a restart, and nobody gets N1 as a third.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.appkeys import AGI
from tests.api.conftest import BROWSER, POOL, demo_config, open_session
from tests.api.lease_overlaps import DOUBLE_LEASES, OVERLAPS
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.daemon.test_restart import free_port, start_daemon, stop_daemon
from tests.unit.test_agi import fake_asterisk

# Each takes under 1 s in process, 2-4 s as a daemon (started twice); this bounds a hang.
pytestmark = pytest.mark.timeout(120)

N1, N2 = POOL[:2]
OVERFLOW = "+14155550120"
POOL_ID = "demo:+14155550100"
P1, P2, P3 = "+12025550301", "+12025550302", "+12025550303"
# Scaled down so a silent visit ends in a second of real time; the other leases outlive a slow
# run by far (they heartbeat too), and every ended lease stays within cooldown and window.
TIMING = {
    "heartbeat_seconds": 1,
    "probation_seconds": 1,
    "grace_seconds": 120,
    "cooldown_seconds": 60,
    "attribution_window_seconds": 600,
}
LEFT = 2  # seconds after which a visit that never heartbeated has ended (probation + 1)


class Gateway:
    """One gateway on the test's SQLite file: HTTP through `http`, FastAGI on `agi_port`."""

    http: aiohttp.ClientSession
    agi_port: int
    db_path: Path

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def wait(self, seconds: float) -> None:
        """Let `seconds` pass for the gateway's clock."""
        raise NotImplementedError

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of the gateway's store, read as another process would."""
        db = sqlite3.connect(self.db_path)
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute(sql, args)]
        finally:
            db.close()

    async def close(self) -> None:
        """After the test, whatever state it stopped in."""
        if hasattr(self, "http") and not self.http.closed:
            await self.http.close()


class InProcess(Gateway):
    """`create_app` in this process (aiohttp_client) with the fake clock; a restart is a new
    app on the same store, as tests/daemon/test_restart.py does it."""

    def __init__(self, make_client: Any, raw: dict[str, Any], clock: FakeClock) -> None:
        self.make_client, self.raw, self.clock = make_client, raw, clock
        self.db_path = Path(raw["store"]["url"].removeprefix("sqlite:///"))

    async def start(self) -> None:
        self.client = await self.make_client(self.raw)
        self.agi_port = self.client.app[AGI].port
        base = f"http://{self.client.host}:{self.client.port}"
        self.http = aiohttp.ClientSession(base_url=base, headers=BROWSER)

    async def stop(self) -> None:
        await self.http.close()
        await self.client.close()

    async def wait(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)

    async def close(self) -> None:
        await super().close()
        if hasattr(self, "client"):
            await self.client.close()


class Daemon(Gateway):
    """`ctgw serve` in a process with the real clock; a restart is SIGTERM and a new process."""

    def __init__(self, tmp_path: Path, share: bool, store_url: str = "") -> None:
        self.port, self.agi_port = free_port(), free_port()
        self.db_path = tmp_path / "ctgw.db"
        self.store_url = store_url or f"sqlite:///{self.db_path}"
        self.config = tmp_path / "gateway.toml"
        timing = "\n".join(f"{key} = {value}" for key, value in TIMING.items())
        numbers = ", ".join(f'"{n}"' for n in POOL[:2])
        self.config.write_text(
            f"""
[http]
port = {self.port}
[store]
url = "{self.store_url}"
[agi]
host = "127.0.0.1"
port = {self.agi_port}
# Generous: a route past the deadline takes the dialplan's fallback, not what this tests.
deadline_ms = 5000
[[sites]]
key = "demo"
destination = "PJSIP/agent1"
[[sites.pools]]
target = "+14155550100"
numbers = [{numbers}]
overflow = "{OVERFLOW}"
share_called_numbers = {"true" if share else "false"}
{timing}
[sites.limits]
client_per_minute = 0
client_live_numbers = 0
""",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = await start_daemon(self.config, self.port)
        self.http = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{self.port}", headers=BROWSER)

    async def stop(self) -> None:
        assert self.proc is not None
        await self.http.close()
        code, log = await asyncio.to_thread(stop_daemon, self.proc)
        assert code == 0, log[-3000:]

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        await super().close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["in_process", "daemon"])
async def make_gateway(
    request: pytest.FixtureRequest, make_client: Any, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Callable[[bool], Awaitable[Gateway]]]:
    """A started gateway of each kind with the test's pool, sharing or not; closed after."""
    started: list[Gateway] = []

    async def make(share: bool) -> Gateway:
        gateway: Gateway
        if request.param == "daemon":
            gateway = Daemon(tmp_path, share)
        else:
            raw = demo_config(tmp_path, **TIMING, numbers=POOL[:2], share_called_numbers=share)
            gateway = InProcess(make_client, raw, clock)
        started.append(gateway)
        await gateway.start()
        return gateway

    yield make
    for gateway in started:
        await gateway.close()


# --- what a page and Asterisk do ------------------------------------------------------------


async def visit(gateway: Gateway, visitor_id: str) -> dict[str, str]:
    """A new session of `visitor_id`: its id and the one number it was shown, with its kind."""
    resp = await open_session(gateway.http, visitor_id=visitor_id)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    (offer,) = body["numbers"]
    return {"session_id": body["session_id"], "number": offer["number"], "kind": offer["kind"]}


async def heartbeat(gateway: Gateway, session: dict[str, str]) -> int:
    async with gateway.http.post(f"/v1/sessions/{session['session_id']}/heartbeat") as resp:
        return resp.status


async def call(gateway: Gateway, dialed: str, caller: str, linkedid: str) -> dict[str, Any]:
    """A call through FastAGI as Asterisk speaks it, routed; its stored row."""
    server = types.SimpleNamespace(port=gateway.agi_port)
    env = call_env(dialed, caller, linkedid=linkedid)
    variables = routed(await fake_asterisk(server, env, timeout=15))  # type: ignore[arg-type]
    assert variables.get("CTGW_ROUTE") == "PJSIP/agent1", variables
    (row,) = await gateway.rows("SELECT * FROM calls WHERE call_id = ?", variables["CTGW_CALL_ID"])
    attribution = json.loads(row["attribution"])
    rival = ("other_session_id", "other_visitor_id", "confidence")
    return {**row, **{key: attribution.get(key) for key in rival}}


async def shared_metric(gateway: Gateway) -> str:
    async with gateway.http.get("/metrics") as resp:
        text = await resp.text()
    return next((line for line in text.splitlines() if line.startswith("ctgw_pool_shared")), "")


def kept(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a stored call was decided as: kind, session, visitor, rival session and visitor."""
    return (
        row["attribution_kind"],
        row["session_id"],
        row["visitor_id"],
        row["other_session_id"],
        row["other_visitor_id"],
    )


# --- the scenario -----------------------------------------------------------------------------


async def first_holder_calls_and_a_visit_leaves(gateway: Gateway) -> tuple[dict[str, str], ...]:
    """A holds N1, heartbeats and calls from P1 (active); X takes N2 and leaves silently."""
    a = await visit(gateway, "visitor-aaaa")
    assert (a["number"], a["kind"]) == (N1, "pool")
    assert await heartbeat(gateway, a) == 200
    first = await call(gateway, N1, P1, "1.0")
    assert kept(first) == ("active", a["session_id"], "visitor-aaaa", None, None)
    x = await visit(gateway, "visitor-xxxx")
    assert (x["number"], x["kind"]) == (N2, "pool")
    await gateway.wait(LEFT)  # X never heartbeats: its lease ends; A's lives on
    assert await heartbeat(gateway, a) == 200
    assert await heartbeat(gateway, x) == 410
    return a, x


async def test_a_called_number_is_shared_and_each_call_finds_its_visit(
    make_gateway: Callable[[bool], Awaitable[Gateway]],
) -> None:
    """B shares N1 with A (who called) rather than take X's number: both heartbeat, A's phone
    reaches A and a new phone B, each `probable` with the other as rival; after a restart both
    still hold N1 and a third visitor gets X's number, not N1."""
    gateway = await make_gateway(True)
    a, x = await first_holder_calls_and_a_visit_leaves(gateway)

    b = await visit(gateway, "visitor-bbbb")
    assert (b["number"], b["kind"]) == (N1, "pool")
    assert await heartbeat(gateway, a) == 200
    assert await heartbeat(gateway, b) == 200
    assert await shared_metric(gateway) == (
        f'ctgw_pool_shared_total{{pool="{POOL_ID}",site="demo"}} 1'
    )

    again = await call(gateway, N1, P1, "2.0")
    assert kept(again) == (
        "probable",
        a["session_id"],
        "visitor-aaaa",
        b["session_id"],
        "visitor-bbbb",
    )
    stranger = await call(gateway, N1, P2, "3.0")
    assert kept(stranger) == (
        "probable",
        b["session_id"],
        "visitor-bbbb",
        a["session_id"],
        "visitor-aaaa",
    )
    assert 0.5 < stranger["confidence"] < 1

    await gateway.restart()
    assert await heartbeat(gateway, a) == 200
    assert await heartbeat(gateway, b) == 200
    c = await visit(gateway, "visitor-cccc")
    assert (c["number"], c["kind"]) == (N2, "pool")  # N1 has two live leases: never a third
    assert await heartbeat(gateway, a) == 200
    assert await heartbeat(gateway, b) == 200
    # Who called from which phone came back from the store: each phone still finds its visit.
    assert kept(await call(gateway, N1, P1, "4.0"))[1] == a["session_id"]
    assert kept(await call(gateway, N1, P2, "5.0"))[1] == b["session_id"]

    # The store: two overlapping leases of N1, accepted as a share; no double lease.
    of_n1 = await gateway.rows("SELECT * FROM leases WHERE number = ? ORDER BY started_at", N1)
    leases = {row["session_id"]: row for row in of_n1}
    assert list(leases) == [a["session_id"], b["session_id"]]
    first_lease, second_lease = leases.values()
    assert first_lease["started_at"] < second_lease["started_at"] < first_lease["until"]
    overlaps = await gateway.rows(OVERLAPS)
    assert [(r["lease_id"], r["earlier_id"]) for r in overlaps] == [
        (second_lease["lease_id"], first_lease["lease_id"])
    ]
    assert await gateway.rows(DOUBLE_LEASES) == []
    by_number = await gateway.rows("SELECT number, session_id FROM leases ORDER BY started_at")
    assert [(r["number"], r["session_id"]) for r in by_number] == [
        (N1, a["session_id"]),
        (N2, x["session_id"]),
        (N1, b["session_id"]),
        (N2, c["session_id"]),
    ]


async def test_a_pool_that_does_not_share_leases_the_silent_visits_number(
    make_gateway: Callable[[bool], Awaitable[Gateway]],
) -> None:
    """`share_called_numbers = false`: B gets X's cooling number, nothing is counted as shared
    and no two leases of a number overlap."""
    gateway = await make_gateway(False)
    await first_holder_calls_and_a_visit_leaves(gateway)
    b = await visit(gateway, "visitor-bbbb")
    assert (b["number"], b["kind"]) == (N2, "pool")
    assert await shared_metric(gateway) == ""
    assert await gateway.rows(OVERLAPS) == []


async def test_a_returning_visitor_keeps_the_number_it_shares(
    make_gateway: Callable[[bool], Awaitable[Gateway]],
) -> None:
    """A opens a new session while B shares A's number: A gets N1 again (its old session ends),
    B keeps it; the store accepts A's new lease beside B's, each phone finds its visit, and a
    third visitor does not get N1."""
    gateway = await make_gateway(True)
    a, _ = await first_holder_calls_and_a_visit_leaves(gateway)
    b = await visit(gateway, "visitor-bbbb")
    assert b["number"] == N1
    assert await heartbeat(gateway, b) == 200
    await gateway.wait(1)
    back = await visit(gateway, "visitor-aaaa")
    assert (back["number"], back["kind"]) == (N1, "pool")
    assert await heartbeat(gateway, a) == 410
    assert await heartbeat(gateway, back) == 200
    assert await heartbeat(gateway, b) == 200
    assert kept(await call(gateway, N1, P1, "2.0"))[:4] == (
        "probable",
        back["session_id"],
        "visitor-aaaa",
        b["session_id"],
    )
    assert kept(await call(gateway, N1, P3, "3.0"))[:4] == (
        "probable",
        b["session_id"],
        "visitor-bbbb",
        back["session_id"],
    )
    overlaps = await gateway.rows(OVERLAPS)
    assert [(r["session_id"], r["earlier_visitor"]) for r in overlaps] == [
        (b["session_id"], "visitor-aaaa"),
        (back["session_id"], "visitor-bbbb"),
    ]
    assert await gateway.rows(DOUBLE_LEASES) == []
    c = await visit(gateway, "visitor-cccc")
    assert c["number"] != N1
