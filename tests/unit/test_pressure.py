"""Issue 11's rules on a fake clock: the exhaustion choice, the cooldown that adapts to
pressure, and the probable decision with its confidence and rival."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numberpool.claims import KNOWN
from numberpool.lease import CallNote
from numberpool.pool import Lease, LeaseRules, Pool
from numberpool.site import AttributionKind, OfferKind, Site
from numberpool.visit import visit_from_url
from tests.conftest import FakeClock

A, B, C = NUMBERS = [f"+1415555010{i}" for i in range(1, 4)]
OVERFLOW = "+14155550120"
# The measurement timings: heartbeat 5 s, grace 15 s, cooldown 30 s, window 60 s; the
# dial delay (off by default) at 10 s, so that its rule is tested too.
RULES = LeaseRules(
    heartbeat=timedelta(seconds=5),
    grace=timedelta(seconds=15),
    probation=timedelta(seconds=15),
    cooldown=timedelta(seconds=30),
    attribution_window=timedelta(seconds=60),
    dial_delay=timedelta(seconds=10),
)
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def make_pool(numbers: list[str] = NUMBERS, **rules: object) -> Pool:
    return Pool("p1", "+14155550100", numbers, replace(RULES, **rules), overflow=OVERFLOW)


def held(pool: Pool, clock: FakeClock, tag: str, *, beat: bool = True) -> Lease:
    """A lease to a new visitor `tag`, heartbeated once a second later unless `beat` is False."""
    lease = pool.lease(f"l-{tag}", f"s-{tag}", f"v-{tag}", clock.now())
    assert lease is not None
    if beat:
        renewed = pool.heartbeat(lease.number, lease.session_id, clock.now() + timedelta(seconds=1))
        assert renewed is not None
    return lease


def end(pool: Pool, lease: Lease, clock: FakeClock, seconds: float) -> Lease:
    """Move `seconds` on, then end `lease` there (the visitor left); the ended lease."""
    clock.advance(seconds=seconds)
    ended = pool.release(lease.number, lease.session_id, clock.now())
    assert ended is not None
    return ended


# -- the exhaustion choice ---------------------------------------------------------------------


def test_reuse_takes_the_number_released_longest_ago(clock: FakeClock) -> None:
    """No number rested: the one whose holder left first is leased, counted as reused."""
    pool = make_pool()
    a, b, c = (held(pool, clock, t) for t in "abc")
    end(pool, b, clock, 2)
    end(pool, c, clock, 1)
    end(pool, a, clock, 1)
    clock.advance(seconds=5)
    got = pool.lease("l-d", "s-d", "v-d", clock.now())
    assert got is not None and got.number == b.number
    assert (pool.reused_count, pool.exhausted_count) == (1, 0)


def test_reuse_prefers_a_number_whose_holder_never_heartbeated(clock: FakeClock) -> None:
    """A bounce's number (no heartbeat) goes first, even released after a reader's."""
    pool = make_pool(NUMBERS[:2])
    reader = held(pool, clock, "reader")
    bounce = held(pool, clock, "bounce", beat=False)
    end(pool, reader, clock, 2)
    end(pool, bounce, clock, 3)
    got = pool.lease("l-d", "s-d", "v-d", clock.now() + timedelta(seconds=1))
    assert got is not None and got.number == bounce.number


def test_an_amp_page_that_cannot_heartbeat_is_no_bounce(clock: FakeClock) -> None:
    """An AMP lease never heartbeats because it cannot: its reader is not preferred."""
    pool = make_pool(NUMBERS[:2])
    reader = held(pool, clock, "reader")
    amp = pool.lease("l-amp", "s-amp", "v-amp", clock.now(), heartbeats=False)
    assert amp is not None
    end(pool, reader, clock, 2)
    end(pool, amp, clock, 3)
    got = pool.lease("l-d", "s-d", "v-d", clock.now() + timedelta(seconds=1))
    assert got is not None and got.number == reader.number


def test_reuse_never_takes_a_live_number_and_overflows_when_all_are(clock: FakeClock) -> None:
    """Every number live: nothing is leased (counted exhausted) and the site shows overflow."""
    pool = make_pool()
    for tag in "abc":
        held(pool, clock, tag)
    clock.advance(seconds=10)
    assert pool.lease("l-d", "s-d", "v-d", clock.now()) is None
    assert (pool.reused_count, pool.exhausted_count, pool.peak_live) == (0, 1, 3)
    site = Site("demo", pools=[pool])
    visit = visit_from_url("https://example.com/", user_agent=UA)
    (offer,) = site.offer(visit, "s-e", "v-e", clock.now(), lambda: "l-e")
    assert (offer.kind, offer.number) == (OfferKind.OVERFLOW, OVERFLOW)


def test_min_cooldown_is_the_least_rest_under_pressure(clock: FakeClock) -> None:
    """A cooling number is not reused before it rested `min_cooldown`, and is right after."""
    pool = make_pool(NUMBERS[:1], min_cooldown=timedelta(seconds=10))
    end(pool, held(pool, clock, "a"), clock, 3)
    clock.advance(seconds=10, microseconds=-1)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is None
    assert pool.exhausted_count == 1
    clock.advance(microseconds=1)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is not None
    assert (pool.reused_count, pool.exhausted_count) == (1, 1)


def test_overflow_mode_keeps_cooling_numbers_unleased(clock: FakeClock) -> None:
    """`when_exhausted="overflow"`: a pool with only cooling numbers leases nothing, as before."""
    pool = make_pool(NUMBERS[:1], when_exhausted="overflow")
    first = held(pool, clock, "a")
    end(pool, first, clock, 3)
    clock.advance(seconds=29)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is None
    assert (pool.reused_count, pool.exhausted_count) == (0, 1)
    clock.advance(seconds=1)
    assert pool.lease("l-b", "s-b", "v-b", clock.now()) is not None


def test_cooldown_is_full_while_rested_numbers_exist_and_adapts_when_none_do(
    clock: FakeClock,
) -> None:
    """Plenty: the rested number is leased and a cooling bounce's number is left alone. None
    rested: the cooldown shrinks to what the least risky number has rested."""
    pool = make_pool(NUMBERS[:2])
    rested = held(pool, clock, "rested")
    end(pool, rested, clock, 2)
    clock.advance(seconds=30)
    bounce = held(pool, clock, "bounce", beat=False)
    end(pool, bounce, clock, 1)
    plenty = pool.lease("l-c", "s-c", "v-c", clock.now())
    assert plenty is not None and plenty.number == rested.number
    assert pool.reused_count == 0
    pressed = pool.lease("l-d", "s-d", "v-d", clock.now() + timedelta(seconds=1))
    assert pressed is not None and pressed.number == bounce.number
    assert pool.reused_count == 1


def test_a_returning_visitor_gets_its_own_number_first_under_pressure(clock: FakeClock) -> None:
    """A visitor back while its number cools gets it again, not counted as a reuse."""
    pool = make_pool(NUMBERS[:2])
    older = held(pool, clock, "older")
    mine = held(pool, clock, "mine")
    end(pool, older, clock, 1)
    end(pool, mine, clock, 1)
    again = pool.lease("l-again", "s-again", "v-mine", clock.now() + timedelta(seconds=1))
    assert again is not None and again.number == mine.number
    assert pool.reused_count == 0


def _expected_choice(
    pool: Pool, now: datetime, amp: set[str], tiers: list[str] | None = None
) -> str | None:
    """The choice by a scan of every number (the oracle of the heaps): rested longest ago if
    nobody can call for its holder any more, else a holder who called, else (share_called) a
    live number whose one live holder called, ending soonest, else rested longest ago, else
    (pressure) quiet, else oldest cooling. A number is busy until the later end of its last two
    leases (a shared number has two live). The tier it came from goes to `tiers`."""
    history: dict[str, list[Lease]] = {n: [] for n in pool.numbers}
    for lease in sorted(pool.leases(), key=lambda x: x.started_at):
        history[lease.number].append(lease)
    latest = {n: h[-1] if h else None for n, h in history.items()}
    busy = {n: max(lease.until for lease in h[-2:]) for n, h in history.items() if h}
    order = {n: i for i, n in enumerate(pool.numbers)}
    free = sorted(
        (busy[n] if lease else datetime.min.replace(tzinfo=now.tzinfo), order[n], n)
        for n, lease in latest.items()
        if lease is None or now >= busy[n] + pool.rules.cooldown
    )
    tier, choice = "", None
    first = latest[free[0][2]] if free else None
    if free and (first is None or first.last_seen + pool.rules.attribution_window <= now):
        tier, choice = "safe", free[0][2]
    rested = [
        (lease, order[n], n)
        for n, lease in latest.items()
        if lease is not None and busy[n] <= now - pool.rules.min_cooldown
    ]
    called = [r for r in rested if pool.callers_of(r[2], r[0].visitor_id)]
    quiet = [
        r
        for r in rested
        if r[0].last_seen == r[0].started_at and r[0].lease_id not in amp and r not in called
    ]
    shareable = sorted(
        (busy[n], order[n], n)
        for n, lease in latest.items()
        if lease is not None
        and lease.live_at(now)
        and pool.callers_of(n, lease.visitor_id)
        and not (len(history[n]) > 1 and history[n][-2].live_at(now))
    )
    best = sorted(called or quiet or rested, key=lambda r: (busy[r[2]], r[1]))
    sharing = pool.rules.when_exhausted == "reuse" and pool.rules.share_called
    if choice is None and called:
        tier, choice = "called" if not free else "called before rested", best[0][2]
    elif choice is None and sharing and shareable:
        tier, choice = "shared", shareable[0][2]
    elif choice is None and free:
        tier, choice = "rested", free[0][2]
    elif choice is None and best:
        tier, choice = "quiet" if quiet else "oldest", best[0][2]
    if tiers is not None and tier:
        tiers.append(tier)
    return choice


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_heaps_choose_what_a_full_scan_would(clock: FakeClock, seed: int) -> None:
    """Across calm and pressure, leases, heartbeats, calls and releases, the O(log n) choice
    equals the scan (`_expected_choice`)."""
    rng = random.Random(seed)
    numbers = [f"+1415555{i:04d}" for i in range(200, 212)]
    pool = make_pool(numbers, min_cooldown=timedelta(seconds=5))
    holders: dict[str, str] = {}
    amp: set[str] = set()
    tiers: list[str] = []
    for step in range(3000):
        # Alternate calm stretches and bursts, so the quiet heap is dropped and made again.
        now = clock.advance(seconds=rng.uniform(0, 8 if (step // 300) % 2 else 1))
        roll = rng.random()
        if roll < 0.5:
            expected = _expected_choice(pool, now, amp, tiers)
            beats = rng.random() < 0.9
            lease = pool.lease(f"l{step}", f"s{step}", f"new{step}", now, heartbeats=beats)
            assert (lease.number if lease else None) == expected
            if lease:
                holders[lease.session_id] = lease.number
                if not beats:
                    amp.add(lease.lease_id)
        elif roll < 0.7 and holders:
            session = rng.choice(list(holders))
            pool.heartbeat(holders[session], session, now)
        elif roll < 0.8 and holders:  # a call goes to a holder (its lease may have ended)
            session = rng.choice(list(holders))
            note = CallNote(f"+1202{step:07d}", f"new{session[1:]}", "", 1.0)
            pool.note_call(holders[session], note, now)
        elif holders:
            session = rng.choice(list(holders))
            pool.release(holders.pop(session), session, now)
    assert pool.reused_count > 0
    # "called before rested" needs a call at the right moment: its own test below.
    every = {"safe", "rested", "called", "shared", "quiet", "oldest"}
    assert every <= set(tiers), "every tier of the choice was tried"


def test_a_holder_who_called_goes_before_one_who_rested_silent(clock: FakeClock) -> None:
    """A number rested the full cooldown is not safe while its silent holder may still call
    (the window outlasts the cooldown): a number whose holder called is leased first, even
    before its cooldown (counted as reused); a late call of the silent one stays theirs."""
    pool = make_pool(NUMBERS[:2])
    site = Site("demo", pools=[pool])
    silent = end(pool, held(pool, clock, "silent"), clock, 3)
    caller = held(pool, clock, "caller")
    note = CallNote("+12025550111", "v-caller", "", 1.0)
    pool.note_call(caller.number, note, clock.now())
    end(pool, caller, clock, 10)
    clock.advance(seconds=25)  # the silent holder's number rested 35 s: past the 30 s cooldown
    got = pool.lease("l-new", "s-new", "v-new", clock.now())
    assert got is not None and got.number == caller.number
    assert (pool.reused_count, pool.exhausted_count) == (1, 0)
    clock.advance(seconds=5)
    late = site.attribute(silent.number, clock.now(), caller="+12025550122")
    assert late.visitor_id == "v-silent"


def test_a_number_nobody_can_call_for_goes_first(clock: FakeClock) -> None:
    """Past its last holder's window a number is safe: it goes before one whose holder called,
    and it is not a reuse."""
    pool = make_pool(NUMBERS[:2])
    gone = end(pool, held(pool, clock, "gone"), clock, 3)
    clock.advance(seconds=50)
    caller = held(pool, clock, "caller")
    pool.note_call(caller.number, CallNote("+12025550111", "v-caller", "", 1.0), clock.now())
    end(pool, caller, clock, 10)
    assert clock.now() >= gone.last_seen + RULES.attribution_window
    got = pool.lease("l-new", "s-new", "v-new", clock.now())
    assert got is not None and got.number == gone.number and pool.reused_count == 0


def test_overflow_policy_takes_a_holder_who_called_only_once_rested(clock: FakeClock) -> None:
    """ "overflow" never leases a cooling number: the holder-who-called rule applies only among
    numbers that rested the full cooldown."""
    pool = make_pool(NUMBERS[:2], when_exhausted="overflow")
    silent = end(pool, held(pool, clock, "silent"), clock, 3)
    caller = held(pool, clock, "caller")
    pool.note_call(caller.number, CallNote("+12025550111", "v-caller", "", 1.0), clock.now())
    end(pool, caller, clock, 10)
    clock.advance(seconds=25)
    got = pool.lease("l-new", "s-new", "v-new", clock.now())
    assert got is not None and got.number == silent.number and pool.reused_count == 0


# -- the probable decision ---------------------------------------------------------------------


def reused(clock: FakeClock, *, known: bool = False) -> tuple[Site, Lease, Lease]:
    """One number: `old` held it and left; 2 s later `new` got it under pressure."""
    pool = make_pool(NUMBERS[:1])
    old = end(pool, held(pool, clock, "old"), clock, 10)
    clock.advance(seconds=2)
    new = pool.lease("l-new", "s-new", "v-new", clock.now())
    assert new is not None and pool.reused_count == 1
    return Site("demo", pools=[pool]), old, new


def test_a_call_right_after_the_new_lease_goes_to_the_holder_who_just_left(
    clock: FakeClock,
) -> None:
    """Within the dial delay the new holder has hardly seen the number: the previous holder
    wins, `probable`, with the new one as the rival; sure at first, a coin toss at the delay."""
    site, old, new = reused(clock)
    seconds = (0, 5, 9.9)
    got = [site.attribute(A, new.started_at + timedelta(seconds=s)) for s in seconds]
    for attribution in got:
        assert attribution.kind is AttributionKind.PROBABLE
        assert (attribution.session_id, attribution.visitor_id) == (old.session_id, "v-old")
        assert (attribution.other_session_id, attribution.other_visitor_id) == ("s-new", "v-new")
    assert [a.confidence for a in got] == pytest.approx([0.95, 0.725, 0.5045])


def test_by_default_a_call_on_a_reused_number_goes_to_its_live_holder(clock: FakeClock) -> None:
    """With the default dial delay (off), the live holder wins a call on a number reused under
    pressure, even at once, `probable` with the previous holder named as the rival."""
    assert LeaseRules().dial_delay == timedelta(0)
    site, old, new = reused(clock)
    site.pools[0].rules = replace(RULES, dial_delay=timedelta(0))
    got = site.attribute(A, new.started_at)
    assert (got.kind, got.session_id, got.other_session_id) == (
        AttributionKind.PROBABLE,
        new.session_id,
        old.session_id,
    )
    assert got.confidence == pytest.approx(0.5 + 0.45 * 2 / 60)


def test_past_the_dial_delay_the_live_holder_wins_with_the_rival_reported(
    clock: FakeClock,
) -> None:
    """Past the dial delay the live holder wins, still `probable` while the previous holder
    (who rested less than the cooldown) could claim the call; surer as it left longer ago."""
    site, old, new = reused(clock)
    at = new.started_at + RULES.dial_delay
    got = site.attribute(A, at)
    assert (got.kind, got.session_id, got.other_session_id) == (
        AttributionKind.PROBABLE,
        new.session_id,
        old.session_id,
    )
    assert got.confidence == pytest.approx(0.5 + 0.45 * 12 / 60)
    for seconds in range(5, 60, 10):  # the new holder stays on the page
        assert site.pools[0].heartbeat(
            A, new.session_id, new.started_at + timedelta(seconds=seconds)
        )
    later = site.attribute(A, old.until + RULES.attribution_window + timedelta(seconds=1))
    assert (later.kind, later.confidence, later.other_session_id) == (
        AttributionKind.ACTIVE,
        1.0,
        "",
    )


def test_a_known_caller_is_given_the_visit_it_called_from(clock: FakeClock) -> None:
    """The caller called before from one candidate's visit: that candidate wins either way."""
    site, old, new = reused(clock)
    late = new.started_at + timedelta(seconds=30)
    back = site.attribute(A, late, known_visitors=frozenset({"v-old"}))
    assert (back.kind, back.session_id, back.other_session_id, back.confidence) == (
        AttributionKind.PROBABLE,
        old.session_id,
        new.session_id,
        KNOWN,
    )
    early = site.attribute(A, new.started_at, known_visitors=frozenset({"v-new"}))
    assert (early.session_id, early.other_session_id, early.confidence) == (
        new.session_id,
        old.session_id,
        KNOWN,
    )
    stranger = site.attribute(A, late, known_visitors=frozenset({"v-else"}))
    assert stranger.session_id == new.session_id and stranger.confidence < KNOWN


def test_a_number_that_rested_its_full_cooldown_is_not_contested(clock: FakeClock) -> None:
    """Without pressure nothing changes: the live holder past the dial delay is `active`,
    certain, with no rival; within the dial delay the previous holder still wins."""
    pool = make_pool(NUMBERS[:1])
    site = Site("demo", pools=[pool])
    old = end(pool, held(pool, clock, "old"), clock, 10)
    clock.advance(seconds=30)
    new = pool.lease("l-new", "s-new", "v-new", clock.now())
    assert new is not None and pool.reused_count == 0
    settled = site.attribute(A, new.started_at + RULES.dial_delay)
    assert (settled.kind, settled.session_id, settled.confidence) == (
        AttributionKind.ACTIVE,
        new.session_id,
        1.0,
    )
    assert settled.other_session_id == settled.other_visitor_id == ""
    early = site.attribute(A, new.started_at + timedelta(seconds=1))
    assert (early.kind, early.session_id, early.other_session_id) == (
        AttributionKind.PROBABLE,
        old.session_id,
        new.session_id,
    )


def test_a_visitors_own_earlier_session_is_no_rival(clock: FakeClock) -> None:
    """A returning visitor's new session on the same number: `active`, no rival, even at once."""
    pool = make_pool(NUMBERS[:1])
    site = Site("demo", pools=[pool])
    first = held(pool, clock, "me")
    clock.advance(seconds=20)
    again = pool.lease("l-again", "s-again", "v-me", clock.now())
    assert again is not None and again.number == first.number
    got = site.attribute(A, clock.now())
    assert (got.kind, got.session_id, got.confidence, got.other_session_id) == (
        AttributionKind.ACTIVE,
        "s-again",
        1.0,
        "",
    )


def test_an_ended_lease_alone_is_probable_and_less_sure_with_time(clock: FakeClock) -> None:
    """Only the last holder, gone: `probable`, 0.95 as it leaves down to 0.5 at the window's
    edge, no rival; past the window, unattributed."""
    pool = make_pool(NUMBERS[:1])
    site = Site("demo", pools=[pool])
    lease = end(pool, held(pool, clock, "gone"), clock, 10)
    window = RULES.attribution_window
    got = [site.attribute(A, lease.until + window * f) for f in (0, 0.5, 1)]
    assert all(a.kind is AttributionKind.PROBABLE and a.session_id == "s-gone" for a in got)
    assert [a.confidence for a in got] == pytest.approx([0.95, 0.725, 0.5])
    assert all(a.other_session_id == "" for a in got)
    past = site.attribute(A, lease.until + window + timedelta(microseconds=1))
    assert past.kind is AttributionKind.UNATTRIBUTED
    live, before = pool.holder_at(A, lease.until)
    assert live is None and before is not None and before.session_id == "s-gone"


def test_two_ended_holders_in_the_window_are_both_named(clock: FakeClock) -> None:
    """Both gone, the second reused the number under pressure: the latest wins as before, and
    the earlier one is named as the rival."""
    site, old, new = reused(clock)
    pool = site.pools[0]
    assert pool.release(A, new.session_id, new.started_at + timedelta(seconds=12))
    got = site.attribute(A, new.started_at + timedelta(seconds=20))
    assert (got.kind, got.session_id, got.other_session_id) == (
        AttributionKind.PROBABLE,
        new.session_id,
        old.session_id,
    )
    assert 0.5 <= got.confidence < 1


# -- never two live leases -------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["lease", "lease", "amp", "beat", "release"]),
        st.integers(0, 7),  # visitor (few: returning visitors happen)
        st.floats(0, 20),  # seconds since the previous step
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, min_rest=st.integers(0, 30), mode=st.sampled_from(["reuse", "overflow"]))
def test_no_number_ever_has_two_live_leases(ops, min_rest: int, mode: str) -> None:
    """Whatever the order and timing of leases, heartbeats and releases, no two leases of a
    number overlap, and a reuse always leaves the previous holder its least rest."""
    clock = FakeClock()
    pool = make_pool(NUMBERS[:2], min_cooldown=timedelta(seconds=min_rest), when_exhausted=mode)
    sessions: list[Lease] = []
    for step, (op, visitor, seconds) in enumerate(ops):
        now = clock.advance(seconds=seconds)
        if op in ("lease", "amp"):
            before = {n: pool.holder_at(n, now) for n in NUMBERS[:2]}
            reused = pool.reused_count
            got = pool.lease(f"l{step}", f"s{step}", f"v{visitor}", now, heartbeats=op == "lease")
            if got is not None:
                sessions.append(got)
                live, ended = before[got.number]
                if pool.reused_count > reused:
                    assert live is None and ended is not None
                    assert now - ended.until >= timedelta(seconds=min_rest)
        elif sessions and op == "beat":
            lease = sessions[visitor % len(sessions)]
            pool.heartbeat(lease.number, lease.session_id, now)
        elif sessions:
            lease = sessions[visitor % len(sessions)]
            pool.release(lease.number, lease.session_id, now)
        for number in NUMBERS[:2]:
            history = sorted(
                (x for x in pool.leases() if x.number == number), key=lambda x: x.started_at
            )
            assert all(a.until <= b.started_at for a, b in itertools.pairwise(history))
            assert sum(x.live_at(now) for x in history) <= 1
        assert pool.live_count(now) <= 2
