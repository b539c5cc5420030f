"""The sizing replay on generated histories whose answer is known (reports/pool_sizing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from numberpool.pool import LeaseRules
from reports.pool_replay import overflow_visits, true_sessions
from reports.pool_sizing import (
    CallTrace,
    SessionTrace,
    parse_moment,
    parse_sizes,
    policies_for,
    policy_rules,
    replay,
    size_pool,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def rules(**extra: Any) -> LeaseRules:
    """The issue's timings, scaled down: heartbeat 5 s, grace 15 s, cooldown 30 s, window 60 s."""
    return LeaseRules(
        heartbeat=5 * S,
        grace=15 * S,
        cooldown=30 * S,
        attribution_window=60 * S,
        probation=10 * S,
        **{"when_exhausted": "overflow", **extra},
    )


def steady(
    count: int, every: int = 10, stay: int = 60, call_after: int = 30
) -> tuple[list[SessionTrace], list[CallTrace]]:
    """A session every `every` s, heartbeating for `stay` s, each calling once while on the page.

    Each lease lives stay + grace = 75 s and rests 30 s more: 105 s of a number per session.
    """
    sessions, calls = [], []
    for i in range(count):
        start = T0 + i * every * S
        sessions.append(SessionTrace(f"s{i}", f"v{i}", start, start + stay * S, True))
        calls.append(
            CallTrace(start + call_after * S, False, "active", f"s{i}", f"v{i}", f"+1202555{i:04d}")
        )
    return sessions, calls


def test_a_steady_arrival_needs_its_live_and_cooling_numbers() -> None:
    """Sessions 10 s apart holding 105 s of number each: at most 8 live, 11 live or cooling.
    With the overflow number for an exhausted pool, 11 numbers serve every call; with 10 a
    number serves a session every 110 s (free at 105 s, the next comes at 110 s), so one
    session in 11 after the first 100 s sees the overflow number."""
    sessions, calls = steady(200)
    at_11 = replay(sessions, calls, 11, rules())
    assert (at_11.right, at_11.wrong, at_11.unattributed) == (200, 0, 0)
    assert (at_11.peak_live, at_11.peak_busy, at_11.overflowed) == (8, 11, 0)
    at_10 = replay(sessions, calls, 10, rules())
    assert at_10.wrong == 0
    assert at_10.unattributed == at_10.overflowed
    assert at_10.unattributed == len(range(10, 200, 11))  # sessions 10, 21, 32, ...
    report = size_pool(
        "demo:+1",
        sessions,
        calls,
        {"configured": rules()},
        since=T0,
        until=T0 + 3600 * S,
        current_size=8,
        sizes=[8, 10, 11, 16],
    )
    assert report.smallest == {"configured": 11}
    assert [f.size for f in report.figures] == [8, 10, 11, 16]
    assert report.figures[-1].share(report.figures[-1].right) == 1.0
    assert report.judged_calls == 200 and report.unknown_calls == report.overflow_calls == 0


def test_the_smallest_size_is_searched_when_no_size_is_given() -> None:
    """Without sizes: today's size, multiples of the peak live leases, and the smallest found."""
    sessions, calls = steady(120)
    report = size_pool(
        "demo:+1",
        sessions,
        calls,
        {"configured": rules()},
        since=T0,
        until=T0 + 3600 * S,
        current_size=5,
    )
    sizes = [f.size for f in report.figures]
    assert report.smallest == {"configured": 11}
    assert {5, 8, 10, 11, 16} <= set(sizes)  # today's, 1.0x and 1.2x, the smallest, 2x
    assert sizes == sorted(sizes)


def test_a_burst_needs_a_number_for_each_of_its_sessions() -> None:
    """Twenty sessions arrive in the same second and stay a minute: 20 numbers, not fewer."""
    sessions, calls = [], []
    for i in range(20):
        start = T0 + i * timedelta(milliseconds=10)
        sessions.append(SessionTrace(f"b{i}", f"v{i}", start, start + 60 * S, True))
        calls.append(CallTrace(start + 20 * S, False, "active", f"b{i}", f"v{i}", "+12025550000"))
    report = size_pool(
        "demo:+1",
        sessions,
        calls,
        {"configured": rules()},
        since=T0,
        until=T0 + 600 * S,
        current_size=10,
        sizes=[10, 19, 20],
    )
    figures = {f.size: f for f in report.figures}
    assert (figures[10].right, figures[10].unattributed) == (10, 10)
    assert (figures[19].right, figures[19].unattributed) == (19, 1)
    assert (figures[20].right, figures[20].peak_live, figures[20].peak_busy) == (20, 20, 20)
    assert report.smallest == {"configured": 20}


def test_a_number_reused_after_its_rest_credits_the_late_caller_wrongly() -> None:
    """A caller who calls after leaving dials a number another visit holds by then; the
    visitor is known to be theirs because the same caller reaches it again later."""
    first = SessionTrace("a", "va", T0, T0 + 10 * S, True)
    second = SessionTrace("b", "vb", T0 + 60 * S, T0 + 200 * S, True)
    back = SessionTrace("c", "va", T0 + 300 * S, T0 + 400 * S, True)
    calls = [
        # Stored as probable to 'a': vouched for by the caller's active call to 'va' below.
        CallTrace(T0 + 75 * S, False, "probable", "a", "va", "+12025550001"),
        CallTrace(T0 + 310 * S, False, "active", "c", "va", "+12025550001"),
    ]
    one = replay([first, second, back], calls, 1, rules())
    assert (one.right, one.wrong, one.unattributed) == (1, 1, 0)
    two = replay([first, second, back], calls, 2, rules())
    assert (two.right, two.wrong) == (2, 0)  # never-leased numbers go first


def test_a_caller_known_to_a_visitor_is_credited_to_it_on_a_reused_number() -> None:
    """The same late call after the caller reached 'va' before: the pool's rules prefer the
    visitor the caller is known to (the replay passes the visitors as the gateway does)."""
    first = SessionTrace("a", "va", T0, T0 + 10 * S, True)
    second = SessionTrace("b", "vb", T0 + 60 * S, T0 + 200 * S, True)
    calls = [
        CallTrace(T0 + 5 * S, False, "active", "a", "va", "+12025550001"),
        CallTrace(T0 + 75 * S, False, "probable", "a", "va", "+12025550001"),
    ]
    one = replay([first, second], calls, 1, rules())
    assert (one.right, one.wrong, one.unattributed) == (2, 0, 0)


def test_only_calls_whose_visit_is_known_are_judged() -> None:
    """Active calls, probable ones no rival contested, and contested ones the caller vouches
    for; overflow and the rest apart."""
    sessions = [SessionTrace("a", "va", T0, T0, False), SessionTrace("b", "vb", T0, T0, False)]
    calls = [
        CallTrace(T0, False, "active", "a", "va", "+12025550001"),
        # contested, but the same caller's active call vouches for it
        CallTrace(T0, False, "probable", "a", "va", "+12025550001", contested=True),
        CallTrace(T0, False, "probable", "b", "vb", "+12025550002", contested=True),  # nobody
        CallTrace(T0, False, "probable", "a", "va", "anonymous", contested=True),
        CallTrace(T0, True, "overflow", "", "", "+12025550003"),
        CallTrace(T0, False, "active", "gone", "vx", "+12025550004"),  # session not replayed
        CallTrace(T0, False, "probable", "b", "vb", "+12025550005"),  # the only candidate
    ]
    assert true_sessions(calls, ["a", "b"]) == ["a", "a", "", "", "", "", "b"]
    report = size_pool(
        "p",
        sessions,
        calls,
        {"configured": rules()},
        since=T0,
        until=T0 + S,
        current_size=1,
        sizes=[1],
    )
    assert (report.judged_calls, report.overflow_calls, report.unknown_calls) == (3, 1, 3)


def test_a_contested_call_is_vouched_for_by_its_rival_s_other_phone() -> None:
    """A call stored against a rival who called from another phone is the credited visit's
    (people call again from the phone they called from): B shares A's number after A called
    from +1, and B's call from +2 is judged, right. Not when the rival's phone is this
    caller's, is unknown, or the caller hid."""
    a = SessionTrace("a", "va", T0, T0 + 40 * S, True)
    b = SessionTrace("b", "vb", T0 + 10 * S, T0 + 40 * S, True)
    calls = [
        CallTrace(T0 + 5 * S, False, "active", "a", "va", "+12025550001"),
        CallTrace(T0 + 20 * S, False, "probable", "b", "vb", "+12025550002", True, "va"),
        CallTrace(T0 + 21 * S, False, "probable", "b", "vb", "+12025550001", True, "va"),
        CallTrace(T0 + 22 * S, False, "probable", "b", "vb", "+12025550003", True, "vx"),
        CallTrace(T0 + 23 * S, False, "probable", "b", "vb", "anonymous", True, "va"),
        CallTrace(T0 + 24 * S, False, "probable", "b", "vb", "+12025550004", True),
    ]
    assert true_sessions(calls, ["a", "b"]) == ["a", "b", "", "", "", ""]
    shared = replay([a, b], calls, 1, rules(when_exhausted="reuse"))
    assert (shared.shared, shared.right, shared.wrong, shared.unattributed) == (1, 2, 0, 0)


def test_overflow_calls_are_judged_as_an_overflowed_visit_on_the_page() -> None:
    """The history's pool had one number: 'a' held it, 'b' and 'c' saw the overflow number and
    three calls came on it. Each is judged as made by an overflowed visit near the call: at size
    1 they stay unattributed, at size 3 right. Left out, size 1 would look perfect."""
    a = SessionTrace("a", "va", T0, T0 + 60 * S, True)
    b = SessionTrace("b", "vb", T0 + 1 * S, T0 + 60 * S, True, overflowed=True)
    c = SessionTrace("c", "vc", T0 + 2 * S, T0 + 30 * S, True, overflowed=True)
    gone = SessionTrace("d", "vd", T0 - 300 * S, T0 - 200 * S, True, overflowed=True)
    calls = [
        CallTrace(T0 + 20 * S, False, "active", "a", "va", "+12025550001"),
        CallTrace(T0 + 30 * S, True, "overflow", "", "", "+12025550002"),  # b on the page
        CallTrace(T0 + 40 * S, True, "overflow", "", "", "+12025550003"),  # c left 10 s ago
        CallTrace(T0 + 50 * S, True, "overflow", "", "", "+12025550004"),  # only b is near
    ]
    sessions = [a, b, c, gone]
    # A visit not yet given a call first; past its grace a visit no longer counts.
    assert overflow_visits(calls, sessions, 15 * S) == ["", "b", "c", "b"]
    assert overflow_visits(calls, sessions, 5 * S) == ["", "b", "b", "b"]
    # The caller's own visitor first, when one saw the overflow number.
    mine = [*calls, CallTrace(T0 + 70 * S, False, "active", "x", "vc", "+12025550002")]
    assert overflow_visits(mine, sessions, 15 * S)[1] == "c"
    report = size_pool(
        "p",
        sessions,
        calls,
        {"overflow": rules()},
        since=T0,
        until=T0 + 60 * S,
        current_size=1,
        sizes=[1, 3],
    )
    assert (report.judged_calls, report.overflow_calls, report.inferred_calls) == (4, 3, 3)
    at = {f.size: (f.right, f.wrong, f.unattributed) for f in report.figures}
    assert at == {1: (1, 0, 3), 3: (4, 0, 0)}


def test_without_a_known_visit_there_is_no_smallest_size() -> None:
    sessions = [SessionTrace("a", "va", T0, T0 + 30 * S, True)]
    calls = [CallTrace(T0 + S, True, "overflow")]
    report = size_pool(
        "p",
        sessions,
        calls,
        {"configured": rules()},
        since=T0,
        until=T0 + 60 * S,
        current_size=1,
    )
    assert report.smallest == {"configured": None}
    assert any("no call with a known visit" in line for line in report.lines())
    assert report.as_dict()["sizes"]


def test_a_session_without_heartbeats_holds_its_number_for_the_probation_only() -> None:
    """No heartbeat: 10 s of lease and 30 s of rest, so one number serves one every 40 s."""
    sessions = [
        SessionTrace(f"s{i}", f"v{i}", T0 + i * 40 * S, T0 + i * 40 * S, False) for i in range(5)
    ]
    calls = [
        CallTrace(s.started_at + 5 * S, False, "active", s.session_id, s.visitor_id)
        for s in sessions
    ]
    # Dialed 5 s after the lease began: within the default dial delay, the last holder's call.
    figures = replay(sessions, calls, 1, rules(dial_delay=2 * S))
    assert (figures.right, figures.overflowed, figures.peak_live, figures.peak_busy) == (5, 0, 1, 1)


def test_sizes_and_times_are_read_strictly() -> None:
    assert parse_sizes("20, 10,10") == [10, 20]
    for bad in ("", "0", "ten", "1_0", "100001", ",".join(str(n) for n in range(1, 30))):
        with pytest.raises(ValueError, match="must be"):
            parse_sizes(bad)
    assert parse_moment("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_moment("2026-01-31T02:00:00+02:00") == datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_moment("yesterday")


def test_reusing_cooling_numbers_serves_callers_on_the_page_with_the_live_leases_alone() -> None:
    """ "reuse" without sharing: callers who call while on the page need only the peak of live
    leases (8); a live number is never leased again, so 7 numbers send visits to overflow."""
    sessions, calls = steady(200)
    report = size_pool(
        "p",
        sessions,
        calls,
        {"reuse": rules(when_exhausted="reuse", share_called=False)},
        since=T0,
        until=T0 + 3600 * S,
        current_size=8,
        sizes=[7, 8],
    )
    seven, eight = report.figures
    assert (eight.right, eight.wrong, eight.overflowed) == (200, 0, 0)
    assert eight.reused > 0 and seven.overflowed > 0
    assert seven.shared == eight.shared == 0
    assert report.smallest == {"reuse": 8}


def test_sharing_called_numbers_serves_callers_on_the_page_with_half_the_numbers() -> None:
    """Each visitor calls 30 s into a 75 s lease: from then on its number may be shared, so
    two visits hold each number and 4 numbers serve the 8 live leases, every call right (a
    new phone goes to the new holder, the first holder's phone is known). The report replays
    the pool's own rules, the same with sharing switched, and the overflow number."""
    sessions, calls = steady(200)
    report = size_pool(
        "p",
        sessions,
        calls,
        policies_for(rules(when_exhausted="reuse")),
        since=T0,
        until=T0 + 3600 * S,
        current_size=8,
        sizes=[3, 4, 8],
    )
    assert list(report.policies) == ["reuse", "reuse_no_sharing", "overflow"]
    assert report.policies["reuse"] == {"when_exhausted": "reuse", "share_called_numbers": True}
    assert report.smallest == {"reuse": 4, "reuse_no_sharing": 8, "overflow": 11}
    figures = {(f.policy, f.size): f for f in report.figures}
    four = figures["reuse", 4]
    assert (four.right, four.wrong, four.overflowed, four.late_wrong) == (200, 0, 0, 0.0)
    assert four.shared > 150 and four.peak_live == 4  # numbers live, each leased twice
    assert figures["reuse", 3].overflowed > 0
    assert figures["reuse_no_sharing", 4].shared == figures["overflow", 4].shared == 0
    assert report.as_dict()["policies"] == report.policies
    assert any(
        "reuse_no_sharing: reuse cooling numbers, never a live one" in line
        for line in report.lines()
    )


def test_the_policies_keep_the_pool_s_own_first_and_switch_sharing() -> None:
    """A pool that overflows is replayed as it is, then with "reuse" as its rules say
    (sharing on by default), then with sharing switched; one that reuses without sharing,
    with the sharing it lacks named "reuse_sharing"."""
    overflowing = rules()
    assert {
        k: (r.when_exhausted, r.share_called) for k, r in policies_for(overflowing).items()
    } == {
        "overflow": ("overflow", True),
        "reuse": ("reuse", True),
        "reuse_no_sharing": ("reuse", False),
    }
    plain = rules(when_exhausted="reuse", share_called=False, min_cooldown=5 * S)
    named = policies_for(plain)
    assert list(named) == ["reuse", "reuse_sharing", "overflow"]
    assert named["reuse"] == plain
    assert named["reuse_sharing"].share_called and named["reuse_sharing"].min_cooldown == 5 * S
    assert policy_rules(named["overflow"]) == {
        "when_exhausted": "overflow",
        "share_called_numbers": False,
    }


def test_reusing_cooling_numbers_costs_the_late_callers() -> None:
    """Callers who call 20 s after leaving dial a number "reuse" gave another visit already;
    the overflow number keeps them unattributed instead, and 11 numbers serve them all. Nobody
    calls on the page, so sharing has no holder who called to share with until a late call is
    credited wrongly: it still costs late callers at 8 numbers."""
    sessions, calls = steady(200, call_after=95)
    policies = {
        "reuse": rules(when_exhausted="reuse", share_called=False),
        "overflow": rules(),
        "reuse_sharing": rules(when_exhausted="reuse"),
    }
    report = size_pool(
        "p",
        sessions,
        calls,
        policies,
        since=T0,
        until=T0 + 3600 * S,
        current_size=8,
        sizes=[8, 11],
    )
    figures = {(f.policy, f.size): f for f in report.figures}
    assert figures["reuse", 8].wrong > 100
    assert figures["overflow", 8].wrong == 0
    assert figures["reuse", 11].right == figures["overflow", 11].right == 200
    assert figures["reuse_sharing", 8].wrong > 0
    assert figures["reuse_sharing", 11].right == 200
    # Which cooling number is least risky is numberpool's to tune; the overflow number's needs
    # follow from the cooldown alone.
    assert report.smallest["overflow"] == 11
    for policy in ("reuse", "reuse_sharing"):
        smallest = report.smallest[policy]
        assert smallest is not None and 8 < smallest <= 11
