"""Click-to-call through the shipped [ctgw-outbound] context (dialplans/ctgw.conf), not the lab's
own: with CTGW_OUTBOUND_TRUNK naming the customer's endpoint (standing in for a carrier trunk),
the click rings the agent, then the contact's number through that trunk, and is recorded as an
outbound call. With CTGW_RECORD=yes an answered outbound call gets an audio recording, as an
inbound one does (tests/integration/test_routing.py): "recorded like an inbound one"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB
from tests.integration.test_click_to_call import (
    NUMBER,
    click_to_call_config,
    following_gateway,
    hang_up_when_answered,
    login,
    registered_customer,
    seed_contact,
)
from tests.lab.ami import TestAmi
from tests.lab.asterisk import (
    CUSTOMER,
    AsteriskLab,
)
from tests.lab.phone import AgentPhone

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(90)]


class CarrierPhone(AgentPhone):
    """The customer's baresip, registered as customer1 (the "trunk"), that also answers calls
    to the contact's own number: a carrier trunk sends the dialed number as the request URI's
    user, which a plain baresip account refuses (404, "Unallocated number")."""

    def write_config(self) -> None:
        super().write_config()
        with (self.home / "accounts").open("a") as accounts:
            accounts.write(f"<sip:{NUMBER}@127.0.0.1;transport=udp>;regint=0;answermode=auto\n")


@pytest.fixture(scope="module")
def customer_phone(asterisk: AsteriskLab) -> Iterator[AgentPhone]:
    yield from registered_customer(asterisk, CarrierPhone)


@pytest.fixture
async def gateway(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    # the shipped context, also the default
    raw = click_to_call_config(tmp_path, asterisk, context="ctgw-outbound")
    return await following_gateway(aiohttp_client, raw)


@pytest.fixture
async def trunk(ami: TestAmi) -> AsyncIterator[None]:
    """[globals] as an operator sets them: the outbound trunk, and recording on."""
    await ami.action("Setvar", Variable="CTGW_OUTBOUND_TRUNK", Value=CUSTOMER)
    await ami.action("Setvar", Variable="CTGW_RECORD", Value="yes")
    try:
        yield
    finally:
        await ami.action("Setvar", Variable="CTGW_RECORD", Value="no")
        await ami.action("Setvar", Variable="CTGW_OUTBOUND_TRUNK", Value="")


async def _click_and_finish(client: TestClient, ami: TestAmi) -> dict[str, Any]:
    """Click to call contact k1, let the customer answer, hang up; the final record."""
    await seed_contact(client)
    csrf = await login(client, "agent@example.com")
    resp = await client.post(
        "/staff/contacts/k1/call", data={"site": "demo", "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    return await hang_up_when_answered(
        client, ami, resp.headers["X-Ctgw-Call-Id"], timeout=20, talk=1.5
    )


async def test_the_shipped_outbound_context_dials_the_contact_through_the_trunk(
    gateway: TestClient,
    ami: TestAmi,
    agent_phone: AgentPhone,
    customer_phone: AgentPhone,
    trunk: None,
) -> None:
    row = await _click_and_finish(gateway, ami)
    dials = [
        e.get("AppData", "")
        for e in ami.events
        if e.get("Linkedid") == row["call_id"] and e.get("Application") == "Dial"
    ]
    assert any(d.startswith(f"PJSIP/{NUMBER}@{CUSTOMER},") for d in dials), dials
    assert (row["direction"], row["state"], row["agent"]) == (
        "outbound",
        "answered",
        "PJSIP/agent1",
    )


async def test_an_answered_outbound_call_is_recorded_like_an_inbound_one(
    gateway: TestClient,
    ami: TestAmi,
    agent_phone: AgentPhone,
    customer_phone: AgentPhone,
    trunk: None,
) -> None:
    row = await _click_and_finish(gateway, ami)
    assert row["state"] == "answered"
    assert row["recording"], row


async def test_without_a_trunk_the_shipped_context_dials_nothing_and_says_why(
    gateway: TestClient,
    ami: TestAmi,
    agent_phone: AgentPhone,
) -> None:
    """CTGW_OUTBOUND_TRUNK left empty (as shipped): no `PJSIP/<number>@` with no endpoint is
    dialed; Asterisk logs why and hangs up the agent, and the record ends."""
    await seed_contact(gateway)
    csrf = await login(gateway, "agent@example.com")
    resp = await gateway.post(
        "/staff/contacts/k1/call", data={"site": "demo", "csrf": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    call_id = resp.headers["X-Ctgw-Call-Id"]
    said = await ami.wait_for(
        lambda e: e.get("Linkedid") == call_id and e.get("Application") == "Log", timeout=20
    )
    assert "CTGW_OUTBOUND_TRUNK is not set" in said.get("AppData", "")
    db = gateway.app[DB]
    async with asyncio.timeout(15):
        while not (await db.fetchone("SELECT ended_at FROM calls WHERE call_id = ?", (call_id,)))[
            "ended_at"
        ]:
            await asyncio.sleep(0.1)
    dials = [
        e for e in ami.events if e.get("Linkedid") == call_id and e.get("Application") == "Dial"
    ]
    assert dials == []
