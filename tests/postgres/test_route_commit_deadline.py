"""The route on PostgreSQL when the FastAGI deadline passes while the call's record is being
committed (its lookups answered in time): Asterisk gets no route and dials the fallback, so
the record is set to `fallback` once the commit lands, counted and logged late once. A commit
that lands while the caller still waits keeps its route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from gateway.appkeys import AGI, METRICS
from gateway.telephony.route import FALLBACK_ROUTE
from tests.api.test_call_routing import call_env, routed
from tests.postgres.test_route_deadline import (
    SETTLE_S,
    Gateway,
    calls_of,
    gateway,  # noqa: F401 - the fixture
    in_flight,
    leased_number,
    until,
)
from tests.unit.test_agi import fake_asterisk

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@asynccontextmanager
async def calls_writes_held(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another connection holds every write to the calls table while reads go on: a route's
    lookups answer, and its record's commit waits until the block ends."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE calls IN EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def committing(conn: asyncpg.Connection) -> bool:
    """Whether a write to the calls table waits for the lock (reads do not: a route is
    committing its record)."""
    sql = "SELECT count(*) FROM pg_locks WHERE relation = 'calls'::regclass AND NOT granted"
    return bool(await conn.fetchval(sql))


async def settled(client: TestClient, linkedid: str) -> list[asyncpg.Record]:
    """The call rows of `linkedid` once no route is in flight any more (a route in flight
    lasts until its record is corrected)."""

    async def landed() -> bool:
        return bool(await calls_of(client, linkedid)) and in_flight(client) == 0

    await until(landed, f"the call {linkedid} recorded and no route in flight")
    return await calls_of(client, linkedid)


async def test_a_deadline_passing_during_the_commit_leaves_the_record_as_the_fallback(
    gateway: Gateway,  # noqa: F811 - the fixture
    pg_db: str,
) -> None:
    """The route decides (the session still waits) and its commit is held past the deadline:
    Asterisk gets no route, and the record says `fallback`, counted and logged late once."""
    client = await gateway(3000)
    session_id, number = await leased_number(client)
    agi = client.app[AGI]
    with capture_logs() as logs:
        async with calls_writes_held(pg_db) as held:
            asked = asyncio.create_task(
                fake_asterisk(agi, call_env(number, linkedid="46.0"), timeout=SETTLE_S)
            )

            async def decided() -> bool:
                assert not asked.done(), asked.result()  # decided while the session waited
                return await committing(held)

            await until(decided, "the route committing its record")
            assert await asked == [] and agi.outcomes["deadline_exceeded"] == 1
        (call,) = await settled(client, "46.0")
    assert call["route"] == FALLBACK_ROUTE
    assert (call["attribution_kind"], call["session_id"]) == ("active", session_id)
    metrics = client.app[METRICS]
    assert metrics.value("ctgw_calls_routed_late_total", site="demo") == 1
    assert metrics.value("ctgw_calls_total", site="demo", kind="active") == 1
    late = [(e["call_id"], e["late"], e["route"]) for e in logs if e["event"] == "call_routed_late"]
    assert late == [(call["call_id"], "agi_deadline_in_commit", FALLBACK_ROUTE)]
    assert not [e for e in logs if e["event"] in ("call_routed", "call_route_failed")]


async def test_a_commit_landing_while_the_caller_waits_keeps_its_route(
    gateway: Gateway,  # noqa: F811 - the fixture
    pg_db: str,
) -> None:
    """The same held commit, let go while the session still waits: the route goes to
    Asterisk and stays in the record, not late."""
    client = await gateway(60_000)
    agi = client.app[AGI]
    _, number = await leased_number(client)
    with capture_logs() as logs:
        async with calls_writes_held(pg_db) as held:
            asked = asyncio.create_task(
                fake_asterisk(agi, call_env(number, linkedid="47.0"), timeout=SETTLE_S)
            )
            await until(lambda: committing(held), "the route committing its record")
        variables = routed(await asked)
        (call,) = await settled(client, "47.0")
    assert variables["CTGW_ROUTE"] == call["route"] == "PJSIP/agent1"
    assert variables["CTGW_CALL_ID"] == call["call_id"]
    assert agi.outcomes == {"routed": 1}
    assert client.app[METRICS].value("ctgw_calls_routed_late_total", site="demo") == 0
    assert [e["call_id"] for e in logs if e["event"] == "call_routed"] == [call["call_id"]]
    assert not [e for e in logs if e["event"] == "call_routed_late"]
