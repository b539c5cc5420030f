"""A full pool in the real app: a cooling number is leased instead of the overflow number, and
a call two visits could claim is recorded `probable` with both (issue 11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.appkeys import AGI, DB, DESK
from gateway.store.database import Write
from gateway.store.keys import create_key
from tests.api.conftest import POOL, Client, demo_config, open_session
from tests.api.test_call_routing import call_env, routed
from tests.conftest import FakeClock
from tests.unit.test_agi import fake_asterisk

OVERFLOW = "+14155550120"
POOL_ID = "demo:+14155550100"
# The measurement timings: heartbeat 5 s, grace 15 s, cooldown 30 s, window 60 s; a
# session that never heartbeats holds its number 15 s (probation).
TIMING = {
    "heartbeat_seconds": 5,
    "grace_seconds": 15,
    "probation_seconds": 15,
    "cooldown_seconds": 30,
    "attribution_window_seconds": 60,
}


async def _key(client: TestClient) -> str:
    return await create_key(client.app[DB], "test", datetime.now(UTC))


async def pressed(make_client: Client, tmp_path: Path, numbers: int, **pool: Any) -> TestClient:
    """The demo site with a pool of `numbers` numbers and the issue's timings."""
    raw = demo_config(tmp_path, **TIMING, numbers=POOL[:numbers], **pool)
    return await make_client(raw)


async def visit(client: TestClient, visitor_id: str) -> dict[str, Any]:
    """A new session of `visitor_id`: its ids and the one number it was shown."""
    body = await (await open_session(client, visitor_id=visitor_id)).json()
    (offer,) = body["numbers"]
    return {"session_id": body["session_id"], "number": offer["number"], "kind": offer["kind"]}


async def call(
    client: TestClient, admin_key: str, dialed: str, caller: str, linkedid: str
) -> dict[str, Any]:
    """A call through FastAGI, as the API then shows it."""
    variables = routed(
        await fake_asterisk(client.app[AGI], call_env(dialed, caller, linkedid=linkedid))
    )
    resp = await client.get(
        f"/v1/calls/{variables['CTGW_CALL_ID']}", headers={"Authorization": f"Bearer {admin_key}"}
    )
    return dict(await resp.json())


async def metric(client: TestClient, name: str) -> str:
    text = await (await client.get("/metrics")).text()
    return next((line for line in text.splitlines() if line.startswith(name + "{")), "")


async def test_full_pool_leases_a_cooling_number_not_the_overflow(
    make_client: Client, tmp_path: Path, clock: FakeClock
) -> None:
    """Every number cooling, none rested: the next visitor gets a pool number (counted as
    reused, not exhausted); a call on it at once, by the last holder, is `probable` with both
    visits as candidates and a confidence below 1."""
    client = await pressed(make_client, tmp_path, 2)
    admin_key = await _key(client)
    first = await visit(client, "visitor-aaaa")
    clock.advance(seconds=5)
    second = await visit(client, "visitor-bbbb")
    assert {first["number"], second["number"]} == set(POOL[:2])
    clock.advance(seconds=16)  # both leases ended (no heartbeat); both numbers cool until 45 s
    third = await visit(client, "visitor-cccc")
    assert third["kind"] == "pool" and third["number"] in POOL[:2]
    assert 'pool="demo:+14155550100"' in await metric(client, "ctgw_pool_reused_total")
    assert await metric(client, "ctgw_pool_exhausted_total") == ""
    previous = first if third["number"] == first["number"] else second

    clock.advance(seconds=2)  # the last holder read the number before leaving, and dials now
    record = await call(client, admin_key, third["number"], "+12025550101", "1.0")
    attribution = record["attribution"]
    assert attribution["kind"] == "probable"
    candidates = {attribution["session_id"], attribution["other_session_id"]}
    assert candidates == {previous["session_id"], third["session_id"]}
    assert 0 < attribution["confidence"] < 1
    assert attribution["other_visitor_id"] in ("visitor-aaaa", "visitor-bbbb", "visitor-cccc")


async def test_a_returning_caller_is_attributed_to_the_visit_it_called_from(
    make_client: Client, tmp_path: Path, clock: FakeClock
) -> None:
    """A caller who called before from visit X gets X when X is one of two candidates; a new
    caller on the same number at the same moment gets the live holder."""
    client = await pressed(make_client, tmp_path, 1)
    admin_key = await _key(client)
    known = await visit(client, "visitor-xxxx")
    number = known["number"]
    before = await call(client, admin_key, number, "+12025550102", "1.0")
    assert before["attribution"]["visitor_id"] == "visitor-xxxx"
    clock.advance(seconds=16)  # X's lease ended; its number cools
    holder = await visit(client, "visitor-yyyy")
    assert holder["number"] == number  # reused under pressure
    clock.advance(seconds=12)  # past the dial delay (10 s), the holder still on the page

    again = (await call(client, admin_key, number, "+12025550102", "2.0"))["attribution"]
    assert again["kind"] == "probable"
    assert (again["session_id"], again["visitor_id"]) == (known["session_id"], "visitor-xxxx")
    assert (again["other_session_id"], again["other_visitor_id"]) == (
        holder["session_id"],
        "visitor-yyyy",
    )
    assert 0 < again["confidence"] < 1
    stranger = (await call(client, admin_key, number, "+12025550103", "3.0"))["attribution"]
    assert stranger["session_id"] == holder["session_id"]
    anonymous = (await call(client, admin_key, number, "", "4.0"))["attribution"]
    assert anonymous["session_id"] == holder["session_id"]


async def test_when_exhausted_overflow_keeps_the_overflow_number(
    make_client: Client, tmp_path: Path, clock: FakeClock
) -> None:
    """`when_exhausted = "overflow"`: a pool with no rested number shows the overflow number,
    counted as exhausted, and a call on the cooling number goes to its last holder as before."""
    client = await pressed(make_client, tmp_path, 1, when_exhausted="overflow")
    admin_key = await _key(client)
    first = await visit(client, "visitor-aaaa")
    clock.advance(seconds=16)
    later = await visit(client, "visitor-bbbb")
    assert (later["number"], later["kind"]) == (OVERFLOW, "overflow")
    assert 'pool="demo:+14155550100"' in await metric(client, "ctgw_pool_exhausted_total")
    assert await metric(client, "ctgw_pool_reused_total") == ""
    attribution = (await call(client, admin_key, first["number"], "+12025550104", "1.0"))[
        "attribution"
    ]
    assert (attribution["kind"], attribution["session_id"]) == ("probable", first["session_id"])
    assert attribution["other_session_id"] is None and attribution["other_visitor_id"] is None


@pytest.mark.parametrize("share", [True, False])
async def test_a_called_number_is_shared_and_counted_only_when_the_pool_shares(
    make_client: Client, tmp_path: Path, clock: FakeClock, share: bool
) -> None:
    """One number, its live holder has called: the next visitor shares it, counted in
    `ctgw_pool_shared_total` with the pool's labels; with `share_called_numbers = false` the
    visitor gets the overflow number and nothing is counted as shared."""
    client = await pressed(make_client, tmp_path, 1, share_called_numbers=share)
    admin_key = await _key(client)
    holder = await visit(client, "visitor-aaaa")
    called = await call(client, admin_key, holder["number"], "+12025550106", "1.0")
    assert called["attribution"]["session_id"] == holder["session_id"]
    clock.advance(seconds=2)
    second = await visit(client, "visitor-bbbb")
    shared = await metric(client, "ctgw_pool_shared_total")
    if share:
        assert (second["kind"], second["number"]) == ("pool", holder["number"])
        assert shared == 'ctgw_pool_shared_total{pool="demo:+14155550100",site="demo"} 1'
    else:
        assert (second["kind"], second["number"]) == ("overflow", OVERFLOW)
        assert shared == ""


async def test_static_and_overflow_calls_have_no_confidence(
    client: TestClient, admin_key: str
) -> None:
    """Only a lease decides a confidence: static and overflow calls show null for all three."""
    for linkedid, dialed in (("1.0", "+14155550150"), ("2.0", OVERFLOW)):
        attribution = (await call(client, admin_key, dialed, "+12025550105", linkedid))[
            "attribution"
        ]
        assert attribution["kind"] in ("static", "overflow")
        assert attribution["confidence"] is None
        assert attribution["other_session_id"] is attribution["other_visitor_id"] is None


async def test_pressure_settings_through_the_admin_api_and_the_store(
    client: TestClient, admin_key: str
) -> None:
    """POST /v1/sites takes the pool's pressure keys (bad ones are a 400 naming the key), the
    store keeps them, and the served pool leases by them."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    pool = {"target": "+14155550160", "numbers": ["+14155550161"], "cooldown_seconds": 60}
    for bad, key in (
        ({"when_exhausted": "wait"}, "when_exhausted"),
        ({"min_cooldown_seconds": 61}, "min_cooldown_seconds"),
        ({"dial_delay_seconds": -1}, "dial_delay_seconds"),
        ({"dial_delay_seconds": 10**15}, "dial_delay_seconds"),
        ({"share_called_numbers": 1}, "share_called_numbers"),
        ({"share_called_numbers": "false"}, "share_called_numbers"),
    ):
        site = {"key": "shop", "pools": [{**pool, **bad}]}
        resp = await client.post("/v1/sites", json=site, headers=auth)
        assert resp.status == 400, bad
        assert f"'pools[0].{key}'" in (await resp.json())["error"]["message"]
    given = {
        "when_exhausted": "overflow",
        "min_cooldown_seconds": 20,
        "dial_delay_seconds": 4,
        "share_called_numbers": False,
    }
    site = {"key": "shop", "pools": [{**pool, **given}]}
    assert (await client.post("/v1/sites", json=site, headers=auth)).status == 201
    row = await client.app[DB].fetchone("SELECT settings FROM pools WHERE site = 'shop'")
    stored = json.loads(row["settings"])
    assert {k: stored[k] for k in given} == given
    rules = client.app[DESK].sites["shop"].site.pools[0].rules
    assert rules.when_exhausted == "overflow"
    assert (rules.min_cooldown.total_seconds(), rules.dial_delay.total_seconds()) == (20, 4)
    assert rules.share_called is False


async def test_a_pool_stored_before_the_pressure_keys_takes_their_defaults(
    client: TestClient,
) -> None:
    """A pool row written by an older version (no pressure keys) loads with the defaults."""
    db = client.app[DB]
    row = await db.fetchone("SELECT settings FROM pools WHERE pool_id = ?", (POOL_ID,))
    new = json.loads(row["settings"])
    assert new["share_called_numbers"] is True  # the config's default, written out
    pressure = ("when_exhausted", "min_cooldown_seconds", "dial_delay_seconds")
    old = {k: v for k, v in new.items() if k not in (*pressure, "share_called_numbers")}
    await db.write(
        [Write("UPDATE pools SET settings = ? WHERE pool_id = ?", (json.dumps(old), POOL_ID))]
    )
    await client.app[DESK].book.reload()
    rules = client.app[DESK].sites["demo"].site.pools[0].rules
    assert rules.when_exhausted == "reuse"
    assert (rules.min_cooldown.total_seconds(), rules.dial_delay.total_seconds()) == (0, 0)
    assert rules.share_called is True
