"""The CRM's pure rules: what a finished call, a disposition or an edit changes, with history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from numberpool.crm import (
    DEFAULT_DISPOSITIONS,
    STATUSES,
    SYSTEM,
    CrmInputError,
    CrmRules,
    Disposition,
    FinishedCall,
    LeadEdit,
    after_call,
    after_disposition,
    disposition_from,
    edit_entries,
    lead_edit_from,
    number_facts,
    rules_problem,
)

pytestmark = pytest.mark.timeout(30)

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _call(state: str, talk: float | None = None) -> FinishedCall:
    return FinishedCall("c1", "demo", "k1", state, talk, AT)


def test_a_long_enough_answered_call_makes_a_new_lead_contacted_and_closes_tasks() -> None:
    outcome = after_call(_call("answered", 30.0), CrmRules())
    assert (outcome.status_from, outcome.status_to, outcome.close_tasks) == (
        "new",
        "contacted",
        True,
    )
    assert outcome.follow_up is None
    assert [(e.who, e.what, e.before, e.after, e.at) for e in outcome.history] == [
        (SYSTEM, "status", "new", "contacted", AT)
    ]


def test_a_short_answered_call_closes_tasks_but_moves_no_status() -> None:
    """Under the threshold (configurable) the status stays; the follow-up is done anyway."""
    outcome = after_call(_call("answered", 29.9), CrmRules())
    assert not outcome.moves_status and outcome.close_tasks and outcome.history == ()
    assert after_call(_call("answered", 10.0), CrmRules(contacted_talk_seconds=10)).moves_status


@pytest.mark.parametrize("state", ["missed", "abandoned"])
def test_an_unanswered_call_makes_a_follow_up_due_after_the_delay(state: str) -> None:
    rules = CrmRules(followup_delay=timedelta(minutes=15))
    outcome = after_call(_call(state), rules)
    assert outcome.follow_up is not None
    assert outcome.follow_up.due_at == AT + timedelta(minutes=15)
    assert outcome.follow_up.call_id == "c1" and not outcome.close_tasks
    assert outcome.history[0].what == "task" and outcome.history[0].who == SYSTEM
    assert after_call(_call(state), CrmRules()).follow_up.due_at == AT + timedelta(hours=1)  # type: ignore[union-attr]


def test_a_ringing_call_changes_nothing() -> None:
    assert after_call(_call("ringing"), CrmRules()) == after_call(_call("ringing"), CrmRules())
    assert not after_call(_call("ringing"), CrmRules()).history


def test_dispositions_move_the_status_close_tasks_and_mark_spam() -> None:
    rules = CrmRules()
    booked = after_disposition(rules.disposition("booked"), "contacted", "u1", AT, "Tue 9am")  # type: ignore[arg-type]
    assert (booked.status_from, booked.status_to, booked.close_tasks) == (
        "contacted",
        "customer",
        True,
    )
    assert [(e.who, e.what, e.before, e.after) for e in booked.history] == [
        ("u1", "disposition", "", "booked: Tue 9am"),
        ("u1", "status", "contacted", "customer"),
    ]
    wrong = after_disposition(rules.disposition("wrong number"), "new", "u1", AT)  # type: ignore[arg-type]
    assert wrong.status_to == "lost" and not wrong.spam
    spam = after_disposition(rules.disposition("spam"), "new", "u1", AT)  # type: ignore[arg-type]
    assert spam.spam and spam.close_tasks and any(e.what == "spam" for e in spam.history)
    later = after_disposition(rules.disposition("call back"), "new", "u1", AT)  # type: ignore[arg-type]
    assert not later.moves_status and not later.close_tasks
    same = after_disposition(rules.disposition("booked"), "customer", "u1", AT)  # type: ignore[arg-type]
    assert not same.moves_status and [e.what for e in same.history] == ["disposition"]


def test_the_default_dispositions_and_statuses() -> None:
    assert STATUSES == ("new", "contacted", "qualified", "customer", "lost")
    assert [d.name for d in DEFAULT_DISPOSITIONS] == [
        "booked",
        "quote sent",
        "call back",
        "wrong number",
        "spam",
    ]
    assert rules_problem(DEFAULT_DISPOSITIONS) is None
    assert rules_problem((Disposition("x", "won"),)) == (
        "dispositions[0].status",
        "must be one of new, contacted, qualified, customer, lost or empty",
    )
    assert rules_problem((Disposition("x"), Disposition("x")))[0] == "dispositions[1].name"  # type: ignore[index]
    assert rules_problem((Disposition(" "),)) is not None


def test_an_edit_keeps_only_its_changes_and_their_history() -> None:
    stored = LeadEdit("new", ("vip",), "", "", False, False)
    edit = LeadEdit(status="qualified", tags=("vip",), notes="wants a quote", spam=False)
    changes = edit.changed_from(stored)
    assert changes == LeadEdit(status="qualified", notes="wants a quote")
    entries = edit_entries(changes, stored, "u7", AT)
    assert [(e.who, e.what, e.before, e.after) for e in entries] == [
        ("u7", "status", "new", "qualified"),
        ("u7", "notes", "", "wants a quote"),
    ]


def test_edits_are_checked() -> None:
    site, edit = lead_edit_from({"site": "demo", "status": "lost", "tags": "a, b, a", "spam": True})
    assert site == "demo" and edit == LeadEdit(status="lost", tags=("a", "b"), spam=True)
    for bad in (
        {"status": "won"},
        {"tags": "x" * 41},
        {"tags": [1]},
        {"tags": ["t"] * 21},
        {"notes": "x" * 5001},
        {"notes": "a\x00b"},
        {"spam": "yes"},
        {"name": 3},
        {"owner": "me"},
    ):
        with pytest.raises(CrmInputError):
            lead_edit_from(bad)


def test_a_disposition_must_be_configured() -> None:
    rules = CrmRules()
    assert disposition_from(rules, "booked", " 9am ")[1] == "9am"
    for name in ("won", None, 3):
        with pytest.raises(CrmInputError):
            disposition_from(rules, name, "")
    with pytest.raises(CrmInputError):
        disposition_from(rules, "booked", "x" * 2001)


def test_number_facts_in_english() -> None:
    facts = number_facts("+33612345678")
    assert (facts.region, facts.line_type, facts.carrier, facts.geo) == (
        "FR",
        "mobile",
        "SFR",
        "France",
    )
    us = number_facts("+14155550101")
    assert us.region == "US" and us.geo == "San Francisco, CA"
    assert number_facts("nonsense") == ("", "", "", "")
