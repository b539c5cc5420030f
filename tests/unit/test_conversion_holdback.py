"""How old a call must be before an ad platform takes its conversion (Google Ads refuses one
too recent: TOO_RECENT_CALL, TOO_RECENT_EVENT; Microsoft Advertising advises an hour after the
click), as a pure rule over one conversion and a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reports.conversions import (
    GOOGLE_CALL_MIN_AGE,
    GOOGLE_CLICK_MIN_AGE,
    MICROSOFT_CLICK_MIN_AGE,
    MIN_AGE,
    CallFacts,
    CountRule,
    conversion_for,
    too_recent,
)

START = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)


def _row(platform: str):
    call = CallFacts(
        call_id="c1",
        site="demo",
        caller="+12025550001",
        started_at=START,
        ended_at=START + timedelta(minutes=3),
        answered=True,
        talk_seconds=150.0,
        first_time=True,
        spam=False,
        test_call=False,
        inbound=True,
        gclid="Cj0KCQiA",
        msclkid="MS1",
    )
    row = conversion_for(platform, CountRule(), call)
    assert row is not None
    return row


def test_the_documented_ages_are_12_hours_for_calls_6_for_clicks_1_for_microsoft() -> None:
    assert GOOGLE_CALL_MIN_AGE == timedelta(hours=12)
    assert GOOGLE_CLICK_MIN_AGE == timedelta(hours=6)
    assert MICROSOFT_CLICK_MIN_AGE == timedelta(hours=1)
    assert dict(MIN_AGE) == {
        "google_ads_calls": GOOGLE_CALL_MIN_AGE,
        "google_ads": GOOGLE_CLICK_MIN_AGE,
        "microsoft_ads": MICROSOFT_CLICK_MIN_AGE,
    }


@pytest.mark.parametrize(
    ("platform", "age", "recent"),
    [
        ("google_ads_calls", timedelta(hours=11), True),
        ("google_ads_calls", timedelta(hours=12) - timedelta(seconds=1), True),
        ("google_ads_calls", timedelta(hours=12), False),  # "at least 12 hours": inclusive
        ("google_ads", timedelta(hours=5, minutes=59), True),
        ("google_ads", timedelta(hours=6), False),
        ("google_ads", timedelta(hours=11), False),
        # Microsoft: "wait an hour" after the click (advice; no refusal code exists).
        ("microsoft_ads", timedelta(minutes=1), True),
        ("microsoft_ads", timedelta(minutes=59, seconds=59), True),
        ("microsoft_ads", timedelta(hours=1), False),
    ],
)
def test_a_call_is_too_recent_until_it_started_the_platform_age_before(
    platform: str, age: timedelta, recent: bool
) -> None:
    # The age runs from the call's start, not its end (the conversion time).
    assert too_recent(_row(platform), START + age) is recent
