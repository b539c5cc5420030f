"""Who called whom, on a fake clock: a number whose last holder called is the safest to reuse,
and a candidate whose calls came from another phone is the less likely caller."""

from __future__ import annotations

from datetime import timedelta

import pytest

from numberpool.claims import SECOND_PHONE
from numberpool.pool import Pool
from numberpool.site import AttributionKind, Site
from tests.conftest import FakeClock
from tests.unit.test_pressure import NUMBERS, RULES, end, held, make_pool

ADA, BOB, EVE = "+12025550101", "+12025550102", "+12025550103"


def test_reuse_prefers_a_number_whose_last_holder_called(clock: FakeClock) -> None:
    """Of two cooling numbers, the one whose holder called goes first, even released after
    the other and after a bounce's: that holder's next call is known by its caller id."""
    pool = make_pool(NUMBERS)
    quiet = held(pool, clock, "quiet", beat=False)
    reader, caller = held(pool, clock, "reader"), held(pool, clock, "caller")
    site = Site("demo", pools=[pool])
    got = site.attribute(caller.number, clock.advance(seconds=3), caller=ADA)
    assert got.visitor_id == "v-caller"
    assert pool.callers_of(caller.number, "v-caller") == {ADA}
    end(pool, quiet, clock, 1)
    end(pool, reader, clock, 1)
    end(pool, caller, clock, 1)
    taken = pool.lease("l-d", "s-d", "v-d", clock.advance(seconds=5))
    assert taken is not None and taken.number == caller.number
    then = pool.lease("l-e", "s-e", "v-e", clock.now())
    assert then is not None and then.number == quiet.number
    assert pool.reused_count == 2


def test_an_anonymous_call_marks_nobody(clock: FakeClock) -> None:
    """A call with no caller id tells nothing about the next one: the holder is not marked."""
    pool = make_pool(NUMBERS[:1])
    lease = held(pool, clock, "x")
    Site("demo", pools=[pool]).attribute(lease.number, clock.advance(seconds=2), caller="")
    assert pool.callers_of(lease.number, "v-x") == frozenset()


def reused(clock: FakeClock, rest: float = 2) -> tuple[Site, Pool, str]:
    """One number: `old` held it and left; `rest` seconds later `new` got it."""
    pool = make_pool(NUMBERS[:1], dial_delay=timedelta(0))
    end(pool, held(pool, clock, "old"), clock, 10)
    clock.advance(seconds=rest)
    assert pool.lease("l-new", "s-new", "v-new", clock.now()) is not None
    return Site("demo", pools=[pool]), pool, NUMBERS[0]


def test_a_doubtful_earlier_call_counts_as_much_as_it_was_sure(clock: FakeClock) -> None:
    """Ada's call went to the new holder as a near coin toss (the old one was its rival): a call
    from Eve's phone is weighed with it both ways, so one doubtful call does not turn the next
    one round (no wrong call breeding another), but it moves the confidence."""
    site, _, number = reused(clock)
    first = site.attribute(number, clock.advance(seconds=5), caller=ADA)
    assert (first.visitor_id, first.other_visitor_id) == ("v-new", "v-old")
    eve = site.attribute(number, clock.advance(seconds=5), caller=EVE)
    c, odds = first.confidence, 0.5 + 0.45 * 12 / 60
    mine, theirs = odds * (1 - 0.9 * c), (1 - odds) * (1 - 0.9 * (1 - c))
    assert mine > theirs and odds > 0.5
    assert (eve.kind, eve.visitor_id, eve.other_visitor_id) == (
        AttributionKind.PROBABLE,
        "v-new",
        "v-old",
    )
    assert eve.confidence == pytest.approx(mine / (mine + theirs))
    assert eve.confidence < odds  # less sure than without Ada's call
    ada = site.attribute(number, clock.advance(seconds=1), caller=ADA)
    assert (ada.visitor_id, ada.other_visitor_id) == ("v-new", "v-old")


def test_a_previous_holder_who_called_from_another_phone_leaves_the_call_to_the_new_one(
    clock: FakeClock,
) -> None:
    """The previous holder called from Bob's phone before leaving: a call from Eve's goes to
    the live holder, surer than a coin toss."""
    pool = make_pool(NUMBERS[:1], dial_delay=timedelta(0))
    site = Site("demo", pools=[pool])
    old = held(pool, clock, "old")
    site.attribute(old.number, clock.advance(seconds=3), caller=BOB)
    end(pool, old, clock, 5)
    new = pool.lease("l-new", "s-new", "v-new", clock.advance(seconds=1))
    assert new is not None
    eve = site.attribute(new.number, clock.advance(seconds=1), caller=EVE)
    odds = 0.5 + 0.45 * 2 / 60  # a coin toss, nearly, without Bob's call
    mine, theirs = odds, (1 - odds) * SECOND_PHONE
    assert (eve.visitor_id, eve.other_visitor_id) == ("v-new", "v-old")
    assert eve.confidence == pytest.approx(mine / (mine + theirs))


def test_a_call_on_a_rested_number_is_weighed_as_the_coin_it_was(clock: FakeClock) -> None:
    """Without pressure the live holder wins Eve's call unchallenged (active, 1.0), but the
    holder before it left only 33 s ago: a later call from Ada's phone weighs Eve's as that
    holder's with the odds it had, not as a certainty, so one call that was really the old
    holder's does not send the new holder's own call to the old one."""
    site, pool, number = reused(clock, rest=RULES.cooldown.total_seconds() + 1)
    assert pool.reused_count == 0
    calm = site.attribute(number, clock.advance(seconds=2), caller=EVE)
    assert (calm.kind, calm.visitor_id, calm.confidence) == (AttributionKind.ACTIVE, "v-new", 1.0)
    ada = site.attribute(number, clock.advance(seconds=1), caller=ADA)
    eve_odds, odds = 0.5 + 0.45 * 33 / 60, 0.5 + 0.45 * 34 / 60
    mine = odds * (1 - 0.9 * eve_odds)
    theirs = (1 - odds) * (1 - 0.9 * (1 - eve_odds))
    assert (ada.kind, ada.visitor_id, ada.other_visitor_id) == (
        AttributionKind.PROBABLE,
        "v-new",
        "v-old",
    )
    assert ada.confidence == pytest.approx(mine / (mine + theirs))


def test_who_called_is_forgotten_with_the_lease_and_kept_across_a_reload(
    clock: FakeClock,
) -> None:
    """Pruning drops the callers of visitors whose leases are forgotten; a reloaded pool keeps
    the callers of those it adopts."""
    pool = make_pool(NUMBERS[:2])
    site = Site("demo", pools=[pool])
    lease = held(pool, clock, "a")
    site.attribute(lease.number, clock.advance(seconds=2), caller=ADA)
    fresh = make_pool(NUMBERS[:2])
    fresh.adopt(pool, clock.now())
    assert fresh.callers_of(lease.number, "v-a") == {ADA}
    end(pool, lease, clock, 1)
    other = pool.lease("l-b", "s-b", "v-b", clock.advance(seconds=RULES.cooldown.total_seconds()))
    assert other is not None and other.number != lease.number
    again = pool.lease("l-c", "s-c", "v-c", clock.advance(seconds=1))
    assert again is not None and again.number == lease.number
    pool.prune(clock.advance(seconds=RULES.attribution_window.total_seconds() + 60))
    assert pool.callers_of(lease.number, "v-a") == frozenset()


@pytest.mark.parametrize("caller", [ADA, ""])
def test_a_call_from_the_phone_a_visitor_called_from_is_not_from_elsewhere(
    clock: FakeClock, caller: str
) -> None:
    """Calling again from the same phone (or with no caller id) never counts against the
    visitor: the live holder keeps the call."""
    site, _, number = reused(clock, rest=RULES.cooldown.total_seconds() + 1)
    site.attribute(number, clock.advance(seconds=2), caller=ADA)
    again = site.attribute(number, clock.advance(seconds=2), caller=caller)
    assert (again.kind, again.visitor_id) == (AttributionKind.ACTIVE, "v-new")
