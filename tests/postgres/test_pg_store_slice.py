"""The first store functions that run on both backends, run on both: API keys, staff users and
their sessions, call marks and campaign costs, webhook endpoints, numbers in pools, the
config's sites written (docs/postgresql.md lists the modules still SQLite-only and why)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.store import call_marks, keys, numbers, sites, staff, webhooks
from gateway.store.database import StoreError, Write
from reports.costs import CostRow
from tests.api.conftest import demo_config
from tests.postgres.conftest import STAMP

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_api_keys(store: Any) -> None:
    key = await keys.create_key(store, "ci", T0)
    assert await keys.find_key(store, key) == "ci"
    with pytest.raises(keys.KeyNameTaken):
        await keys.create_key(store, "ci", T0)
    assert [k.name for k in await keys.list_keys(store)] == ["ci"]
    assert await keys.revoke_key(store, "ci", T0 + timedelta(minutes=1)) == 1
    assert await keys.find_key(store, key) is None
    assert (await keys.list_keys(store))[0].revoked_at == "2026-01-05T09:01:00.000000Z"


async def test_staff_users_and_their_sessions(store: Any) -> None:
    user = await staff.create_user(
        store,
        email="Ann@Example.com",
        name="Ann",
        role="marketer",
        sites=["demo"],
        password="correct horse battery",
        at=T0,
    )
    with pytest.raises(staff.EmailTaken):
        await staff.create_user(
            store,
            email="ann@example.com",
            name="Ann",
            role="admin",
            sites=[],
            password="correct horse battery",
            at=T0,
        )
    assert await staff.known_sites(store) == {"demo": "Demo"}
    assert [u.email for u in await staff.list_users(store)] == ["ann@example.com"]
    assert await staff.authenticate(store, "ann@example.com", "wrong password!!") is None
    found = await staff.authenticate(store, "ANN@example.com", "correct horse battery")
    assert found is not None and found.user_id == user.user_id and found.sites == {"demo"}
    token, session = await staff.open_session(store, found, T0)
    later = await staff.find_session(store, token, T0 + timedelta(hours=1))
    assert later is not None and later.csrf == session.csrf
    await staff.end_session(store, session)
    assert await staff.find_session(store, token, T0 + timedelta(hours=1)) is None


async def test_call_marks_and_campaign_costs(store: Any) -> None:
    await store.write(
        [
            Write(
                "INSERT INTO calls (call_id, site, dialed, started_at, state, attribution_kind)"
                " VALUES (?, 'demo', '+14155550101', ?, 'missed', 'none')",
                ("c1", STAMP),
            )
        ]
    )
    assert await call_marks.call_site(store, "c1") == "demo"
    assert await call_marks.call_marks(store, "c1") == {"spam": False, "test": False}
    await store.write([call_marks.mark_write("c1", spam=True, test=None)])
    assert await call_marks.call_marks(store, "c1") == {"spam": True, "test": False}
    assert await call_marks.call_marks(store, "none") is None
    cost = CostRow("google", "spring", date(2026, 1, 1), date(2026, 1, 31), 120.5)
    await store.write(call_marks.cost_writes("demo", [cost]))
    await store.write(
        call_marks.cost_writes("demo", [dataclasses.replace(cost, amount=99.0)], keep_stored=True)
    )
    assert await call_marks.list_costs(store, "demo") == [cost]


async def test_webhook_endpoints(store: Any) -> None:
    made = await webhooks.create_endpoint(
        store, "demo", "https://hooks.example/ctgw", ["call.ended"], webhooks.new_secret(), T0
    )
    assert await webhooks.find_endpoint(store, made.endpoint_id) == made
    assert await webhooks.endpoints_for(store) == {"demo": [made]}
    assert await webhooks.site_exists(store, "demo") and not await webhooks.site_exists(store, "x")
    assert await webhooks.list_deliveries(store) == []
    assert await webhooks.replay_deliveries(store, made.endpoint_id, T0) == 0
    await webhooks.delete_endpoint(store, made.endpoint_id)
    assert await webhooks.list_endpoints(store) == []


async def test_numbers_added_placed_and_removed(store: Any) -> None:
    await store.write(numbers.add_writes("demo:main", ["+14155550111", "+14155550112"], T0))
    with pytest.raises(StoreError):  # a number some pool holds is not moved by an add
        await store.write(numbers.add_writes("demo:main", ["+14155550111"], T0))
    await store.write(
        [
            Write(
                "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
                ("demo:other", "demo", "+14155550199", STAMP),
            )
        ]
    )
    await store.write(numbers.place_writes("demo:other", ["+14155550112"], T0, rank=50))
    await store.write([numbers.remove_write("+14155550111")])
    rows = await store.fetchall("SELECT number, pool_id FROM numbers ORDER BY number")
    assert [(row["number"], row["pool_id"]) for row in rows] == [("+14155550112", "demo:other")]


async def test_sites_from_the_config_are_written_and_written_again(
    store: Any, tmp_path: Path
) -> None:
    raw = demo_config(tmp_path)
    raw["sites"][0]["key"] = "shop"
    config = parse_config(raw, source="test")
    await sites.seed_sites(store, config, T0)
    await sites.seed_sites(store, config, T0 + timedelta(minutes=1))  # the upserts
    rows = await store.fetchall("SELECT key, from_config FROM sites ORDER BY key")
    assert [(row["key"], row["from_config"]) for row in rows] == [("demo", 0), ("shop", 1)]
    pooled = await store.fetchall(
        "SELECT count(*) AS n FROM numbers JOIN pools USING (pool_id) WHERE site = 'shop'"
    )
    assert pooled[0]["n"] == len(raw["sites"][0]["pools"][0]["numbers"])
