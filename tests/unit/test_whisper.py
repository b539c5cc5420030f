"""Whisper: the text the agent hears, the AGI variables that carry it and the site setting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.store.database import Database
from gateway.store.sites import load_sites, seed_sites
from gateway.telephony.agi import RouteDecision, answer_variables, start_agi_server
from gateway.telephony.whisper import WHISPER_MAX_CHARS, whisper_for, whisper_text
from tests.unit.test_agi import env_block, fake_asterisk

SPOKEN = re.compile(r"[A-Za-z0-9]+( [A-Za-z0-9]+)*")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("google spring", "google spring"),
        ("google / cpc", "google cpc"),
        ("unattributed", "unattributed"),
        ("newsletter black friday deals", "newsletter black"),
        ("facebook springsale2026", "facebook"),
        ("averyveryverylongsourcename", "averyveryverylon"),
        ("google.com (organic)", "google com"),
        ("", ""),
        (" ./-() ", ""),
    ],
)
def test_whisper_text_keeps_whole_safe_words_within_sixteen_chars(label, expected) -> None:
    assert whisper_text(label) == expected


@pytest.mark.parametrize(
    "label",
    [
        'Eve"),Hangup()\n',
        "${SHELL(rm -rf /)}",
        "a^b,c|d;e&f",
        "caf\u00e9 \u0433\u0443\u0433\u043b \u2028 x",
        "\x00\r\n\t",
        "x" * 1000,
    ],
)
def test_whisper_text_is_only_letters_digits_and_single_spaces(label) -> None:
    """Whatever the label holds, nothing the dialplan could read as syntax gets through."""
    text = whisper_text(label)
    assert len(text) <= WHISPER_MAX_CHARS
    assert text == "" or SPOKEN.fullmatch(text), text


def test_a_site_with_whisper_off_gets_no_whisper() -> None:
    assert whisper_for(False, "google spring") == ""
    assert whisper_for(True, "google spring") == "google spring"


def test_answer_variables_put_the_whisper_before_the_route() -> None:
    """CTGW_ROUTE stays last: a broken-off exchange never dials with half the labels."""
    decision = RouteDecision("PJSIP/agent1", "call-1", "google spring", "google spring")
    assert answer_variables(decision) == [
        ("CTGW_CALL_ID", "call-1"),
        ("CTGW_SOURCE", "google spring"),
        ("CTGW_WHISPER", "google spring"),
        ("CTGW_ROUTE", "PJSIP/agent1"),
    ]


def test_no_whisper_means_the_three_variables_as_before() -> None:
    """Whisper off (or nothing speakable) costs no extra AGI round trip."""
    for whisper in ("", "  ", "./()"):
        decision = RouteDecision("PJSIP/agent1", "call-1", "billboard", whisper)
        assert [name for name, _ in answer_variables(decision)] == [
            "CTGW_CALL_ID",
            "CTGW_SOURCE",
            "CTGW_ROUTE",
        ]


async def test_the_agi_server_cleans_a_deciders_whisper_and_sends_route_last() -> None:
    """Even a decider returning syntax in its whisper sends letters, digits and spaces only."""

    async def decide(_request):
        return RouteDecision("PJSIP/agent1", "call-1", "x", 'Eve"),Hangup(),${EXTEN}')

    server = await start_agi_server("127.0.0.1", 0, decide, deadline_ms=300)
    try:
        commands = await fake_asterisk(server, env_block())
    finally:
        await server.close()
    assert commands == [
        'SET VARIABLE CTGW_CALL_ID "call-1"',
        'SET VARIABLE CTGW_SOURCE "x"',
        'SET VARIABLE CTGW_WHISPER "Eve Hangup EXTEN"',
        'SET VARIABLE CTGW_ROUTE "PJSIP/agent1"',
    ]


def _site(**extra: object) -> dict[str, object]:
    return {"key": "demo", "destination": "PJSIP/agent1", **extra}


def test_whisper_is_off_by_default_and_a_boolean() -> None:
    assert parse_config({"sites": [_site()]}).sites[0].whisper is False
    assert parse_config({"sites": [_site(whisper=True)]}).sites[0].whisper is True
    with pytest.raises(ConfigError, match="whisper"):
        parse_config({"sites": [_site(whisper="yes")]})


async def test_the_site_setting_survives_the_store(tmp_path: Path) -> None:
    """Seeded from the config, loaded back as the SiteEntry the router reads."""
    raw = {"sites": [_site(whisper=True), {**_site(), "key": "quiet"}]}
    config = parse_config(raw)
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        await seed_sites(db, config, datetime.now(UTC))
        sites = await load_sites(db)
    finally:
        await db.close()
    assert (sites["demo"].whisper, sites["quiet"].whisper) == (True, False)
