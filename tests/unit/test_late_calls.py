"""The late calls a history cannot show (reports/late_calls.py), with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reports.late_calls import AGE_SLICES, LateWindows, age_slice, expected_late_wrong, late_windows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
W = 60 * S  # the attribution window: 12 slices of 5 s


def test_the_next_lease_of_another_visitor_covers_the_window_from_its_start() -> None:
    leases = [
        ("n1", T0 - 100 * S, T0, "va"),
        ("n1", T0 + 30 * S, T0 + 200 * S, "vb"),  # 30 s after A's end: ages 30-60 s covered
        ("n2", T0 - 100 * S, T0, "vc"),
        ("n2", T0 + 10 * S, T0 + 20 * S, "vc"),  # the same visitor: nothing covered
    ]
    windows = late_windows(leases, W)
    assert windows.covered == (0.0,) * 6 + (1.0,) * 6
    # A, C and C's second lease, B: four windows, A's half covered.
    assert windows.open == (4.0,) * 6 + (3.0,) * 6
    half = late_windows([("n", T0, T0, "a"), ("n", T0 + 32.5 * S, T0 + 40 * S, "b")], W)
    assert half.covered[6] == pytest.approx(0.5)


def test_expected_wrong_calls_are_the_seen_rate_per_open_window_times_the_covered_ones() -> None:
    history = LateWindows(open=(10.0,) * AGE_SLICES, covered=(0.0,) * AGE_SLICES)
    seen = [0] * AGE_SLICES
    seen[7] = 1  # one late call 35-40 s after a lease ended, in ten open windows
    candidate = LateWindows(open=(5.0,) * AGE_SLICES, covered=(5.0,) * AGE_SLICES)
    assert expected_late_wrong(history, seen, candidate) == pytest.approx(0.5)
    assert expected_late_wrong(LateWindows(), seen, candidate) == 0.0  # nothing open: no rate


def test_ages_outside_the_window_have_no_slice() -> None:
    assert age_slice(-S, W) is None
    assert age_slice(W, W) is None
    assert age_slice(0 * S, W) == 0
    assert age_slice(59 * S, W) == AGE_SLICES - 1


def test_a_holder_who_called_before_the_next_lease_leaves_no_window() -> None:
    """A holder whose phone reached them before the number's next lease: a late call of theirs
    comes from a known phone and still finds them, so their window is neither open nor covered.
    """
    leases = [
        ("n1", T0 - 100 * S, T0, "va"),
        ("n1", T0 + 30 * S, T0 + 200 * S, "vb"),
    ]
    assert late_windows(leases, W).covered == (0.0,) * 6 + (1.0,) * 6
    for called_at in (T0 - 50 * S, T0 + 29 * S):  # on the page, or late on the resting number
        windows = late_windows(leases, W, {"va": called_at})
        assert windows.covered == (0.0,) * AGE_SLICES
        assert windows.open[6:] == (1.0,) * 6  # B's window alone (nobody leased n1 after B)


def test_a_window_counts_until_the_holder_first_called() -> None:
    """The slices after a holder's first call are no one's risk; those before count as ever."""
    leases = [("n1", T0 - 100 * S, T0, "va"), ("n1", T0 + 30 * S, T0 + 200 * S, "vb")]
    late_on_the_rest = late_windows(leases, W, {"va": T0 + 12.5 * S, "vb": T0})
    assert late_on_the_rest.open == (1.0, 1.0, 0.5) + (0.0,) * 9
    assert late_on_the_rest.covered == (0.0,) * AGE_SLICES
    # A called 45 s after leaving, on B's lease: covered from 30 s to 45 s, nothing after.
    late_on_the_next = late_windows(leases, W, {"va": T0 + 45 * S, "vb": T0})
    assert late_on_the_next.open == (1.0,) * 6 + (0.0,) * 6
    assert late_on_the_next.covered == (0.0,) * 6 + (1.0,) * 3 + (0.0,) * 3
