"""Two gateways in the dialplan: the second routes the call when the first does not answer,
and the caller still waits CTGW_LOOKUP_TIMEOUT (2 s in the lab) at most."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.appkeys import AMI
from gateway.config import parse_config
from gateway.telephony.agi import AgiRequest, AgiServer, RouteDecision, start_agi_server
from tests.api.conftest import demo_config
from tests.integration.conftest import RouteTable, new_call_id
from tests.integration.test_call_tracking import final_record, wait_until
from tests.integration.test_daemon import wait_healthy
from tests.integration.test_routing import CALLER, reached
from tests.lab.ami import TestAmi
from tests.lab.asterisk import CTGW_AMI_SECRET, PROJECT, AsteriskLab, free_port

pytestmark = pytest.mark.asterisk

DIALED = "+14155550123"
# The static number the `ctgw serve` configs below route.
STATIC = "4155550150"
# The bound for a call whose first gateway is down; the dialplan's own is 2 s.
BOUND_S = 3.0
# "At once": well under the 1 s a silent first gateway costs, with room for a loaded machine.
IMMEDIATE_S = 1.5


async def place_call(ami: TestAmi, dialed: str = DIALED) -> tuple[str, str, float]:
    """Place a call: its linkedid, the route it reached and the seconds it took to reach it."""
    call = new_call_id()
    start = time.monotonic()
    answer = await ami.originate(dialed, "test-inbound", CALLER, call)
    assert answer["Response"] == "Success"
    event = await ami.wait_for(reached(call), timeout=10)
    took = time.monotonic() - start
    print(f"\n  {call}: {event['Route']} in {took:.3f} s")
    return call, event["Route"], took


@pytest.fixture
def second_routes() -> RouteTable:
    return RouteTable(route="Local/second@test-dest", source="second")


@pytest.fixture
async def second_gateway(
    ami: TestAmi, asterisk: AsteriskLab, second_routes: RouteTable
) -> AsyncIterator[AgiServer]:
    """A second route server on its own port, named in CTGW_AGI_HOST2/PORT2 for this test."""
    port = free_port()
    server = await start_agi_server("127.0.0.1", port, second_routes, deadline_ms=300)
    async with second_gateway_named(ami, port):
        try:
            yield server
        finally:
            await server.close()


@asynccontextmanager
async def globals_set(ami: TestAmi, **values: str) -> AsyncIterator[None]:
    """Set dialplan globals for a block, then empty them again (as the lab ships them)."""
    for name, value in values.items():
        await ami.action("Setvar", Variable=name, Value=value)
    try:
        yield
    finally:
        for name in values:
            await ami.action("Setvar", Variable=name, Value="")


def second_gateway_named(ami: TestAmi, port: int) -> AbstractAsyncContextManager[None]:
    """CTGW_AGI_HOST2/PORT2 naming a second gateway on this port, for a block."""
    return globals_set(ami, CTGW_AGI_HOST2="127.0.0.1", CTGW_AGI_PORT2=str(port))


@pytest.fixture
def frozen_first(asterisk: AsteriskLab) -> Iterator[subprocess.Popen[bytes]]:
    """A first gateway in its own process on the lab's FastAGI port, frozen by SIGSTOP
    (its socket still accepts)."""
    command = [sys.executable, "-m", "tests.lab.agi_child", str(asterisk.ports.agi), "Local/a@b"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=PROJECT, start_new_session=True)
    try:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 10)[0], "agi_child did not start"
        assert child.stdout.readline() == b"ready\n"
        os.kill(child.pid, signal.SIGSTOP)
        yield child
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


async def test_both_up_the_first_gateway_routes(
    ami: TestAmi, gateway, routes: RouteTable, second_gateway, second_routes: RouteTable
):
    """With both gateways up the first routes, told its share (half of 2 s) as the wait; the
    second is never asked."""
    _, route, took = await place_call(ami)
    assert route == "sales"
    assert took < BOUND_S
    [request] = routes.requests
    assert request.lookup_timeout_s == 1.0
    assert second_routes.requests == []


@pytest.mark.parametrize("first", ["", "1.9"])
async def test_first_gateway_stopped_the_second_routes_within_3_s(
    ami: TestAmi, second_gateway, second_routes: RouteTable, first: str
):
    """The first gateway's port is closed (connection refused): the second is asked at once
    and routes the call, told the caller's whole wait. With a first part of 1.9 s of 2 the
    second is reached only because a refusal spends none of it (0.1 s left: no second ask)."""
    async with globals_set(ami, CTGW_LOOKUP_FIRST=first):
        _, route, took = await place_call(ami)
    assert route == "second"
    assert took < IMMEDIATE_S
    [request] = second_routes.requests
    assert request.lookup_timeout_s == 2.0
    assert request.dialed == DIALED
    assert request.caller == "+12025550100"


async def test_first_gateway_frozen_the_second_routes_after_its_share(
    ami: TestAmi, frozen_first: subprocess.Popen[bytes], second_gateway, second_routes
):
    """A first gateway frozen with SIGSTOP (its socket still accepts) holds the lookup for its
    share (1 s); then the second routes the call, within the caller's 2 s."""
    _, route, took = await place_call(ami)
    assert route == "second"
    assert 0.9 < took < BOUND_S
    assert len(second_routes.requests) == 1


async def test_both_gateways_down_the_fallback_at_once(ami: TestAmi, asterisk: AsteriskLab):
    """Neither gateway listens: the caller reaches the fallback at once."""
    async with second_gateway_named(ami, free_port()):
        _, route, took = await place_call(ami)
    assert route == "fallback"
    assert took < IMMEDIATE_S


async def test_a_shorter_first_share_asks_the_second_sooner(
    ami: TestAmi, frozen_first: subprocess.Popen[bytes], second_gateway, second_routes
):
    """CTGW_LOOKUP_FIRST=0.5: a frozen first gateway costs the caller half a second."""
    async with globals_set(ami, CTGW_LOOKUP_FIRST="0.5"):
        _, route, took = await place_call(ami)
    assert route == "second"
    assert 0.4 < took < 1.5
    [request] = second_routes.requests
    assert request.lookup_timeout_s == 2.0


@pytest.mark.parametrize("first", ["", "5", "0", "soon"])
async def test_both_gateways_frozen_the_fallback_within_the_lookup_timeout(
    ami: TestAmi, asterisk: AsteriskLab, first: str
):
    """Both gateways accept and never answer: the fallback after the first's share plus what
    is left, i.e. CTGW_LOOKUP_TIMEOUT (2 s), not twice it, whatever CTGW_LOOKUP_FIRST says
    (empty, zero or garbled: half; more than the whole: the whole, and no second ask)."""
    release = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    first = await asyncio.start_server(stall, "127.0.0.1", asterisk.ports.agi)
    port = free_port()
    second = await asyncio.start_server(stall, "127.0.0.1", port)
    try:
        async with second_gateway_named(ami, port), globals_set(ami, CTGW_LOOKUP_FIRST=first):
            _, route, took = await place_call(ami)
    finally:
        release.set()
        for server in (first, second):
            server.close()
            await server.wait_closed()
    assert route == "fallback"
    assert 1.9 < took < BOUND_S


async def test_an_answer_without_a_route_is_not_asked_again(
    ami: TestAmi, gateway: AgiServer, routes: RouteTable, second_gateway, second_routes
):
    """A first gateway that answers with no route has the last word: the second is not asked
    (it would record the call a second time) and the caller gets the fallback at once."""

    async def no_route(request: AgiRequest) -> RouteDecision | None:
        routes.requests.append(request)
        return None

    gateway._decide = no_route
    _, route, took = await place_call(ami)
    assert route == "fallback"
    assert took < IMMEDIATE_S
    assert len(routes.requests) == 1
    assert second_routes.requests == []


async def test_one_gateway_config_never_asks_a_second(
    ami: TestAmi, second_gateway, second_routes: RouteTable
):
    """With CTGW_AGI_HOST2 empty (as shipped) a second gateway listening on CTGW_AGI_PORT2 is
    never asked: the first gateway down means the fallback, as before."""
    async with globals_set(ami, CTGW_AGI_HOST2=""):
        _, route, took = await place_call(ami)
    assert route == "fallback"
    assert took < IMMEDIATE_S
    assert second_routes.requests == []


@asynccontextmanager
async def serving(tmp_path: Path, agi_port: int, route: str) -> AsyncIterator[Served]:
    """`ctgw serve` as operators run it, with its own SQLite store, until the block ends."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    http_port, store, config = free_port(), tmp_path / "ctgw.db", tmp_path / "gateway.toml"
    config.write_text(
        f'[http]\nport = {http_port}\n[store]\nurl = "sqlite:///{store}"\n'
        f'[agi]\nport = {agi_port}\n[[sites]]\nkey = "demo"\ndestination = "{route}"\n'
        '[[sites.static_numbers]]\nnumber = "+14155550150"\nsource = "billboard"\n',
        encoding="utf-8",
    )
    log = tmp_path / "ctgw.log"
    with log.open("wb") as out:  # a pipe nobody reads would fill up and freeze the daemon
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
        )
    try:
        await wait_healthy(http_port, proc, log)
        yield Served(proc, store)
    finally:
        if proc.poll() is None:  # a test may have stopped it already
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
        proc.wait(timeout=15)


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    store: Path

    async def route_of(self, linkedid: str) -> str | None:
        """The route this gateway's store recorded for the call, once committed, else None."""
        for _ in range(50):
            with closing(sqlite3.connect(self.store)) as db:
                row = db.execute("SELECT route FROM calls WHERE linkedid = ?", (linkedid,))
                found = row.fetchone()
            if found is not None:
                return str(found[0])
            await asyncio.sleep(0.1)
        return None


@asynccontextmanager
async def two_daemons(
    tmp_path: Path, asterisk: AsteriskLab, ami: TestAmi
) -> AsyncIterator[tuple[Served, Served]]:
    """Two `ctgw serve`: the first on the lab's FastAGI port, the second named in *2 globals."""
    port2 = free_port()
    async with (
        second_gateway_named(ami, port2),
        serving(tmp_path / "one", asterisk.ports.agi, "Local/sales@test-dest") as one,
        serving(tmp_path / "two", port2, "Local/second@test-dest") as two,
    ):
        yield one, two


async def test_ctgw_serve_first_stopped_the_second_routes_and_records(
    tmp_path: Path, asterisk: AsteriskLab, ami: TestAmi
):
    """Two `ctgw serve`, each with its own store: the first routes and records while up; once
    it is stopped (SIGTERM, port closed) the second routes and records the next call, <= 3 s."""
    async with two_daemons(tmp_path, asterisk, ami) as (one, two):
        first, route, _ = await place_call(ami, STATIC)
        assert route == "sales"
        assert await one.route_of(first) == "Local/sales@test-dest"
        one.proc.terminate()
        one.proc.wait(timeout=15)
        failed_over, route, took = await place_call(ami, STATIC)
        assert route == "second"
        assert took <= BOUND_S
        assert await two.route_of(failed_over) == "Local/second@test-dest"
        assert await two.route_of(first) is None


async def test_ctgw_serve_frozen_first_records_its_late_answer_as_gone_elsewhere(
    tmp_path: Path, asterisk: AsteriskLab, ami: TestAmi
):
    """The first `ctgw serve` frozen with SIGSTOP: the second routes the call after the first's
    share (1 s). Resumed, the first answers the call it held, late by the share it was told,
    so its store records the call as one that did not go to its route."""
    async with two_daemons(tmp_path, asterisk, ami) as (one, two):
        os.kill(one.proc.pid, signal.SIGSTOP)
        call, route, took = await place_call(ami, STATIC)
        assert route == "second"
        assert 0.9 < took <= BOUND_S
        assert await two.route_of(call) == "Local/second@test-dest"
        os.kill(one.proc.pid, signal.SIGCONT)
        assert await one.route_of(call) == "fallback"


async def test_the_second_gateway_follows_a_failed_over_call_to_its_end(
    aiohttp_client, tmp_path: Path, asterisk: AsteriskLab, ami: TestAmi, frozen_first
):
    """The whole second gateway (FastAGI and AMI following as the ctgw user) routes a call the
    frozen first held for its share, and completes its record from AMI: the two lookup legs
    (one still waiting on the frozen gateway) are not taken for the agent."""
    port2 = free_port()
    raw = demo_config(tmp_path)
    raw["agi"] = {"port": port2}
    ami_port = asterisk.ports.ami
    raw["ami"] = dict(enabled=True, port=ami_port, username="ctgw", secret=CTGW_AMI_SECRET)
    raw["sites"][0]["static_numbers"][0]["destination"] = "Local/second@test-dest"
    second = await aiohttp_client(create_app(parse_config(raw, source="test")))
    await wait_until(lambda: AMI in second.app and second.app[AMI].connected, 10)
    async with second_gateway_named(ami, port2):
        call, route, took = await place_call(ami, STATIC)
    assert route == "second"
    assert 0.9 < took <= BOUND_S
    record = await final_record(second, call)
    assert record["state"] == "answered"
    assert record["agent"] == "Local/second@test-dest"
    print(f"  ring {record['ring_seconds']} s, talk {record['talk_seconds']} s")
