"""Fixtures for the PostgreSQL tests: one private cluster a test session (tests/lab/postgres.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from gateway.store.pg.migrate import apply_migrations
from tests.lab.postgres import PgCluster, pg_bin_dir, private_cluster


def _missing(reason: str) -> None:
    """Skip outside CI; under CI=true a missing real part is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real parts may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL started once per test session, stopped and removed at its end."""
    if pg_bin_dir() is None:
        _missing("PostgreSQL is not installed: run tests/lab/setup.sh as root")
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres(pg_cluster: PgCluster) -> str:
    """The `postgresql://` URL of the session's private cluster."""
    return pg_cluster.url


@pytest.fixture
async def pg_db(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """A fresh database of the session's cluster with the store's schema; dropped after."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_cluster.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = pg_cluster.url.rsplit("/", 1)[0] + f"/{name}"
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        yield url
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()
