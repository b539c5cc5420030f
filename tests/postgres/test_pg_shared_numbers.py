"""Sharing a called number with `ctgw serve` on PostgreSQL: the scenarios of
tests/api/test_shared_numbers.py, whose restart reads leases and who called whom back through
the PostgreSQL store's own statements (gateway/store/sessions.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.pg.sql import numbered_placeholders
from tests.api import test_shared_numbers as shared
from tests.lab.postgres import PgCluster
from tests.postgres.conftest import drop_database, empty_database

# Each takes 3-5 s here (a daemon started twice); the timeout bounds a hang.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


class PgDaemon(shared.Daemon):
    """`ctgw serve` on a database of the lab's cluster (it migrates it as it starts)."""

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(self.store_url)
        try:
            return [dict(row) for row in await conn.fetch(numbered_placeholders(sql), *args)]
        finally:
            await conn.close()


@pytest.fixture
async def make_gateway(
    pg_cluster: PgCluster, tmp_path: Path
) -> AsyncIterator[Callable[[bool], Awaitable[shared.Gateway]]]:
    """A started daemon on a new database, sharing or not; closed and the database dropped."""
    started: list[shared.Gateway] = []
    urls: list[str] = []

    async def make(share: bool) -> shared.Gateway:
        urls.append(await empty_database(pg_cluster))
        gateway = PgDaemon(tmp_path, share, urls[-1])
        started.append(gateway)
        await gateway.start()
        return gateway

    yield make
    for gateway in started:
        await gateway.close()
    for url in urls:
        await drop_database(pg_cluster, url)


Make = Callable[[bool], Awaitable[shared.Gateway]]


async def test_a_called_number_is_shared_and_each_call_finds_its_visit(make_gateway: Make) -> None:
    """B shares A's called number on PostgreSQL; each phone finds its visit, before and after
    a restart; a third visitor does not get it."""
    await shared.test_a_called_number_is_shared_and_each_call_finds_its_visit(make_gateway)


async def test_a_pool_that_does_not_share_leases_the_silent_visits_number(
    make_gateway: Make,
) -> None:
    """`share_called_numbers = false` on PostgreSQL: B gets X's cooling number."""
    await shared.test_a_pool_that_does_not_share_leases_the_silent_visits_number(make_gateway)


async def test_a_returning_visitor_keeps_the_number_it_shares(make_gateway: Make) -> None:
    """A returning visitor gets back the number it shares on PostgreSQL; B keeps it."""
    await shared.test_a_returning_visitor_keeps_the_number_it_shares(make_gateway)
