"""`ctgw doctor`'s live AMI check where no real Asterisk is needed: peers that are not AMI, that
stall or hang up, and the findings drawn from what a user was granted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.settings import AmiSettings
from gateway.telephony.doctor_ami import AmiRights, ami_rights_findings, check_ami_user

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serving(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def check(handler: Handler) -> list[tuple[str, str]]:
    async for port in serving(handler):
        settings = AmiSettings(port=port, username="ctgw", secret="s", enabled=True)
        findings = await check_ami_user(settings, click_to_call=False, watch_s=0, timeout_s=0.5)
        return [(f.level, f.code) for f in findings]
    raise AssertionError("not served")


async def test_a_peer_that_is_not_ami_is_named_so() -> None:
    async def http(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    assert await check(http) == [("error", "ami_not_asterisk")]


async def test_a_peer_that_stalls_after_the_banner_is_a_timeout_not_a_hang() -> None:
    async def stall(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        await writer.drain()
        try:
            await asyncio.sleep(5)
        finally:
            writer.close()

    assert await check(stall) == [("error", "ami_no_answer")]


async def test_a_peer_that_hangs_up_at_login_is_named_so() -> None:
    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        await writer.drain()
        writer.close()

    assert await check(hang_up) == [("error", "ami_no_answer")]


def rights(*actions: str, changed: bool = False, calls: int = 0) -> AmiRights:
    return AmiRights(frozenset(actions), False, changed, calls)


def test_quiet_asterisk_leaves_the_read_class_to_manager_conf() -> None:
    findings = ami_rights_findings(rights("CoreShowChannels"), "ctgw", click_to_call=False)
    assert [(f.level, f.code) for f in findings] == [("ok", "ami_live_call_events_unchecked")]


def test_a_user_that_cannot_resync_is_an_error() -> None:
    findings = ami_rights_findings(rights("Originate", calls=2), "ctgw", click_to_call=True)
    assert [(f.level, f.code) for f in findings] == [
        ("error", "ami_live_missing_right"),
        ("ok", "ami_live_call_events"),
    ]
    assert "CoreShowChannels" in findings[0].message
