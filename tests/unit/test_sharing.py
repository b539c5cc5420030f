"""Sharing a called number (issue 11): a number whose one live holder already called may be
leased to a second visitor before a number whose silent last holder may still call. The first
holder keeps the number and their calls (told apart by caller id); never a third live lease,
never a share with a holder who has not called."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from numberpool.claims import KNOWN
from numberpool.lease import CallNote
from numberpool.pool import Lease, Pool
from numberpool.site import AttributionKind, Site
from tests.conftest import FakeClock
from tests.unit.test_pressure import NUMBERS, end, held, make_pool

pytestmark = pytest.mark.timeout(60)

P1, P2, P3 = "+12025550101", "+12025550102", "+12025550103"


def pool_of(count: int, **rules: object) -> tuple[Pool, Site]:
    pool = make_pool(NUMBERS[:count], dial_delay=timedelta(0), **rules)
    return pool, Site("demo", pools=[pool])


def called(site: Site, lease: Lease, clock: FakeClock, phone: str) -> None:
    """A call from `phone` on the lease's number goes to its visitor (noted by the pool)."""
    got = site.attribute(lease.number, clock.now(), caller=phone)
    assert got.visitor_id == lease.visitor_id


def beat(pool: Pool, lease: Lease, clock: FakeClock) -> Lease:
    renewed = pool.heartbeat(lease.number, lease.session_id, clock.now())
    assert renewed is not None, f"{lease.session_id}'s heartbeat was refused"
    return renewed


def shared(clock: FakeClock, **rules: object) -> tuple[Pool, Site, Lease, Lease]:
    """Two numbers: A holds the first and called from P1; X held the second and left silent 3 s
    ago (its window open, cooling); B arrives 2 s later."""
    pool, site = pool_of(2, **rules)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    x = held(pool, clock, "x")
    end(pool, x, clock, 3)
    clock.advance(seconds=2)
    beat(pool, a, clock)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None
    return pool, site, a, b


def test_a_live_number_whose_holder_called_is_shared_before_a_silent_holders(
    clock: FakeClock,
) -> None:
    pool, _, a, b = shared(clock)
    assert b.number == a.number
    assert (pool.shared_count, pool.reused_count, pool.exhausted_count) == (1, 0, 0)
    assert pool.live_count(clock.now()) == 2
    clock.advance(seconds=4)
    beat(pool, a, clock)
    beat(pool, b, clock)
    assert pool.holds("v-a", clock.now()) and pool.holds("v-b", clock.now())


def test_calls_on_a_shared_number_are_told_apart_by_caller_id(clock: FakeClock) -> None:
    _, site, a, b = shared(clock)
    clock.advance(seconds=20)
    again = site.attribute(a.number, clock.now(), caller=P1, known_visitors={"v-a"})
    assert (again.kind, again.visitor_id, again.other_visitor_id) == (
        AttributionKind.PROBABLE,
        "v-a",
        "v-b",
    )
    assert again.confidence == KNOWN
    # Without the store's known visitors, the pool's own note of P1's call says the same.
    repeat = site.attribute(a.number, clock.now(), caller=P1)
    assert repeat.visitor_id == "v-a"
    new = site.attribute(a.number, clock.now(), caller=P2)
    assert (new.kind, new.visitor_id, new.other_visitor_id) == (
        AttributionKind.PROBABLE,
        "v-b",
        "v-a",
    )
    assert new.session_id == b.session_id and new.other_session_id == a.session_id
    assert new.confidence > 0.5


def test_sharing_off_takes_the_cooling_number(clock: FakeClock) -> None:
    pool, _, a, b = shared(clock, share_called=False)
    assert b.number != a.number
    assert (pool.shared_count, pool.reused_count) == (0, 1)


def test_the_overflow_policy_never_shares(clock: FakeClock) -> None:
    pool, site = pool_of(1, when_exhausted="overflow")
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is None
    assert (pool.shared_count, pool.exhausted_count) == (0, 1)


def test_a_silent_live_holder_is_never_shared(clock: FakeClock) -> None:
    pool, _ = pool_of(1)
    held(pool, clock, "a")
    clock.advance(seconds=3)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is None
    assert (pool.shared_count, pool.exhausted_count) == (0, 1)


def test_never_a_third_live_lease(clock: FakeClock) -> None:
    """A and B share the one number and both called: C gets nothing (the overflow number)."""
    pool, site = pool_of(1)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and b.number == a.number
    clock.advance(seconds=1)
    beat(pool, b, clock)
    called(site, b, clock, P2)
    assert pool.lease("l-c", "s-c", "v-c", clock.now()) is None
    # Once A's lease ends, B alone holds it, and B called: C may share it with B.
    end(pool, a, clock, 1)
    c = pool.lease("l-c", "s-c", "v-c", clock.now())
    assert c is not None and c.number == a.number and pool.shared_count == 2


def test_a_number_whose_holder_called_and_left_goes_before_a_share(clock: FakeClock) -> None:
    pool, site = pool_of(2)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    y = held(pool, clock, "y")
    called(site, y, clock, P2)
    end(pool, y, clock, 2)
    beat(pool, a, clock)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and b.number == y.number
    assert (pool.shared_count, pool.reused_count) == (0, 1)


def test_the_first_holder_keeps_its_number_when_it_returns(clock: FakeClock) -> None:
    """A opens another page while sharing: A gets the number again, A's old lease ends there
    (superseded), B's lease goes on untouched."""
    pool, _, a, b = shared(clock)
    clock.advance(seconds=2)
    again = pool.lease("l-a2", "s-a2", "v-a", clock.now())
    assert again is not None and again.number == a.number
    old = pool.superseded_by(again)
    assert old is not None and old.session_id == a.session_id and old.until == clock.now()
    assert pool.heartbeat(a.number, a.session_id, clock.now()) is None  # ended
    beat(pool, b, clock)
    beat(pool, again, clock)
    assert pool.live_count(clock.now()) == 2 and pool.shared_count == 1


def test_the_number_stays_busy_while_its_first_holder_is_live(clock: FakeClock) -> None:
    """B (the second holder) leaves first: the number is not free, nor removable, while A is
    live; A's release ends it, and after the cooldown the number is free again."""
    pool, site = pool_of(1)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None
    end(pool, b, clock, 1)
    clock.advance(seconds=5)
    beat(pool, a, clock)
    assert not pool.remove_number(a.number, clock.now())
    assert pool.lease("l-c", "s-c", "v-c", clock.now()) is None  # A live and B not called
    ended = pool.release(a.number, a.session_id, clock.now())
    assert ended is not None and ended.session_id == a.session_id
    assert pool.live_count(clock.now()) == 0


def test_a_restored_pool_keeps_both_holders(clock: FakeClock) -> None:
    """After a restart (leases put back oldest first, the call notes with them) both holders'
    heartbeats work, A's next page gets the number back, and nobody else gets it."""
    pool, _ = pool_of(1)
    a = held(pool, clock, "a")
    note = CallNote(P1, "v-a", "", 1.0, clock.now())
    pool.note_call(a.number, note, clock.now())
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and b.number == a.number
    clock.advance(seconds=3)
    fresh, _ = pool_of(1)
    for lease in sorted(pool.leases(), key=lambda x: x.started_at):
        assert fresh.restore(lease, clock.now())
    fresh.note_call(a.number, note, clock.now())
    fresh.prune(clock.now())
    beat(fresh, a, clock)
    beat(fresh, b, clock)
    assert fresh.lease("l-c", "s-c", "v-c", clock.now()) is None
    again = fresh.lease("l-a2", "s-a2", "v-a", clock.now())
    assert again is not None and again.number == a.number


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_second_live_lease_is_only_ever_a_share(clock: FakeClock, seed: int) -> None:
    """Random leases (some withdrawn: their commit failed), heartbeats, calls, releases,
    prunes, restarts and returning visitors on a small pool under pressure: every live holder
    is still known to the pool as holding its number, and at every step a number has at most two
    live leases, each its visitor's newest, and when there are two one of them had a call on
    it noted before the other's lease began (a returning holder who called may come back while
    the one sharing is still there)."""
    rng = random.Random(seed)
    numbers = [f"+1415555{i:04d}" for i in range(300, 305)]
    pool = make_pool(numbers, dial_delay=timedelta(0))
    site = Site("demo", pools=[pool])
    live: dict[str, Lease] = {}  # session -> its lease
    shares = 0
    for step in range(4000):
        now = clock.advance(seconds=rng.uniform(0, 2))
        roll = rng.random()
        if roll < 0.3:
            visitor = rng.choice([lease.visitor_id for lease in live.values()] or ["v0"])
            if rng.random() < 0.7:
                visitor = f"v{step}"
            lease = pool.lease(f"l{step}", f"s{step}", visitor, now)
            if lease is not None and rng.random() < 0.05:  # its commit failed
                assert pool.withdraw(lease.number, lease.session_id, now) == lease
            elif lease is not None:
                live[lease.session_id] = lease
        elif roll < 0.6 and live:
            session = rng.choice(list(live))
            lease = live[session]
            if pool.heartbeat(lease.number, session, now) is None:
                del live[session]
        elif roll < 0.75 and live:
            lease = live[rng.choice(list(live))]
            site.attribute(lease.number, now, caller=f"+1202{lease.visitor_id[1:]:0>7}"[:12])
        elif roll < 0.97 and live:
            session = rng.choice(list(live))
            lease = live.pop(session)
            pool.release(lease.number, session, now)
        elif roll < 0.985:
            pool.prune(now)
        else:  # a restart: leases put back as the store reads them, then the call notes
            shared_before = pool.shared_count
            pool = restarted(pool, numbers, now)
            pool.shared_count = shared_before
            site = Site("demo", pools=[pool])
        for lease in live.values():
            assert pool.holds(lease.visitor_id, now) or not any(
                x.session_id == lease.session_id and x.live_at(now) for x in pool.leases()
            ), f"step {step}: {lease.visitor_id} holds a live lease the pool forgot"
        for number in numbers:
            history = sorted(
                (x for x in pool.leases() if x.number == number), key=lambda x: x.started_at
            )
            now_live = [x for x in history if x.live_at(now)]
            newest = {x.visitor_id: x for x in history}  # each visitor's newest lease
            assert all(newest[x.visitor_id] == x for x in now_live), f"step {step}: {now_live}"
            assert len(now_live) <= 2, f"step {step}: {number} has {len(now_live)} live leases"
            if len(now_live) == 2:
                # One of the two had called on it before the other's lease began.
                notes = pool.calls_on(number)
                assert any(
                    n.visitor_id == x.visitor_id and n.at <= y.started_at
                    for x, y in (now_live, now_live[::-1])
                    for n in notes
                ), f"step {step}: {number} shared by two who never called"
        shares = pool.shared_count
    assert shares > 0, "the run shared a number at least once"


def restarted(pool: Pool, numbers: list[str], now: datetime) -> Pool:
    """The pool a restart makes from the store: leases by start then end (a lease cut at its
    successor's start first: gateway/store/sessions.py), then the call notes."""
    fresh = make_pool(numbers, dial_delay=timedelta(0))
    for lease in sorted(pool.leases(), key=lambda x: (x.started_at, x.until)):
        assert fresh.restore(lease, now)
    for number in numbers:
        for note in pool.calls_on(number):
            fresh.note_call(number, note, now)
    return fresh


def test_a_withdrawn_share_leaves_the_number_as_it_was(clock: FakeClock) -> None:
    """B's session failed to commit: its lease is taken back, not ended, so a call from a new
    phone goes to A alone (active), and the number may be shared again."""
    pool, site = pool_of(1)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and b.number == a.number
    gone = pool.withdraw(b.number, b.session_id, clock.now())
    assert gone == b and pool.live_count(clock.now()) == 1
    clock.advance(seconds=2)
    new = site.attribute(a.number, clock.now(), caller=P2)
    assert (new.kind, new.visitor_id, new.other_visitor_id) == (AttributionKind.ACTIVE, "v-a", "")
    c = pool.lease("l-c", "s-c", "v-c", clock.now())
    assert c is not None and c.number == a.number
    assert pool.withdraw(c.number, "s-nobody", clock.now()) is None


def test_a_prune_keeps_the_first_holder_of_a_number_whose_sharer_came_back(
    clock: FakeClock,
) -> None:
    """A calls, B shares and opens another page (A's live lease is then not among the last
    two): after a prune A still holds the number, and A's next page gets it back."""
    pool, site = pool_of(1)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and b.number == a.number
    clock.advance(seconds=2)
    assert pool.lease("l-b2", "s-b2", "v-b", clock.now()) is not None
    pool.prune(clock.now())
    assert pool.holds("v-a", clock.now())
    beat(pool, a, clock)
    again = pool.lease("l-a2", "s-a2", "v-a", clock.now())
    assert again is not None and again.number == a.number


def test_a_number_is_rested_only_once_its_last_holder_left(clock: FakeClock) -> None:
    """B shares and leaves at once, A stays 80 s: the number's rest starts when A leaves, so C
    taking it a second later is a reuse, and its last sign of life is A's."""
    pool, site = pool_of(1)
    a = held(pool, clock, "a")
    called(site, a, clock, P1)
    b = pool.lease("l-b", "s-b", "v-b", clock.now())
    assert b is not None and pool.release(b.number, b.session_id, clock.now()) is not None
    for _ in range(8):
        clock.advance(seconds=10)
        beat(pool, a, clock)
    end(pool, a, clock, 0)
    clock.advance(seconds=1)
    c = pool.lease("l-c", "s-c", "v-c", clock.now())
    assert c is not None and c.number == a.number
    assert pool.reused_count == 1


def test_a_prune_maps_a_visitor_latest_on_two_numbers_to_the_newest(clock: FakeClock) -> None:
    """A visitor whose lease on the second number ended and who now holds the first (their
    map entry had pointed at a withdrawn lease's number): after a prune they still hold the
    first, and their next page gets it."""
    pool, _ = pool_of(2)
    first, second = NUMBERS[:2]
    at = clock.now()
    old = Lease("l-1", "p1", second, "s-1", "v-a", at, at, at + timedelta(seconds=10))
    now = clock.advance(seconds=20)
    new = Lease("l-2", "p1", first, "s-2", "v-a", now, now, now + timedelta(seconds=15))
    assert pool.restore(old, now) and pool.restore(new, now)
    pool.prune(clock.advance(seconds=5))
    assert pool.holds("v-a", clock.now())
    again = pool.lease("l-3", "s-3", "v-a", clock.now())
    assert again is not None and again.number == first
