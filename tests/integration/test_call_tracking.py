"""The whole gateway next to a real Asterisk: a visit leases a number, the call to it is
attributed to that visit, routed to the agent's phone and recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.apikeys import create_key
from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from tests.api.conftest import demo_config, open_session
from tests.conftest import FakeClock
from tests.integration.conftest import new_call_id
from tests.lab.ami import TestAmi
from tests.lab.asterisk import AsteriskLab

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def daemon(aiohttp_client, tmp_path: Path, asterisk: AsteriskLab) -> TestClient:
    """The gateway app with its FastAGI server on the port the lab's dialplan calls."""
    raw = demo_config(tmp_path)
    raw["agi"] = {"port": asterisk.ports.agi}
    return await aiohttp_client(create_app(parse_config(raw, source="test"), clock=FakeClock()))


async def test_call_to_a_leased_number_is_attributed_and_answered_by_the_agent(
    daemon: TestClient, ami: TestAmi, agent_phone
):
    """A visitor's leased number, dialed through Asterisk, reaches the agent's phone, and the
    call record carries the visit's UTM fields and the caller."""
    url = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=spring&gclid=G9"
    session = await (await open_session(daemon, url=url)).json()
    number = session["numbers"][0]["number"]
    call = new_call_id()
    await ami.originate(number.removeprefix("+"), "test-inbound", '"Ada" <+12025550100>', call, 2)
    answered = await ami.wait_for(
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("Linkedid") == call
            and e.get("DestChannel", "").startswith("PJSIP/agent1-")
        ),
        timeout=15,
    )
    assert answered["DialStatus"] == "ANSWER"
    # channelvars puts the gateway's call id on the caller channel's events.
    call_id = answered["ChanVariable"].removeprefix("CTGW_CALL_ID=")
    assert call_id
    key = await create_key(daemon.app[DB], "test", datetime.now(UTC))
    record = await (
        await daemon.get(f"/v1/calls/{call_id}", headers={"Authorization": f"Bearer {key}"})
    ).json()
    assert record["dialed"] == number
    assert record["caller"] == "+12025550100" and record["caller_name"] == "Ada"
    attribution = record["attribution"]
    assert attribution["kind"] == "active"
    assert attribution["session_id"] == session["session_id"]
    assert (attribution["source"], attribution["campaign"], attribution["gclid"]) == (
        "google",
        "spring",
        "G9",
    )
