"""The token buckets behind the per-client and per-site session limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from numberpool.rate_limit import RateLimit

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ask(limit: RateLimit, key: str, at: datetime, per_minute: int, burst: int) -> float:
    """Take a token when one is there; the wait otherwise (0.0: taken)."""
    wait = limit.wait(key, at, per_minute, burst)
    if wait == 0.0:
        limit.take(key, at, per_minute)
    return wait


def test_a_burst_then_one_token_per_interval() -> None:
    """`burst` requests pass at once, the next waits one interval, then one passes per interval."""
    limit = RateLimit()
    assert [ask(limit, "a", T0, 20, 5) for _ in range(5)] == [0.0] * 5
    assert ask(limit, "a", T0, 20, 5) == 3.0
    assert ask(limit, "a", T0 + timedelta(seconds=2), 20, 5) == 1.0
    assert ask(limit, "a", T0 + timedelta(seconds=3), 20, 5) == 0.0
    assert ask(limit, "a", T0 + timedelta(seconds=3), 20, 5) == 3.0


def test_keys_are_counted_apart_and_zero_is_no_limit() -> None:
    """One key's bucket never limits another; a rate of 0 never limits."""
    limit = RateLimit()
    for _ in range(3):
        ask(limit, "a", T0, 60, 3)
    assert ask(limit, "a", T0, 60, 3) > 0.0
    assert ask(limit, "b", T0, 60, 3) == 0.0
    assert all(ask(limit, "c", T0, 0, 0) == 0.0 for _ in range(1000))


def test_full_buckets_are_forgotten() -> None:
    """A key whose bucket has filled up again costs no memory once swept."""
    limit = RateLimit()
    ask(limit, "a", T0, 60, 10)
    ask(limit, "b", T0 + timedelta(seconds=5), 60, 10)
    assert limit.forget_full(T0 + timedelta(seconds=1)) == 1
    assert len(limit) == 1
    assert limit.forget_full(T0 + timedelta(seconds=6)) == 1
    assert len(limit) == 0


def test_a_flood_of_one_off_keys_is_swept_as_it_comes() -> None:
    """Keys seen once and then never again do not pile up without bound."""
    limit = RateLimit()
    for i in range(50_000):
        ask(limit, f"k{i}", T0 + timedelta(seconds=i), 60, 10)
    assert len(limit) < 10_000


@settings(max_examples=200, deadline=None)
@given(
    per_minute=st.integers(1, 120),
    burst=st.integers(1, 30),
    gaps=st.lists(st.integers(0, 20_000), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_in_any_window(
    per_minute: int, burst: int, gaps: list[int]
) -> None:
    """In any time window, the requests let through are at most burst + rate x window, and a
    refused request is told a wait after which it passes."""
    limit = RateLimit()
    at = T0
    passed: list[datetime] = []
    for gap in gaps:
        at += timedelta(milliseconds=gap)
        wait = ask(limit, "k", at, per_minute, burst)
        if wait == 0.0:
            passed.append(at)
        else:
            later = at + timedelta(seconds=wait)
            assert limit.wait("k", later, per_minute, burst) == 0.0
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            window = (passed[j] - start).total_seconds()
            assert j - i + 1 <= burst + per_minute * window / 60 + 1e-6
