"""numberpool leasing and attribution rules, on a fake clock."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import pytest

from numberpool.pool import LeaseRules, Pool
from numberpool.site import AttributionKind, OfferKind, Rule, Site, StaticNumber
from numberpool.visit import visit_from_url
from tests.conftest import FakeClock

NUMBERS = [f"+1415555010{i}" for i in range(1, 4)]
RULES = LeaseRules(
    heartbeat=timedelta(seconds=60),
    grace=timedelta(minutes=15),
    cooldown=timedelta(minutes=5),
    attribution_window=timedelta(minutes=60),
    probation=timedelta(minutes=15),
)
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def make_pool(rules: LeaseRules = RULES, **kw) -> Pool:
    return Pool("p1", "+14155550100", NUMBERS, rules, overflow="+14155550120", **kw)


def ids():
    counter = itertools.count(1)
    return lambda: f"L{next(counter)}"


def test_first_leases_follow_number_order(clock: FakeClock) -> None:
    """Fresh numbers are leased in the order they were added."""
    pool = make_pool()
    got = [pool.lease(f"l{i}", f"s{i}", f"v{i}", clock.now()) for i in range(3)]
    assert [lease.number for lease in got if lease] == NUMBERS


def test_exhausted_pool_returns_none_and_counts(clock: FakeClock) -> None:
    """A pool with every number live leases nothing and counts the exhaustion."""
    pool = make_pool()
    for i in range(3):
        assert pool.lease(f"l{i}", f"s{i}", f"v{i}", clock.now())
    assert pool.lease("l9", "s9", "v9", clock.now()) is None
    assert pool.exhausted_count == 1
    assert pool.peak_live == 3


def test_lease_ends_after_grace_then_cools_down(clock: FakeClock) -> None:
    """A number is not reused during its cooldown, and is reused right after it (a pool that
    serves the overflow number when exhausted; test_pressure.py has the pool that reuses)."""
    pool = Pool("p1", "+14155550100", NUMBERS[:1], replace(RULES, when_exhausted="overflow"))
    start = clock.now()
    assert pool.lease("l1", "s1", "v1", start)
    clock.advance(minutes=15)  # lease ends exactly now (until is exclusive)
    assert pool.live_count(clock.now()) == 0
    clock.advance(minutes=5, seconds=-1)
    assert pool.lease("l2", "s2", "v2", clock.now()) is None
    clock.advance(seconds=1)
    lease = pool.lease("l2", "s2", "v2", clock.now())
    assert lease is not None and lease.number == NUMBERS[0]


def test_least_recently_released_is_leased_first(clock: FakeClock) -> None:
    """After releases, the number released longest ago is chosen."""
    pool = make_pool()
    for i in range(3):
        pool.lease(f"l{i}", f"s{i}", f"v{i}", clock.now())
    clock.advance(minutes=1)
    pool.release(NUMBERS[2], "s2", clock.now())
    clock.advance(minutes=1)
    pool.release(NUMBERS[0], "s0", clock.now())
    clock.advance(minutes=30)
    first = pool.lease("a", "sa", "va", clock.now())
    second = pool.lease("b", "sb", "vb", clock.now())
    assert first is not None and first.number == NUMBERS[2]
    assert second is not None and second.number == NUMBERS[0]


def test_heartbeat_extends_and_fails_after_end(clock: FakeClock) -> None:
    """Heartbeats extend the lease by the grace; one after the end is refused."""
    pool = make_pool()
    lease = pool.lease("l1", "s1", "v1", clock.now())
    assert lease is not None
    clock.advance(minutes=14)
    renewed = pool.heartbeat(lease.number, "s1", clock.now())
    assert renewed is not None and renewed.until == clock.now() + RULES.grace
    clock.advance(minutes=15)
    assert pool.heartbeat(lease.number, "s1", clock.now()) is None


def test_heartbeat_of_another_session_is_refused(clock: FakeClock) -> None:
    """A session cannot extend a lease it does not hold."""
    pool = make_pool()
    lease = pool.lease("l1", "s1", "v1", clock.now())
    assert lease is not None
    assert pool.heartbeat(lease.number, "s2", clock.now()) is None


def test_probation_ends_lease_of_session_that_never_heartbeats(clock: FakeClock) -> None:
    """Without a first heartbeat a lease lives only the probation; with it, the full grace."""
    rules = LeaseRules(probation=timedelta(minutes=2))
    pool = make_pool(rules)
    quiet = pool.lease("l1", "s1", "v1", clock.now())
    alive = pool.lease("l2", "s2", "v2", clock.now())
    assert quiet is not None and alive is not None
    assert quiet.until == clock.now() + timedelta(minutes=2)
    clock.advance(minutes=1)
    assert pool.heartbeat(alive.number, "s2", clock.now()) is not None
    clock.advance(minutes=2)
    assert pool.live_count(clock.now()) == 1


def test_returning_visitor_gets_old_number_back(clock: FakeClock) -> None:
    """A visitor whose number is free again gets that same number, even within cooldown."""
    pool = make_pool()
    first = pool.lease("l1", "s1", "v1", clock.now())
    pool.lease("l2", "s2", "v2", clock.now())
    assert first is not None
    clock.advance(minutes=16)  # ended, still cooling down
    again = pool.lease("l3", "s3", "v1", clock.now())
    assert again is not None and again.number == first.number


def test_returning_visitor_loses_number_taken_by_another(clock: FakeClock) -> None:
    """A visitor's old number leased to someone else is not taken back."""
    pool = Pool("p1", "+14155550100", NUMBERS[:2], RULES)
    first = pool.lease("l1", "s1", "v1", clock.now())
    assert first is not None
    clock.advance(minutes=40)
    other = pool.lease("l2", "s2", "v2", clock.now())  # LRU: the never-used number first
    third = pool.lease("l3", "s3", "v3", clock.now())
    assert other is not None and third is not None and third.number == first.number
    again = pool.lease("l4", "s4", "v1", clock.now())
    assert again is None


def test_returning_visitor_with_live_lease_moves_it_to_new_session(clock: FakeClock) -> None:
    """A visitor starting a new session while still holding a number keeps one live lease."""
    pool = make_pool()
    first = pool.lease("l1", "s1", "v1", clock.now())
    clock.advance(minutes=1)
    second = pool.lease("l2", "s2", "v1", clock.now())
    assert first is not None and second is not None and first.number == second.number
    assert pool.live_count(clock.now()) == 1
    live, _ = pool.holder_at(first.number, clock.now())
    assert live is not None and live.session_id == "s2"


def test_no_number_is_live_twice(clock: FakeClock) -> None:
    """Across many leases, heartbeats and expiries no number has two live leases at once."""
    import random

    rng = random.Random(42)
    pool = make_pool(LeaseRules(grace=timedelta(minutes=3), cooldown=timedelta(minutes=1)))
    live: dict[str, str] = {}
    for step in range(2000):
        clock.advance(seconds=rng.randint(1, 40))
        now = clock.now()
        if rng.random() < 0.6:
            lease = pool.lease(f"l{step}", f"s{step}", f"v{rng.randint(0, 20)}", now)
            if lease:
                live[lease.session_id] = lease.number
        elif live:
            session = rng.choice(list(live))
            pool.heartbeat(live[session], session, now)
        holders = [n for n in NUMBERS if pool.holder_at(n, now)[0] is not None]
        assert len(holders) == pool.live_count(now) <= len(NUMBERS)
        for number in NUMBERS:
            slot_live = [lease for lease in pool.leases() if lease.number == number]
            assert sum(1 for lease in slot_live if lease.live_at(now)) <= 1


def test_attribution_active_probable_unattributed_at_boundaries(clock: FakeClock) -> None:
    """A call is active while the lease lives, probable within the window after, then none."""
    pool = make_pool()
    site = Site("demo", pools=[pool])
    start = clock.now()
    lease = pool.lease("l1", "s1", "v1", start)
    assert lease is not None
    n = lease.number
    assert site.attribute(n, start - timedelta(seconds=1)).kind is AttributionKind.UNATTRIBUTED
    assert site.attribute(n, start).kind is AttributionKind.ACTIVE
    end = lease.until
    assert site.attribute(n, end - timedelta(microseconds=1)).session_id == "s1"
    at_end = site.attribute(n, end)
    assert at_end.kind is AttributionKind.PROBABLE and at_end.session_id == "s1"
    edge = site.attribute(n, end + RULES.attribution_window)
    assert edge.kind is AttributionKind.PROBABLE
    late = site.attribute(n, end + RULES.attribution_window + timedelta(seconds=1))
    assert late.kind is AttributionKind.UNATTRIBUTED


def test_attribution_picks_the_holder_at_call_time(clock: FakeClock) -> None:
    """With two successive holders, a call goes to whoever held the number at call time (the
    new holder once it has had the dial delay to read and dial the number)."""
    pool = Pool("p1", "+14155550100", NUMBERS[:1], RULES)
    site = Site("demo", pools=[pool])
    first = pool.lease("l1", "s1", "v1", clock.now())
    assert first is not None
    clock.advance(minutes=25)
    second = pool.lease("l2", "s2", "v2", clock.now())
    assert second is not None
    assert site.attribute(first.number, first.started_at + timedelta(minutes=5)).session_id == "s1"
    during_cooldown = site.attribute(first.number, first.until + timedelta(minutes=2))
    assert during_cooldown.kind is AttributionKind.PROBABLE
    now = site.attribute(first.number, clock.now() + RULES.dial_delay)
    assert (now.kind, now.session_id, now.confidence) == (AttributionKind.ACTIVE, "s2", 1.0)


def test_attribution_of_static_and_overflow_numbers(clock: FakeClock) -> None:
    """Static numbers attribute to their source, overflow numbers are tagged overflow."""
    billboard = StaticNumber("+14155550150", "billboard", "offline", "spring")
    site = Site("demo", pools=[make_pool()], static_numbers=[billboard])
    static = site.attribute("+14155550150", clock.now())
    assert static.kind is AttributionKind.STATIC and static.static == billboard
    assert site.attribute("+14155550120", clock.now()).kind is AttributionKind.OVERFLOW
    assert site.attribute("+14155550199", clock.now()).kind is AttributionKind.UNATTRIBUTED


def test_offer_serves_overflow_when_exhausted(clock: FakeClock) -> None:
    """Past the pool size the site serves the overflow number, never nothing."""
    site = Site("demo", pools=[make_pool()])
    new_id = ids()
    visit = visit_from_url("https://example.com/", user_agent=UA)
    kinds = [site.offer(visit, f"s{i}", f"v{i}", clock.now(), new_id)[0].kind for i in range(4)]
    assert kinds == [OfferKind.POOL] * 3 + [OfferKind.OVERFLOW]
    last = site.offer(visit, "s9", "v9", clock.now(), new_id)[0]
    assert last.number == "+14155550120" and last.lease is None


def test_bots_never_lease(clock: FakeClock) -> None:
    """A crawler's user agent (or none) gets the page's own number and holds no lease."""
    site = Site("demo", pools=[make_pool()], bot_user_agents=("bot", "crawler"))
    for agent in ("Googlebot/2.1", "SomeCrawler", ""):
        visit = visit_from_url("https://example.com/", user_agent=agent)
        (offer,) = site.offer(visit, "s", "v", clock.now(), ids())
        assert offer.kind is OfferKind.NONE and offer.number == "+14155550100"
    assert site.pools[0].live_count(clock.now()) == 0


def test_require_params_only_swaps_paid_traffic(clock: FakeClock) -> None:
    """A pool requiring gclid leases only to visits carrying it."""
    site = Site("demo", pools=[make_pool(require_params=("gclid",))])
    organic = visit_from_url("https://example.com/", user_agent=UA)
    paid = visit_from_url("https://example.com/?gclid=abc", user_agent=UA)
    assert site.offer(organic, "s1", "v1", clock.now(), ids())[0].kind is OfferKind.NONE
    assert site.offer(paid, "s2", "v2", clock.now(), ids())[0].kind is OfferKind.POOL


@pytest.mark.parametrize(
    ("url", "referrer", "expected"),
    [
        ("https://x.com/?utm_source=newsletter", "https://yelp.com/biz", "+14155550151"),
        ("https://x.com/", "https://www.yelp.com/biz/demo", "+14155550152"),
        ("https://x.com/", "https://google.com/", None),
    ],
)
def test_param_rules_win_over_referrer_rules_then_pool(clock, url, referrer, expected) -> None:
    """URL parameter rules come first, then referrer rules, then the pool."""
    statics = [
        StaticNumber("+14155550151", "newsletter"),
        StaticNumber("+14155550152", "yelp", "referral"),
    ]
    rules = [
        Rule("+14155550152", "+14155550100", referrer_contains="yelp.com"),
        Rule("+14155550151", "+14155550100", param="utm_source", value="newsletter"),
    ]
    site = Site("demo", pools=[make_pool()], static_numbers=statics, rules=rules)
    visit = visit_from_url(url, referrer=referrer, user_agent=UA)
    (offer,) = site.offer(visit, "s", "v", clock.now(), ids())
    if expected is None:
        assert offer.kind is OfferKind.POOL and offer.number in NUMBERS
    else:
        assert offer.kind is OfferKind.STATIC and offer.number == expected


def test_prune_forgets_leases_past_the_window(clock: FakeClock) -> None:
    """Old leases past the attribution window are dropped; the latest per number is kept."""
    pool = Pool("p1", "+14155550100", NUMBERS[:1], RULES)
    pool.lease("l1", "s1", "v1", clock.now())
    clock.advance(minutes=30)
    pool.lease("l2", "s2", "v2", clock.now())
    clock.advance(hours=3)
    assert pool.prune(clock.now()) == 1
    assert [lease.session_id for lease in pool.leases()] == ["s2"]


def test_visit_reads_utm_and_click_ids() -> None:
    """UTM fields and click ids are read from the URL; landing page drops the query."""
    visit = visit_from_url(
        "https://shop.example/plumbing?utm_source=google&utm_campaign=spring&gclid=XYZ&x=1",
        referrer="https://www.google.com/",
    )
    assert visit.utm_source == "google" and visit.utm_campaign == "spring"
    assert visit.gclid == "XYZ" and visit.landing_page == "https://shop.example/plumbing"
    assert visit.medium == "cpc"
    assert visit_from_url("https://a.example/", referrer="https://www.yelp.com/x").source == (
        "yelp.com"
    )


def test_heap_choice_matches_a_full_scan(clock: FakeClock) -> None:
    """The O(log n) choice equals a scan for the least recently released free number."""
    import random

    rng = random.Random(42)
    rules = LeaseRules(
        grace=timedelta(minutes=4), cooldown=timedelta(minutes=2), probation=timedelta(minutes=4)
    )
    numbers = [f"+1415555{i:04d}" for i in range(200, 240)]
    pool = Pool("p", "+14155550100", numbers, rules)
    holders: dict[str, str] = {}
    for step in range(3000):
        now = clock.advance(seconds=rng.randint(0, 20))
        latest = {
            n: max(
                (lease for lease in pool.leases() if lease.number == n),
                key=lambda lease: lease.started_at,
                default=None,
            )
            for n in numbers
        }
        free = [
            (lease.until if lease else None, i, n)
            for i, (n, lease) in enumerate(latest.items())
            if lease is None or now >= lease.until + rules.cooldown
        ]
        never = [f for f in free if f[0] is None]
        expected = (never or sorted(f for f in free if f[0] is not None) or [None])[0]
        roll = rng.random()
        if roll < 0.5:
            lease = pool.lease(f"l{step}", f"s{step}", f"new{step}", now)
            assert (lease.number if lease else None) == (expected[2] if expected else None)
            if lease:
                holders[lease.session_id] = lease.number
        elif roll < 0.8 and holders:
            session = rng.choice(list(holders))
            pool.heartbeat(holders[session], session, now)
        elif holders:
            session = rng.choice(list(holders))
            pool.release(holders.pop(session), session, now)
        assert pool.peak_live >= pool.live_count(now)


def test_prune_keeps_only_latest_holders_as_returning_visitors(clock: FakeClock) -> None:
    """After pruning, only the latest holder of each number is remembered as returning."""
    pool = Pool("p1", "+14155550100", NUMBERS[:1], RULES)
    for i in range(5):
        pool.lease(f"l{i}", f"s{i}", f"v{i}", clock.now())
        clock.advance(minutes=25)
    pool.prune(clock.now())
    assert pool._last_number_of == {"v4": NUMBERS[0]}
    again = pool.lease("l9", "s9", "v4", clock.now())
    assert again is not None and again.number == NUMBERS[0]
