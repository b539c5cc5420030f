"""`Database.lookup` is awaitable (a PostgreSQL lookup is a round trip): with SQLite it never
suspends, and the route stays consistent with a store whose lookups do."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest

from gateway.appkeys import AGI, DB
from gateway.store.database import Database
from tests.api.conftest import demo_config
from tests.api.test_call_routing import call_env, routed
from tests.unit.test_agi import fake_asterisk

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(make_client, tmp_path):
    """The demo gateway with a 5 s route deadline: these tests are about consistency while
    lookups suspend (up to four 20 ms pauses a route), not about the 300 ms deadline, which a
    loaded 2-core machine can make them miss (seen: a full run at load average 4.7)."""
    config = demo_config(tmp_path)
    config["agi"]["deadline_ms"] = 5000
    return await make_client(config)


async def test_a_sqlite_lookup_never_suspends(client) -> None:
    """The route's check-then-queue steps rely on it: awaiting a lookup gives no other
    coroutine a turn."""
    lookup = client.app[DB].lookup("SELECT 1 AS one")
    with pytest.raises(StopIteration) as done:
        lookup.send(None)
    assert done.value.value["one"] == 1


def suspending(db: Database, monkeypatch: pytest.MonkeyPatch, pause: float) -> None:
    """Lookups as a network store answers them: read at once, the answer `pause` later (so a
    commit may land in between, unseen by the answer)."""
    read = db.lookup

    async def lookup(sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row = await read(sql, params)
        await asyncio.sleep(pause)
        return row

    monkeypatch.setattr(db, "lookup", lookup)


async def after(delay: float, env: bytes, agi: Any) -> list[str]:
    await asyncio.sleep(delay)
    return await fake_asterisk(agi, env)


@pytest.mark.parametrize("pause", [0.0, 0.002, 0.02])
async def test_calls_from_a_new_caller_share_one_contact_when_lookups_suspend(
    client, monkeypatch: pytest.MonkeyPatch, pause: float
) -> None:
    suspending(client.app[DB], monkeypatch, pause)
    agi = client.app[AGI]
    env = [call_env("+14155550150", caller="+12025550177", linkedid=f"5.{i}") for i in range(4)]
    answers = await asyncio.gather(*(after(i * pause / 2, e, agi) for i, e in enumerate(env)))
    assert all(routed(a)["CTGW_ROUTE"] == "PJSIP/agent1" for a in answers)
    db = client.app[DB]
    contacts = await db.fetchall("SELECT contact_id, calls FROM contacts")
    assert len(contacts) == 1 and contacts[0]["calls"] == 4
    calls = await db.fetchall("SELECT contact_id, first_time FROM calls")
    assert {c["contact_id"] for c in calls} == {contacts[0]["contact_id"]}
    assert sorted(c["first_time"] for c in calls) == [0, 0, 0, 1]


async def test_a_retry_of_a_call_being_routed_gets_its_call_id_when_lookups_suspend(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspending(client.app[DB], monkeypatch, 0.005)
    agi = client.app[AGI]
    env = call_env("+14155550150", linkedid="7.0")
    once, again = await asyncio.gather(after(0, env, agi), after(0.001, env, agi))
    assert routed(once)["CTGW_CALL_ID"] == routed(again)["CTGW_CALL_ID"]
    assert len(await client.app[DB].fetchall("SELECT call_id FROM calls")) == 1
