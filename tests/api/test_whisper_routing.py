"""Whisper in the real app's call path: the site setting decides whether CTGW_WHISPER is set."""

from __future__ import annotations

from pathlib import Path

from gateway.appkeys import AGI
from tests.api.conftest import demo_config, open_session
from tests.api.test_call_routing import call_env, routed
from tests.unit.test_agi import fake_asterisk


async def test_a_whisper_site_sets_the_source_as_whisper_before_the_route(
    make_client, tmp_path: Path
) -> None:
    raw = demo_config(tmp_path)
    raw["sites"][0]["whisper"] = True
    client = await make_client(raw)
    url = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=spring"
    number = (await (await open_session(client, url=url)).json())["numbers"][0]["number"]
    commands = await fake_asterisk(client.app[AGI], call_env(number))
    assert [c.split(" ")[2] for c in commands] == [
        "CTGW_CALL_ID",
        "CTGW_SOURCE",
        "CTGW_WHISPER",
        "CTGW_ROUTE",
    ]
    assert routed(commands)["CTGW_WHISPER"] == "google spring"


async def test_a_retried_lookup_gets_the_same_whisper(make_client, tmp_path: Path) -> None:
    raw = demo_config(tmp_path)
    raw["sites"][0]["whisper"] = True
    client = await make_client(raw)
    first = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="7.0")))
    again = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="7.0")))
    assert first["CTGW_WHISPER"] == again["CTGW_WHISPER"] == "billboard"
    assert first["CTGW_CALL_ID"] == again["CTGW_CALL_ID"]


async def test_a_hostile_utm_source_whispers_only_letters_and_digits(
    make_client, tmp_path: Path
) -> None:
    """A visitor's utm_source reaches the agent's ear only as letters, digits and spaces."""
    raw = demo_config(tmp_path)
    raw["sites"][0]["whisper"] = True
    client = await make_client(raw)
    url = "https://www.demo-plumbing.example/?utm_source=a%22%29%2CHangup%28%29%24%7BX%7D"
    number = (await (await open_session(client, url=url)).json())["numbers"][0]["number"]
    whisper = routed(await fake_asterisk(client.app[AGI], call_env(number)))["CTGW_WHISPER"]
    assert whisper and all(ch.isascii() and (ch.isalnum() or ch == " ") for ch in whisper)


async def test_whisper_is_off_by_default(client) -> None:
    """The demo site as configured elsewhere: no CTGW_WHISPER, the three variables as before."""
    commands = await fake_asterisk(client.app[AGI], call_env("+14155550150"))
    assert [c.split(" ")[2] for c in commands] == ["CTGW_CALL_ID", "CTGW_SOURCE", "CTGW_ROUTE"]
