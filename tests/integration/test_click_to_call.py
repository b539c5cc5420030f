"""Click-to-call for real: Asterisk 22, the agent's baresip phone (PJSIP/agent1) and a customer's
(PJSIP/customer1). The click rings the agent first; the agent auto-answers; then the customer
rings; the record says outbound with the agent; the contact's open task is closed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import AMI, DB
from gateway.config import parse_config
from gateway.store.agents import set_endpoints
from gateway.store.database import Write
from gateway.store.staff import create_user
from tests.api.conftest import demo_config
from tests.integration.conftest import _missing
from tests.lab.ami import TestAmi
from tests.lab.asterisk import (
    C2C_AMI_USER,
    CTGW_AMI_SECRET,
    CUSTOMER,
    CUSTOMER_SECRET,
    OUTBOUND_CONTEXT,
    AsteriskLab,
    free_port,
)
from tests.lab.phone import AgentPhone, baresip_path

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(90)]

PASSWORD = "correct horse battery staple"
NUMBER = "+14155550177"


def registered_customer(
    asterisk: AsteriskLab, phone_class: type[AgentPhone] = AgentPhone
) -> Iterator[AgentPhone]:
    """The customer's baresip phone (PJSIP/customer1), registered, stopped afterwards (the body
    of each click-to-call test file's `customer_phone` fixture)."""
    if baresip_path() is None:
        _missing("baresip is not installed: run tests/lab/setup.sh as root")
    phone = phone_class(
        CUSTOMER,
        CUSTOMER_SECRET,
        sip_port=asterisk.ports.sip,
        local_port=free_port(socket.SOCK_DGRAM),
        ctrl_port=free_port(),
    )
    try:
        phone.start()
        phone.wait_registered(lambda: asterisk.rx("pjsip show contacts"))
        yield phone
    finally:
        phone.stop()


def click_to_call_config(
    tmp_path: Path, asterisk: AsteriskLab, context: str = OUTBOUND_CONTEXT
) -> dict[str, Any]:
    """The demo config with AMI on the lab's Asterisk and click-to-call through `context`."""
    raw = demo_config(tmp_path)
    raw["ami"] = {
        "enabled": True,
        "port": asterisk.ports.ami,
        "username": C2C_AMI_USER,
        "secret": CTGW_AMI_SECRET,
    }
    raw["calls"] = {
        "click_to_call": True,
        "outbound_context": context,
        "outbound_caller_id": "+14155550100",
    }
    return raw


async def following_gateway(aiohttp_client: Any, raw: dict[str, Any]) -> TestClient:
    """A gateway on `raw`, once its AMI connection is up."""
    client = await aiohttp_client(create_app(parse_config(raw, source="test")))
    async with asyncio.timeout(15):
        while not (AMI in client.app and client.app[AMI].connected):
            await asyncio.sleep(0.05)
    return client


@pytest.fixture(scope="module")
def customer_phone(asterisk: AsteriskLab) -> Iterator[AgentPhone]:
    yield from registered_customer(asterisk)


@pytest.fixture
async def gateway(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    return await following_gateway(aiohttp_client, click_to_call_config(tmp_path, asterisk))


async def seed_contact(client: TestClient) -> None:
    """A contact of site demo with an earlier missed call and its open follow-up task."""
    at = "2026-11-30T10:00:00.000000Z"
    await client.app[DB].write(
        [
            Write("INSERT INTO contacts (contact_id, number) VALUES ('k1', ?)", (NUMBER,)),
            Write(
                "INSERT INTO calls (call_id, site, dialed, caller, started_at, ended_at, state,"
                " contact_id, attribution_kind) VALUES ('c0', 'demo', '+14155550101', ?, ?, ?,"
                " 'missed', 'k1', 'static')",
                (NUMBER, at, at),
            ),
            Write(
                "INSERT INTO tasks (task_id, site, contact_id, call_id, due_at, created_at)"
                " VALUES ('t-c0', 'demo', 'k1', 'c0', ?, ?)",
                (at, at),
            ),
        ]
    )


async def login(client: TestClient, email: str) -> str:
    """Log in as a new agent of demo on PJSIP/agent1; returns the session's CSRF token."""
    db = client.app[DB]
    user = await create_user(
        db,
        email=email,
        name="A",
        role="agent",
        sites=["demo"],
        password=PASSWORD,
        at=datetime.now(UTC),
    )
    await set_endpoints(db, user.user_id, ["PJSIP/agent1"])
    resp = await client.post(
        "/staff/login", data={"email": email, "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    page = await (await client.get("/staff/contacts")).text()
    return page.split('name="csrf" value="')[1].split('"')[0]


async def dial_begins(ami: TestAmi, call_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The click-to-call's two DialBegins: the agent's phone first, then the customer's."""
    first = await ami.wait_for(
        lambda e: e.get("Event") == "DialBegin" and e.get("DestLinkedid") == call_id, timeout=15
    )
    second = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialBegin"
            and e.get("Linkedid") == call_id
            and e.get("DestChannel", "").startswith(f"PJSIP/{CUSTOMER}-")
        ),
        timeout=15,
    )
    return first, second


async def hang_up_when_answered(
    client: TestClient, ami: TestAmi, call_id: str, *, timeout: float = 15, talk: float = 1
) -> dict[str, Any]:
    """Once the customer answered (within `timeout`), talk `talk` s, hang the agent up: the
    call's record once it has ended."""
    await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("Linkedid") == call_id
            and e.get("DialStatus") == "ANSWER"
            and e.get("DestChannel", "").startswith(f"PJSIP/{CUSTOMER}-")
        ),
        timeout=timeout,
    )
    await asyncio.sleep(talk)
    await ami.action("Hangup", Channel="/^PJSIP/agent1-.*$/")
    db = client.app[DB]
    async with asyncio.timeout(15):
        while True:
            row = await db.fetchone("SELECT * FROM calls WHERE call_id = ?", (call_id,))
            if row["ended_at"]:
                return dict(row)
            await asyncio.sleep(0.1)


async def closed_task(client: TestClient, task_id: str) -> dict[str, Any]:
    """The task once it is closed (a call's answer closes it)."""
    async with asyncio.timeout(15):
        while True:
            task = await client.app[DB].fetchone(
                "SELECT closed_at, closed_by FROM tasks WHERE task_id = ?", (task_id,)
            )
            if task["closed_at"]:
                return dict(task)
            await asyncio.sleep(0.1)


async def test_click_rings_agent_then_customer_and_closes_the_task(
    gateway: TestClient, ami: TestAmi, agent_phone: AgentPhone, customer_phone: AgentPhone
) -> None:
    await seed_contact(gateway)
    csrf = await login(gateway, "agent@example.com")
    resp = await gateway.post(
        "/staff/contacts/k1/call", data={"site": "demo", "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    call_id = resp.headers["X-Ctgw-Call-Id"]
    first, second = await dial_begins(ami, call_id)
    assert first.get("DestChannel", "").startswith("PJSIP/agent1-")
    assert second.get("Channel", "").startswith("PJSIP/agent1-")
    row = await hang_up_when_answered(gateway, ami, call_id)
    await closed_task(gateway, "t-c0")
    assert row["direction"] == "outbound" and row["state"] == "answered"
    assert row["agent"] == "PJSIP/agent1" and row["caller"] == NUMBER
    assert row["attribution_kind"] == "outbound"
