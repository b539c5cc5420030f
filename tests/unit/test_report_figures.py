"""Report figures on generated calls with known answers: the site's days across clock changes,
first and last touch, the period before, spam and test calls left out, visits and costs."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reports.call_figures import (
    DIMENSIONS,
    breakdown,
    compare,
    hour_weekday,
    per_agent,
    per_day,
    summary,
)
from reports.call_rows import ReportCall, Touch, click_network
from reports.costs import CostRow, cost_by, cost_total
from reports.period import MAX_DAYS, Period, PeriodError

NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def call(started: str, *, state: str = "answered", **extra) -> ReportCall:
    last = extra.pop("last", Touch("active", source="google", medium="cpc", campaign="brand"))
    values = {
        "call_id": f"c-{started}",
        "site": "demo",
        "started_at": at(started),
        "state": state,
        "agent": "alice" if state == "answered" else "",
        "ring_seconds": 5.0,
        "talk_seconds": 60.0 if state == "answered" else None,
        "first_time": True,
        "dialed": "+14155550101",
        "caller": "+12025550001",
        "spam": False,
        "test_call": False,
        "last_touch": last,
        "first_touch": extra.pop("first", last),
    }
    return ReportCall(**{**values, **extra})


def test_a_period_is_whole_local_days_and_the_dst_days_have_23_and_25_hours() -> None:
    spring = Period.parse("2026-03-08", "2026-03-08", "America/New_York")
    assert spring.start_utc == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert spring.end_utc == datetime(2026, 3, 9, 4, tzinfo=UTC)
    assert spring.end_utc - spring.start_utc == timedelta(hours=23)
    autumn = Period.parse("2026-11-01", "2026-11-01", "America/New_York")
    assert autumn.end_utc - autumn.start_utc == timedelta(hours=25)
    week = Period.parse("2026-03-07", "2026-03-13", "America/New_York")
    assert week.previous() == Period(date(2026, 2, 28), date(2026, 3, 6), NY)
    assert len(week.days()) == 7


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2026-3-1", "2026-03-02", "'since' must be a day written YYYY-MM-DD"),
        ("20260301", "2026-03-02", "'since' must be a day"),
        ("2026-02-30", "2026-03-02", "not a day of the calendar"),
        ("2026-03-02", "2026-03-01", "'until' (2026-03-01) is before 'since' (2026-03-02)"),
        ("2025-01-01", "2026-03-01", f"at most {MAX_DAYS}"),
    ],
)
def test_a_bad_period_is_refused_with_its_reason(since: str, until: str, message: str) -> None:
    with pytest.raises(PeriodError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Period.parse(since, until, "UTC")


def test_calls_near_local_midnight_land_on_the_sites_day_across_the_spring_change() -> None:
    calls = [
        call("2026-03-08T04:59:00+00:00"),  # 23:59 EST on the 7th
        call("2026-03-08T05:00:00+00:00"),  # 00:00 EST on the 8th
        call("2026-03-08T07:30:00+00:00"),  # 03:30 EDT (02:30 never happened)
        call("2026-03-09T03:59:00+00:00"),  # 23:59 EDT on the 8th
        call("2026-03-09T04:00:00+00:00"),  # 00:00 EDT on the 9th
    ]
    period = Period.parse("2026-03-07", "2026-03-09", "America/New_York")
    days = per_day(calls, period)
    assert [(d.day.isoformat(), d.calls) for d in days] == [
        ("2026-03-07", 1),
        ("2026-03-08", 3),
        ("2026-03-09", 1),
    ]
    grid = hour_weekday(calls, NY)
    sunday, monday, saturday = grid[6], grid[0], grid[5]
    assert saturday[23] == 1
    assert (sunday[0], sunday[2], sunday[3], sunday[23]) == (1, 0, 1, 1)
    assert monday[0] == 1
    assert sum(map(sum, grid)) == 5


def test_the_repeated_hour_of_the_autumn_change_counts_both_calls_in_hour_one() -> None:
    calls = [
        call("2026-11-01T04:00:00+00:00"),  # 00:00 EDT
        call("2026-11-01T05:30:00+00:00"),  # 01:30 EDT
        call("2026-11-01T06:30:00+00:00"),  # 01:30 EST, the hour again
        call("2026-11-02T04:59:00+00:00"),  # 23:59 EST, still the 1st
        call("2026-11-02T05:00:00+00:00"),  # the 2nd
    ]
    period = Period.parse("2026-11-01", "2026-11-02", "America/New_York")
    assert [d.calls for d in per_day(calls, period)] == [4, 1]
    sunday = hour_weekday(calls, NY)[6]
    assert (sunday[0], sunday[1], sunday[23]) == (1, 2, 1)


def test_first_and_last_touch_of_a_repeat_caller_from_two_campaigns() -> None:
    brand = Touch("active", "google", "cpc", "brand", click_network="google")
    social = Touch("active", "facebook", "paid_social", "spring-social", click_network="meta")
    repeat = call("2026-03-08T15:00:00+00:00", last=social, first=brand, first_time=False)
    new = call("2026-03-08T16:00:00+00:00", last=social, caller="+12025550002")
    last = breakdown([repeat, new], "campaign", touch="last")
    first = breakdown([repeat, new], "campaign", touch="first")
    assert [(r.value, r.calls, r.first_time) for r in last] == [("spring-social", 2, 1)]
    assert [(r.value, r.calls) for r in first] == [("brand", 1), ("spring-social", 1)]
    networks = breakdown([repeat, new], "click_network", touch="first")
    assert [(r.value, r.calls) for r in networks] == [("google", 1), ("meta", 1)]


def test_spam_and_test_calls_are_left_out_of_every_figure() -> None:
    kept = call("2026-03-08T15:00:00+00:00")
    spam = call("2026-03-08T16:00:00+00:00", spam=True)
    test = call("2026-03-08T17:00:00+00:00", test_call=True, state="missed")
    calls = [kept, spam, test]
    period = Period.parse("2026-03-08", "2026-03-08", "UTC")
    assert summary(calls, visits=0, cost=None).calls == 1
    assert [r.calls for r in breakdown(calls, "source")] == [1]
    assert sum(d.calls for d in per_day(calls, period)) == 1
    assert sum(map(sum, hour_weekday(calls, NY))) == 1
    assert [(a.agent, a.calls, a.missed) for a in per_agent(calls)] == [("alice", 1, 0)]


def test_summary_against_the_previous_period_on_seeded_random_calls() -> None:
    rng = random.Random(12)
    states = ["answered"] * 6 + ["missed"] * 3 + ["abandoned"]
    now = [
        call(f"2026-03-08T{h:02d}:{m:02d}:00+00:00", state=rng.choice(states))
        for h in range(24)
        for m in (5, 35)
    ]
    before = [call(f"2026-03-07T{h:02d}:05:00+00:00", state="answered") for h in range(16)]
    expected = {s: sum(c.state == s for c in now) for s in ("answered", "missed", "abandoned")}
    current = summary(now, visits=240, cost=96.0)
    previous = summary(before, visits=0, cost=None)
    assert (current.calls, current.answered, current.missed, current.abandoned) == (
        48,
        expected["answered"],
        expected["missed"],
        expected["abandoned"],
    )
    assert current.calls_per_100_visits == pytest.approx(20.0)
    assert current.cost_per_call == pytest.approx(2.0)
    assert current.avg_talk_seconds == pytest.approx(60.0)
    assert current.avg_ring_seconds == pytest.approx(5.0)
    assert previous.calls_per_100_visits is None and previous.cost_per_call is None
    changes = compare(current, previous)
    assert (changes["calls"].delta, changes["calls"].percent) == (32, pytest.approx(200.0))
    assert changes["cost"].delta is None
    assert changes["visits"].percent is None  # nothing to compare against


def test_a_breakdown_shows_visits_and_cost_per_call_and_campaigns_that_made_no_call() -> None:
    spring = Touch("active", "facebook", "paid_social", "spring-social")
    calls = [call(f"2026-03-08T1{i}:00:00+00:00", last=spring) for i in range(3)]
    calls.append(call("2026-03-08T19:00:00+00:00"))
    rows = breakdown(
        calls,
        "campaign",
        visits={"spring-social": 60, "brand": 10, "silent": 50},
        costs={"spring-social": 90.0, "silent": 40.0},
    )
    by_value = {r.value: r for r in rows}
    assert [r.value for r in rows] == ["spring-social", "brand", "silent"]
    assert by_value["spring-social"].calls_per_100_visits == pytest.approx(5.0)
    assert by_value["spring-social"].cost_per_call == pytest.approx(30.0)
    assert by_value["brand"].cost is None
    assert (by_value["silent"].calls, by_value["silent"].cost_per_call) == (0, None)


def test_every_dimension_breaks_down_and_an_unknown_one_is_refused() -> None:
    static = Touch("static", "billboard", "offline", static_source="billboard")
    calls = [call("2026-03-08T10:00:00+00:00", last=static)]
    for by in DIMENSIONS:
        assert sum(r.calls for r in breakdown(calls, by)) == 1
    assert breakdown(calls, "static_source")[0].value == "billboard"
    assert breakdown(calls, "tracking_number")[0].value == "+14155550101"
    with pytest.raises(ValueError, match="unknown dimension"):
        breakdown(calls, "colour")


def test_click_ids_name_their_network() -> None:
    assert click_network({"gbraid": "x"}) == "google"
    assert click_network({"msclkid": "x"}) == "microsoft"
    assert click_network({"fbclid": "x"}) == "meta"
    assert click_network({"bd_vid": "x"}) == "baidu"
    assert click_network({"gclid": ""}) == ""


def test_a_cost_is_spread_evenly_over_its_days() -> None:
    rows = [
        CostRow("facebook", "spring-social", date(2026, 3, 1), date(2026, 3, 10), 300.0),
        CostRow("google", "brand", date(2026, 3, 9), date(2026, 3, 9), 25.0),
    ]
    first, last = date(2026, 3, 7), date(2026, 3, 9)
    assert cost_by(rows, first, last, "campaign") == {
        "spring-social": pytest.approx(90.0),
        "brand": 25.0,
    }
    assert cost_by(rows, first, last, "source")["facebook"] == pytest.approx(90.0)
    assert cost_total(rows, first, last) == pytest.approx(115.0)
    assert cost_total(rows, date(2026, 4, 1), date(2026, 4, 2)) is None
    assert cost_by(rows, first, last, "medium") == {}
