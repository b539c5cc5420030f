"""The sizing replay's late calls (reports/pool_replay.py, reports/late_calls.py): a caller
whose phone already reached their visitor is not one the history hides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from numberpool.pool import LeaseRules
from reports.late_calls import AGE_SLICES, late_windows
from reports.pool_sizing import CallTrace, SessionTrace, replay, size_pool

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
pytestmark = pytest.mark.timeout(60)


def rules(when_exhausted: str = "overflow") -> LeaseRules:
    """Heartbeat 5 s, grace 15 s, cooldown 30 s, window 60 s (as tests/unit/test_pool_sizing)."""
    return LeaseRules(
        heartbeat=5 * S,
        grace=15 * S,
        cooldown=30 * S,
        attribution_window=60 * S,
        probation=10 * S,
        when_exhausted=when_exhausted,
    )


def test_a_late_call_from_a_phone_that_reached_its_visitor_is_not_counted_late() -> None:
    """A's lease ends about 25 s after T0 (last heartbeat at 10 s, grace 15 s); A calls again
    15 s later on the resting number. From an unknown phone that is a late call the history
    shows (it sizes the hidden ones); from the phone that reached A on the page it is not."""
    session = SessionTrace("a", "va", T0, T0 + 10 * S, True)
    late = CallTrace(T0 + 40 * S, False, "probable", "a", "va", "+12025550001")
    alone = replay([session], [late], 2, rules())
    assert (alone.right, sum(alone.late_seen)) == (1, 1)
    on_the_page = CallTrace(T0 + 5 * S, False, "active", "a", "va", "+12025550001")
    again = replay([session], [on_the_page, late], 2, rules())
    assert (again.right, again.wrong) == (2, 0)
    assert again.late_seen == (0,) * AGE_SLICES
    # Nor does A's window count as open: their phone is known from 5 s on. Alone, it was open
    # until that late call, 15 s after the lease ended: three slices of 5 s.
    assert sum(again.late.open) == 0.0
    assert alone.late.open == (1.0,) * 3 + (0.0,) * (AGE_SLICES - 3)


def test_a_wrong_credit_does_not_make_a_visitor_known() -> None:
    """One number, "reuse": B gets A's number while A's window is open, and A's late call from
    a phone nobody knows is credited to B. That does not make B's own phone known: B's late
    call after leaving, on the resting number, is still one from an unknown phone."""
    first = SessionTrace("a", "va", T0, T0 + 10 * S, True)  # lease ends about 25 s after T0
    second = SessionTrace("b", "vb", T0 + 30 * S, T0 + 50 * S, True)  # ends about 65 s after
    calls = [
        CallTrace(T0 + 40 * S, False, "probable", "a", "va", "+12025550001"),
        CallTrace(T0 + 80 * S, False, "probable", "b", "vb", "+12025550002"),
    ]
    figures = replay([first, second], calls, 1, rules("reuse"))
    assert (figures.right, figures.wrong, figures.reused) == (1, 1, 1)
    assert (sum(figures.late_seen), figures.late_seen_wrong) == (2, 1)


def test_reuse_costs_nothing_when_every_late_caller_called_on_the_page() -> None:
    """Every visitor calls while on the page and a third of them again 10 s after their lease
    ended. "reuse" at the peak of live leases gives those numbers to others while the windows
    are open, but each late call comes from the phone that reached its visitor: none goes
    wrong, and the sizing expects none. Sharing a number whose holder called serves the same
    calls with half the numbers, again none wrong."""
    sessions, calls = [], []
    for i in range(200):
        start = T0 + i * 10 * S
        phone = f"+1202555{i:04d}"
        sessions.append(SessionTrace(f"s{i}", f"v{i}", start, start + 60 * S, True))
        calls.append(CallTrace(start + 30 * S, False, "active", f"s{i}", f"v{i}", phone))
        if i % 3 == 0:
            calls.append(CallTrace(start + 85 * S, False, "probable", f"s{i}", f"v{i}", phone))
    calls.sort(key=lambda c: c.at)
    policies = {
        "reuse": replace(rules("reuse"), share_called=False),
        "reuse_sharing": rules("reuse"),
    }
    report = size_pool(
        "p",
        sessions,
        calls,
        policies,
        since=T0,
        until=T0 + 3600 * S,
        current_size=11,
        sizes=[3, 4, 8, 11],
    )
    figures = {(f.policy, f.size): f for f in report.figures}
    eight = figures["reuse", 8]
    assert eight.reused > 0 and eight.shared == 0
    assert (eight.right, eight.wrong) == (267, 0)
    assert eight.late_wrong == pytest.approx(0.0)
    assert eight.right_share == 1.0
    four = figures["reuse_sharing", 4]
    assert four.shared > 150
    assert (four.right, four.wrong, four.unattributed) == (267, 0, 0)
    assert four.late_wrong == pytest.approx(0.0)
    assert figures["reuse_sharing", 3].unattributed > 0
    assert report.smallest == {"reuse": 8, "reuse_sharing": 4}


def test_a_shared_number_s_second_holder_is_neither_open_nor_covered() -> None:
    """One number. A holds it from T0 (last heartbeat 40 s, so until 55 s) and calls at 10 s;
    B lands at 20 s and shares it (until 45 s). B's window (45-105 s) is never open: while A's
    lease and then A's window last (to 115 s), a late call of B's goes to B (A's phone is
    known) but is stored with A as its rival, so the history cannot show it. Nor is it
    covered: no lease began after B's. A's window does not count: A's phone is known. With two
    numbers B takes a number of its own and its whole window is open."""
    a = SessionTrace("a", "va", T0, T0 + 40 * S, True)
    b = SessionTrace("b", "vb", T0 + 20 * S, T0 + 30 * S, True)
    on_the_page = CallTrace(T0 + 10 * S, False, "active", "a", "va", "+12025550001")
    shared = replay([a, b], [on_the_page], 1, rules("reuse"))
    assert (shared.shared, shared.overflowed, shared.right) == (1, 0, 1)
    assert shared.late.open == shared.late.covered == (0.0,) * AGE_SLICES
    own = replay([a, b], [on_the_page], 2, rules("reuse"))
    assert own.shared == 0
    assert own.late.open == (1.0,) * AGE_SLICES
    assert own.late.covered == (0.0,) * AGE_SLICES


def test_a_window_with_the_holder_before_as_rival_is_hidden_until_that_rival_s_ends() -> None:
    """Numbers n1 and n2, window 60 s (slices of 5 s), cooldown 30 s. On n1, B began 10 s
    after A's lease ended (before the cooldown: A is B's rival), so B's late calls are stored
    contested until A's window ends at 70 s: B's window 40-100 s is hidden for its first six
    slices and open for the other six. On n2, C shares D's number while D is live (D called at
    5 s): C's window is hidden up to D's window's end (50 + 60 s), past its own end (105 s)."""
    window, cooldown = 60 * S, 30 * S
    leases = [
        ("n1", T0, T0 + 10 * S, "va"),
        ("n1", T0 + 20 * S, T0 + 40 * S, "vb"),
        ("n2", T0, T0 + 50 * S, "vd"),
        ("n2", T0 + 20 * S, T0 + 45 * S, "vc"),
    ]
    called = {"vd": T0 + 5 * S}
    found = late_windows(leases, window, called, cooldown)
    # A's window (10-70 s) is open until B's lease begins at 20 s, then covered.
    assert found.open == (1.0, 1.0) + (0.0,) * 4 + (1.0,) * 6
    assert found.covered == (0.0, 0.0) + (1.0,) * 10
    # Without a cooldown only the share has a rival: B's window is open throughout.
    assert late_windows(leases, window, called).open == (2.0, 2.0) + (1.0,) * 10
