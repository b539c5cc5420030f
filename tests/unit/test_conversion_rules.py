"""Which calls count as conversions (a site's rule), and what each platform is matched by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reports.conversions import (
    BAIDU_MAX_BATCH,
    BAIDU_MAX_URL,
    CallFacts,
    CountRule,
    baidu_batches,
    conversion_for,
    why_not_counted,
)

START = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def _call(**changes) -> CallFacts:
    base = CallFacts(
        call_id="c1",
        site="demo",
        caller="+12025550001",
        started_at=START,
        ended_at=START + timedelta(minutes=2),
        answered=True,
        talk_seconds=90.0,
        first_time=True,
        spam=False,
        test_call=False,
        inbound=True,
        gclid="Cj0KCQiA",
    )
    return base._replace(**changes)


def test_an_answered_finished_call_counts_under_the_default_rule() -> None:
    assert why_not_counted(CountRule(), _call()) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"answered": False, "talk_seconds": None}, "not answered"),
        ({"ended_at": None}, "not ended"),
        ({"test_call": True}, "test call"),
        ({"inbound": False}, "outbound call"),
        ({"spam": True}, "spam"),
    ],
)
def test_calls_the_default_rule_leaves_out(changes: dict, reason: str) -> None:
    assert why_not_counted(CountRule(), _call(**changes)) == reason


def test_talk_time_is_at_least_n_seconds_inclusive() -> None:
    rule = CountRule(min_talk_seconds=60)
    assert why_not_counted(rule, _call(talk_seconds=60.0)) is None
    assert why_not_counted(rule, _call(talk_seconds=59.9)) == "talk time too short"
    # An answered call whose talk time AMI never reported counts as no talk at all.
    assert why_not_counted(rule, _call(talk_seconds=None)) == "talk time too short"


def test_unanswered_calls_count_when_the_rule_does_not_ask_for_an_answer() -> None:
    rule = CountRule(answered=False)
    assert why_not_counted(rule, _call(answered=False, talk_seconds=None)) is None
    # ...but still not while they ring: an open call is judged once it ended.
    assert why_not_counted(rule, _call(answered=False, ended_at=None)) == "not ended"


def test_first_time_only_leaves_out_repeat_callers() -> None:
    rule = CountRule(first_time_only=True)
    assert why_not_counted(rule, _call(first_time=False)) == "repeat caller"
    assert why_not_counted(CountRule(), _call(first_time=False)) is None


def test_spam_counts_when_the_rule_keeps_it() -> None:
    assert why_not_counted(CountRule(exclude_spam=False), _call(spam=True)) is None


def test_a_disposition_list_needs_one_of_its_names_exactly() -> None:
    rule = CountRule(dispositions=("booked", "quote sent"))
    assert why_not_counted(rule, _call(disposition="booked")) is None
    assert why_not_counted(rule, _call(disposition="Booked")) == "disposition not listed"
    assert why_not_counted(rule, _call(disposition="")) == "disposition not listed"
    assert why_not_counted(CountRule(), _call(disposition="")) is None


def test_a_test_call_never_counts_whatever_the_rule() -> None:
    loose = CountRule(answered=False, exclude_spam=False)
    assert why_not_counted(loose, _call(test_call=True)) == "test call"


def test_google_rows_carry_exactly_one_click_id_the_first_the_visit_had() -> None:
    both = _call(gclid="G1", gbraid="B1", wbraid="W1")
    row = conversion_for("google_ads", CountRule(), both, "gclid")
    assert row is not None and (row.click_id_kind, row.click_id) == ("gclid", "G1")
    # The gbraid file leaves out a call that has a gclid: it is in the gclid file already.
    assert conversion_for("google_ads", CountRule(), both, "gbraid") is None
    ios = _call(gclid="", gbraid="B1")
    row = conversion_for("google_ads", CountRule(), ios, "gbraid")
    assert row is not None and row.click_id == "B1"
    assert conversion_for("google_ads", CountRule(), ios, "gclid") is None


def test_the_conversion_time_is_the_end_of_the_call() -> None:
    row = conversion_for("google_ads", CountRule(), _call())
    assert row is not None and row.at == START + timedelta(minutes=2)
    assert row.call_start == START


def test_a_click_id_a_visitor_could_have_forged_is_left_out() -> None:
    assert conversion_for("google_ads", CountRule(), _call(gclid="=cmd|' /c calc'!A1")) is None
    assert conversion_for("microsoft_ads", CountRule(), _call(msclkid="a,b")) is None
    row = conversion_for("microsoft_ads", CountRule(), _call(msclkid="f894f652ea334e73"))
    assert row is not None and row.click_id == "f894f652ea334e73"


def test_call_conversions_need_a_caller_id_in_e164() -> None:
    assert conversion_for("google_ads_calls", CountRule(), _call(caller="")) is None
    assert conversion_for("google_ads_calls", CountRule(), _call(caller="2025550001")) is None
    row = conversion_for("google_ads_calls", CountRule(), _call(gclid=""))
    assert row is not None and row.click_id == "+12025550001"


def test_baidu_is_sent_the_landing_url_with_its_bd_vid() -> None:
    url = "https://www.example.cn/p?utm_source=baidu&bd_vid=11223344"
    call = _call(bd_vid="11223344", landing_url=url, landing_page="https://www.example.cn/p")
    row = conversion_for("baidu_ocpc", CountRule(), call)
    assert row is not None and row.logid_url == url and row.click_id == "11223344"


def test_a_landing_url_longer_than_baidu_takes_is_cut_to_the_page_and_bd_vid() -> None:
    long = "https://www.example.cn/p?x=" + "a" * BAIDU_MAX_URL + "&bd_vid=99"
    call = _call(bd_vid="99", landing_url=long, landing_page="https://www.example.cn/p")
    row = conversion_for("baidu_ocpc", CountRule(), call)
    assert row is not None and row.logid_url == "https://www.example.cn/p?bd_vid=99"
    assert conversion_for("baidu_ocpc", CountRule(), _call(bd_vid="")) is None


def test_a_call_that_does_not_count_is_sent_nowhere() -> None:
    call = _call(answered=False, bd_vid="1", msclkid="m1", landing_url="https://x.cn/?bd_vid=1")
    for platform in ("google_ads", "google_ads_calls", "microsoft_ads", "baidu_ocpc"):
        assert conversion_for(platform, CountRule(), call) is None


def test_baidu_batches_stay_under_the_documented_limit() -> None:
    items = list(range(250))
    batches = baidu_batches(items)
    assert [len(b) for b in batches] == [99, 99, 52]
    assert max(len(b) for b in baidu_batches(items, 500)) == BAIDU_MAX_BATCH
    assert [len(b) for b in baidu_batches(items[:5], 2)] == [2, 2, 1]
    assert baidu_batches([]) == []
