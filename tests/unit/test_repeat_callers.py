"""A caller's repeat call past the attribution window, on a fake clock: it follows the caller's
earlier call on the number to that visit (the window restarts at each of its calls), for that
phone only, and the visit's lease is kept only as long as such a call is within the window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from numberpool.claims import KNOWN, decide
from numberpool.lease import CallNote, Lease
from numberpool.pool import Pool
from numberpool.site import AttributionKind, Site
from tests.conftest import FakeClock
from tests.unit.test_pressure import NUMBERS, RULES, end, held, make_pool

pytestmark = pytest.mark.timeout(30)

ADA, EVE = "+12025550101", "+12025550103"
WINDOW = RULES.attribution_window  # 60 s


def called_then_left(clock: FakeClock) -> tuple[Site, Pool, Lease]:
    """One number: `v` held it and left; 50 s later (within the window) Ada's call went to v."""
    pool = make_pool(NUMBERS[:1], dial_delay=timedelta(0))
    site = Site("demo", pools=[pool])
    gone = end(pool, held(pool, clock, "v"), clock, 10)
    first = site.attribute(gone.number, clock.advance(seconds=50), caller=ADA)
    assert (first.kind, first.visitor_id) == (AttributionKind.PROBABLE, "v-v")
    return site, pool, gone


def test_a_repeat_past_the_window_goes_to_the_visit_of_the_call_before(clock: FakeClock) -> None:
    """Ada calls again 20 s later, 70 s after v's lease ended: the call is v's, probable with
    KNOWN confidence, the number's new live holder as rival (not an active call of theirs)."""
    site, pool, gone = called_then_left(clock)
    assert pool.lease("l-new", "s-new", "v-new", clock.advance(seconds=5)) is not None
    at = clock.advance(seconds=15)
    assert at - gone.until > WINDOW
    again = site.attribute(gone.number, at, caller=ADA)
    assert (again.kind, again.visitor_id, again.session_id) == (
        AttributionKind.PROBABLE,
        "v-v",
        "s-v",
    )
    assert again.confidence == KNOWN
    assert (again.other_visitor_id, again.other_session_id) == ("v-new", "s-new")


def test_a_repeat_on_a_number_nobody_took_since_is_not_lost(clock: FakeClock) -> None:
    """Nobody leased the number after v: Ada's repeat past the window is v's (probable, no
    rival), not unattributed."""
    site, _, gone = called_then_left(clock)
    again = site.attribute(gone.number, clock.advance(seconds=20), caller=ADA)
    assert (again.kind, again.visitor_id, again.confidence) == (
        AttributionKind.PROBABLE,
        "v-v",
        KNOWN,
    )
    assert again.other_visitor_id == ""


def test_another_phones_call_past_the_window_is_not_claimed_by_the_visit(
    clock: FakeClock,
) -> None:
    """Eve never called for v: her call past v's window goes to the live holder (or nobody),
    while Ada's, just after, still goes to v."""
    site, pool, gone = called_then_left(clock)
    number = gone.number
    eve_alone = site.attribute(number, clock.advance(seconds=15), caller=EVE)
    assert eve_alone.kind is AttributionKind.UNATTRIBUTED
    assert pool.candidates_at(number, clock.now(), EVE) == []
    assert pool.lease("l-new", "s-new", "v-new", clock.advance(seconds=1)) is not None
    eve = site.attribute(number, clock.advance(seconds=2), caller=EVE)
    assert (eve.kind, eve.visitor_id, eve.other_visitor_id) == (AttributionKind.ACTIVE, "v-new", "")
    anonymous = site.attribute(number, clock.now(), caller="")
    assert (anonymous.kind, anonymous.visitor_id) == (AttributionKind.ACTIVE, "v-new")
    ada = site.attribute(number, clock.advance(seconds=1), caller=ADA)
    assert (ada.kind, ada.visitor_id, ada.other_visitor_id) == (
        AttributionKind.PROBABLE,
        "v-v",
        "v-new",
    )


def test_the_window_restarts_at_each_call_and_then_closes(clock: FakeClock) -> None:
    """Ada calls every 50 s: each call is v's, long after v left; once more than the window
    has passed since her last call, her next one is not v's."""
    site, _, gone = called_then_left(clock)
    for _ in range(3):
        again = site.attribute(gone.number, clock.advance(seconds=50), caller=ADA)
        assert (again.kind, again.visitor_id) == (AttributionKind.PROBABLE, "v-v")
    assert clock.now() - gone.until > 3 * WINDOW
    late = site.attribute(gone.number, clock.advance(seconds=61), caller=ADA)
    assert late.kind is AttributionKind.UNATTRIBUTED


def test_prune_keeps_the_lease_only_while_a_noted_call_is_within_the_window(
    clock: FakeClock,
) -> None:
    """Pruned 70 s after v left, v's lease (and Ada's note) stay: Ada's call 50 s after it
    is within the window. Pruned once that call is more than the window ago, both go."""
    site, pool, gone = called_then_left(clock)
    noted_at = clock.now()
    assert pool.lease("l-new", "s-new", "v-new", clock.advance(seconds=5)) is not None
    clock.advance(seconds=15)
    assert pool.prune(clock.now()) == 0
    assert [lease.visitor_id for lease in pool.leases()] == ["v-v", "v-new"]
    assert [(c.caller, c.visitor_id, c.at) for c in pool.calls_on(gone.number)] == [
        (ADA, "v-v", noted_at)
    ]
    assert site.attribute(gone.number, clock.now(), caller=ADA).visitor_id == "v-v"
    clock.advance(seconds=61)  # past the window of that repeat call too
    assert pool.prune(clock.now()) == 1
    assert [lease.visitor_id for lease in pool.leases()] == ["v-new"]
    assert pool.calls_on(gone.number) == []
    assert pool.candidates_at(gone.number, clock.now(), ADA) == []


def test_prune_keeps_only_the_newest_lease_of_a_visitor_who_was_called_for(
    clock: FakeClock,
) -> None:
    """v held the number twice before others did: only v's newer lease is kept past the
    window for Ada's repeat, the older one goes."""
    pool = make_pool(NUMBERS[:1], dial_delay=timedelta(0))
    site = Site("demo", pools=[pool])
    end(pool, held(pool, clock, "v"), clock, 5)
    again = pool.lease("l-v2", "s-v2", "v-v", clock.advance(seconds=40))
    assert again is not None and again.number == NUMBERS[0]
    newer = end(pool, again, clock, 5)
    assert site.attribute(NUMBERS[0], clock.advance(seconds=55), caller=ADA).session_id == "s-v2"
    assert pool.lease("l-new", "s-new", "v-new", clock.advance(seconds=1)) is not None
    clock.advance(seconds=10)
    assert pool.prune(clock.now()) == 1
    assert [lease.lease_id for lease in pool.leases()] == ["l-v2", "l-new"]
    assert pool.candidates_at(NUMBERS[0], clock.now(), ADA)[-1] == newer


def test_decide_follows_only_a_noted_call_of_the_same_phone_within_the_window(
    clock: FakeClock,
) -> None:
    """The rule itself: a lease past the window claims a call only for the phone whose call on
    the number went to its visitor within the window before, as KNOWN, the holder as rival."""
    now = clock.now()
    old = Lease("l-v", "p1", NUMBERS[0], "s-v", "v-v", now, now, now + timedelta(seconds=15))
    holder = Lease(
        "l-h", "p1", NUMBERS[0], "s-h", "v-h", now + timedelta(seconds=50),
        now + timedelta(seconds=50), now + timedelta(seconds=100),
    )  # fmt: skip
    at = now + timedelta(seconds=90)  # 75 s after v's lease ended
    note = CallNote(ADA, "v-v", "", 0.7, now + timedelta(seconds=45))
    claim = decide([holder, old], at, RULES, caller=ADA, notes=[note])
    assert claim is not None
    assert (claim.lease, claim.confidence, claim.rival) == (old, KNOWN, holder)
    for caller, notes in (
        (EVE, [note]),  # another phone
        (ADA, [note._replace(at=at - WINDOW - timedelta(seconds=1))]),  # too long ago
        (ADA, [note._replace(visitor_id="v-other")]),  # went to another visit
        (ADA, [note._replace(at=at + timedelta(seconds=1))]),  # came after this one
        (ADA, []),
    ):
        other = decide([holder, old], at, RULES, caller=caller, notes=notes)
        assert other is not None and (other.lease, other.rival) == (holder, None), caller
    alone = decide([old], at, RULES, caller=EVE, notes=[note])
    assert alone is None


def test_a_reloaded_pool_keeps_the_note_times_and_the_followed_lease(clock: FakeClock) -> None:
    """A reload (Pool.adopt) carries each note with its time and the lease kept for it: Ada's
    repeat on the new pool object still goes to v."""
    _, pool, gone = called_then_left(clock)
    clock.advance(seconds=15)
    pool.prune(clock.now())
    fresh = make_pool(NUMBERS[:1], dial_delay=timedelta(0))
    fresh.adopt(pool, clock.now())
    assert fresh.calls_on(gone.number) == pool.calls_on(gone.number)
    again = Site("demo", pools=[fresh]).attribute(gone.number, clock.now(), caller=ADA)
    assert (again.kind, again.visitor_id) == (AttributionKind.PROBABLE, "v-v")


def test_the_same_decision_noted_again_keeps_one_note_with_the_latest_time(
    clock: FakeClock,
) -> None:
    """Two calls decided alike are weighed as one note (as before notes had a time), and the
    note keeps the later call's time, from which the window counts."""
    _, pool, gone = called_then_left(clock)
    (first,) = pool.calls_on(gone.number)
    later = first._replace(at=clock.advance(seconds=5))
    pool.note_call(gone.number, later, clock.now())
    pool.note_call(gone.number, first, clock.now())  # an older copy (a reload) changes nothing
    assert pool.calls_on(gone.number) == [later]


def test_a_repeat_just_inside_the_window_is_as_sure_as_one_just_past_it(clock: FakeClock) -> None:
    """Ada's repeat 58 s after v's lease ended (inside the window, nobody took the number) is
    v's with at least KNOWN confidence, as her repeat 70 s after it is: not the 0.5-0.95 ramp
    of a caller nothing points at."""
    site, _, gone = called_then_left(clock)
    inside = site.attribute(gone.number, clock.advance(seconds=8), caller=ADA)
    assert inside.visitor_id == "v-v" and clock.now() - gone.until < WINDOW
    assert inside.confidence >= KNOWN
    stranger = site.attribute(gone.number, clock.now(), caller=EVE)
    assert stranger.visitor_id == "v-v" and stranger.confidence < 0.6  # the ramp at 58 s
