"""The sizing replay's late calls (reports/pool_replay.py, reports/late_calls.py): a caller
whose phone already reached their visitor is not one the history hides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from numberpool.pool import LeaseRules
from reports.late_calls import AGE_SLICES
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
    wrong, and the sizing expects none."""
    sessions, calls = [], []
    for i in range(200):
        start = T0 + i * 10 * S
        phone = f"+1202555{i:04d}"
        sessions.append(SessionTrace(f"s{i}", f"v{i}", start, start + 60 * S, True))
        calls.append(CallTrace(start + 30 * S, False, "active", f"s{i}", f"v{i}", phone))
        if i % 3 == 0:
            calls.append(CallTrace(start + 85 * S, False, "probable", f"s{i}", f"v{i}", phone))
    calls.sort(key=lambda c: c.at)
    report = size_pool(
        "p",
        sessions,
        calls,
        {"reuse": rules("reuse")},
        since=T0,
        until=T0 + 3600 * S,
        current_size=11,
        sizes=[8, 11],
    )
    figures = {f.size: f for f in report.figures}
    assert figures[8].reused > 0
    assert (figures[8].right, figures[8].wrong) == (267, 0)
    assert figures[8].late_wrong == pytest.approx(0.0)
    assert figures[8].right_share == 1.0
    assert report.smallest == {"reuse": 8}
