"""The route on PostgreSQL when a lookup outlasts the FastAGI deadline: the caller gets the
fallback, and the call is still recorded, once, attributed once, with route `fallback` unless
an AGI session (a retry of the call) still waits for the answer when it is recorded."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.app import _ROUTER, create_app
from gateway.appkeys import AGI, DB, DESK, METRICS
from gateway.config import parse_config
from gateway.store.store_types import StoreError
from gateway.telephony.agi import AgiRequest, RouteDecision
from gateway.telephony.route import FALLBACK_ROUTE
from gateway.telephony.route_flights import Flight, Flights
from tests.api.conftest import demo_config, open_session
from tests.api.test_call_routing import call_env, routed
from tests.unit.test_agi import fake_asterisk

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

# Generous: the tests wait for what must happen, never for how fast (a loaded 2-core machine).
SETTLE_S = 30.0

Gateway = Callable[[int], Awaitable[TestClient]]


@pytest.fixture
async def gateway(pg_db: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Starts the demo gateway on the test's PostgreSQL database with a given AGI deadline."""
    started: list[TestClient] = []

    async def start(deadline_ms: int) -> TestClient:
        raw = demo_config(tmp_path)
        raw["store"] = {"url": pg_db}
        raw["agi"]["deadline_ms"] = deadline_ms
        config = parse_config(raw, source="test", environ=dict(os.environ))
        client = TestClient(TestServer(create_app(config)))
        await client.start_server()
        started.append(client)
        return client

    try:
        yield start
    finally:
        for client in started:
            await client.close()


@asynccontextmanager
async def calls_locked(url: str) -> AsyncIterator[None]:
    """Another connection holds the calls table: every read of it (the route's first lookup,
    the call for its linkedid) waits until the block ends."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(SETTLE_S):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {SETTLE_S:g} s: {what}")


async def leased_number(client: TestClient) -> tuple[str, str]:
    """A visit's session id and the number it was given."""
    session = await (await open_session(client)).json()
    return session["session_id"], session["numbers"][0]["number"]


def counting_notes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The arguments of every call the demo pool is told of (Pool.note_call), in order."""
    (pool,) = [pool for _, pool in client.app[DESK].book.pools()]
    notes: list[Any] = []
    note_call = pool.note_call

    def counted(*args: Any, **kwargs: Any) -> None:
        notes.append(args)
        note_call(*args, **kwargs)

    monkeypatch.setattr(pool, "note_call", counted)
    return notes


def in_flight(client: TestClient) -> float:
    for line in client.app[METRICS].render().splitlines():
        if line.startswith("ctgw_routes_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no ctgw_routes_in_flight gauge")


async def recorded(client: TestClient, linkedid: str) -> list[Any]:
    """The call rows of `linkedid`, once no route is in flight any more."""

    async def landed() -> bool:
        return bool(await calls_of(client, linkedid)) and in_flight(client) == 0

    await until(landed, f"the call {linkedid} recorded and no route in flight")
    return await calls_of(client, linkedid)


async def calls_of(client: TestClient, linkedid: str) -> list[Any]:
    return await client.app[DB].fetchall(
        "SELECT call_id, route, attribution_kind, session_id FROM calls WHERE linkedid = ?",
        (linkedid,),
    )


async def test_a_route_cut_by_the_deadline_is_recorded_once_as_the_fallback(
    gateway: Gateway, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup held past the deadline: Asterisk gets no route (it dials the fallback), and
    once the store answers the call is recorded once, route fallback, with its attribution,
    counted and logged as a late route."""
    client = await gateway(300)
    session_id, number = await leased_number(client)
    notes = counting_notes(client, monkeypatch)
    with capture_logs() as logs:
        async with calls_locked(pg_db):
            env = call_env(number, linkedid="41.0")
            answer = await fake_asterisk(client.app[AGI], env, timeout=SETTLE_S)
            assert answer == [] and client.app[AGI].outcomes["deadline_exceeded"] == 1
        (call,) = await recorded(client, "41.0")
    assert call["route"] == FALLBACK_ROUTE
    assert (call["attribution_kind"], call["session_id"]) == ("active", session_id)
    assert len(notes) == 1
    assert client.app[METRICS].value("ctgw_calls_routed_late_total", site="demo") == 1
    late = [e for e in logs if e["event"] == "call_routed_late"]
    assert [(e["call_id"], e["late"]) for e in late] == [(call["call_id"], "agi_deadline")]


async def test_a_retry_while_the_first_lookup_is_held_shares_its_route(
    gateway: Gateway, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry of the same linkedid while the first route is still held: both get no route,
    the call is recorded once (route fallback) and the pool is told of it once."""
    client = await gateway(300)
    session_id, number = await leased_number(client)
    notes = counting_notes(client, monkeypatch)
    env = call_env(number, linkedid="42.0")
    with capture_logs() as logs:
        async with calls_locked(pg_db):
            first = await fake_asterisk(client.app[AGI], env, timeout=SETTLE_S)
            again = await fake_asterisk(client.app[AGI], env, timeout=SETTLE_S)
            assert first == again == []
        (call,) = await recorded(client, "42.0")
    assert (call["route"], call["session_id"]) == (FALLBACK_ROUTE, session_id)
    assert len(notes) == 1
    assert [e["linkedid"] for e in logs if e["event"] == "call_route_joined"] == ["42.0"]
    assert client.app[AGI].outcomes["deadline_exceeded"] == 2


async def test_a_retry_still_waiting_when_the_call_is_recorded_gets_its_route(
    gateway: Gateway, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt is cut by the deadline; its retry joins the held route and is still
    waiting when the store answers: the retry gets the route and the call id, and the store
    records that route (the call went to the agent, not the fallback), once."""
    client = await gateway(4000)  # the retry's wait: ample for the route once the store answers
    session_id, number = await leased_number(client)
    notes = counting_notes(client, monkeypatch)
    env = call_env(number, linkedid="43.0")
    agi = client.app[AGI]
    with capture_logs() as logs:
        async with calls_locked(pg_db):
            assert await fake_asterisk(agi, env, timeout=SETTLE_S) == []
            retry = asyncio.create_task(fake_asterisk(agi, env, timeout=SETTLE_S))

            async def joined() -> bool:
                assert not retry.done(), retry.result()
                return any(e["event"] == "call_route_joined" for e in logs)

            await until(joined, "the retry joined the route in flight")
        variables = routed(await retry)
        (call,) = await recorded(client, "43.0")
    assert variables["CTGW_ROUTE"] == call["route"] == "PJSIP/agent1"
    assert variables["CTGW_CALL_ID"] == call["call_id"]
    assert call["session_id"] == session_id and len(notes) == 1
    assert agi.outcomes == {"deadline_exceeded": 1, "routed": 1}


async def test_a_route_failing_once_nobody_waits_is_logged_not_raised() -> None:
    """A route in flight that fails after its AGI session gave up is logged with its linkedid
    and call id (call_route_failed) and leaves the flights; one that fails while a session
    waits raises there (the AGI server counts it decider_failed)."""
    flights = Flights()
    store_back = asyncio.Event()

    async def failing_late(flight: Flight) -> RouteDecision | None:
        flight.call_id = "c-44"
        await store_back.wait()
        raise StoreError("store write failed: gone")

    async def failing_now(flight: Flight) -> RouteDecision | None:
        raise StoreError("store write failed: gone")

    with capture_logs() as logs:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # the AGI deadline
                await flights.join("44.0", failing_late)
        assert len(flights) == 1
        store_back.set()
        await flights.close()
        assert len(flights) == 0
        with pytest.raises(StoreError):
            await flights.join("45.0", failing_now)
    failed = [(e["linkedid"], e["call_id"]) for e in logs if e["event"] == "call_route_failed"]
    assert failed == [("44.0", "c-44")] and len(flights) == 0


async def test_a_route_that_ends_in_time_but_reaches_no_waiter_is_recorded_as_the_fallback(
    gateway: Gateway, pg_db: str
) -> None:
    """The route's lookups and commit finish while its AGI session still waits, but the
    session's deadline falls before it wakes for the answer: Asterisk dials the fallback, so the
    record, recorded with the route, is set to the fallback and the call counted late."""
    client = await gateway(4000)
    _, number = await leased_number(client)
    router = client.app[_ROUTER]
    request = AgiRequest(number, "+12025550100", "Ada", "46.0", "46.0", "Local/46@test", {})
    with capture_logs() as logs:
        async with calls_locked(pg_db):  # the route waits in its first lookup
            waiter = asyncio.create_task(router.decide(request))

            async def flying() -> bool:
                return in_flight(client) == 1

            await until(flying, "the route in flight")
            (flight,) = router._flights._flights.values()
            flight.task.add_done_callback(lambda _: waiter.cancel())  # cut as it lands
        with pytest.raises(asyncio.CancelledError):
            await waiter

        async def corrected() -> bool:
            rows = await calls_of(client, "46.0")
            return bool(rows) and rows[0]["route"] == FALLBACK_ROUTE

        await until(corrected, "the record set to the fallback")
    assert client.app[METRICS].value("ctgw_calls_routed_late_total", site="demo") == 1
    assert [e["late"] for e in logs if e["event"] == "call_route_undelivered"] == ["agi_deadline"]


async def test_an_ask_after_the_call_was_recorded_as_the_fallback_gets_the_route(
    gateway: Gateway, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ask is cut and the call recorded `fallback`; a second ask of the same call
    once that record landed (the dialplan's second gateway, or a retried lookup) is answered
    with the route, and the record now says it: the agent was dialed, not the fallback."""
    client = await gateway(300)
    session_id, number = await leased_number(client)
    notes = counting_notes(client, monkeypatch)
    env = call_env(number, linkedid="47.0")
    agi = client.app[AGI]
    with capture_logs() as logs:
        async with calls_locked(pg_db):
            assert await fake_asterisk(agi, env, timeout=SETTLE_S) == []
        (call,) = await recorded(client, "47.0")
        assert (call["route"], call["session_id"]) == (FALLBACK_ROUTE, session_id)
        monkeypatch.setattr(agi, "_deadline_s", SETTLE_S)  # the second ask is not cut
        variables = routed(await fake_asterisk(agi, env, timeout=SETTLE_S))

        async def rerouted() -> bool:
            return (await calls_of(client, "47.0"))[0]["route"] == "PJSIP/agent1"

        await until(rerouted, "the record set to the route the second ask was given")
    assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
    assert variables["CTGW_CALL_ID"] == call["call_id"]
    assert len(await calls_of(client, "47.0")) == 1 and len(notes) == 1
    again = [e for e in logs if e["event"] == "call_route_again"]
    assert [(e["call_id"], e["was"]) for e in again] == [(call["call_id"], FALLBACK_ROUTE)]
