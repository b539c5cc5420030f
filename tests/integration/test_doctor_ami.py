"""`ctgw doctor`'s live AMI check against the real Asterisk 22: what the running Asterisk grants
the shipped ctgw user, the click-to-call user (with originate), one without the `call` read class
and the lab's all-powerful test user; a wrong secret and a closed port give a clear error."""

from __future__ import annotations

import asyncio

import pytest

from gateway.settings import AmiSettings
from gateway.telephony.doctor import Finding
from gateway.telephony.doctor_ami import check_ami_user
from tests.lab.ami import TestAmi
from tests.lab.asterisk import (
    AMI_SECRET,
    AMI_USER,
    C2C_AMI_USER,
    CTGW_AMI_SECRET,
    DEAF_AMI_USER,
    AsteriskLab,
    free_port,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(60)]


def settings(lab: AsteriskLab, user: str, secret: str = CTGW_AMI_SECRET) -> AmiSettings:
    return AmiSettings(port=lab.ports.ami, username=user, secret=secret, enabled=True)


def codes(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.level, f.code) for f in findings}


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level != "ok"]


async def doctor_during_a_call(lab: AsteriskLab, ami: TestAmi, user: str) -> list[Finding]:
    """The check of `user` while a short call starts and ends under its watch."""

    async def call_soon() -> None:
        await asyncio.sleep(0.3)
        await ami.action(
            "Originate",
            Channel="Local/sales@test-dest",
            Application="Wait",
            Data="1",
            Async="true",
        )

    calling = asyncio.create_task(call_soon())
    try:
        return await check_ami_user(settings(lab, user), click_to_call=False, watch_s=5)
    finally:
        await calling


async def test_shipped_user_has_what_ctgw_needs_and_gets_call_events(
    asterisk: AsteriskLab, ami: TestAmi
) -> None:
    findings = await doctor_during_a_call(asterisk, ami, "ctgw")
    assert problems(findings) == []
    assert ("ok", "ami_live_call_events") in codes(findings)


async def test_user_without_the_call_read_class_is_an_error(
    asterisk: AsteriskLab, ami: TestAmi
) -> None:
    findings = await doctor_during_a_call(asterisk, ami, DEAF_AMI_USER)
    assert codes(problems(findings)) == {("error", "ami_live_no_call_events")}
    assert "add `call` to its read classes" in problems(findings)[0].message


async def test_click_to_call_needs_originate_and_only_then(asterisk: AsteriskLab) -> None:
    """ctgw without originate: an error when click-to-call is on; ctgw-c2c with originate: a
    least-privilege warning when it is off, nothing when it is on."""
    without = await check_ami_user(settings(asterisk, "ctgw"), click_to_call=True, watch_s=0)
    assert codes(problems(without)) == {("error", "ami_live_missing_right")}
    assert "may not run Originate" in problems(without)[0].message
    needed = await check_ami_user(settings(asterisk, C2C_AMI_USER), click_to_call=True, watch_s=0)
    assert problems(needed) == []
    unneeded = await check_ami_user(
        settings(asterisk, C2C_AMI_USER), click_to_call=False, watch_s=0
    )
    assert codes(problems(unneeded)) == {("warning", "ami_live_unneeded_originate")}


async def test_all_powerful_user_is_warned_about(asterisk: AsteriskLab) -> None:
    findings = await check_ami_user(
        settings(asterisk, AMI_USER, AMI_SECRET), click_to_call=True, watch_s=0
    )
    assert codes(problems(findings)) == {
        ("warning", "ami_live_dangerous_rights"),
        ("warning", "ami_live_reads_system"),
    }
    assert "Command (command" in problems(findings)[0].message


async def test_wrong_secret_and_closed_port_are_clear_errors(asterisk: AsteriskLab) -> None:
    refused = await check_ami_user(
        settings(asterisk, "ctgw", "not-the-secret"), click_to_call=False, watch_s=0
    )
    assert codes(refused) == {("error", "ami_login_refused")}
    assert "Authentication failed" in refused[0].message
    closed = AmiSettings(port=free_port(), username="ctgw", secret="x", enabled=True)
    unreachable = await check_ami_user(closed, click_to_call=False, watch_s=0)
    assert codes(unreachable) == {("error", "ami_unreachable")}
    assert "cannot connect to AMI at 127.0.0.1:" in unreachable[0].message
