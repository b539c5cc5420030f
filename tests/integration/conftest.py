"""Fixtures for the real-Asterisk tests: one Asterisk per session, a route server per test."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from gateway.telephony.agi import AgiRequest, AgiServer, RouteDecision, start_agi_server
from tests.lab.ami import TestAmi
from tests.lab.asterisk import (
    AGENT,
    AGENT2,
    AGENT2_SECRET,
    AGENT_SECRET,
    AMI_SECRET,
    AMI_USER,
    AsteriskLab,
    LabPorts,
    asterisk_root,
    free_port,
    remove_stale_labs,
)
from tests.lab.phone import AgentPhone, baresip_path


def _missing(reason: str) -> None:
    """Skip outside CI; under CI=true a missing real part is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real parts may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskLab]:
    """A real Asterisk 22 with the project's dialplan, booted once per test session."""
    root = asterisk_root()
    if root is None:
        _missing("no Asterisk root filesystem: run tests/lab/setup.sh as root")
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        _missing("the Asterisk lab needs root and chroot")
    assert root is not None
    remove_stale_labs(root)
    ports = LabPorts(
        ami=free_port(),
        sip=free_port(socket.SOCK_DGRAM),
        agi=free_port(),
        rtp_start=30000 + (os.getpid() % 100) * 200,
    )
    lab = AsteriskLab(root, ports)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def agent_phone(asterisk: AsteriskLab) -> Iterator[AgentPhone]:
    """A baresip phone registered as the lab's agent1, auto-answering."""
    yield from _registered_phone(asterisk, AGENT, AGENT_SECRET)


@pytest.fixture(scope="session")
def agent2_phone(asterisk: AsteriskLab) -> Iterator[AgentPhone]:
    """A second agent's baresip phone, registered as agent2, auto-answering."""
    yield from _registered_phone(asterisk, AGENT2, AGENT2_SECRET)


def _registered_phone(asterisk: AsteriskLab, user: str, secret: str) -> Iterator[AgentPhone]:
    if baresip_path() is None:
        _missing("baresip is not installed: run tests/lab/setup.sh as root")
    phone = AgentPhone(
        user,
        secret,
        sip_port=asterisk.ports.sip,
        local_port=free_port(socket.SOCK_DGRAM),
        ctrl_port=free_port(),
    )
    try:
        phone.start()
        try:
            phone.wait_registered(lambda: asterisk.rx("pjsip show contacts"))
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nasterisk:\n{asterisk.tail()}") from None
        yield phone
    finally:
        phone.stop()


@pytest.fixture
async def ami(asterisk: AsteriskLab) -> AsyncIterator[TestAmi]:
    """A logged-in AMI session that keeps every event."""
    client = await TestAmi.connect(asterisk.ports.ami, AMI_USER, AMI_SECRET)
    try:
        yield client
    finally:
        await client.close()


@dataclass
class RouteTable:
    """A test decider: a fixed route for every call, recording what it was asked."""

    route: str = "Local/sales@test-dest"
    source: str = "test"
    delay_s: float = 0.0
    requests: list[AgiRequest] = field(default_factory=list)

    async def __call__(self, request: AgiRequest) -> RouteDecision | None:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return RouteDecision(
            route=self.route, call_id=f"call-{request.linkedid}", source=self.source
        )


@pytest.fixture
def routes() -> RouteTable:
    return RouteTable()


@pytest.fixture
async def gateway(asterisk: AsteriskLab, routes: RouteTable) -> AsyncIterator[AgiServer]:
    """The FastAGI route server on the port the lab's dialplan calls, deciding with `routes`."""
    server = await start_agi_server("127.0.0.1", asterisk.ports.agi, routes, deadline_ms=300)
    try:
        yield server
    finally:
        await server.close()


def new_call_id() -> str:
    """A fresh id for Originate's ChannelId; the call's Linkedid will be this id."""
    return f"t-{uuid.uuid4().hex[:16]}"
