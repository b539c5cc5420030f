"""PgDatabase keeps the SQLite store's promises: one transaction per loop pass, a poisoned
request fails alone, reads as sqlite3.Row reads, migrations once even from two gateways."""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from structlog.testing import capture_logs

from gateway.store.database import StoreError, Write
from gateway.store.pg import database as pg_database
from gateway.store.pg.database import PgDatabase, _said
from gateway.store.pg.migrate import _migrations
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, empty_database

pytestmark = pytest.mark.postgres

_CALL_SQL = (
    "INSERT INTO calls (call_id, site, dialed, started_at, state, attribution_kind, attribution,"
    " test_call) VALUES (?, 'demo', '+14155550101', '2026-01-05T09:00:00.000000Z', 'ringing',"
    " 'active', ?, ?)"
)


def _call(call_id: str, attribution: str = "{}", test_call: int = 0) -> Write:
    return Write(_CALL_SQL, (call_id, attribution, test_call), rank=60)


async def _submit_all(db: PgDatabase, writes: list[Write]) -> list[asyncio.Future[None]]:
    """Each write as a request of its own, all in one loop pass; answered on return."""
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[None]] = []
    for write in writes:
        done: asyncio.Future[None] = loop.create_future()
        db.submit([write], done)
        futures.append(done)
    await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
    return futures


async def test_the_writes_of_one_loop_pass_share_one_commit(pg_store: PgDatabase) -> None:
    before = pg_store.commits
    futures = await _submit_all(pg_store, [_call(f"call-{i}") for i in range(50)])
    assert all(f.exception() is None for f in futures)
    assert pg_store.commits == before + 1
    assert len(await pg_store.fetchall("SELECT call_id FROM calls")) == 50


async def test_writes_queued_while_a_commit_runs_go_in_the_next(pg_store: PgDatabase) -> None:
    first = asyncio.ensure_future(pg_store.write([_call("a")]))
    await asyncio.sleep(0)  # the first commit has begun
    await asyncio.gather(first, pg_store.write([_call("b")]), pg_store.write([_call("c")]))
    assert {row["call_id"] for row in await pg_store.fetchall("SELECT call_id FROM calls")} == {
        "a",
        "b",
        "c",
    }


@pytest.mark.parametrize(
    "poison",
    [("{\x00}", 0), ("\udc80", 0), ("{}", 2**70), ("{}", "not a number")],
    ids=["nul-in-text", "lone-surrogate", "int-over-64-bits", "text-for-an-integer"],
)
async def test_a_poisoned_write_fails_alone_and_the_calls_beside_it_commit(
    pg_store: PgDatabase, poison: tuple[Any, Any]
) -> None:
    writes = [_call(f"call-{i}") for i in range(100)]
    writes[37] = _call("call-37", *poison)
    futures = await _submit_all(pg_store, writes)
    failed = [i for i, f in enumerate(futures) if f.exception() is not None]
    assert failed == [37]
    assert isinstance(futures[37].exception(), StoreError)
    rows = await pg_store.fetchall("SELECT call_id FROM calls")
    assert len(rows) == 99 and "call-37" not in {row["call_id"] for row in rows}


async def test_a_store_that_refuses_writes_fails_the_batch_in_one_try(
    pg_store: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun: list[int] = []
    commit = pg_store._commit

    async def counted(writes: list[Write]) -> None:
        begun.append(len(writes))
        await commit(writes)

    monkeypatch.setattr(pg_store, "_commit", counted)
    await pg_store._writer.execute("SET default_transaction_read_only = on")
    futures = await _submit_all(pg_store, [_call(f"call-{i}") for i in range(20)])
    assert all(isinstance(f.exception(), StoreError) for f in futures)
    assert len(begun) == 1  # one group commit tried, not one per request
    await pg_store._writer.execute("SET default_transaction_read_only = off")
    await pg_store.write([_call("call-after")])
    assert len(await pg_store.fetchall("SELECT call_id FROM calls")) == 1


async def test_writes_run_by_rank_so_rows_come_before_rows_that_refer_to_them(
    pg_store: PgDatabase,
) -> None:
    at = "2026-01-05T09:00:00.000000Z"
    pool = Write(
        "INSERT INTO pools (pool_id, site, target, created_at) VALUES (?, ?, ?, ?)",
        ("demo:main", "demo", "+14155550100", at),
        rank=20,
    )
    site = Write("INSERT INTO sites (key, created_at) VALUES (?, ?)", ("demo", at), rank=10)
    await pg_store.write([pool, site])
    assert await pg_store.fetchone("SELECT count(*) AS n FROM pools") is not None


async def test_rows_read_by_name_and_by_position(pg_store: PgDatabase) -> None:
    await pg_store.write([_call("call-1", '{"a": 1}'), _call("call-2")])
    rows = await pg_store.fetchall("SELECT call_id, attribution FROM calls ORDER BY call_id")
    assert [(row["call_id"], row[1]) for row in rows] == [("call-1", '{"a": 1}'), ("call-2", "{}")]
    one = await pg_store.fetchone("SELECT call_id FROM calls WHERE call_id = ?", ("call-2",))
    assert one is not None and one[0] == "call-2"
    found = await pg_store.lookup("SELECT state FROM calls WHERE call_id = ?", ("call-1",))
    assert found is not None and found["state"] == "ringing"
    assert await pg_store.lookup("SELECT 1 FROM calls WHERE call_id = ?", ("none",)) is None
    assert await pg_store.fetchone("SELECT 1 FROM calls WHERE call_id = ?", ("none",)) is None


async def test_close_commits_what_is_queued_and_then_refuses(pg_db: str) -> None:
    db = await PgDatabase.open(pg_db)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    db.submit([_call("queued")], done)
    await db.close()
    assert done.result() is None
    with pytest.raises(StoreError, match="closed"):
        db.submit([_call("late")], asyncio.get_running_loop().create_future())
    again = await PgDatabase.open(pg_db)
    try:
        assert await again.lookup("SELECT 1 FROM calls WHERE call_id = ?", ("queued",))
    finally:
        await again.close()


async def test_migrating_twice_applies_nothing_the_second_time(pg_store: PgDatabase) -> None:
    # A commit and a migration share the writer connection: they take turns.
    applied, _ = await asyncio.gather(pg_store.migrate(), pg_store.write([_call("meanwhile")]))
    assert applied == []
    rows = await pg_store.fetchall("SELECT name FROM schema_migrations ORDER BY version")
    assert [row["name"] for row in rows] == [name for _, name, _ in _migrations()]


async def test_two_gateways_opening_an_empty_database_at_once_migrate_it_once(
    pg_cluster: PgCluster,
) -> None:
    url = await empty_database(pg_cluster)
    try:
        both = await asyncio.gather(PgDatabase.open(url), PgDatabase.open(url))
        try:
            rows = await both[0].fetchall("SELECT version FROM schema_migrations")
            assert len(rows) == len(_migrations())
            await both[1].write([_call("after")])
        finally:
            await asyncio.gather(*(db.close() for db in both))
    finally:
        await drop_database(pg_cluster, url)


async def test_two_gateway_processes_starting_at_once_migrate_once(pg_cluster: PgCluster) -> None:
    url = await empty_database(pg_cluster)
    try:
        started = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.postgres.open_store", url, stdout=PIPE
            )
            for _ in range(2)
        ]
        outputs = [(await asyncio.wait_for(p.communicate(), 60))[0] for p in started]
        assert [p.returncode for p in started] == [0, 0]
        applied = [json.loads(out) for out in outputs]
        assert sorted(applied, key=len) == [[], [name for _, name, _ in _migrations()]]
    finally:
        await drop_database(pg_cluster, url)


async def test_the_writer_reconnects_after_postgresql_dropped_it(
    pg_store: PgDatabase, pg_cluster: PgCluster
) -> None:
    await pg_store.write([_call("before")])
    admin = await asyncpg.connect(pg_cluster.url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pg_store._writer.get_server_pid())
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # asyncpg sees the connection closed: the next commit reconnects
    await pg_store.write([_call("after")])
    rows = await pg_store.fetchall("SELECT call_id FROM calls ORDER BY call_id")
    assert [row["call_id"] for row in rows] == ["after", "before"]


async def test_a_batch_that_meets_a_dropped_connection_fails_and_the_next_reconnects(
    pg_store: PgDatabase,
) -> None:
    # The writer's own connection ends inside the group commit (a superuser may end itself).
    dropped = Write("SELECT pg_terminate_backend(pg_backend_pid())", (), rank=70)
    writes = [_call("lost-1"), dropped, _call("lost-2")]
    futures = await _submit_all(pg_store, writes)
    assert all(isinstance(f.exception(), StoreError) for f in futures)
    await pg_store.write([_call("after")])
    rows = await pg_store.fetchall("SELECT call_id FROM calls ORDER BY call_id")
    assert [row["call_id"] for row in rows] == ["after"]


async def test_a_refused_row_is_said_without_its_values(pg_store: PgDatabase) -> None:
    """PostgreSQL's DETAIL names the row ("Failing row contains (...)", "Key (...)=(...)"):
    neither the StoreError nor the log line repeats a value of the refused row."""
    secret = "+14155559876"
    first = await _submit_all(pg_store, [_call(secret)])
    assert first[0].exception() is None
    writes = [
        _call(secret),  # the same primary key again: its DETAIL would name the key
        Write(_CALL_SQL, (f"{secret}-x", None, 0), rank=60),  # NOT NULL: the failing row
    ]
    with capture_logs() as logs:
        futures = await _submit_all(pg_store, writes)
    errors = [str(f.exception()) for f in futures]
    assert all(e.startswith("store write failed: ") for e in errors), errors
    assert "duplicate key" in errors[0] and "not-null" in errors[1], errors
    said = json.dumps([errors, logs], default=str)
    assert secret not in said and "Failing row" not in said and "Key (" not in said


def test_a_bad_argument_is_said_without_its_value() -> None:
    error = asyncpg.DataError(
        "invalid input for query argument $3: 'Mozilla/5.0 (X11; +14155550123)'"
        " (expected int, got str)"
    )
    assert _said(error) == "invalid input for query argument $3 (expected int, got str)"
    assert _said(ValueError("plain")) == "plain"


async def test_a_statement_postgresql_does_not_answer_in_time_fails_its_batch(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_database, "_STATEMENT_TIMEOUT", 0.5)
    db = await PgDatabase.open(pg_db)
    try:
        stalled = Write("SELECT pg_sleep(5)", (), rank=70)
        futures = await _submit_all(db, [_call("stalled-1"), stalled])
        assert all(isinstance(f.exception(), StoreError) for f in futures)
        with pytest.raises(TimeoutError):
            await db.fetchall("SELECT pg_sleep(5)")
        await db.write([_call("after")])
        assert [row["call_id"] for row in await db.fetchall("SELECT call_id FROM calls")] == [
            "after"
        ]
    finally:
        await db.close()
    await db.close()  # twice: nothing more to do
