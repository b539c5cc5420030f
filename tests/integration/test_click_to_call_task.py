"""Click-to-call from a task, for real: Asterisk 22, the agent's baresip phone (PJSIP/agent1) and
the customer's (PJSIP/customer1). `POST /staff/tasks/{id}/call` rings the agent first, then the
task's contact; the record is outbound with the agent; the task is closed by the answered call
and the history says so. An agent of another site may not call that task's contact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from gateway.store.staff import create_user
from tests.integration.test_click_to_call import (  # noqa: F401 - a fixture
    NUMBER,
    PASSWORD,
    click_to_call_config,
    closed_task,
    customer_phone,
    dial_begins,
    following_gateway,
    hang_up_when_answered,
    login,
    seed_contact,
)
from tests.lab.ami import TestAmi
from tests.lab.asterisk import (
    AsteriskLab,
)
from tests.lab.phone import AgentPhone

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(90)]


@pytest.fixture
async def gateway(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    """As test_click_to_call's, with a second site, `shop`, whose agent may not call."""
    raw = click_to_call_config(tmp_path, asterisk)
    raw["sites"].append({"key": "shop", "destination": "PJSIP/agent1", "static_numbers": []})
    return await following_gateway(aiohttp_client, raw)


async def test_a_task_is_called_back_agent_first_and_the_answer_closes_it(
    gateway: TestClient,
    ami: TestAmi,
    agent_phone: AgentPhone,
    customer_phone: AgentPhone,  # noqa: F811
) -> None:
    await seed_contact(gateway)
    db = gateway.app[DB]
    # Someone of another site sees no such task, and nothing is dialed for them.
    await create_user(
        db,
        email="shop@example.com",
        name="S",
        role="agent",
        sites=["shop"],
        password=PASSWORD,
        at=datetime.now(UTC),
    )
    resp = await gateway.post(
        "/staff/login",
        data={"email": "shop@example.com", "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 303
    page = await (await gateway.get("/staff/tasks")).text()
    other_csrf = page.split('name="csrf" value="')[1].split('"')[0]
    denied = await gateway.post(
        "/staff/tasks/t-c0/call", data={"csrf": other_csrf}, allow_redirects=False
    )
    assert denied.status == 404
    gateway.session.cookie_jar.clear()

    csrf = await login(gateway, "agent@example.com")
    resp = await gateway.post("/staff/tasks/t-c0/call", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/staff/contacts/k1?site=demo"
    call_id = resp.headers["X-Ctgw-Call-Id"]
    first, second = await dial_begins(ami, call_id)
    assert first.get("DestChannel", "").startswith("PJSIP/agent1-")
    assert float(first["Timestamp"]) <= float(second["Timestamp"])
    row = await hang_up_when_answered(gateway, ami, call_id)
    task = await closed_task(gateway, "t-c0")
    assert (row["direction"], row["state"], row["agent"], row["caller"]) == (
        "outbound",
        "answered",
        "PJSIP/agent1",
        NUMBER,
    )
    assert task["closed_by"] == "system"
    history = await db.fetchall(
        "SELECT who, what FROM contact_history WHERE contact_id = 'k1' AND site = 'demo'"
    )
    assert ("system", "task") in [(h["who"], h["what"]) for h in history]
    # The call is listed on the contact's page like an inbound one.
    contact = await (await gateway.get("/staff/contacts/k1?site=demo")).text()
    assert f"/staff/calls/{call_id}" in contact
