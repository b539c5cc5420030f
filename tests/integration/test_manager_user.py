"""The shipped manager.conf user for ctgw has what the gateway needs and no more."""

from __future__ import annotations

import pytest

from tests.integration.conftest import new_call_id
from tests.lab.ami import TestAmi
from tests.lab.asterisk import CTGW_AMI_SECRET, AsteriskLab

pytestmark = pytest.mark.asterisk


async def test_ctgw_user_sees_the_call_lifecycle_and_can_resync(
    asterisk: AsteriskLab, ami, gateway
):
    """The ctgw user gets call events carrying CTGW_CALL_ID, no dialplan or user events, and
    may run CoreShowChannels."""
    ctgw = await TestAmi.connect(asterisk.ports.ami, "ctgw", CTGW_AMI_SECRET)
    try:
        listed = await ctgw.action("CoreShowChannels")
        assert listed["Response"] == "Success"
        call = new_call_id()
        await ami.originate("+14155550123", "test-inbound", '"A" <+12025550100>', call)
        hangup = await ctgw.wait_for(
            lambda e: (
                e.get("Event") == "Hangup"
                and e.get("Linkedid") == call
                and "@test-inbound-" in e.get("Channel", "")
                and e["Channel"].endswith(";2")  # the half that runs the inbound dialplan
            )
        )
        assert hangup["ChanVariable"] == f"CTGW_CALL_ID=call-{call}"
        seen = {e["Event"] for e in ctgw.events}
        assert "DialBegin" in seen
        assert not seen & {"VarSet", "UserEvent", "Newexten", "AGIExecStart"}
    finally:
        await ctgw.close()


async def test_ctgw_user_has_no_system_rights(asterisk: AsteriskLab):
    """The ctgw user may not run CLI commands or read Asterisk's config."""
    ctgw = await TestAmi.connect(asterisk.ports.ami, "ctgw", CTGW_AMI_SECRET)
    try:
        command = await ctgw.action("Command", Command="core show version")
        assert command["Response"] == "Error"
        config = await ctgw.action("GetConfig", Filename="manager.conf")
        assert config["Response"] == "Error"
    finally:
        await ctgw.close()
