"""The public session API against a real server and SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3

from gateway.appkeys import AGI, DB, DESK
from gateway.store.database import Write
from gateway.store.migrate import apply_migrations
from numberpool.site import AttributionKind
from numberpool.visit import visit_from_url
from tests.api.conftest import BROWSER, ORIGIN, POOL, demo_config, open_session
from tests.api.lease_overlaps import (
    CALL_ROWS,
    DOUBLE_LEASES,
    DOUBLED,
    LEASE_ROWS,
    OVERLAPS,
    SHARED,
)
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.unit.test_agi import fake_asterisk


async def test_session_gets_a_pool_number_with_display(client) -> None:
    """A new session gets a number of the demo pool, formatted for display."""
    resp = await open_session(client, referrer="https://www.google.com/")
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {
        "session_id",
        "visitor_id",
        "numbers",
        "heartbeat_seconds",
        "expires_at",
        "expires_in",
    }
    (number,) = body["numbers"]
    assert number == {
        "target": "+14155550100",
        "number": POOL[0],
        "display": "(415) 555-0101",
        "kind": "pool",
    }
    assert body["heartbeat_seconds"] == 60
    row = await client.app[DB].lookup(
        "SELECT visitor_id, expires_at FROM sessions WHERE session_id = ?", (body["session_id"],)
    )
    assert (row["visitor_id"], row["expires_at"]) == (body["visitor_id"], body["expires_at"])
    assert body["expires_in"] == 120.0  # probation until the first heartbeat


async def test_overflow_number_past_ten_live_sessions(client) -> None:
    """The eleventh live session gets the overflow number, counted in metrics."""
    numbers = []
    for _ in range(11):
        body = await (await open_session(client)).json()
        numbers.append(body["numbers"][0]["number"])
    assert numbers[:10] == POOL
    assert numbers[10] == "+14155550120"
    metrics = await (await client.get("/metrics")).text()
    assert 'ctgw_pool_exhausted_total{pool="demo:+14155550100",site="demo"} 1' in metrics
    rows = await client.app[DB].fetchall("SELECT kind FROM pool_events")
    assert [r["kind"] for r in rows] == ["exhausted"]


async def test_heartbeat_extends_then_410_after_expiry(client, clock: FakeClock) -> None:
    """Heartbeats keep the lease; once it has ended the heartbeat answers 410."""
    body = await (await open_session(client)).json()
    sid = body["session_id"]
    clock.advance(seconds=60)
    resp = await client.post(f"/v1/sessions/{sid}/heartbeat")
    assert resp.status == 200
    assert (await resp.json())["expires_in"] == 900.0
    clock.advance(minutes=14)
    assert (await client.post(f"/v1/sessions/{sid}/heartbeat")).status == 200
    clock.advance(minutes=15)
    resp = await client.post(f"/v1/sessions/{sid}/heartbeat")
    assert resp.status == 410
    assert (await resp.json())["error"]["code"] == "session_ended"


async def test_session_without_heartbeat_ends_after_probation(client, clock: FakeClock) -> None:
    """A session that never sends a heartbeat loses its lease after the probation."""
    sid = (await (await open_session(client)).json())["session_id"]
    clock.advance(minutes=2)
    assert (await client.post(f"/v1/sessions/{sid}/heartbeat")).status == 410


async def test_heartbeat_of_unknown_session_is_404(client) -> None:
    """A heartbeat for a session that never existed is a 404 JSON error."""
    resp = await client.post("/v1/sessions/nope/heartbeat")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "unknown_session"


async def test_returning_visitor_gets_same_number(client, clock: FakeClock) -> None:
    """A returning visitor id gets its previous number back."""
    first = await (await open_session(client)).json()
    await open_session(client)
    clock.advance(minutes=30)
    again = await (await open_session(client, visitor_id=first["visitor_id"])).json()
    assert again["visitor_id"] == first["visitor_id"]
    assert again["numbers"][0]["number"] == first["numbers"][0]["number"]


async def test_visit_context_is_stored(client, admin_key) -> None:
    """UTM fields, gclid, landing page and referrer are stored with the session."""
    url = "https://www.demo-plumbing.example/leak?utm_source=google&utm_campaign=spring&gclid=G1"
    body = await (await open_session(client, url=url, referrer="https://google.com/")).json()
    resp = await client.get(
        f"/v1/sessions/{body['session_id']}", headers={"Authorization": f"Bearer {admin_key}"}
    )
    stored = await resp.json()
    assert stored["gclid"] == "G1" and stored["utm_campaign"] == "spring"
    assert stored["landing_page"] == "https://www.demo-plumbing.example/leak"
    assert stored["referrer"] == "https://google.com/"


async def test_bot_user_agent_never_leases(client) -> None:
    """A crawler is shown the site's own number and holds no lease."""
    resp = await client.post(
        "/v1/sessions",
        json={"site": "demo", "url": "https://x.example/"},
        headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
    )
    body = await resp.json()
    assert body["numbers"][0]["number"] == "+14155550100"
    assert body["numbers"][0]["kind"] == "none"
    assert (
        client.app[DESK].sites["demo"].site.pools[0].live_count(client.app[DESK].clock.now()) == 0
    )


async def test_require_params_swaps_only_paid_traffic(make_client, tmp_path) -> None:
    """A pool requiring gclid keeps the page's number for organic visits."""
    client = await make_client(demo_config(tmp_path, require_params=["gclid"]))
    organic = await (await open_session(client)).json()
    paid = await (await open_session(client, url="https://x.example/?gclid=abc")).json()
    assert organic["numbers"][0]["number"] == "+14155550100"
    assert paid["numbers"][0]["number"] == POOL[0]


async def test_attribution_follows_the_lease(client, clock: FakeClock) -> None:
    """A call on a leased number is attributed to the session holding it, then probable."""
    body = await (await open_session(client)).json()
    site = client.app[DESK].book.sites["demo"].site
    number = body["numbers"][0]["number"]
    active = site.attribute(number, clock.now())
    assert active.kind is AttributionKind.ACTIVE
    assert active.session_id == body["session_id"]
    clock.advance(minutes=30)
    later = site.attribute(number, clock.now())
    assert later.kind is AttributionKind.PROBABLE
    assert site.attribute("+14155550150", clock.now()).kind is AttributionKind.STATIC


async def test_cors_allows_only_the_sites_origins(client) -> None:
    """Allowed origins get CORS headers; other origins get a 403 JSON error."""
    ok = await client.post(
        "/v1/sessions",
        json={"site": "demo", "url": "https://x.example/"},
        headers={**BROWSER, "Origin": ORIGIN},
    )
    assert ok.status == 201
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    bad = await client.post(
        "/v1/sessions",
        json={"site": "demo", "url": "https://x.example/"},
        headers={**BROWSER, "Origin": "https://evil.example"},
    )
    assert bad.status == 403
    assert (await bad.json())["error"]["code"] == "origin_not_allowed"
    # The page may read the error (no number in it), so Chromium logs no CORS error on top.
    assert bad.headers["Access-Control-Allow-Origin"] == "*"
    rows = await client.app[DB].fetchall("SELECT count(*) AS n FROM sessions")
    assert rows[0]["n"] == 1


async def test_unknown_site_error_is_readable_by_the_page(client) -> None:
    """A typo in data-site gets a 404 the page can read, so the console shows no CORS error."""
    resp = await client.post(
        "/v1/sessions",
        json={"site": "typo", "url": "https://x.example/"},
        headers={**BROWSER, "Origin": "https://shop.example"},
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "unknown_site"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    no_origin = await client.post(
        "/v1/sessions", json={"site": "typo", "url": "https://x.example/"}, headers=BROWSER
    )
    assert "Access-Control-Allow-Origin" not in no_origin.headers


async def test_preflight_answers_allowed_origin_only(client) -> None:
    """OPTIONS preflight succeeds for an allowed origin and fails for another."""
    headers = {"Access-Control-Request-Method": "POST"}
    ok = await client.options("/v1/sessions", headers={**headers, "Origin": ORIGIN})
    assert ok.status == 204 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    bad = await client.options(
        "/v1/sessions", headers={**headers, "Origin": "https://evil.example"}
    )
    assert bad.status == 403


async def test_text_plain_body_is_accepted(client) -> None:
    """A JSON body sent as text/plain (no CORS preflight) is read like JSON."""
    resp = await client.post(
        "/v1/sessions",
        data='{"site": "demo", "url": "https://x.example/"}',
        headers={**BROWSER, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert resp.status == 201


async def test_amp_answers_the_amp_call_tracking_contract(client) -> None:
    """GET /v1/amp/{site} answers phoneNumber and formattedPhoneNumber from the pool."""
    resp = await client.get(
        "/v1/amp/demo",
        params={"__amp_source_origin": ORIGIN, "url": "https://x.example/?gclid=A"},
        headers=BROWSER,
    )
    assert resp.status == 200
    body = await resp.json()
    assert body == {"phoneNumber": POOL[0], "formattedPhoneNumber": "(415) 555-0101"}
    assert resp.headers["AMP-Access-Control-Allow-Source-Origin"] == ORIGIN
    bad = await client.get("/v1/amp/demo", params={"__amp_source_origin": "https://evil.example"})
    assert bad.status == 403
    amp_cache = "https://www-demo--plumbing-example.cdn.ampproject.org"  # "-" doubled
    cached = await client.get("/v1/amp/demo", headers={**BROWSER, "Origin": amp_cache})
    assert cached.status == 200
    assert cached.headers["Access-Control-Allow-Origin"] == amp_cache
    assert cached.headers["Access-Control-Allow-Credentials"] == "true"
    # A site nobody configured allows no origin: its error carries no credentialed grant.
    typo = await client.get("/v1/amp/typo", headers={**BROWSER, "Origin": amp_cache})
    assert typo.status == 404
    assert "Access-Control-Allow-Origin" not in typo.headers


async def test_no_number_is_leased_twice_under_concurrency(make_client, tmp_path) -> None:
    """Hundreds of simultaneous session requests never lease one number to two live sessions."""
    raw = demo_config(tmp_path)
    raw["sites"][0]["pools"][0]["numbers"] = [f"+1415555{i:04d}" for i in range(200, 250)]
    client = await make_client(raw)
    responses = await asyncio.gather(*(open_session(client) for _ in range(300)))
    bodies = [await r.json() for r in responses]
    assert all(r.status == 201 for r in responses)
    # Nobody called, so no number may be shared: no two leases of a number overlap at all.
    assert [dict(r) for r in await client.app[DB].fetchall(OVERLAPS)] == []
    pooled = [b["numbers"][0]["number"] for b in bodies if b["numbers"][0]["kind"] == "pool"]
    assert len(pooled) == 50 and len(set(pooled)) == 50
    assert sum(b["numbers"][0]["kind"] == "overflow" for b in bodies) == 250
    committed = await client.app[DB].fetchall("SELECT count(*) AS n FROM leases")
    assert committed[0]["n"] == 50


async def test_a_called_number_is_shared_once_under_concurrency(client, clock: FakeClock) -> None:
    """Every number live, four holders called: of a hundred simultaneous sessions exactly four
    share a number, one for each called number; the store holds those four overlaps, each a
    share, and no double lease. Once the sharers call too, none is shared a third time."""
    holders = [await (await open_session(client)).json() for _ in POOL]
    assert [h["numbers"][0]["number"] for h in holders] == POOL
    called = POOL[2:6]
    for n, number in enumerate(called):
        env = call_env(number, caller=f"+1202555040{n}", linkedid=f"{n}.0")
        assert routed(await fake_asterisk(client.app[AGI], env))["CTGW_ROUTE"] == "PJSIP/agent1"
    clock.advance(seconds=1)  # the calls began before the shares (the check compares times)
    responses = await asyncio.gather(*(open_session(client) for _ in range(100)))
    assert all(r.status == 201 for r in responses)
    db = client.app[DB]
    assert [dict(r) for r in await db.fetchall(DOUBLE_LEASES)] == []
    offers = [(await r.json())["numbers"][0] for r in responses]
    assert sorted(o["number"] for o in offers if o["kind"] == "pool") == called
    assert sum(o["kind"] == "overflow" for o in offers) == 96
    overlaps = await db.fetchall(OVERLAPS)
    first = {h["numbers"][0]["number"]: h["session_id"] for h in holders}
    assert sorted((r["number"], r["earlier_id"]) for r in overlaps) == [
        (number, f"{first[number]}.1") for number in called
    ]

    # The sharers call too, from new phones: a shared number is never shared again.
    for n, number in enumerate(called):
        env = call_env(number, caller=f"+1202555041{n}", linkedid=f"1{n}.0")
        assert routed(await fake_asterisk(client.app[AGI], env))["CTGW_ROUTE"] == "PJSIP/agent1"
    clock.advance(seconds=1)
    responses = await asyncio.gather(*(open_session(client) for _ in range(50)))
    assert [dict(r) for r in await db.fetchall(DOUBLE_LEASES)] == []
    assert [(await r.json())["numbers"][0]["kind"] for r in responses] == ["overflow"] * 50
    metrics = await (await client.get("/metrics")).text()
    assert 'ctgw_pool_shared_total{pool="demo:+14155550100",site="demo"} 4' in metrics


async def test_the_double_lease_check_accepts_a_share_and_nothing_more(tmp_path) -> None:
    """The check above, on a SQLite store: a lease that began while another of its number was
    live is a double lease unless that one's visitor called on it from a known phone before,
    and never a third live lease (tests/api/lease_overlaps.py's rows say why each is)."""
    db = sqlite3.connect(tmp_path / "check.db", isolation_level=None)
    try:
        apply_migrations(db)
        db.executemany("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?)", LEASE_ROWS)
        db.executemany(
            "INSERT INTO calls (call_id, site, dialed, caller, started_at, state,"
            " attribution_kind, session_id, visitor_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            CALL_ROWS,
        )
        overlaps = {row[2] for row in db.execute(OVERLAPS)}
        doubled = {row[2] for row in db.execute(DOUBLE_LEASES)}
    finally:
        db.close()
    assert sorted(doubled) == DOUBLED
    assert sorted(overlaps - doubled) == SHARED


async def test_healthz_and_metrics(client) -> None:
    """Health answers ok with the store reachable; metrics are Prometheus text."""
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    await open_session(client)
    metrics = await client.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await metrics.text()
    assert 'ctgw_sessions_total{site="demo"} 1' in text
    assert 'ctgw_pool_live_leases{pool="demo:+14155550100",site="demo"} 1' in text


async def test_numbers_added_in_the_store_are_served_after_reload(client, clock) -> None:
    """A number the CLI adds to the store joins the running pool; no change, no reload."""
    book = client.app[DESK].book
    assert await book.reload_if_changed() is False
    for _ in range(10):
        await open_session(client)
    await client.app[DB].write(
        [
            Write(
                "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)",
                ("+14155550131", "demo:+14155550100", "2026-01-05T09:00:00.000000Z"),
            )
        ]
    )
    assert await book.reload_if_changed() is True
    body = await (await open_session(client)).json()
    assert body["numbers"][0]["number"] == "+14155550131"
    assert book.sites["demo"].site.pools[0].live_count(clock.now()) == 11


async def test_amp_lease_lives_the_amp_lease_then_attributes_as_probable(client, clock) -> None:
    """An AMP page cannot heartbeat: its lease skips the probation and lives the pool's
    amp_lease_seconds (5 min), not the full grace; a later call is still its visit's."""
    resp = await client.get("/v1/amp/demo", headers=BROWSER)
    number = (await resp.json())["phoneNumber"]
    book = client.app[DESK].book
    clock.advance(minutes=4)
    during = book.sites["demo"].site.attribute(number, clock.now())
    assert during.kind is AttributionKind.ACTIVE
    clock.advance(minutes=2)
    after = book.sites["demo"].site.attribute(number, clock.now())
    assert after.kind is AttributionKind.PROBABLE
    assert after.session_id == during.session_id


async def test_failed_commit_answers_503_and_frees_the_numbers(client, tmp_path) -> None:
    """A group commit that fails answers 503 to its sessions and leases nothing: the numbers
    are free again and no session is kept alive; the next commit works."""
    db = sqlite3.connect(tmp_path / "ctgw.db")
    db.execute(
        "CREATE TRIGGER fail_me BEFORE INSERT ON sessions WHEN NEW.url LIKE '%fail-me%'"
        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    db.commit()
    failed = await asyncio.gather(
        *(
            open_session(client, url=f"https://www.demo-plumbing.example/fail-me/{i}")
            for i in range(3)
        )
    )
    assert [r.status for r in failed] == [503, 503, 503]
    assert {(await r.json())["error"]["code"] for r in failed} == {"store_unavailable"}
    desk = client.app[DESK]
    pool = desk.sites["demo"].site.pools[0]
    assert pool.live_count(desk.clock.now()) == 0
    assert desk.live.by_id == {}
    db.execute("DROP TRIGGER fail_me")
    db.commit()
    db.close()
    ok = await open_session(client)
    assert ok.status == 201
    body = await ok.json()
    assert pool.live_count(desk.clock.now()) == 1
    rows = await client.app[DB].fetchall("SELECT session_id FROM sessions")
    assert [r["session_id"] for r in rows] == [body["session_id"]]


async def test_sessions_asked_together_are_decided_and_committed_together(client) -> None:
    """Sessions asked for in one pass of the event loop share one batch and one commit; each
    gets its own number, and each is in the store when its answer comes."""
    desk, db = client.app[DESK], client.app[DB]
    before = db.commits
    visit = visit_from_url("https://www.demo-plumbing.example/?gclid=batch", "", "Mozilla/5.0")
    answers = await asyncio.gather(*(desk.open("demo", visit, None) for _ in range(5)))
    assert db.commits == before + 1
    numbers = [a.offers[0].number for a in answers]
    assert numbers == POOL[:5]
    rows = await db.fetchall("SELECT session_id, gclid FROM sessions")
    assert {r["session_id"] for r in rows} == {a.session.session_id for a in answers}
    assert {r["gclid"] for r in rows} == {"batch"}


async def test_410_is_readable_by_the_page_after_the_session_was_forgotten(
    client, clock: FakeClock
) -> None:
    """Once housekeeping has dropped an ended session from memory (or after a restart), its
    heartbeat still answers 410 with a CORS grant, so swap.js can read it and stop beating."""
    body = await (await open_session(client)).json()
    sid = body["session_id"]
    clock.advance(minutes=20)
    desk = client.app[DESK]
    desk.live.by_id.pop(sid)  # what pruning does to an ended session
    resp = await client.post(f"/v1/sessions/{sid}/heartbeat", headers={"Origin": ORIGIN})
    assert resp.status == 410
    assert resp.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")


async def test_prune_forgets_ended_sessions_a_slice_at_a_time(client, clock) -> None:
    """Ended sessions are forgotten in slices; one kept alive by heartbeats stays, and the
    store keeps them all."""
    bodies = [await (await open_session(client)).json() for _ in range(5)]
    desk = client.app[DESK]
    kept = bodies[0]["session_id"]
    clock.advance(seconds=60)
    resp = await client.post(f"/v1/sessions/{kept}/heartbeat", headers=BROWSER)
    assert resp.status == 200
    clock.advance(
        seconds=75
    )  # past the others' probation (and its 10 s bucket), not the renewed one
    assert desk.prune(limit=2) is True  # more are due: the caller yields, then goes on
    assert 3 <= len(desk.live.by_id) <= 4
    slices = 1
    while desk.prune(limit=2):
        slices += 1
    assert slices >= 2
    assert set(desk.live.by_id) == {kept}
    clock.advance(minutes=16)  # past the renewed session's grace too
    assert desk.prune() is False and desk.live.by_id == {}
    stored = await client.app[DB].lookup("SELECT count(*) FROM sessions")
    assert stored is not None and stored[0] == 5
