"""The demo site's seeded history (gateway/demo_history.py): deterministic per seed, shaped like
real traffic, and consistent the way the gateway's own rows are."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.demo_channels import CHANNELS, NEWSLETTER, OFFICE_NUMBER
from gateway.demo_history import DemoHistory, generate_history
from gateway.store.calls import CallFilter, list_calls
from gateway.store.database import Database, Write
from gateway.store.history_import import import_history, site_call_count
from gateway.store.times import from_ts
from numberpool.calls import ABANDON_SECONDS, attribution_snapshot, unanswered_state
from numberpool.pool import Pool
from numberpool.site import Attribution, AttributionKind, OfferKind, Site, StaticNumber

NOW = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
TZ = ZoneInfo("America/Los_Angeles")
POOL = [f"+141555501{i:02d}" for i in range(1, 11)]
STATIC = [
    StaticNumber("+14155550150", "billboard", "offline", "highway-101-spring"),
    StaticNumber("+14155550151", "print", "offline", "yellow-pages"),
]
ID = re.compile(r"[0-9a-f]{32}")


def demo_site() -> Site:
    pool = Pool("demo:+14155550100", "+14155550100", POOL, overflow="+14155550120")
    return Site("demo", [pool], list(STATIC))


def make(days: int = 90, seed: int = 1) -> DemoHistory:
    return generate_history(
        demo_site(), now=NOW, days=days, seed=seed, tz=TZ, route_for=lambda _: "PJSIP/agent1"
    )


@pytest.fixture(scope="module")
def history() -> DemoHistory:
    return make()


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    """Deterministic per seed and `now` (no clock, no OS randomness); the seed matters."""
    first, again, other = make(days=10), make(days=10), make(days=10, seed=2)
    assert first == again
    assert [c.record.call_id for c in first.calls] != [c.record.call_id for c in other.calls]


def test_the_site_given_is_left_unchanged() -> None:
    site = demo_site()
    generate_history(site, now=NOW, days=3, tz=TZ)
    assert [lease for pool in site.pools for lease in pool.leases()] == []


def test_volume_and_trend(history: DemoHistory) -> None:
    """60-120 calls a week, a hundred-odd visits a day, slowly growing."""
    starts = [from_ts(c.record.started_at) for c in history.calls]
    weeks = Counter((NOW - at).days // 7 for at in starts)
    full = [weeks[w] for w in range(12)]
    assert 60 <= sum(full) / len(full) <= 120, full
    assert all(35 <= n <= 160 for n in full), full
    older = sum(weeks[w] for w in range(6, 12))
    newer = sum(weeks[w] for w in range(6))
    assert newer > older
    assert 90 * 100 <= len(history.sessions) <= 90 * 400


def test_every_campaign_is_there_with_its_click_ids(history: DemoHistory) -> None:
    visits = [s.visit for s in history.sessions]
    campaigns = {(v.utm_source, v.utm_campaign) for v in visits}
    for channel in (*CHANNELS, NEWSLETTER):
        assert (channel.source, channel.campaign) in campaigns, channel.name
    by_source = {
        source: [v for v in visits if v.utm_source == source]
        for source in ("google", "bing", "facebook", "baidu")
    }
    assert all(v.bd_vid and v.landing_page.endswith("/zh/") for v in by_source["baidu"])
    assert all(v.msclkid for v in by_source["bing"])
    assert all(v.fbclid for v in by_source["facebook"])
    assert all(v.gclid or v.gbraid for v in by_source["google"])
    assert any(v.gbraid for v in by_source["google"])
    assert ("baidu", "百度-水管维修") in campaigns
    # Organic, referral and direct visits carry no tags; the stored visit names their source.
    assert {"google.com", "bing.com", "yelp.com", "(direct)"} <= {v.source for v in visits}
    called = Counter(
        (c.record.attribution.source, c.record.attribution.campaign) for c in history.calls
    )
    for channel in CHANNELS:
        if channel.campaign:
            assert called[(channel.source, channel.campaign)] > 0, channel.name
    for static in STATIC:
        assert called[(static.source, static.campaign)] > 0, static.source


def test_attributed_calls_point_at_stored_visits_as_the_route_copies_them(
    history: DemoHistory,
) -> None:
    sessions = {s.session_id: s for s in history.sessions}
    kinds = Counter(c.record.attribution.kind for c in history.calls)
    assert kinds["active"] > 0.55 * len(history.calls)
    assert {"active", "probable", "overflow", "static", "unattributed"} <= set(kinds)
    contested = 0
    for call in history.calls:
        record, attribution = call.record, call.record.attribution
        if attribution.kind in ("active", "probable"):
            session = sessions[attribution.session_id]  # stored
            assert attribution.visitor_id == session.visitor_id
            expected = attribution_snapshot(
                Attribution(
                    AttributionKind(attribution.kind),
                    "demo",
                    record.dialed,
                    attribution.session_id,
                    attribution.visitor_id,
                    confidence=attribution.confidence or 0.0,
                    other_session_id=attribution.other_session_id or "",
                    other_visitor_id=attribution.other_visitor_id or "",
                ),
                session.visit,
            )
            assert attribution == expected
            assert record.dialed in POOL
            assert attribution.confidence is not None and 0.5 <= attribution.confidence <= 1
            if attribution.other_session_id:
                contested += 1
                assert attribution.other_session_id in sessions
        elif attribution.kind == "static":
            static = next(s for s in STATIC if s.number == record.dialed)
            assert (attribution.source, attribution.campaign) == (static.source, static.campaign)
        else:
            assert attribution.session_id is None and attribution.confidence is None
        if attribution.kind == "overflow":
            assert record.dialed == "+14155550120"
    assert contested > 0


def test_calls_are_in_the_period_and_their_states_fit_their_times(history: DemoHistory) -> None:
    for call in history.calls:
        record = call.record
        started, ended = from_ts(record.started_at), from_ts(record.ended_at or "")
        assert NOW - timedelta(days=90) <= started < ended <= NOW
        assert ID.fullmatch(record.call_id) and record.route == "PJSIP/agent1"
        assert int(record.call_id[:12], 16) == int(started.timestamp() * 1000)
        assert record.ring_seconds is not None and record.ring_seconds > 0
        if record.state == "answered":
            answered = from_ts(record.answered_at or "")
            assert record.agent.startswith("PJSIP/") and record.talk_seconds is not None
            assert record.ring_seconds < (answered - started).total_seconds()
            assert abs((ended - answered).total_seconds() - record.talk_seconds) < 0.001
        else:
            assert record.answered_at is None and record.talk_seconds is None
            assert record.agent == ""
            seconds = (ended - started).total_seconds()
            assert record.state == unanswered_state(seconds, ABANDON_SECONDS)
            assert record.ring_seconds < seconds
    states = Counter(c.record.state for c in history.calls)
    assert states["answered"] > states["missed"] > 0 and states["abandoned"] > 0


def test_business_hours_and_weekdays_ring_most(history: DemoHistory) -> None:
    local = [from_ts(c.record.started_at).astimezone(TZ) for c in history.calls]
    in_hours = sum(1 for at in local if at.weekday() < 5 and 9 <= at.hour < 17)
    assert in_hours > 0.5 * len(local)
    weekend = sum(1 for at in local if at.weekday() >= 5)
    assert weekend / 2 < (len(local) - weekend) / 5 * 0.6


def test_repeat_callers_keep_one_contact_and_are_first_time_once(history: DemoHistory) -> None:
    by_caller: dict[str, list[tuple[str, bool, str | None]]] = {}
    for call in history.calls:
        r = call.record
        if r.caller:
            by_caller.setdefault(r.caller, []).append((r.started_at, r.first_time, r.contact_id))
        else:
            assert r.first_time and r.contact_id is None
    for calls in by_caller.values():
        assert [first for _, first, _ in sorted(calls)] == [True] + [False] * (len(calls) - 1)
        assert len({contact for _, _, contact in calls}) == 1
    assert sum(1 for calls in by_caller.values() if len(calls) > 1) > 20
    assert all(re.fullmatch(r"\+1\d{10}", caller) for caller in by_caller)


def test_about_one_percent_spam_and_a_few_test_calls(history: DemoHistory) -> None:
    spam = sum(call.spam for call in history.calls)
    assert 0.004 <= spam / len(history.calls) <= 0.02
    tests = [call.record for call in history.calls if call.record.test_call]
    assert 1 <= len(tests) <= 5 and all(t.caller == OFFICE_NUMBER for t in tests)


def test_leases_never_overlap_and_none_is_live_now(history: DemoHistory) -> None:
    sessions = {s.session_id: s for s in history.sessions}
    by_number: dict[str, list[tuple[datetime, datetime]]] = {}
    for lease in history.leases:
        assert lease.number in POOL and lease.session_id in sessions
        assert lease.started_at <= lease.last_seen < lease.until <= NOW
        by_number.setdefault(lease.number, []).append((lease.started_at, lease.until))
    for spans in by_number.values():
        spans.sort()
        assert all(end <= begin for (_, end), (begin, _) in pairwise(spans))
    for session in history.sessions:
        assert session.created_at <= session.last_seen <= session.expires_at
        assert ID.fullmatch(session.session_id) and ID.fullmatch(session.visitor_id)
        kinds = {offer.kind for offer in session.offers}
        assert kinds <= {OfferKind.POOL, OfferKind.OVERFLOW, OfferKind.NONE}
    overflowed = {sid for _, _, sid in history.exhausted}
    assert overflowed and all(
        any(o.kind is OfferKind.OVERFLOW for o in sessions[sid].offers) for sid in overflowed
    )


def test_costs_per_paid_campaign_and_month(history: DemoHistory) -> None:
    paid = {(c.source, c.campaign) for c in CHANNELS if c.daily_cost}
    assert {(c.source, c.campaign) for c in history.costs} == paid
    first, last = (NOW - timedelta(days=90)).astimezone(TZ).date(), NOW.astimezone(TZ).date()
    for campaign in paid:
        months = sorted(
            (c.first_day, c.last_day) for c in history.costs if (c.source, c.campaign) == campaign
        )
        assert months[0][0] == first and months[-1][1] == last
        assert all(b == a + timedelta(days=1) for (_, a), (b, _) in pairwise(months))
    assert all(c.amount > 0 and c.currency == "USD" for c in history.costs)
    assert isinstance(history.costs[0].first_day, date)


async def test_import_writes_it_all_in_the_stores_shapes(tmp_path: Path) -> None:
    """Imported into a store, the calls read back through the API's own query unchanged, and a
    caller the store knew already keeps its contact."""
    history = make(days=14)
    db = await Database.open(f"sqlite:///{tmp_path / 'ctgw.db'}")
    try:
        caller = next(c.record.caller for c in history.calls if c.record.caller)
        known = "feedfacefeedface"
        await db.write(
            [
                Write(
                    "INSERT INTO contacts (contact_id, number, calls) VALUES (?, ?, 3)",
                    (known, caller),
                )
            ]
        )
        await import_history(
            db,
            "demo",
            sessions=history.sessions,
            leases=history.leases,
            exhausted=history.exhausted,
            calls=history.calls,
            costs=history.costs,
        )
        assert await site_call_count(db, "demo") == len(history.calls)
        stored = await list_calls(db, CallFilter(site="demo", limit=100_000))
        want = sorted((c.record for c in history.calls), key=lambda r: (r.started_at, r.call_id))
        got = sorted(stored, key=lambda c: (c["started_at"], c["call_id"]))
        for record, row in zip(want, got, strict=True):
            assert row["call_id"] == record.call_id
            assert row["attribution"] == record.attribution.as_dict()
        row = await db.fetchone(
            "SELECT contact_id, calls FROM contacts WHERE number = ?", (caller,)
        )
        mine = [c.record for c in history.calls if c.record.caller == caller]
        assert row is not None and row["contact_id"] == known and row["calls"] == 3 + len(mine)
        first = await db.fetchone(
            "SELECT first_time, contact_id FROM calls WHERE caller = ? ORDER BY started_at",
            (caller,),
        )
        assert first is not None and first["first_time"] == 0 and first["contact_id"] == known
        counts = await db.fetchone(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM leases),"
            " (SELECT sum(spam) FROM calls), (SELECT count(*) FROM campaign_costs)"
        )
        assert counts is not None
        assert tuple(counts) == (
            len(history.sessions),
            len(history.leases),
            sum(c.spam for c in history.calls),
            len(history.costs),
        )
    finally:
        await db.close()
